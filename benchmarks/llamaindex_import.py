"""Cold import time of the LlamaIndex adapter (median of fresh interpreters).

Each figure is measured in a new ``python`` subprocess (so nothing is cached in ``sys.modules``),
timing only the import statement inside it, and the median over ``--runs`` subprocesses is printed:

* ``import llamaindex_router``: the package (its exports load on first access);
* ``from llamaindex_router import ZeroRouterLLM, MiniLMEmbedding, RoutingStatsHandler``: what a user
  pays before the first call, which includes importing ``llama_index.core``;
* ``import llama_index.core``: the framework alone, for reference;
* adapter overhead: the second figure minus the third.

It also lists which heavy modules (LiteLLM, sentence-transformers, torch, onnxruntime, the core
router) the full import pulled in; all of them should load only on the first call.

    python benchmarks/llamaindex_import.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ["litellm", "sentence_transformers", "transformers", "torch", "onnxruntime",
         "zerorouter_integrations.router", "zerorouter_integrations.encoder"]

CASES = {
    "import llamaindex_router": "import llamaindex_router",
    "from llamaindex_router import ZeroRouterLLM, MiniLMEmbedding, RoutingStatsHandler":
        "from llamaindex_router import ZeroRouterLLM, MiniLMEmbedding, RoutingStatsHandler",
    "import llama_index.core": "import llama_index.core",
}

_PROBE = """
import json, sys, time
t = time.perf_counter()
{stmt}
dt = time.perf_counter() - t
print(json.dumps({{"s": dt, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def measure(stmt: str, runs: int) -> tuple[list[float], list[str]]:
    times, heavy = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _PROBE.format(stmt=stmt, heavy=HEAVY)], cwd=REPO,
                             capture_output=True, text=True, check=True)
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        times.append(rec["s"])
        heavy = rec["heavy"]
    return times, heavy


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description="cold import time of llamaindex_router")
    p.add_argument("--runs", type=int, default=5, help="fresh subprocesses per figure (default 5)")
    args = p.parse_args(argv)
    medians: dict[str, float] = {}
    heavy_seen: list[str] = []
    width = max(len(k) for k in CASES)
    print(f"{'statement':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}")
    print("-" * (width + 30))
    for label, stmt in CASES.items():
        times, heavy = measure(stmt, args.runs)
        medians[label] = statistics.median(times)
        if stmt.startswith("from llamaindex_router"):
            heavy_seen = heavy
        print(f"{label:<{width}}  {medians[label]:>9.3f}  {min(times):>7.3f}  {max(times):>7.3f}")
    full = medians["from llamaindex_router import ZeroRouterLLM, MiniLMEmbedding, RoutingStatsHandler"]
    overhead = full - medians["import llama_index.core"]
    print("-" * (width + 30))
    print(f"{'adapter overhead over llama_index.core':<{width}}  {overhead:>9.3f}")
    print(f"\nheavy modules loaded by the full import: {heavy_seen or 'none'}  (runs={args.runs})")
    medians["adapter_overhead"] = overhead
    return medians


if __name__ == "__main__":
    main()
