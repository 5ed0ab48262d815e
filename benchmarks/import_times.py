"""Cold import time of the packages, each measured in a fresh interpreter (median of N runs).

Prints a table: what is imported, median / min / max seconds. ``import langchain_router`` must stay
under 1.5 s: its exports load lazily, and the routing core (numpy, the encoder, LiteLLM) only on
the first model call. ``from langchain_router import ZeroRouterChat`` additionally pays for
langchain-core's ``BaseChatModel``, shown next to langchain-core's own import for comparison.

    python benchmarks/import_times.py [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    ("import langchain_router", "langchain_router"),
    ("from langchain_router import ZeroRouterChat", "langchain_router"),
    ("import langchain_core.language_models.chat_models", "langchain_core"),
    ("import zerorouter_integrations", "zerorouter_integrations"),
    ("from zerorouter_integrations.router import ZeroRouter", "zerorouter_integrations"),
    ("import llamaindex_router", "llamaindex_router"),
]

_SNIPPET = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def measure(stmt: str, runs: int) -> list[float] | str:
    times = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", _SNIPPET.format(stmt=stmt)], cwd=ROOT, capture_output=True, text=True
        )
        if proc.returncode != 0:
            return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        times.append(float(proc.stdout.strip().splitlines()[-1]))
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="fresh interpreters per statement (default 5)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    rows = []
    for stmt, pkg in CASES:
        if importlib.util.find_spec(pkg) is None:
            rows.append((stmt, "not installed", "", ""))
            continue
        res = measure(stmt, args.runs)
        if isinstance(res, str):
            rows.append((stmt, f"failed: {res[:60]}", "", ""))
            continue
        rows.append((stmt, f"{statistics.median(res):.3f}", f"{min(res):.3f}", f"{max(res):.3f}"))
    head = (f"statement (fresh interpreter, {args.runs} runs)", "median s", "min s", "max s")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(4)]
    fmt = "  ".join([f"{{:<{widths[0]}}}"] + [f"{{:>{w}}}" for w in widths[1:]])
    print(fmt.format(*head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt.format(*r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
