"""Cold import time of the LlamaIndex adapter (median of fresh interpreters).

Each figure is measured in a new ``python`` subprocess (so nothing is cached in ``sys.modules``),
timing only the import statement inside it, and the median over ``--runs`` subprocesses is printed:

* ``import llamaindex_router``: the package (its exports load on first access);
* ``from llamaindex_router import ZeroRouterLLM, MiniLMEmbedding, RoutingStatsHandler``: what a user
  pays before the first call, which includes importing ``llama_index.core``;
* ``import llama_index.core``: the framework alone, for reference;
* the adapter's own modules, timed after ``llama_index.core`` was imported (untimed) in the same
  interpreter: what the adapter adds on top of the framework.

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
HEAVY = [
    "litellm",
    "sentence_transformers",
    "transformers",
    "torch",
    "onnxruntime",
    "zerorouter_integrations.router",
    "zerorouter_integrations.encoder",
]

CASES = {
    "import llamaindex_router": "import llamaindex_router",
    "from llamaindex_router import ZeroRouterLLM, MiniLMEmbedding, RoutingStatsHandler": "from llamaindex_router import ZeroRouterLLM, MiniLMEmbedding, RoutingStatsHandler",
    "import llama_index.core": "import llama_index.core",
}
#: The adapter's own cost: llama_index.core is imported first, untimed, in the same interpreter.
OWN = (
    "adapter modules alone (llama_index.core already imported)",
    "from llamaindex_router import ZeroRouterLLM, MiniLMEmbedding, RoutingStatsHandler",
)

_PROBE = """
import json, sys, time
{setup}
t = time.perf_counter()
{stmt}
dt = time.perf_counter() - t
print(json.dumps({{"s": dt, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def measure_once(stmt: str, setup: str = "") -> tuple[float, list[str]]:
    """Seconds the statement took in a fresh interpreter, and the heavy modules it left loaded."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(stmt=stmt, heavy=HEAVY, setup=setup)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    return float(rec["s"]), list(rec["heavy"])


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description="cold import time of llamaindex_router")
    p.add_argument("--runs", type=int, default=5, help="fresh subprocesses per figure (default 5)")
    args = p.parse_args(argv)
    cases = [(label, stmt, "") for label, stmt in CASES.items()] + [
        (OWN[0], OWN[1], "import llama_index.core")
    ]
    times: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    heavy_seen: list[str] = []
    for _ in range(args.runs):  # interleaved, so a busy machine slows every figure alike
        for label, stmt, setup in cases:
            dt, heavy = measure_once(stmt, setup)
            times[label].append(dt)
            if label == OWN[1] and not setup:
                heavy_seen = heavy
    width = max(len(label) for label in times)
    print(f"{'statement':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}")
    print("-" * (width + 30))
    medians: dict[str, float] = {}
    for label, ts in times.items():
        medians[label] = statistics.median(ts)
        print(f"{label:<{width}}  {medians[label]:>9.3f}  {min(ts):>7.3f}  {max(ts):>7.3f}")
    print(
        f"\nheavy modules loaded by the full import: {heavy_seen or 'none'}  (runs={args.runs}, interleaved)"
    )
    return medians


if __name__ == "__main__":
    main()
