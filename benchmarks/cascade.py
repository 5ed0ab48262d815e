"""Cascade mode benchmark (issue 9): deferral curves of the cascade vs prompt-only routing vs the best single model.

Protocol: the evaluation contract of :mod:`zerorouter_integrations.evaluation` on held-out prompt
splits, ``split_by_prompt(table, seed=s)`` for ``s`` in 0, 1, 2 (20 % of the prompts, identical
questions on one side, no held-out models). Every router is fit on the training prompts only and
scored on the test prompts:

* ``zerorouter``: prompt-only routing, ``argmax Q̂ − λ·Ĉ`` as λ sweeps;
* ``zerorouter-cascade``: the cascade policy of :mod:`zerorouter_integrations.cascade` with its
  defaults (closed-form agreement prior, escalation to the calibration set's best model), λ swept;
  each test prompt replays the answers recorded in ``outcome_extras.parquet`` (zeroeval's
  ``parsed_answer``, routerbench_subset's ``response`` through the choice extractor); a cascade pays
  both cheap calls, plus the escalation when their answers lead to one;
* ``cascade, fitted agreement``: the same with the agreement model's three parameters per answer kind
  fitted on the training prompts' recorded answers;
* ``cascade, escalate to per-prompt best``: the escalation target is each prompt's argmax Q̂;
* ``crude cascade``: one operating point, the "two fixed cheap models, escalate to the best on
  disagreement" baseline: the two models under 20 % of the best single model's cost with the highest
  training-prompt quality, escalating (and sending prompts without a comparable answer) to the
  training prompts' best model.

Columns: ``QNC``: least cost at which the curve reaches the best single model's quality, as a fraction
of its cost (mean over the splits where it is reached, ``[k/n]``); ``cost @99 %`` / ``cost @95 %``:
the same for 99 % / 95 % of that quality; ``AUDC (%)``: mean quality over the pool's cost range;
``best q (%)``: best quality on the curve; ``per split``: the QNC of each split. Targets (issue 9):
the best single model's quality at ≤ 0.6 of its cost on both tables (moonshot ≤ 0.35).

Outputs: the Markdown tables (printed and written to ``benchmarks/out/cascade.md``) and
``benchmarks/out/cascade.png`` (split 0 deferral curves of both tables).

Embeddings: :class:`~zerorouter_integrations.encoder.QueryEncoder` (MiniLM, 128 tokens) with the disk
cache in ``default_cache_dir()/embeddings``; ``--embeddings-dir DIR`` reads ``DIR/emb_<table>.npy``
(rows in table order) instead.

Run: ``.venv/bin/python benchmarks/cascade.py [--splits 3] [--first-seed 0] [--tables zeroeval,routerbench_subset]``
(``--first-seed 10`` evaluates on fresh splits 10–12.)
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

import zerorouter_integrations.eval_context as eval_context
import zerorouter_integrations.evaluation as evaluation
from zerorouter_integrations.cascade import CascadePolicy, evaluate_cascade, table_answers
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.features import PromptFeaturizer
from zerorouter_integrations.metrics import Curve, cost_to_reach
from zerorouter_integrations.tables import RoutingTable, load_table, split_by_prompt

ROOT = Path(__file__).resolve().parents[1]
DATA = find_data_dir()
OUT = ROOT / "benchmarks" / "out"


# ---------------------------------------------------------------------------------------------- routers
def _crude(ctx: Any, Y: np.ndarray, C: np.ndarray) -> Any:
    """Two fixed cheap models; escalate to the training set's best model on disagreement (one point)."""
    got = table_answers(ctx.table)
    if isinstance(got, str):
        return got
    A, kinds = got
    tr = ctx.train_idx
    cols = [ctx.models.index(m) for m in ctx.pool]
    S_tr, C_tr = ctx.S_all[np.ix_(tr, cols)], ctx.C_all[np.ix_(tr, cols)]
    q_tr, c_tr = np.nanmean(S_tr, axis=0), np.nanmean(C_tr, axis=0)
    best = int(np.lexsort((c_tr, -q_tr))[0])
    cheap = [j for j in np.argsort(-q_tr) if c_tr[j] < 0.2 * c_tr[best] and j != best][:2]
    if len(cheap) < 2:
        return "fewer than two models cost under 20 % of the best one"
    a, b = cheap
    ev = ctx.eval_idx
    Aev = A[np.ix_(ev, cols)]
    comparable = np.array([kinds[i] is not None for i in ev])
    agree = np.array([x is not None and x == y for x, y in zip(Aev[:, a], Aev[:, b])]) & comparable
    q = np.where(agree, Y[:, a], Y[:, best])
    c = np.where(comparable, C[:, a] + C[:, b], 0.0) + np.where(agree, 0.0, C[:, best])
    pt = np.array([[c.mean(), q.mean()]])
    return Curve(points=pt, hull=pt), {
        "pair": [ctx.pool[a], ctx.pool[b]],
        "escalate_to": ctx.pool[best],
        "agreement_rate": float(agree[comparable].mean()),
    }


EXTRA = {
    "cascade, fitted agreement": lambda ctx, Y, C: evaluate_cascade(ctx, Y, C, agreement="fit"),
    "cascade, escalate to per-prompt best": lambda ctx, Y, C: evaluate_cascade(
        ctx, Y, C, policy=CascadePolicy(lam=0.0, escalate_to="best")
    ),
    "crude cascade (fixed pair → best)": _crude,
}
ROUTERS = ["zerorouter", "zerorouter-cascade", *EXTRA]


class _Memo:
    """The IRT fit of a split is the same for every router: fit it once per split (and once per fold of
    the cascade's cross-validation inside the training prompts)."""

    def __init__(self) -> None:
        self.orig = evaluation.fit_and_onboard
        self.cache: dict[tuple, Any] = {}

    def __call__(self, ctx: Any, space: Any, **kw: Any) -> Any:
        key = (id(ctx), ctx.train_idx.tobytes(), type(space).__name__, repr(sorted(kw.items())))
        if key not in self.cache:
            self.cache[key] = self.orig(ctx, space, **kw)
        return self.cache[key]


# ---------------------------------------------------------------------------------------------- running
def features(table: RoutingTable, emb_dir: Path | None) -> np.ndarray:
    texts = table.texts()
    if emb_dir is not None:
        emb = np.load(emb_dir / f"emb_{table.name}.npy")
        if len(emb) != len(texts):
            raise ValueError(
                f"{emb_dir}/emb_{table.name}.npy has {len(emb)} rows; the table has {len(texts)}"
            )
        return PromptFeaturizer(None).transform(texts, emb)
    from zerorouter_integrations.encoder import QueryEncoder, default_cache_dir

    enc = QueryEncoder(max_seq_length=128, cache_dir=default_cache_dir() / "embeddings")
    return PromptFeaturizer(enc).transform(texts, enc.encode(texts, show_progress=False))


def run_table(name: str, splits: int, emb_dir: Path | None, first_seed: int = 0) -> list[Any]:
    table = load_table(DATA / name)
    X = features(table, emb_dir)
    reports = []
    for s in range(first_seed, first_seed + splits):
        memo = _Memo()
        evaluation.fit_and_onboard = eval_context.fit_and_onboard = memo  # the cascade replay's too
        try:
            t0 = time.perf_counter()
            rep = evaluation.evaluate(
                table,
                split_by_prompt(table, seed=s),
                routers=ROUTERS,
                features=X,
                seed=s,
                extra_routers=EXTRA,
            )
            rep.elapsed = time.perf_counter() - t0  # type: ignore[attr-defined]
            rep.split_seed = s  # type: ignore[attr-defined]
        finally:
            evaluation.fit_and_onboard = eval_context.fit_and_onboard = memo.orig
        reports.append(rep)
    return reports


def _reach(rep: Any, curve: Curve, frac: float) -> float | None:
    bs = rep.references["best_single"]
    c = cost_to_reach(curve, frac * bs["quality"])
    return None if c is None else c / bs["cost"]


def table_markdown(name: str, reports: list[Any]) -> str:
    def mean_k(vals: list[float | None]) -> str:
        got = [v for v in vals if v is not None]
        if not got:
            return f"never [0/{len(vals)}]"
        tag = "" if len(got) == len(vals) else f" [{len(got)}/{len(vals)}]"
        return f"{np.mean(got):.3f}{tag}"

    bs = [r.references["best_single"] for r in reports]
    lines = [
        f"### `{name}`: {', '.join(str(r.n_test_prompts) for r in reports)} test prompts (splits "
        f"{', '.join(str(r.split_seed) for r in reports)}); best single: "
        f"{', '.join(sorted({b['model'] for b in bs}))} "
        f"({100 * np.mean([b['quality'] for b in bs]):.1f} %, ${1000 * np.mean([b['cost'] for b in bs]):.3f}"
        f" per 1k)",
        "",
        "| router | QNC | cost @99 % | cost @95 % | AUDC (%) | best q (%) | QNC per split |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    names = [n for n in ROUTERS if all(n in r.routers for r in reports)]
    for n in names:
        res = [r.routers[n] for r in reports]
        qnc = [_reach(r, x.curve, 1.0) for r, x in zip(reports, res)]
        c99 = [_reach(r, x.curve, 0.99) for r, x in zip(reports, res)]
        c95 = [_reach(r, x.curve, 0.95) for r, x in zip(reports, res)]
        lines.append(
            f"| {n} | {mean_k(qnc)} | {mean_k(c99)} | {mean_k(c95)} | "
            f"{100 * np.mean([x.audc for x in res]):.1f} | "
            f"{100 * np.mean([x.best_quality for x in res]):.1f} | "
            + ", ".join("never" if v is None else f"{v:.3f}" for v in qnc)
            + " |"
        )
    lines.append(
        f"| best single | 1.000 | 1.000 | 1.000 | – | {100 * np.mean([b['quality'] for b in bs]):.1f} | |"
    )
    for n in ROUTERS:
        why = {r.unavailable[n] for r in reports if n in r.unavailable}
        if why:
            lines.append(f"\n- `{n}` unavailable: {'; '.join(sorted(why))}")
    cas = [r.routers.get("zerorouter-cascade") for r in reports]
    if all(cas):
        lines.append("")
        lines.append(
            "zerorouter-cascade at its first point reaching the best single quality (or its best point): "
            + "; ".join(
                f"split {i}: cascaded {100 * x.extra['cascade_share']:.0f} % of prompts, escalated "
                f"{100 * x.extra['escalation_rate']:.0f} %"
                for i, x in enumerate(cas)
            )
            + "."
        )
    if all(cas) and all("constants" in x.extra for x in cas):
        lines.append(
            "Constants chosen by cross-validation inside the training prompts: "
            + "; ".join(
                f"split {r.split_seed}: "
                + ", ".join(f"{k}={v}" for k, v in x.extra["constants"].items() if k not in ("rho", "beta"))
                + (
                    f" (ρ={x.extra['constants']['rho']}, β={x.extra['constants']['beta']})"
                    if "rho" in x.extra["constants"]
                    else ""
                )
                for r, x in zip(reports, cas)
            )
            + "."
        )
    crude = [r.routers.get("crude cascade (fixed pair → best)") for r in reports]
    if all(crude):
        lines.append(
            "Crude cascade: "
            + "; ".join(
                f"split {i}: {' + '.join(x.extra['pair'])} → {x.extra['escalate_to']} "
                f"(agree {100 * x.extra['agreement_rate']:.0f} %)"
                for i, x in enumerate(crude)
            )
            + "."
        )
    return "\n".join(lines) + "\n"


def plot(all_reports: dict[str, list[Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zerorouter_integrations._io import atomic_write_bytes

    fig, axes = plt.subplots(1, len(all_reports), figsize=(6.5 * len(all_reports), 4.8), squeeze=False)
    styles = {
        "zerorouter": dict(color="tab:blue"),
        "zerorouter-cascade": dict(color="tab:red", lw=2),
        "cascade, fitted agreement": dict(color="tab:orange", ls="--"),
        "cascade, escalate to per-prompt best": dict(color="tab:purple", ls=":"),
    }
    for ax, (name, reports) in zip(axes[0], all_reports.items()):
        rep = reports[0]
        bs = rep.references["best_single"]
        for n, st in styles.items():
            if n in rep.routers:
                h = rep.routers[n].curve.hull
                ax.plot(h[:, 0] / bs["cost"], h[:, 1], marker=".", ms=3, label=n, **st)
        crude = rep.routers.get("crude cascade (fixed pair → best)")
        if crude is not None:
            p = crude.curve.points[0]
            ax.scatter(
                [p[0] / bs["cost"]], [p[1]], marker="s", color="tab:green", label="crude cascade", zorder=5
            )
        for _m, s in rep.references["single_models"].items():
            ax.scatter([s["cost"] / bs["cost"]], [s["quality"]], s=10, color="grey", alpha=0.5)
        ax.scatter(
            [1.0],
            [bs["quality"]],
            marker="*",
            s=140,
            color="black",
            label=f"best single: {bs['model']}",
            zorder=6,
        )
        ax.axhline(bs["quality"], color="black", lw=0.5, ls=":")
        ax.axvline(0.6, color="tab:red", lw=0.5, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("mean cost per query / best single model's cost (log)")
        ax.set_ylabel("mean quality on test prompts")
        ax.set_title(f"{name}, split 0 ({rep.n_test_prompts} test prompts)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", default="routerbench_subset,zeroeval")
    p.add_argument("--splits", type=int, default=3, help="number of prompt splits (default 3)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="split seeds first..first+n-1 (default 0; e.g. 10 for fresh splits)",
    )
    p.add_argument("--embeddings-dir", default=None, help="read DIR/emb_<table>.npy instead of encoding")
    p.add_argument(
        "--routers", default=None, help=f"comma-separated subset of {', '.join(ROUTERS)} (default: all)"
    )
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if args.routers:
        wanted = [r.strip() for r in args.routers.split(",") if r.strip()]
        unknown = [r for r in wanted if r not in ROUTERS]
        if unknown:
            p.error(f"--routers: unknown {unknown}; expected names from {ROUTERS}")
        ROUTERS[:] = wanted
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    all_reports: dict[str, list[Any]] = {}
    md = ["## Cascade vs prompt-only routing vs best single (held-out prompts)\n"]
    for name in args.tables.split(","):
        reports = run_table(
            name, args.splits, Path(args.embeddings_dir) if args.embeddings_dir else None, args.first_seed
        )
        all_reports[name] = reports
        md.append(table_markdown(name, reports))
        print(md[-1], flush=True)
    md.append(
        "QNC and cost @X % are fractions of the best single model's cost (lower is better); `never`: the "
        "curve does not reach that quality on that split. Targets: QNC ≤ 0.6 on both tables (moonshot ≤ 0.35).\n"
    )
    from zerorouter_integrations._io import atomic_write_bytes

    atomic_write_bytes(out / "cascade.md", "\n".join(md).encode())
    png = plot(all_reports, out / "cascade.png")
    print(f"total {time.perf_counter() - t0:.0f} s; wrote {out / 'cascade.md'} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
