"""Does the int8 encoder route like the float32 one? The shipped default on held-out prompts, both ways.

For each encoder precision (``float32``, ``int8``) this runs :func:`zerorouter_integrations.demo.run_demo`
(the shipped default's held-out prompts of each shared table, the default policy) with a
:class:`~zerorouter_integrations.encoder.QueryEncoder` of that precision (at the shipped router's
``max_seq_length``; the artifact itself was fit on the embeddings of ``ROUTING_ENCODER``), and prints
per table:

* the default policy's realized quality and USD per 1k calls, and the AUDC of its trade-off sweep;
* ``same choice``: the share of prompts routed to the same model by both precisions;
* the cosine between the two precisions' embeddings of the routed prompts (min / mean).

Speed is measured by ``benchmarks/encoder_speed.py --int8`` and ``benchmarks/overhead.py``.

Run: ``.venv/bin/python benchmarks/encoder_precision.py [--limit 400]``
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=400, help="held-out prompts per table (default 400)")
    args = ap.parse_args(argv)

    from rich.console import Console

    from zerorouter_integrations.demo import run_demo
    from zerorouter_integrations.encoder import ROUTING_ENCODER, QueryEncoder, default_cache_dir
    from zerorouter_integrations.tables import load_table

    results, encoders = {}, {}
    quiet = Console(file=io.StringIO())
    for precision in ("float32", "int8"):
        enc = QueryEncoder(
            max_seq_length=ROUTING_ENCODER["max_seq_length"],
            precision=precision,
            cache_dir=default_cache_dir() / "embeddings",
        )
        encoders[precision] = enc
        with tempfile.TemporaryDirectory() as out, redirect_stdout(io.StringIO()):
            results[precision] = run_demo(limit=args.limit, out=Path(out), console=quiet, encoder=enc)

    tables = [t for t in results["float32"] if t != "plot"]
    print("| table | prompts | precision | quality | $ / 1k | AUDC (%) | same choice | cos min / mean |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    from zerorouter_integrations.data import find_data_dir

    data = find_data_dir(None)
    for name in tables:
        a, b = results["float32"][name], results["int8"][name]
        ids = list(a["choices"])
        same = np.mean([a["choices"][i] == b["choices"].get(i) for i in ids])
        texts = load_table(data / name).texts(ids)
        ea, eb = encoders["float32"].encode(texts), encoders["int8"].encode(texts)
        cos = (ea * eb).sum(axis=1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
        for precision, r in (("float32", a), ("int8", b)):
            extra = (
                f"{100 * same:.1f} % | {cos.min():.4f} / {cos.mean():.4f}" if precision == "int8" else " | "
            )
            print(
                f"| {name} | {r['prompts']} | {precision} | {r['router']['quality']:.4f} | "
                f"{1000 * r['router']['cost']:.3f} | {100 * r['audc']:.2f} | {extra} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
