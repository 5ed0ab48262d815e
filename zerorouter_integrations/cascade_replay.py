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

__all__ = ["EVAL_ROUTERS", "evaluate_cascade", "table_answers"]


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


def evaluate_cascade(
    ctx: Any,
    Y: np.ndarray,
    C: np.ndarray,
    *,
    policy: CascadePolicy | None = None,
    agreement: str = "prior",
    lams: np.ndarray | None = None,
    return_points: bool = False,
) -> Any:
    """The ``zerorouter-cascade`` evaluation router: deferral curve of the cascade policy from recorded answers.

    The IRT router is fit and new models onboarded exactly like ``zerorouter``
    (:func:`~zerorouter_integrations.evaluation.fit_and_onboard`); the agreement model is left at its
    closed-form prior (``agreement="prior"``, what a deployed router without recorded answers uses),
    or fit on the training prompts' recorded answers of the known models (``"fit"``; ``"crossfit"``
    fits it on out-of-fold predictions, two extra fits of the space); then λ sweeps a log grid, each λ
    gives per-prompt plans, and each plan is replayed on the test prompts: a cascade costs both cheap
    calls plus the escalation when its recorded answers lead to one, and scores the accepted answer's
    (or the escalation's) recorded score.

    Returns
    -------
    (Curve, dict) or str
        The curve and extras (share of cascaded prompts and escalation rate at the QNC point,
        agreement model rows), or why the table cannot be evaluated.
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
    pred = fit_and_onboard(ctx, IRTSpace(seed=ctx.seed))
    P = pred.predict(ctx.features[ev], input_tokens=ctx.tokens_all[ev], models=ctx.pool)
    # the training prompts are the calibration set (reference model for escalate_to="reference")
    P_tr = pred.predict(
        ctx.features[ctx.train_idx], input_tokens=ctx.tokens_all[ctx.train_idx], models=ctx.pool
    )
    j_ref = int(np.lexsort((P_tr.cost_usd.mean(axis=0), -P_tr.quality.mean(axis=0)))[0])
    pol.escalate_model_ = ctx.pool[j_ref] if pol.escalate_to == "reference" else None
    pol.escalate_policy_ = None
    extra: dict[str, Any] = {}
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
    pl = build_menus(pol, P.quality, P.cost_usd, None, P.quality_sd, kinds_eval, names=ctx.pool)
    codes = _answer_codes(A_eval)
    grid = _sweep_lams(P.cost_usd) if lams is None else np.asarray(lams, dtype=float)
    pts, stats = [], []
    for lam in grid:
        ch = choose(pl, float(lam), 0.0)
        q, c, esc = _realize(ch, Y, C, codes)
        pts.append([float(c.mean()), float(q.mean())])
        stats.append((float(ch.is_pair.mean()), float(esc.mean()), float(lam)))
    pts_a = np.asarray(pts)
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
        extra["points"] = pts_a.tolist()
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
