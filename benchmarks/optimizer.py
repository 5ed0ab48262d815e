"""Solve times of the batch integer program (``zerorouter_integrations.optimizer.optimize_batch``).

Run::

    .venv/bin/python benchmarks/optimizer.py

Instances are synthetic but shaped like real routing tables: 50 models whose per-token prices span
three orders of magnitude, quality rising with price (logistic in ability − prompt difficulty, with
per-(prompt, model) noise), per-prompt token counts log-normal. Mode ``max_quality`` gets a budget
30 % of the way from the cheapest assignment to the best-quality one; mode ``min_cost`` a mean
quality target 70 % of the way from the cheapest assignment's quality to the best.

The table reports, per case: options kept per prompt after dominance pruning (50 without), the
solver path (``lagrangian``: Lagrangian bound + greedy incumbent + reduced-cost fixing, HiGHS
only on the prompts still undecided; ``highs``: LP relaxation + rounding + reduced-cost fixing, then
HiGHS, used when capacities bind), how many prompts were left to HiGHS by the lagrangian path,
status, relative gap, and wall seconds of the whole call. The capacity rows cap every model at 5 %
of the batch (so at least 20 of the 50 models are used), with budget / target placed inside the
range that is feasible under that cap.

``main()`` prints every section; more sections (e.g. realized quality on the benchmark data) can be
added there.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zerorouter_integrations.optimizer import optimize_batch  # noqa: E402

__all__ = ["bench_solve_times", "main", "synthetic_instance"]


def synthetic_instance(n_prompts: int, n_models: int = 50, seed: int = 0):
    """``(Q, C)``: realistic synthetic predicted quality and cost (USD per call)."""
    rng = np.random.default_rng(seed)
    log_price = np.sort(rng.uniform(-7.0, -4.0, n_models))  # USD per token: 3 orders of magnitude
    ability = 1.4 * (log_price - log_price.mean()) + rng.normal(0, 0.35, n_models)
    difficulty = rng.normal(0, 1.2, (n_prompts, 1))
    Q = 1.0 / (1.0 + np.exp(-(ability[None, :] - difficulty + rng.normal(0, 0.6, (n_prompts, n_models)))))
    tokens = rng.lognormal(6.5, 0.8, (n_prompts, 1))
    C = 10.0**log_price[None, :] * tokens * rng.lognormal(0, 0.15, (n_prompts, n_models))
    return Q, C


def _problem(Q, C, mode: str, capacity=None) -> dict:
    """Budget 30 % / target 70 % of the way between the cheapest and the best assignment
    (under the capacities, when given)."""
    rows = np.arange(len(Q))
    if capacity is None:
        cheap_cost, best_cost = C.min(axis=1).sum(), C[rows, Q.argmax(axis=1)].sum()
        cheap_q, best_q = Q[rows, C.argmin(axis=1)].mean(), Q.max(axis=1).mean()
    else:
        cheap = optimize_batch(Q, C, mode="min_cost", target=0.0, capacity=capacity)
        best = optimize_batch(Q, C, mode="max_quality", budget=float(C.max(axis=1).sum()), capacity=capacity)
        cheap_cost, best_cost = cheap.total_cost, best.total_cost
        cheap_q, best_q = cheap.mean_quality, best.mean_quality
    if mode == "max_quality":
        return {"budget": float(cheap_cost + 0.3 * (best_cost - cheap_cost))}
    return {"target": float(cheap_q + 0.7 * (best_q - cheap_q))}


def bench_solve_times(
    sizes: tuple[int, ...] = (100, 1_000, 10_000),
    n_models: int = 50,
    *,
    unpruned_up_to: int = 1_000,
    capacity_up_to: int = 1_000,
    print_table: bool = True,
) -> list[dict]:
    """Time ``optimize_batch`` on each size and mode; returns one dict per case and prints a table.

    Parameters
    ----------
    sizes : tuple of int
        Batch sizes (prompts).
    n_models : int
        Models per instance.
    unpruned_up_to : int
        Also time ``prune=False`` for sizes up to this.
    capacity_up_to : int
        Also time a capacitated case (no model may take more than 5 % of the batch) up to this size.
    """
    from scipy.optimize import linprog, milp  # noqa: F401  (import cost kept out of the timings)

    Qw, Cw = synthetic_instance(30, 5)
    optimize_batch(Qw, Cw, mode="max_quality", **_problem(Qw, Cw, "max_quality"))  # warm-up
    results: list[dict] = []
    for n in sizes:
        Q, C = synthetic_instance(n, n_models, seed=n)
        for mode in ("max_quality", "min_cost"):
            variants = [("pruned", {"prune": True})]
            if n <= unpruned_up_to:
                variants.append(("unpruned", {"prune": False}))
            if n <= capacity_up_to:
                variants.append(("capacity 5%", {"capacity": np.full(n_models, max(1, n // 20))}))
            for label, kw in variants:
                problem = _problem(Q, C, mode, kw.get("capacity"))
                t0 = time.perf_counter()
                res = optimize_batch(Q, C, mode=mode, **problem, **kw)
                secs = time.perf_counter() - t0
                results.append({
                    "prompts": n,
                    "models": n_models,
                    "mode": mode,
                    "variant": label,
                    "options_per_prompt": res.n_options / n,
                    "path": res.extra.get("path"),
                    "residual_prompts": res.extra.get("n_residual_prompts"),
                    "status": res.status,
                    "gap": res.mip_gap,
                    "seconds": secs,
                    "mean_quality": res.mean_quality,
                    "cost_usd_per_1k": res.mean_cost * 1000,
                })
    if print_table:
        print(format_table(results))
    return results


def format_table(results: list[dict]) -> str:
    """Fixed-width text table of :func:`bench_solve_times` results."""
    head = ["prompts×models", "mode", "variant", "opts/prompt", "path", "to HiGHS", "status", "gap", "seconds"]
    rows = [head]
    for r in results:
        rows.append([
            f"{r['prompts']:,}×{r['models']}",
            r["mode"],
            r["variant"],
            f"{r['options_per_prompt']:.1f}",
            str(r["path"]),
            "-" if r["residual_prompts"] is None else f"{r['residual_prompts']:,}",
            r["status"],
            "-" if r["gap"] is None else f"{r['gap']:.1e}",
            f"{r['seconds']:.3f}",
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(v.rjust(w) if i in (0, 3, 5, 7, 8) else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    """Print every benchmark section."""
    print("## Batch ILP solve times (HiGHS via scipy.optimize.milp; target: 10,000 × 50 < 2 s)\n")
    bench_solve_times()


if __name__ == "__main__":
    main()
