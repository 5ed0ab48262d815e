"""Evaluation: fit routers on a split of a routing table and measure their deferral curves.

This is the stable evaluation contract behind ``zerorouter eval`` (keep its semantics exact):

* every router is fit only on outcomes whose prompt is not a test prompt and whose model is not new;
* each router then picks its anchor set (at most ``anchors`` non-test prompts) *before* it sees any
  outcome of a new model, and each new model is onboarded from its true scores (and costs) on those
  anchors, where the table has them;
* every router is evaluated on the test prompts over the full pool (known + new models). The pool is
  the models that have a score and a cost on at least 99 % of the test prompts; the others are left
  out of evaluation (not of training) and listed with the reason. A test prompt that lacks an
  outcome of a pool model is dropped from evaluation and counted.

Metrics are defined in :mod:`zerorouter_integrations.metrics`; cost is mean USD per query.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from zerorouter_integrations.cascade_replay import EVAL_ROUTERS as CASCADE_EVAL_ROUTERS
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.eval_context import EvalContext, fit_and_onboard
from zerorouter_integrations.eval_report import EvaluationReport, RouterResult
from zerorouter_integrations.features import PromptFeaturizer
from zerorouter_integrations.latent.base import LatentSpace
from zerorouter_integrations.metrics import (
    Curve,
    apgr,
    audc,
    cost_to_reach,
    curve_from_choices,
    references,
    sweep_choices,
    upper_hull,
)
from zerorouter_integrations.profiles import estimate_tokens
from zerorouter_integrations.tables import RoutingTable, Split

__all__ = [
    "POOL_COVERAGE",
    "ROUTERS",
    "EvaluationReport",
    "RouterResult",
    "evaluate",
    "make_space",
    "table_features",
]

#: A model joins the evaluated pool when it has a score and a cost on at least this share of test prompts.
POOL_COVERAGE = 0.99


def _irt(seed: int) -> LatentSpace:
    from zerorouter_integrations.latent.irt import IRTSpace

    return IRTSpace(seed=seed)


def _kmeans(seed: int) -> LatentSpace:
    from zerorouter_integrations.latent.clusters import KMeansSpace

    return KMeansSpace(seed=seed)


def _learned_map(seed: int) -> LatentSpace:
    from zerorouter_integrations.latent.clusters import LearnedMapSpace

    return LearnedMapSpace(seed=seed)


def _knn(seed: int) -> LatentSpace:
    from zerorouter_integrations.latent.reference import KNNSpace

    return KNNSpace()


def _logreg(seed: int) -> LatentSpace:
    from zerorouter_integrations.latent.reference import LogisticSpace

    return LogisticSpace()


#: Router name → factory of its (unfitted) latent space, given a seed.
ROUTERS: dict[str, Callable[[int], LatentSpace]] = {
    "zerorouter": _irt,
    "unirouter-kmeans": _kmeans,
    "unirouter-learned-map": _learned_map,
    "knn": _knn,
    "logreg": _logreg,
}


def make_space(name: str, seed: int = 0) -> LatentSpace:
    """The unfitted latent space of a router name (see :data:`ROUTERS`)."""
    try:
        return ROUTERS[name](seed)
    except KeyError:
        raise SchemaError(f"unknown router {name!r}; expected one of {sorted(ROUTERS)}") from None


def table_features(
    table: RoutingTable,
    *,
    encoder: Any = None,
    embeddings: np.ndarray | None = None,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Feature matrix (rows in table order) of every prompt of ``table``."""
    texts = table.texts()
    if embeddings is None:
        if encoder is None:
            from zerorouter_integrations.encoder import QueryEncoder

            encoder = QueryEncoder()
        embeddings = encoder.encode(texts, show_progress=show_progress)
    return PromptFeaturizer(encoder).transform(texts, embeddings)


def _router_curve(Q_hat: np.ndarray, C_hat: np.ndarray, Y: np.ndarray, C: np.ndarray) -> Curve:
    pts = curve_from_choices(sweep_choices(Q_hat, C_hat), Y, C)
    return Curve(points=pts, hull=upper_hull(pts))


def _summarize(
    name: str, curve: Curve, refs: dict, c_range: tuple[float, float], fit_s: float, extra: dict | None = None
) -> RouterResult:
    bs, ch = refs["best_single"], refs["cheapest"]
    reach = cost_to_reach(curve, bs["quality"])
    reach95 = cost_to_reach(curve, 0.95 * bs["quality"])
    return RouterResult(
        name=name,
        curve=curve,
        audc=audc(curve, *c_range),
        qnc=None if reach is None else reach / bs["cost"],
        cost_at_95=None if reach95 is None else reach95 / bs["cost"],
        apgr=apgr(
            curve, c_weak=ch["cost"], q_weak=ch["quality"], c_strong=bs["cost"], q_strong=bs["quality"]
        ),
        best_quality=curve.best_quality,
        fit_seconds=fit_s,
        extra=extra or {},
    )


def evaluate(
    table: RoutingTable,
    split: Split,
    *,
    routers: Sequence[str] = tuple(ROUTERS),
    anchors: int = 100,
    seed: int = 0,
    features: np.ndarray | None = None,
    encoder: Any = None,
    show_progress: bool | None = None,
    extra_routers: Mapping[str, Callable[..., Any]] | None = None,
) -> EvaluationReport:
    """Run the evaluation contract (module docstring) and return the report.

    Parameters
    ----------
    table : RoutingTable
    split : Split
        Test prompt ids and new models; both lists may be empty (an empty test list is an error, since
        there would be nothing to evaluate on).
    routers : sequence of str
        Router names from :data:`ROUTERS` (and ``zerorouter-cascade`` when the cascade module is present).
    anchors : int
        Most anchors a router may pick for onboarding new models.
    features : ndarray, optional
        Precomputed features of every prompt in table order (else computed with ``encoder``).
    """
    split.validate_against(table)
    if not split.test_prompt_ids:
        raise SchemaError("split has no test prompts; put the prompts to evaluate on in 'test_prompt_ids'")
    if anchors < 1:
        raise ValueError(f"anchors must be ≥ 1, got {anchors!r}")
    available: dict[str, Callable[..., Any]] = {**ROUTERS, **CASCADE_EVAL_ROUTERS, **(extra_routers or {})}
    for name in routers:
        if name not in available:
            raise SchemaError(f"unknown router {name!r}; expected one of {sorted(available)}")

    all_ids = table.prompt_ids
    id_pos = {pid: i for i, pid in enumerate(all_ids)}
    test_idx = np.array(sorted({id_pos[p] for p in split.test_prompt_ids}))
    is_test = np.zeros(len(all_ids), dtype=bool)
    is_test[test_idx] = True
    train_idx = np.flatnonzero(~is_test)
    new_models = list(dict.fromkeys(split.new_models))
    models = table.model_names
    known = [m for m in models if m not in set(new_models)]
    if not known:
        raise SchemaError("split holds out every model; keep at least one known model to fit on")

    S_all = table.scores(all_ids, models)
    C_all = table.costs(all_ids, models)
    tokens_all = np.array([estimate_tokens(t) for t in table.texts()], dtype=float)

    # Evaluated pool and the test prompts it can be scored on.
    S_test, C_test = S_all[test_idx], C_all[test_idx]
    have = ~np.isnan(S_test) & ~np.isnan(C_test)
    coverage = have.mean(axis=0)
    pool_cols = [j for j in range(len(models)) if coverage[j] >= POOL_COVERAGE]
    excluded = []
    for j, name in enumerate(models):
        if j not in pool_cols:
            n_score = int((~np.isnan(S_test[:, j])).sum())
            n_cost = int((~np.isnan(C_test[:, j])).sum())
            excluded.append(
                {
                    "model": name,
                    "reason": f"score and cost on {coverage[j]:.1%} of test prompts "
                    f"(score on {n_score}, cost on {n_cost} of {len(test_idx)}); the pool needs "
                    f"≥{POOL_COVERAGE:.0%}",
                }
            )
    if len(pool_cols) < 2:
        raise SchemaError(
            f"only {len(pool_cols)} model(s) have a score and a cost on ≥{POOL_COVERAGE:.0%} of the "
            "test prompts; evaluation needs at least 2"
        )
    complete = have[:, pool_cols].all(axis=1)
    eval_idx = test_idx[complete]
    pool = [models[j] for j in pool_cols]
    Y = S_all[np.ix_(eval_idx, pool_cols)]
    C = C_all[np.ix_(eval_idx, pool_cols)]

    refs = references(Y, C, pool)
    costs_single = np.array([refs["single_models"][m]["cost"] for m in pool])
    c_range = (float(costs_single.min()), float(costs_single.max()))
    oracle_curve = _router_curve(Y, C, Y, C)
    refs["oracle_audc"] = audc(oracle_curve, *c_range)
    rm = np.asarray(refs["random_mix"]["curve"])
    refs["random_mix_audc"] = audc(Curve(points=rm, hull=upper_hull(rm)), *c_range)

    if features is None:
        features = table_features(table, encoder=encoder, show_progress=show_progress)
    if len(features) != len(all_ids):
        raise ValueError(f"features has {len(features)} rows; the table has {len(all_ids)} prompts")

    prices = {m: table.prices(m) for m in models}
    results: dict[str, RouterResult] = {}
    unavailable: dict[str, str] = {}
    ctx = EvalContext(
        table=table,
        features=features,
        train_idx=train_idx,
        eval_idx=eval_idx,
        models=models,
        known=known,
        new_models=new_models,
        pool=pool,
        S_all=S_all,
        C_all=C_all,
        tokens_all=tokens_all,
        prices=prices,
        anchors=anchors,
        seed=seed,
    )
    for name in routers:
        t0 = time.perf_counter()
        if name in ROUTERS:
            pred = fit_and_onboard(ctx, ROUTERS[name](seed))
            P = pred.predict(features[eval_idx], input_tokens=tokens_all[eval_idx], models=pool)
            curve = _router_curve(P.quality, P.cost_usd, Y, C)
            results[name] = _summarize(name, curve, refs, c_range, time.perf_counter() - t0)
        else:
            fn = available[name]
            out = fn(ctx, Y=Y, C=C)
            if isinstance(out, str):
                unavailable[name] = out
                continue
            curve, extra = out
            results[name] = _summarize(name, curve, refs, c_range, time.perf_counter() - t0, extra)
    return EvaluationReport(
        table=table.name,
        routers=results,
        references=refs,
        pool=pool,
        new_models=new_models,
        excluded_models=excluded,
        n_test_prompts=len(eval_idx),
        n_dropped_prompts=int(len(test_idx) - len(eval_idx)),
        anchors=anchors,
        cost_range=c_range,
        oracle_curve=oracle_curve,
        unavailable=unavailable,
    )


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x
