"""What judge-graded anchors cost: zerorouter's AUDC when new models are onboarded from a judge's grades.

Protocol: the evaluation contract (:func:`zerorouter_integrations.evaluation.evaluate`) on
leave-models-out splits of the binary-scored shared tables (``make_splits`` of
``benchmarks/quality.py``: 20 % of prompts held out, 2–3 pool models held out and onboarded from 100
anchors). The true anchor scores of the held-out models are replaced by a simulated judge's grades:
the judge compares the answer with the reference twice (both orders, as
:func:`zerorouter_integrations.judge.judge_score` does), each verdict agreeing with the true 0/1 score
with probability ``a`` (independently), and the grade is the mean of the two verdicts (0, 0.5 or 1).
Columns are the AUDC (%) with true scores and its change (percentage points, mean ± SD over
``--noise-seeds`` judge draws, averaged over splits) when

* ``all judged``: every anchor is judge-graded (the worst case);
* ``20 % judged``: a random fifth of the anchors is judge-graded, the share of open-ended anchors in
  the shipped set (50 of 245); the others keep their exact grades.

The latent space, the known models and the test scores are untouched: only the onboarding data is noisy.

Run: ``.venv/bin/python benchmarks/judge_anchors.py [--splits 2] [--noise-seeds 2] [--tables zeroeval,routerbench_subset]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

import zerorouter_integrations  # noqa: F401  (offline environment first)
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.evaluation import evaluate, fit_and_onboard, make_space
from zerorouter_integrations.metrics import Curve, curve_from_choices, sweep_choices, upper_hull
from zerorouter_integrations.tables import load_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import make_features, make_splits

AGREEMENTS = (0.9, 0.8, 0.7)
SHARES = {"all judged": 1.0, "20 % judged": 50 / 245}
N_NEW = {"zeroeval": 3, "routerbench_subset": 2}


def judge_grades(y: np.ndarray, agreement: float, share: float, rng: np.random.Generator) -> np.ndarray:
    """``y`` (0/1, NaN = missing) with a ``share`` of its entries replaced by two-verdict judge grades."""
    out = y.copy()
    judged = (rng.random(len(y)) < share) & ~np.isnan(y)
    agree = rng.random((len(y), 2)) < agreement
    verdicts = np.where(agree, y[:, None], 1.0 - y[:, None])
    out[judged] = verdicts[judged].mean(axis=1)
    return out


def judged_router(agreement: float, share: float, noise_seed: int):
    """An ``extra_routers`` entry: zerorouter with the new models' scores graded by a simulated judge."""

    def run(ctx, *, Y, C):
        S = ctx.S_all.copy()
        if agreement < 1.0:
            rng = np.random.default_rng(noise_seed)
            for name in ctx.new_models:
                j = ctx.models.index(name)
                S[:, j] = judge_grades(S[:, j], agreement, share, rng)
        pred = fit_and_onboard(dataclasses.replace(ctx, S_all=S), make_space("zerorouter", ctx.seed))
        idx = ctx.eval_idx
        P = pred.predict(ctx.features[idx], input_tokens=ctx.tokens_all[idx], models=ctx.pool)
        pts = curve_from_choices(sweep_choices(P.quality, P.cost_usd), Y, C)
        return Curve(points=pts, hull=upper_hull(pts)), {}

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="the shared data folder (default: $ZEROROUTER_DATA or ../shared/data)")
    ap.add_argument("--tables", default="zeroeval,routerbench_subset")
    ap.add_argument("--splits", type=int, default=2)
    ap.add_argument("--noise-seeds", type=int, default=2)
    args = ap.parse_args(argv)
    from zerorouter_integrations.encoder import ROUTING_ENCODER, QueryEncoder, default_cache_dir

    encoder = QueryEncoder(
        **ROUTING_ENCODER, cache_dir=default_cache_dir() / "embeddings", show_progress=False
    )
    rows = []
    for name in args.tables.split(","):
        t0 = time.perf_counter()
        table = load_table(find_data_dir(args.data, table=name))
        X = make_features(table, encoder)
        routers = {"true": judged_router(1.0, 1.0, 0)}
        for a in AGREEMENTS:
            for label, share in SHARES.items():
                for s in range(args.noise_seeds):
                    routers[f"{a}|{label}|{s}"] = judged_router(a, share, 1000 + s)
        audcs: dict[str, list[float]] = {k: [] for k in routers}
        for split in make_splits(table, args.splits, N_NEW.get(name, 2)):
            rep = evaluate(table, split, routers=list(routers), features=X, extra_routers=routers)
            for k in routers:
                audcs[k].append(rep.routers[k].audc)
        true = np.mean(audcs["true"])
        row = [f"{name} ({len(table.prompt_ids)} prompts)", f"{100 * true:.1f}"]
        for a in AGREEMENTS:
            for label in SHARES:
                deltas = [100 * (np.mean(audcs[f"{a}|{label}|{s}"]) - true) for s in range(args.noise_seeds)]
                row.append(f"{np.mean(deltas):+.2f} ± {np.std(deltas):.2f}")
        rows.append(row)
        print(
            f"{name}: {args.splits} splits × {len(routers)} fits in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )
    head = ["table", "AUDC true"] + [f"a={a} {label}" for a in AGREEMENTS for label in SHARES]
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
