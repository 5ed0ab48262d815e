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

from zerorouter_integrations.optimizer import optimize_batch

__all__ = ["bench_solve_times", "main", "synthetic_instance"]


def synthetic_instance(n_prompts: int, n_models: int = 50, seed: int = 0):
    """``(Q, C)``: realistic synthetic predicted quality and cost (USD per call)."""
    rng = np.random.default_rng(seed)
    log_price = np.sort(rng.uniform(-7.0, -4.0, n_models))  # USD per token: 3 orders of magnitude
    ability = 1.4 * (log_price - log_price.mean()) + rng.normal(0, 0.35, n_models)
    difficulty = rng.normal(0, 1.2, (n_prompts, 1))
    Q = 1.0 / (1.0 + np.exp(-(ability[None, :] - difficulty + rng.normal(0, 0.6, (n_prompts, n_models)))))
    tokens = rng.lognormal(6.5, 0.8, (n_prompts, 1))
    C = 10.0 ** log_price[None, :] * tokens * rng.lognormal(0, 0.15, (n_prompts, n_models))
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
                results.append(
                    {
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
                    }
                )
    if print_table:
        print(format_table(results))
    return results


def format_table(results: list[dict]) -> str:
    """Fixed-width text table of :func:`bench_solve_times` results."""
    head = [
        "prompts×models",
        "mode",
        "variant",
        "opts/prompt",
        "path",
        "to HiGHS",
        "status",
        "gap",
        "seconds",
    ]
    rows = [head]
    for r in results:
        rows.append(
            [
                f"{r['prompts']:,}×{r['models']}",
                r["mode"],
                r["variant"],
                f"{r['options_per_prompt']:.1f}",
                str(r["path"]),
                "-" if r["residual_prompts"] is None else f"{r['residual_prompts']:,}",
                r["status"],
                "-" if r["gap"] is None else f"{r['gap']:.1e}",
                f"{r['seconds']:.3f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            v.rjust(w) if i in (0, 3, 5, 7, 8) else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _held_out_predictions(table_name: str, seed: int = 0):
    """IRT router fit on a held-out prompt split of a shared table: predictions and truth on the test part."""
    from zerorouter_integrations.data import find_data_dir
    from zerorouter_integrations.encoder import QueryEncoder, default_cache_dir
    from zerorouter_integrations.evaluation import EvalContext, fit_and_onboard, table_features
    from zerorouter_integrations.latent.irt import IRTSpace
    from zerorouter_integrations.profiles import estimate_tokens
    from zerorouter_integrations.tables import load_table, split_by_prompt

    data = find_data_dir()
    t = load_table(data / table_name)
    split = split_by_prompt(t, test_fraction=0.3, seed=seed)
    ids = t.prompt_ids
    test = set(split.test_prompt_ids)
    test_idx = np.array([i for i, p in enumerate(ids) if p in test])
    train_idx = np.array([i for i, p in enumerate(ids) if p not in test])
    models = t.model_names
    S, C = t.scores(ids, models), t.costs(ids, models)
    cov = (~np.isnan(S[test_idx]) & ~np.isnan(C[test_idx])).mean(axis=0)
    pool = [m for m, c in zip(models, cov) if c >= 0.99]
    cols = [models.index(m) for m in pool]
    ok = (~np.isnan(S[np.ix_(test_idx, cols)]) & ~np.isnan(C[np.ix_(test_idx, cols)])).all(axis=1)
    test_idx = test_idx[ok]
    X = table_features(
        t, encoder=QueryEncoder(max_seq_length=128, cache_dir=default_cache_dir() / "embeddings")
    )
    tokens = np.array([estimate_tokens(x) for x in t.texts()], dtype=float)
    ctx = EvalContext(
        table=t,
        features=X,
        train_idx=train_idx,
        eval_idx=test_idx,
        models=models,
        known=models,
        new_models=[],
        pool=pool,
        S_all=S,
        C_all=C,
        tokens_all=tokens,
        prices={m: t.prices(m) for m in models},
        anchors=100,
        seed=seed,
    )
    pred = fit_and_onboard(ctx, IRTSpace(seed=seed)).predict(
        X[test_idx], input_tokens=tokens[test_idx], models=pool
    )
    return pool, pred.quality, pred.cost_usd, S[np.ix_(test_idx, cols)], C[np.ix_(test_idx, cols)]


def bench_realized(tables=("zeroeval", "routerbench_subset"), out_dir: Path | None = None) -> list[dict]:
    """Realized quality and cost of the ILP (mode A at 5 budgets, mode B at 5 targets) vs the per-query
    policy calibrated to the same budget / target, and the best single model, on held-out prompts."""
    from zerorouter_integrations.errors import InfeasibleError
    from zerorouter_integrations.metrics import references
    from zerorouter_integrations.policy import Policy

    out_dir = out_dir or Path(__file__).resolve().parent / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    curves = {}
    for name in tables:
        pool, Q, Ch, Y, C = _held_out_predictions(name)
        n = len(Y)
        r = np.arange(n)
        ref = references(Y, C, pool)
        bs = ref["best_single"]
        j_best = pool.index(bs["model"])
        rows.append(
            {
                "table": name,
                "method": f"best single ({bs['model']})",
                "setting": "-",
                "quality": bs["quality"],
                "cost_per_1k": 1000 * bs["cost"],
                "status": "-",
            }
        )
        pts = {"ilp": [], "policy": []}
        for frac in (0.1, 0.2, 0.35, 0.5, 0.8):
            budget = frac * Ch[:, j_best].sum()
            try:
                a = optimize_batch(Q, Ch, mode="max_quality", budget=budget)
                q, c, st = Y[r, a.assignment].mean(), C[r, a.assignment].mean(), a.status
            except InfeasibleError as exc:
                q, c, st = float("nan"), float("nan"), f"infeasible ({exc.best_value:.4g})"
            pol = Policy.for_budget(1000 * budget / n)
            try:
                ch = pol.fit(Q, Ch).choose(Q, Ch)
                pq, pc = Y[r, ch].mean(), C[r, ch].mean()
            except InfeasibleError:
                pq = pc = float("nan")
            rows.append(
                {
                    "table": name,
                    "method": "ILP mode A (max quality)",
                    "setting": f"budget {frac:.0%} of best single",
                    "quality": q,
                    "cost_per_1k": 1000 * c,
                    "status": st,
                }
            )
            rows.append(
                {
                    "table": name,
                    "method": "per-query policy",
                    "setting": f"budget {frac:.0%} of best single",
                    "quality": pq,
                    "cost_per_1k": 1000 * pc,
                    "status": "calibrated",
                }
            )
            pts["ilp"].append((c, q))
            pts["policy"].append((pc, pq))
        qb = Q[:, j_best].mean()
        for frac in (0.9, 0.95, 0.98, 1.0, 1.02):
            target = frac * qb
            try:
                a = optimize_batch(Q, Ch, mode="min_cost", target=target)
                q, c, st = Y[r, a.assignment].mean(), C[r, a.assignment].mean(), a.status
            except InfeasibleError as exc:
                q, c, st = float("nan"), float("nan"), f"infeasible (best {exc.best_value:.3f})"
            try:
                ch = Policy.for_quality_target(target).fit(Q, Ch).choose(Q, Ch)
                pq, pc = Y[r, ch].mean(), C[r, ch].mean()
                pst = "calibrated"
            except InfeasibleError:
                pq = pc = float("nan")
                pst = "infeasible"
            rows.append(
                {
                    "table": name,
                    "method": "ILP mode B (min cost)",
                    "setting": f"pred. quality ≥ {frac:.2f} × best single's",
                    "quality": q,
                    "cost_per_1k": 1000 * c,
                    "status": st,
                }
            )
            rows.append(
                {
                    "table": name,
                    "method": "per-query policy",
                    "setting": f"pred. quality ≥ {frac:.2f} × best single's",
                    "quality": pq,
                    "cost_per_1k": 1000 * pc,
                    "status": pst,
                }
            )
            pts["ilp"].append((c, q))
            pts["policy"].append((pc, pq))
        curves[name] = (pts, ref)
    print("| table | method | setting | realized quality | realized $ / 1k | status |")
    print("| --- | --- | --- | ---: | ---: | --- |")
    for row in rows:
        print(
            f"| {row['table']} | {row['method']} | {row['setting']} | {row['quality']:.3f} | "
            f"{row['cost_per_1k']:.3f} | {row['status']} |"
        )
    _plot_realized(curves, out_dir / "optimizer_realized.png")
    print(f"\nplot: {out_dir / 'optimizer_realized.png'}")
    return rows


def _plot_realized(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.5), squeeze=False)
    for ax, (name, (pts, ref)) in zip(axes[0], curves.items()):
        for key, marker in (("ilp", "o"), ("policy", "x")):
            arr = np.array([p for p in pts[key] if np.isfinite(p[0])])
            if len(arr):
                order = np.argsort(arr[:, 0])
                ax.plot(arr[order, 0] * 1000, arr[order, 1], marker=marker, label=key)
        for _m, s in ref["single_models"].items():
            ax.scatter([s["cost"] * 1000], [s["quality"]], s=10, color="grey", alpha=0.6)
        bs = ref["best_single"]
        ax.scatter([bs["cost"] * 1000], [bs["quality"]], marker="*", s=150, color="red", label="best single")
        ax.set_xscale("log")
        ax.set_title(f"{name}: held-out prompts")
        ax.set_xlabel("realized USD per 1k queries (log)")
        ax.set_ylabel("realized quality")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Print every benchmark section."""
    print("## Batch ILP solve times (HiGHS via scipy.optimize.milp; target: 10,000 × 50 < 2 s)\n")
    bench_solve_times()
    print("\n## Realized quality and cost on held-out prompts (30 % split, seed 0)\n")
    bench_realized()


if __name__ == "__main__":
    main()
