"""Routing overhead of the shipped default router.

Prints one table:

* scoring only: µs per decision for the predictor + policy on precomputed features (batch of 1 and
  of 1,000 prompts; per-prompt time for the batch), i.e. everything after the encoder. Batch 1 is
  given twice: p50 / p99 of single timed calls, and ``timeit``-style (500 decisions in a loop, mean
  per decision, best and median of 7 rounds), which damps the noise of a shared virtual machine;
* end to end: ms per ``router.route(prompt)`` (text → features → latent → prediction → constraints →
  policy → RoutingDecision), p50 and p99 over real held-out prompts of zeroeval and routerbench_subset,
  first with a cold LRU cache (each prompt new) and then repeated prompts (cache hits).

Targets (issue 3): ≤ 50 µs scoring, ≤ 10 ms p50 end to end.

    python benchmarks/overhead.py [--n 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _prompts(n: int) -> list[str]:
    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
    from zerorouter_integrations.data import find_data_dir
    from zerorouter_integrations.tables import load_table

    data = find_data_dir()
    held = RouterArtifact.load(DEFAULT_ARTIFACT).build["held_out_prompt_ids"]
    out = []
    for name in ("zeroeval", "routerbench_subset"):
        t = load_table(data / name)
        ids = [p.split("/", 1)[1] for p in held[name]][: n // 2]
        out += t.texts(ids)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="prompts for the end-to-end timing")
    args = ap.parse_args(argv)
    from zerorouter_integrations.features import PromptFeaturizer
    from zerorouter_integrations.router import ZeroRouter

    router = ZeroRouter.default(endpoints={})
    prompts = _prompts(args.n)
    router.encoder.warmup() if hasattr(router.encoder, "warmup") else None
    X = PromptFeaturizer(router.encoder).transform(prompts[:1000] * (1000 // len(prompts[:1000]) + 1))[:1000]
    pool = router.routable_models  # the pool the policy is calibrated on (priced, dispatchable)
    pol = router.policy
    pred = router.predictor

    def score(Xb: np.ndarray) -> np.ndarray:
        P = pred.predict(Xb, input_tokens=np.full(len(Xb), 300.0), models=pool)
        return pol.choose(P.quality, P.cost_usd, np.zeros_like(P.cost_usd))

    for _ in range(20):
        score(X[:1])
    t1 = []
    for i in range(500):
        t0 = time.perf_counter()
        score(X[i % 1000 : i % 1000 + 1])
        t1.append(time.perf_counter() - t0)
    loops = []
    for _ in range(7):
        t0 = time.perf_counter()
        for i in range(500):
            score(X[i % 1000 : i % 1000 + 1])
        loops.append((time.perf_counter() - t0) / 500)
    tb = []
    for _ in range(5):
        t0 = time.perf_counter()
        score(X)
        tb.append((time.perf_counter() - t0) / len(X))

    router.route(prompts[0])
    router.encoder.cache_clear()  # the scoring section above filled the LRU cache with these prompts
    cold = []
    for p in prompts:
        t0 = time.perf_counter()
        router.route(p)
        cold.append(time.perf_counter() - t0)
    warm = []
    for p in prompts[:100]:
        t0 = time.perf_counter()
        router.route(p)
        warm.append(time.perf_counter() - t0)

    enc = router.encoder
    print(
        f"pool of {len(pool)} routable models (of {len(router.models)} profiles); encoder backend {enc.resolved_backend}, "
        f"max_seq_length {getattr(enc, 'max_seq_length', '?')}; {len(prompts)} real prompts\n"
    )
    print("| measure | p50 | p99 |")
    print("| --- | ---: | ---: |")
    print(
        f"| scoring only, batch 1 (µs / decision) | {1e6 * np.median(t1):.1f} | {1e6 * np.percentile(t1, 99):.1f} |"
    )
    print(
        f"| scoring only, batch 1, loop of 500 (µs / decision; best / median of 7) | {1e6 * min(loops):.1f} | "
        f"{1e6 * np.median(loops):.1f} |"
    )
    print(
        f"| scoring only, batch 1000 (µs / decision) | {1e6 * np.median(tb):.2f} | {1e6 * np.max(tb):.2f} |"
    )
    print(
        f"| end to end, new prompts (ms) | {1e3 * np.median(cold):.2f} | {1e3 * np.percentile(cold, 99):.2f} |"
    )
    print(
        f"| end to end, repeated prompts (ms) | {1e3 * np.median(warm):.2f} | {1e3 * np.percentile(warm, 99):.2f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
