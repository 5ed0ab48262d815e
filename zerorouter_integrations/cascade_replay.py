"""Offline replay of the cascade on recorded answers: the ``zerorouter-cascade`` evaluation router.

A routing table's ``outcome_extras.parquet`` holds each model's recorded answer; :func:`table_answers`
extracts them, and :func:`evaluate_cascade` replays every plan of a λ sweep on the test prompts (a
cascade pays both cheap calls plus the escalation when the recorded answers lead to one) to draw the
cascade's deferral curve next to the other routers of :func:`zerorouter_integrations.evaluation.evaluate`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from zerorouter_integrations.agreement import EPS, AgreementModel
from zerorouter_integrations.answers import canonical_answer, detect_answer_kind, extract_answer
from zerorouter_integrations.cascade_menus import PlanChoice, build_menus, choose, pairs
from zerorouter_integrations.cascade_policy import CascadePolicy
from zerorouter_integrations.extras import need

__all__ = [
    "CONSTANT_GRID",
    "EVAL_ROUTERS",
    "cv_constants",
    "evaluate_cascade",
    "table_answers",
    "with_constants",
]


def table_answers(table: Any, *, extractor: Any = "auto") -> tuple[np.ndarray, list[str | None]] | str:
    """Canonical recorded answers of every (prompt, model) of a routing table, and each prompt's kind.

    Uses ``outcome_extras.parquet``: its ``parsed_answer`` column when present (answers already
    extracted, e.g. zeroeval), else an extractor over ``response`` (e.g. routerbench_subset), chosen
    per prompt by :func:`detect_answer_kind` unless ``extractor`` is a callable.

    Returns
    -------
    (answers, kinds) or str
        ``answers``: object array (n_prompts × n_models, table order; ``table.model_names`` columns)
        of canonical answers or ``None``; ``kinds``: answer kind per prompt (``None``: not comparable).
        A string says why the table has no usable answers.
    """
    need("tables", "replaying a cascade on a routing table")
    import pandas as pd

    extras = table.extras("outcome_extras")
    if extras is None:
        return (
            f"table {table.name!r} has no outcome_extras.parquet, so there are no recorded answers to "
            "compare; the cascade cannot be evaluated offline"
        )
    texts = table.texts()
    if callable(extractor):
        kinds: list[str | None] = ["custom"] * len(texts)
    else:
        kinds = [detect_answer_kind(t) for t in texts]
    # judge scores and win probabilities are not checked answers: those prompts are never cascaded
    open_ended = {t for t, kind in table.score_types_by_task().items() if kind == "continuous"}
    if open_ended:
        tasks = table.prompts["task"].astype(str).tolist()
        kinds = [None if task in open_ended else k for k, task in zip(kinds, tasks)]
    pid_pos = pd.Index(table.prompt_ids)
    models = table.model_names
    mod_pos = pd.Index(models)
    if "parsed_answer" in extras.columns:
        raw = extras["parsed_answer"].to_numpy(dtype=object)
        parsed = True
    elif "response" in extras.columns:
        raw = extras["response"].to_numpy(dtype=object)
        parsed = False
    else:
        return (
            f"outcome_extras of table {table.name!r} has neither 'parsed_answer' nor 'response' "
            f"(columns: {list(extras.columns)}); the cascade cannot be evaluated offline"
        )
    rows = pid_pos.get_indexer(extras["prompt_id"])
    cols = mod_pos.get_indexer(extras["model"])
    A = np.full((len(pid_pos), len(models)), None, dtype=object)
    for r, c, v in zip(rows, cols, raw):
        if r < 0 or c < 0 or kinds[r] is None:
            continue
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if parsed and not callable(extractor):
            A[r, c] = canonical_answer(v)
        else:
            A[r, c] = extract_answer(str(v), kinds[r], extractor)
    if not any(v is not None for v in A.ravel()):
        return (
            f"no comparable recorded answer in table {table.name!r}; the cascade cannot be evaluated offline"
        )
    return A, kinds


def _answer_codes(A: np.ndarray) -> np.ndarray:
    """Integer codes of canonical answers (-1 for none), equal codes ⇔ equal answers."""
    import pandas as pd

    flat = A.ravel()
    codes, _ = pd.factorize(pd.Series(flat, dtype=object), use_na_sentinel=True)
    return codes.reshape(A.shape)


def _sweep_lams(C: np.ndarray, n: int = 121) -> np.ndarray:
    pos = C[np.isfinite(C) & (C > 0)]
    scale = float(np.median(pos)) if pos.size else 1.0
    return np.concatenate([[0.0], np.geomspace(1e-4, 1e4, n) / scale, [1e9 / scale]])


def _realize(
    ch: PlanChoice, Y: np.ndarray, C: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Realized (quality, cost, escalated) per prompt of a choice, replaying the recorded answers."""
    n = Y.shape[0]
    rows = np.arange(n)
    a, b, E = ch.model, np.maximum(ch.second, 0), ch.E
    ca, cb = codes[rows, a], codes[rows, b]
    agree = (ca >= 0) & (ca == cb)
    has_a, has_b = ca >= 0, cb >= 0
    # which cheap answer would be returned: the primary's, else the other one's
    ans_model = np.where(has_a | ~has_b, a, b)
    acc = np.where(agree, ch.acc_agree, np.where(has_a | has_b, ch.acc_dis, False))
    esc = ch.is_pair & ~acc
    q = np.where(ch.is_pair, np.where(acc, Y[rows, ans_model], Y[rows, E]), Y[rows, a])
    c = np.where(ch.is_pair, C[rows, a] + C[rows, b] + np.where(esc, C[rows, E], 0.0), C[rows, a])
    return q, c, esc


#: The cascade's constants that :func:`evaluate_cascade` chooses among by cross-validation inside the
#: training prompts (the first entry is the default of :class:`CascadePolicy` and :class:`AgreementModel`):
#: the agreement model (the closed-form prior, a stronger-coupling prior, or fitted on the training
#: prompts' recorded answers), the escalation target and the number of first-stage candidates.
CONSTANT_GRID: tuple[dict[str, Any], ...] = tuple(
    {"agreement": agreement, **prior, "escalate_to": escalate, "max_candidates": cands}
    for agreement, prior in (
        ("prior", {"rho": AgreementModel.DEFAULT_RHO, "beta": AgreementModel.DEFAULT_BETA}),
        ("prior", {"rho": 0.6, "beta": 2.0}),
        ("fit", {}),
    )
    for escalate in ("reference", "best")
    for cands in (4, 6)
)


def with_constants(policy: CascadePolicy, constants: dict[str, Any]) -> CascadePolicy:
    """A copy of ``policy`` with cascade constants set: ``rho``/``beta`` of its (unfitted) agreement
    model, any other key (but ``agreement``) a :class:`CascadePolicy` parameter."""
    pol = copy.deepcopy(policy)
    agr = {k: float(v) for k, v in constants.items() if k in ("rho", "beta")}
    if agr and not (pol.agreement is not None and pol.agreement.fitted):
        base = pol.agreement or AgreementModel()
        prior = {"rho": float(base.rho), "beta": float(base.beta), **agr}
        pol.agreement = AgreementModel(chance=base.chance, min_rows=base.min_rows, **prior)
    pol.set_params(**{k: v for k, v in constants.items() if k not in ("rho", "beta", "agreement")})
    pol.agreement_ = pol.agreement or AgreementModel()
    return pol


def _replay_sweep(
    pol: CascadePolicy,
    P: Any,
    kinds: Sequence[str | None],
    names: Sequence[str],
    Y: np.ndarray,
    C: np.ndarray,
    codes: np.ndarray,
    grid: np.ndarray,
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """Realized (mean cost, mean quality) of each λ of ``grid`` replaying the recorded answers, and the
    (cascade share, escalation rate, λ) of each point."""
    pl = build_menus(pol, P.quality, P.cost_usd, None, P.quality_sd, kinds, names=names)
    pts, stats = [], []
    for lam in grid:
        ch = choose(pl, float(lam), 0.0)
        q, c, esc = _realize(ch, Y, C, codes)
        pts.append([float(c.mean()), float(q.mean())])
        stats.append((float(ch.is_pair.mean()), float(esc.mean()), float(lam)))
    return np.asarray(pts), stats


def _cost_fraction(pts: np.ndarray, Y: np.ndarray, C: np.ndarray) -> float:
    """Cost at which the curve ``pts`` reaches the best single model's quality on ``Y`` as a fraction of
    its cost (lower is better); when it reaches it only at the dear end or never, ``1 +`` its relative
    shortfall at 60 % of that cost."""
    from zerorouter_integrations.metrics import Curve, cost_to_reach, upper_hull

    q, c = Y.mean(axis=0), C.mean(axis=0)
    best = int(np.lexsort((c, -q))[0])
    curve = Curve(points=pts, hull=upper_hull(pts))
    got = cost_to_reach(curve, float(q[best]))
    if got is not None and c[best] > 0 and got < 0.999 * c[best]:
        return got / float(c[best])
    # reached only at the dear end (or never): the shortfall at 60 % of the best model's cost decides
    short = float(q[best] - curve.quality_at(np.array([0.6 * c[best]]))[0])
    return 1.0 + max(0.0, short) / max(float(q[best]), 1e-12)


def _reference_model(pool: Sequence[str], Q: np.ndarray, C: np.ndarray) -> str:
    """The calibration set's best model by mean predicted quality (ties to the cheaper)."""
    return pool[int(np.lexsort((C.mean(axis=0), -Q.mean(axis=0)))[0])]


def cv_constants(
    ctx: Any,
    policy: CascadePolicy,
    A_all: np.ndarray,
    kinds_all: Sequence[str | None],
    *,
    grid: Sequence[dict[str, Any]] = CONSTANT_GRID,
    folds: int = 3,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cascade constants of ``grid`` that reach the best single model's quality at the least cost
    out of fold on the training prompts.

    The training prompts are split in ``folds``; for each fold the space is fit (and new models
    onboarded) on the others and predicts the fold (a fitted agreement model is fit on the others'
    recorded answers, as :func:`evaluate_cascade` fits it on the training prompts); each candidate's
    λ sweep is replayed on the fold's recorded answers with those out-of-fold predictions, the folds'
    points are pooled, and the pooled curve is scored by the cost at which it reaches the training
    prompts' best single model (:func:`_cost_fraction`). Ties go to the earlier entry (the first is
    the default). Returns the constants and a report (the score of every candidate). Nothing of the
    test prompts is used.
    """
    import dataclasses

    from zerorouter_integrations.eval_context import fit_and_onboard
    from zerorouter_integrations.latent.irt import IRTSpace

    cols = [ctx.models.index(mm) for mm in ctx.pool]
    tr = np.asarray(ctx.train_idx)
    complete = ~(np.isnan(ctx.S_all[np.ix_(tr, cols)]) | np.isnan(ctx.C_all[np.ix_(tr, cols)])).any(axis=1)
    tr = tr[complete]
    fold = np.random.default_rng(ctx.seed + 11).permutation(len(tr)) % folds
    lams = _sweep_lams(ctx.C_all[np.ix_(tr, cols)])
    sums = np.zeros((len(grid), len(lams), 2))
    for f in range(folds):
        rows = tr[fold == f]
        sub = dataclasses.replace(ctx, train_idx=np.setdiff1d(ctx.train_idx, rows))
        pred = fit_and_onboard(sub, IRTSpace(seed=ctx.seed))
        P = pred.predict(ctx.features[rows], input_tokens=ctx.tokens_all[rows], models=ctx.pool)
        P_fit = pred.predict(
            ctx.features[sub.train_idx], input_tokens=ctx.tokens_all[sub.train_idx], models=ctx.pool
        )
        ref = _reference_model(ctx.pool, P_fit.quality, P_fit.cost_usd)
        Y, C = ctx.S_all[np.ix_(rows, cols)], ctx.C_all[np.ix_(rows, cols)]
        codes = _answer_codes(A_all[np.ix_(rows, cols)])
        kinds = [kinds_all[i] for i in rows]
        fitted: AgreementModel | None = None
        for g, constants in enumerate(grid):
            pol = with_constants(policy, constants)
            pol.escalate_model_ = ref if pol.escalate_to == "reference" else None
            if constants.get("agreement") == "fit":
                if fitted is None:
                    fitted = _fit_agreement(sub, pred, A_all, kinds_all, with_constants(policy, {}))[0]
                pol.agreement = pol.agreement_ = fitted
            pts, _ = _replay_sweep(pol, P, kinds, ctx.pool, Y, C, codes, lams)
            sums[g] += pts * len(rows)
    Y_all, C_all = ctx.S_all[np.ix_(tr, cols)], ctx.C_all[np.ix_(tr, cols)]
    scores = [_cost_fraction(sums[g] / len(tr), Y_all, C_all) for g in range(len(grid))]
    best = int(np.argmin(scores))
    return dict(grid[best]), {"folds": folds, "n_prompts": int(len(tr)), "scores": scores}


def evaluate_cascade(
    ctx: Any,
    Y: np.ndarray,
    C: np.ndarray,
    *,
    policy: CascadePolicy | None = None,
    agreement: str = "prior",
    constants: str | dict[str, Any] = "cv",
    lams: np.ndarray | None = None,
    return_points: bool = False,
) -> Any:
    """The ``zerorouter-cascade`` evaluation router: deferral curve of the cascade policy from recorded answers.

    The IRT router is fit and new models onboarded exactly like ``zerorouter``
    (:func:`~zerorouter_integrations.evaluation.fit_and_onboard`); the agreement model is left at its
    closed-form prior (``agreement="prior"``, what a deployed router without recorded answers uses),
    or fit on the training prompts' recorded answers of the known models (``"fit"``; ``"crossfit"``
    fits it on out-of-fold predictions, two extra fits of the space). The cascade's constants
    (:data:`CONSTANT_GRID`: the agreement model, prior or fitted, which then overrides
    ``agreement``; the escalation target; the number of first-stage candidates) are chosen by
    cross-validation inside the training prompts (``constants="cv"``, :func:`cv_constants`: three more
    fits of the space), or given (a dict), or left at the defaults (``"default"``). Then λ sweeps a
    log grid, each λ gives per-prompt plans, and each plan is replayed on the test prompts: a cascade
    costs both cheap calls plus the escalation when its recorded answers lead to one, and scores the
    accepted answer's (or the escalation's) recorded score. The dear end of the sweep (``λ = 0``) is
    the escalation target alone, so the curve reaches its quality by construction.

    Returns
    -------
    (Curve, dict) or str
        The curve and extras (share of cascaded prompts and escalation rate at the QNC point,
        the constants used, agreement model rows), or why the table cannot be evaluated.
    """
    from zerorouter_integrations.eval_context import fit_and_onboard
    from zerorouter_integrations.latent.irt import IRTSpace
    from zerorouter_integrations.metrics import Curve, upper_hull

    got = table_answers(ctx.table, extractor=(policy.extractor if policy is not None else "auto"))
    if isinstance(got, str):
        return got
    A_all, kinds_all = got
    models = ctx.models
    if list(ctx.table.model_names) != list(models):
        order = [list(ctx.table.model_names).index(mm) for mm in models]
        A_all = A_all[:, order]
    pool_cols = [models.index(mm) for mm in ctx.pool]
    ev = ctx.eval_idx
    A_eval = A_all[np.ix_(ev, pool_cols)]
    if not any(v is not None for v in A_eval.ravel()):
        return (
            "no recorded answer of a pool model on the test prompts; the cascade cannot be evaluated offline"
        )
    pol = copy.deepcopy(policy) if policy is not None else CascadePolicy(lam=0.0)
    if not isinstance(pol.escalate_to, str):
        raise ValueError("offline evaluation supports escalate_to='best' or 'reference'")
    extra: dict[str, Any] = {}
    if constants == "cv":
        chosen, extra["cv"] = cv_constants(ctx, pol, A_all, kinds_all)
    elif constants == "default":
        chosen = {}
    elif isinstance(constants, dict):
        chosen = dict(constants)
    else:
        raise ValueError(f"constants must be 'cv', 'default' or a dict; got {constants!r}")
    pol = with_constants(pol, chosen)
    agreement = str(chosen.get("agreement", agreement))
    extra["constants"] = chosen
    pred = fit_and_onboard(ctx, IRTSpace(seed=ctx.seed))
    P = pred.predict(ctx.features[ev], input_tokens=ctx.tokens_all[ev], models=ctx.pool)
    # the training prompts are the calibration set (reference model for escalate_to="reference")
    P_tr = pred.predict(
        ctx.features[ctx.train_idx], input_tokens=ctx.tokens_all[ctx.train_idx], models=ctx.pool
    )
    ref = _reference_model(ctx.pool, P_tr.quality, P_tr.cost_usd)
    pol.escalate_model_ = ref if pol.escalate_to == "reference" else None
    pol.escalate_policy_ = None
    if agreement in ("fit", "crossfit"):
        model, rows_used = _fit_agreement(
            ctx, pred, A_all, kinds_all, pol, folds=2 if agreement == "crossfit" else 0
        )
        pol.agreement = model
        extra["agreement_rows"] = rows_used
    elif agreement != "prior":
        raise ValueError(f"agreement must be 'fit', 'crossfit' or 'prior', got {agreement!r}")
    pol.agreement_ = pol.agreement or AgreementModel()
    kinds_eval = [kinds_all[i] for i in ev]
    codes = _answer_codes(A_eval)
    grid = _sweep_lams(P.cost_usd) if lams is None else np.asarray(lams, dtype=float)
    pts_a, stats = _replay_sweep(pol, P, kinds_eval, ctx.pool, Y, C, codes, grid)
    pts = pts_a.tolist()
    curve = Curve(points=pts_a, hull=upper_hull(pts_a))
    # operating point closest to the best single model's quality (for the extras)
    q_best = float(Y.mean(axis=0).max())
    reach = [i for i, (c_, q_) in enumerate(pts) if q_ >= q_best - 1e-12]
    i_op = min(reach, key=lambda i: pts[i][0]) if reach else int(np.argmax(pts_a[:, 1]))
    extra.update(
        cascade_share=stats[i_op][0],
        escalation_rate=stats[i_op][1],
        lam_at_best=stats[i_op][2],
        comparable_share=float(np.mean([k is not None for k in kinds_eval])),
    )
    if return_points:
        extra["points"] = pts
        extra["stats"] = stats
    return curve, extra


def _oof_quality(ctx: Any, rows: np.ndarray, known: list[str], folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predicted quality (and sd) of the known models on training rows ``rows``."""
    from zerorouter_integrations.latent.irt import IRTSpace
    from zerorouter_integrations.predictor import QualityPredictor

    cols = [ctx.models.index(mm) for mm in known]
    fold = np.random.default_rng(ctx.seed + 7).integers(0, folds, size=len(ctx.train_idx))
    pos = {int(r): i for i, r in enumerate(ctx.train_idx)}
    Q = np.full((len(rows), len(known)), np.nan)
    SD = np.zeros_like(Q)
    for f in range(folds):
        fit_rows = ctx.train_idx[fold != f]
        pr = QualityPredictor(IRTSpace(seed=ctx.seed)).fit(
            ctx.features[fit_rows],
            ctx.S_all[np.ix_(fit_rows, cols)],
            known,
            costs=ctx.C_all[np.ix_(fit_rows, cols)],
            input_tokens=ctx.tokens_all[fit_rows],
            prices=ctx.prices,
        )
        sel = np.array([fold[pos[int(r)]] == f for r in rows], dtype=bool)
        if not sel.any():
            continue
        names = [mm for mm in known if mm in pr.profiles_]
        P = pr.predict(ctx.features[rows[sel]], input_tokens=ctx.tokens_all[rows[sel]], models=names)
        for j, mm in enumerate(names):
            Q[sel, known.index(mm)] = P.quality[:, j]
            SD[sel, known.index(mm)] = P.quality_sd[:, j]
    return Q, SD


def _fit_agreement(
    ctx: Any,
    pred: Any,
    A_all: np.ndarray,
    kinds_all: Sequence[str | None],
    pol: CascadePolicy,
    max_rows: int = 150_000,
    folds: int = 0,
) -> tuple[AgreementModel, int]:
    """Fit the agreement model on training prompts: pairs of known pool models, E = best known by prediction."""
    known = [mm for mm in ctx.pool if mm in set(ctx.known)]
    if len(known) < 3:
        return AgreementModel(), 0
    tr = np.asarray([i for i in ctx.train_idx if kinds_all[i] is not None], dtype=int)
    if len(tr) == 0:
        return AgreementModel(), 0
    cols = [ctx.models.index(mm) for mm in known]
    if folds:
        Qq, Qsd = _oof_quality(ctx, tr, known, folds)
    else:
        P = pred.predict(ctx.features[tr], input_tokens=ctx.tokens_all[tr], models=known)
        Qq, Qsd = P.quality, P.quality_sd

    P = SimpleNamespace(quality=Qq, quality_sd=Qsd)

    Qk = P.quality
    if pol.uncertainty_penalty:
        Qk = np.clip(Qk - pol.uncertainty_penalty * P.quality_sd, EPS, 1 - EPS)
    S = ctx.S_all[np.ix_(tr, cols)]
    codes = _answer_codes(A_all[np.ix_(tr, cols)])
    n, m = Qk.shape
    rows = np.arange(n)
    Sfill = np.where(np.isnan(S) | np.isnan(P.quality), -np.inf, P.quality)
    E = Sfill.argmax(axis=1)
    ref = getattr(pol, "escalate_model_", None)
    if pol.escalate_to == "reference" and ref in known:
        E = np.full(n, known.index(ref))
    A_, B_ = pairs(m)
    swap = P.quality[:, B_] > P.quality[:, A_]
    prim = np.where(swap, B_[None, :], A_[None, :])
    sec = np.where(swap, A_[None, :], B_[None, :])
    pa = np.take_along_axis(Qk, prim, 1)
    pb = np.take_along_axis(Qk, sec, 1)
    pe = np.broadcast_to(P.quality[rows, E][:, None], pa.shape)
    ca, cb = np.take_along_axis(codes, prim, 1), np.take_along_axis(codes, sec, 1)
    agree = (ca >= 0) & (ca == cb)
    ok_a = np.take_along_axis(S, prim, 1)
    ok_e = np.broadcast_to(S[rows, E][:, None], pa.shape)
    valid = ~np.isnan(ok_a) & ~np.isnan(np.take_along_axis(S, sec, 1)) & ~np.isnan(ok_e)
    # pairs whose E is one of them say nothing about escalation
    valid &= (prim != E[:, None]) & (sec != E[:, None])
    kinds_rows = np.broadcast_to(np.asarray([kinds_all[i] for i in tr], dtype=object)[:, None], pa.shape)
    idx = np.flatnonzero(valid.ravel())
    if len(idx) > max_rows:
        idx = np.random.default_rng(ctx.seed).choice(idx, size=max_rows, replace=False)
    model = AgreementModel(chance=(pol.agreement.chance if pol.agreement is not None else None))
    model.fit(
        pa.ravel()[idx],
        pb.ravel()[idx],
        pe.ravel()[idx],
        agree.ravel()[idx],
        ok_a.ravel()[idx],
        ok_e.ravel()[idx],
        kinds=kinds_rows.ravel()[idx],
    )
    return model, len(idx)


def _eval_router(ctx: Any, Y: np.ndarray, C: np.ndarray) -> Any:
    """``EVAL_ROUTERS["zerorouter-cascade"]``: :func:`evaluate_cascade` with the default policy."""
    return evaluate_cascade(ctx, Y, C)


#: Evaluation routers of this module, ``name → fn(ctx, Y=Y, C=C)`` (see ``evaluation.evaluate``).
EVAL_ROUTERS: dict[str, Callable[..., Any]] = {"zerorouter-cascade": _eval_router}
