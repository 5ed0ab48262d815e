"""Cascade plans at the array level: per-prompt menus of single models and cheap pairs, the best plan
at a given λ, and λ's calibration to a budget or a quality target (used by
:class:`~zerorouter_integrations.cascade_policy.CascadePolicy` and the offline replay)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zerorouter_integrations.agreement import EPS, OUTPUTS, AgreementModel
from zerorouter_integrations.errors import InfeasibleError, NoAdmissibleModelError
from zerorouter_integrations.plan import CascadePlan

__all__ = [
    "PlanChoice",
    "PlanMenus",
    "build_menus",
    "calibrate_lam",
    "choose",
    "escalation_targets",
    "pairs",
    "plan_from_choice",
]


@dataclass
class PlanMenus:
    """Per-prompt plan menus, independent of λ: single models plus cascade pairs."""

    Q: np.ndarray  # (n, m)
    C: np.ndarray  # (n, m)
    L: np.ndarray  # (n, m)
    single_ok: np.ndarray  # (n, m) bool
    E: np.ndarray  # (n,) escalation target
    A: np.ndarray  # (P,) primary of each pair  (column index; swapped per prompt below)
    B: np.ndarray  # (P,)
    prim: np.ndarray  # (n, P) primary column per prompt
    sec: np.ndarray  # (n, P)
    pair_ok: np.ndarray  # (n, P) bool
    probs: dict[str, np.ndarray]  # each (n, P)


@dataclass
class PlanChoice:
    """What the policy chose per prompt at one λ."""

    plan: np.ndarray  # (n,) index: < m single model, ≥ m pair (plan − m)
    is_pair: np.ndarray  # (n,) bool
    model: np.ndarray  # (n,) the single model, or the primary of the pair
    second: np.ndarray  # (n,) the second cheap model (-1 for single plans)
    E: np.ndarray  # (n,)
    acc_agree: np.ndarray  # (n,) bool: accept the cheap answer when they agree
    acc_dis: np.ndarray  # (n,) bool: accept the primary's answer when they disagree
    thr_agree: np.ndarray  # (n,) accept threshold on agreement
    thr_dis: np.ndarray
    conf_agree: np.ndarray  # (n,) confidence of the cheap answer on agreement
    conf_dis: np.ndarray
    p_agree: np.ndarray
    Q: np.ndarray  # (n,) expected quality of the chosen plan
    C: np.ndarray  # (n,) expected cost
    L: np.ndarray  # (n,) expected latency


def pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices (A, B) of every unordered pair of ``m`` models."""
    iu = np.triu_indices(m, k=1)
    return iu[0].astype(int), iu[1].astype(int)


def escalation_targets(
    pol: Any,
    Q: np.ndarray,
    C: np.ndarray,
    L: np.ndarray,
    adm: np.ndarray,
    keys: Sequence[Hashable] | None,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Per prompt, the column of the escalation target of policy ``pol`` (its ``escalate_to``)."""
    n = Q.shape[0]
    ref = getattr(pol, "escalate_model_", None)
    if pol.escalate_to == "reference" and ref is not None:
        S = np.where(adm, Q, -np.inf)
        best = S.max(axis=1, keepdims=True)
        E = np.where(S >= best - 1e-12, C, np.inf).argmin(axis=1)
        col = (
            (list(names).index(ref) if names is not None and ref in names else None)
            if isinstance(ref, str)
            else (int(ref) if names is None and int(ref) < Q.shape[1] else None)
        )
        if col is not None:
            E = np.where(adm[:, col], col, E)
        return E
    esc = getattr(pol, "escalate_policy_", None)
    if esc is not None:
        try:
            return np.asarray(esc.choose(Q, C, L if getattr(esc, "mu_", 0.0) else None, adm, keys=keys))
        except ValueError:  # width differs from the calibration pool: rank per prompt
            out = np.empty(n, dtype=int)
            for i in range(n):
                qi, ci, ai = Q[i], C[i], adm[i]
                lam = float(getattr(esc, "lam_", 0.0))
                s = np.where(ai, qi - lam * ci, -np.inf)
                out[i] = int(np.where(s >= s.max(), ci, np.inf).argmin())
            return out
    S = np.where(adm, Q, -np.inf)
    best = S.max(axis=1, keepdims=True)
    return np.where(S >= best - 1e-12, C, np.inf).argmin(axis=1)


def build_menus(
    pol: Any,
    Q: np.ndarray,
    C: np.ndarray,
    L: np.ndarray | None,
    SD: np.ndarray | None,
    kinds: Sequence[str | None],
    adm: np.ndarray | None = None,
    keys: Sequence[Hashable] | None = None,
    names: Sequence[str] | None = None,
) -> PlanMenus:
    """The λ-independent menus of plans of policy ``pol`` for prompts ``Q``, ``C`` (n × m): single
    models and the cheap pairs that may cascade, with the agreement model's probabilities."""
    Q = np.asarray(Q, dtype=float)
    C = np.asarray(C, dtype=float)
    n, m = Q.shape
    L = np.zeros((n, m)) if L is None else np.nan_to_num(np.asarray(L, dtype=float), nan=0.0)
    SD = np.zeros((n, m)) if SD is None else np.nan_to_num(np.asarray(SD, dtype=float), nan=0.0)
    adm = (
        np.isfinite(Q) & np.isfinite(C)
        if adm is None
        else (np.asarray(adm, dtype=bool) & np.isfinite(Q) & np.isfinite(C))
    )
    if not adm.any(axis=1).all():
        raise NoAdmissibleModelError(f"{int((~adm.any(axis=1)).sum())} prompt(s) have no admissible model")
    Qf = np.where(adm, Q, 0.0)
    Cf = np.where(adm, C, 0.0)
    rows = np.arange(n)
    E = escalation_targets(pol, Qf, Cf, L, adm, keys, names)
    cE = Cf[rows, E]
    # first-stage candidates: cheaper than E, above the floor, the max_candidates cheapest of those
    cand = adm & (Cf < cE[:, None]) & (Qf >= float(pol.quality_floor))
    cand[rows, E] = False
    # drop a candidate when another one is at least as good and strictly cheaper (or as cheap and
    # better): on the predicted quality/cost frontier, then keep the max_candidates best of those
    dom = ((Qf[:, None, :] >= Qf[:, :, None]) & (Cf[:, None, :] < Cf[:, :, None])) | (
        (Qf[:, None, :] > Qf[:, :, None]) & (Cf[:, None, :] <= Cf[:, :, None])
    )
    cand &= ~(dom & cand[:, None, :]).any(axis=2)
    order = np.argsort(np.where(cand, -Qf, np.inf), axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[rows[:, None], order] = np.arange(m)[None, :]
    cand &= rank < int(pol.max_candidates)
    kinds_arr = list(kinds)
    comparable = np.array([k is not None for k in kinds_arr], dtype=bool)
    A, B = pairs(m)
    pair_ok = cand[:, A] & cand[:, B] & comparable[:, None]
    # primary = higher predicted quality of the two
    swap = Qf[:, B] > Qf[:, A]
    prim = np.where(swap, B[None, :], A[None, :])
    sec = np.where(swap, A[None, :], B[None, :])
    kappa = float(pol.uncertainty_penalty)
    Qadj = np.clip(Qf - kappa * SD, EPS, 1 - EPS) if kappa else Qf
    pa = np.take_along_axis(Qadj, prim, axis=1)
    pb = np.take_along_axis(Qadj, sec, axis=1)
    pe = np.broadcast_to(Qf[rows, E][:, None], pa.shape)
    model = getattr(pol, "agreement_", None) or pol.agreement or AgreementModel()
    probs = {k: np.zeros((n, len(A))) for k in OUTPUTS}
    if len(A):
        uniq = {k for k in kinds_arr if k is not None}
        for kind in uniq:
            sel = np.array([k == kind for k in kinds_arr], dtype=bool)
            pr = model.predict(pa[sel], pb[sel], pe[sel], kind)
            for k in OUTPUTS:
                probs[k][sel] = pr[k]
    single_ok = adm.copy()
    if not pol.allow_single:
        has_pair = pair_ok.any(axis=1)
        single_ok[has_pair] = False
    return PlanMenus(
        Q=Qf,
        C=Cf,
        L=L,
        single_ok=single_ok,
        E=E,
        A=A,
        B=B,
        prim=prim,
        sec=sec,
        pair_ok=pair_ok,
        probs=probs,
    )


def choose(pl: PlanMenus, lam: np.ndarray | float, mu: float) -> PlanChoice:
    """The best plan per prompt at price of cost ``lam`` (scalar or per prompt) and of latency ``mu``.

    The dear end is the escalation target by construction: at ``λ = 0`` and ``μ = 0`` (cost and
    latency free) a prompt that may take a single model goes to its escalation target alone, so a
    λ sweep always reaches the target's quality, whatever the agreement model predicts.
    """
    n, m = pl.Q.shape
    rows = np.arange(n)
    lam_v = np.broadcast_to(np.asarray(lam, dtype=float), (n,)).astype(float)
    E = pl.E
    cE, lE = pl.C[rows, E], pl.L[rows, E]
    pr = pl.probs
    esc_cost = (lam_v * cE + mu * lE)[:, None]
    thr_ag = pr["e_ok_agree"] - esc_cost
    thr_dis = pr["e_ok_dis"] - esc_cost
    acc_ag = pr["a_ok_agree"] >= thr_ag
    acc_dis = pr["a_ok_dis"] >= thr_dis
    pag = pr["agree"]
    Qp = pag * np.where(acc_ag, pr["a_ok_agree"], pr["e_ok_agree"]) + (1 - pag) * np.where(
        acc_dis, pr["a_ok_dis"], pr["e_ok_dis"]
    )
    p_esc = pag * (~acc_ag) + (1 - pag) * (~acc_dis)
    ca = np.take_along_axis(pl.C, pl.prim, axis=1)
    cb = np.take_along_axis(pl.C, pl.sec, axis=1)
    la = np.take_along_axis(pl.L, pl.prim, axis=1)
    lb = np.take_along_axis(pl.L, pl.sec, axis=1)
    Cp = ca + cb + p_esc * cE[:, None]
    Lp = np.maximum(la, lb) + p_esc * lE[:, None]
    S_pair = np.where(pl.pair_ok, Qp - lam_v[:, None] * Cp - mu * Lp, -np.inf)
    S_single = np.where(pl.single_ok, pl.Q - lam_v[:, None] * pl.C - mu * pl.L, -np.inf)
    S = np.hstack([S_single, S_pair])
    Call = np.hstack([pl.C, Cp])
    best = S.max(axis=1, keepdims=True)
    plan = np.where(S >= best - 1e-12 * np.maximum(1.0, np.abs(best)), Call, np.inf).argmin(axis=1)
    if mu <= 0:
        plan = np.where((lam_v <= 0) & pl.single_ok[rows, E], E, plan)
    is_pair = plan >= m
    pidx = np.where(is_pair, plan - m, 0)
    take = (lambda X: X[rows, pidx]) if S_pair.shape[1] else (lambda X: np.zeros(n))
    model = np.where(is_pair, pl.prim[rows, pidx] if S_pair.shape[1] else 0, plan)
    second = np.where(is_pair, pl.sec[rows, pidx] if S_pair.shape[1] else -1, -1)
    return PlanChoice(
        plan=plan,
        is_pair=is_pair,
        model=model.astype(int),
        second=second.astype(int),
        E=E,
        acc_agree=np.where(is_pair, take(acc_ag), True).astype(bool),
        acc_dis=np.where(is_pair, take(acc_dis), True).astype(bool),
        thr_agree=np.where(is_pair, take(thr_ag), np.nan),
        thr_dis=np.where(is_pair, take(thr_dis), np.nan),
        conf_agree=np.where(is_pair, take(pr["a_ok_agree"]), np.nan),
        conf_dis=np.where(is_pair, take(pr["a_ok_dis"]), np.nan),
        p_agree=np.where(is_pair, take(pag), np.nan),
        Q=np.where(is_pair, take(Qp), pl.Q[rows, np.minimum(plan, m - 1)]),
        C=np.where(is_pair, take(Cp), pl.C[rows, np.minimum(plan, m - 1)]),
        L=np.where(is_pair, take(Lp), pl.L[rows, np.minimum(plan, m - 1)]),
    )


def calibrate_lam(
    pl: PlanMenus, kind: str, target: float, mu: float, u: np.ndarray
) -> tuple[float, float | None, float, bool]:
    """λ meeting a budget (``kind="budget"``) or quality ``target`` on the menus: ``(λ, λ_alt, mix,
    binding)``, the fraction ``mix`` of prompts (by ``u``) using ``λ_alt``; raises ``InfeasibleError``."""
    budget = kind == "budget"
    n = pl.Q.shape[0]

    def vals(lam: float) -> np.ndarray:
        ch = choose(pl, lam, mu)
        return ch.C if budget else ch.Q

    def feasible(v: float) -> bool:
        return v <= target * (1 + 1e-12) if budget else v >= target * (1 - 1e-12)

    pos = pl.C[pl.C > 0]
    scale = float(np.median(pos)) if pos.size else 1.0
    v0 = float(vals(0.0).mean())
    if not budget:  # the best quality may lie just off λ = 0 (the escalation target alone)
        v0 = max(v0, float(vals(1e-9 / scale).mean()))
    lam_max = 1e7 / scale
    v_max = float(vals(lam_max).mean())
    if budget:
        if feasible(v0):
            return 0.0, None, 0.0, False
        if not feasible(v_max):
            raise InfeasibleError(
                f"budget {target * 1000:.6g} USD per 1k calls is below the cheapest possible "
                f"{v_max * 1000:.6g} USD per 1k calls",
                best_value=v_max * 1000,
                status="infeasible",
            )
    else:
        if not feasible(v0):
            raise InfeasibleError(
                f"quality target {target:.6g} is above the best achievable mean expected quality {v0:.6g}",
                best_value=v0,
                status="infeasible",
            )
        if feasible(v_max):
            return lam_max, None, 0.0, False

    # Bisect λ between the dear side (small λ: mean above the target) and the cheap side.
    def dear(v: float) -> bool:
        return v > target if budget else v >= target

    lo, hi = 1e-9 / scale, lam_max
    if not dear(float(vals(lo).mean())):
        lo = 0.0
    for _ in range(200):
        mid = math.sqrt(lo * hi) if lo > 0 else hi * 1e-6
        if not (lo < mid < hi) or (lo > 0 and hi <= lo * (1 + 1e-10)):
            break
        if dear(float(vals(mid).mean())):
            lo = mid
        else:
            hi = mid
    # Mix the two ends: prompts whose value differs switch from the cheap end (hi) to the dear end
    # (lo) in the order of their u, stopping closest to the target on its feasible side.
    v_lo = vals(lo)
    best: tuple[float, float, float, float] | None = None
    for b in (hi, hi * 1.01, hi * 1.1):
        vb = v_lo if b == lo else vals(b)
        diff = np.flatnonzero(np.abs(v_lo - vb) > 0)
        order = diff[np.argsort(u[diff], kind="stable")]
        means = vb.mean() + np.concatenate([[0.0], np.cumsum((v_lo[order] - vb[order]) / n)])
        ok = np.array([feasible(float(x)) for x in means])
        err = np.where(ok, np.abs(means - target), np.inf)
        k = int(np.argmin(err))
        if not np.isfinite(err[k]) or (best is not None and err[k] >= best[0]):
            continue
        us = u[order]
        mix = 0.0 if k == 0 else (0.5 * (us[-1] + 1.0) if k == len(order) else 0.5 * (us[k - 1] + us[k]))
        best = (float(err[k]), b, lo, mix)
    if best is None:
        return (hi if budget else lo), None, 0.0, True
    _, lam_b, lam_a, mix = best
    return lam_b, (lam_a if mix > 0 else None), mix, True


def plan_from_choice(
    ch: PlanChoice,
    pl: PlanMenus,
    names: Sequence[str],
    q: np.ndarray,
    c: np.ndarray,
    kind: str | None,
    lam: float,
    quality_floor: float,
) -> CascadePlan:
    """The :class:`CascadePlan` of the first prompt of a choice (``q``, ``c``: its 1 × m predictions)."""
    m = len(names)

    j = int(ch.model[0])
    quality = {names[i]: float(q[0, i]) for i in range(m)}
    cost = {names[i]: float(c[0, i]) for i in range(m)}
    lat = {names[i]: float(pl.L[0, i]) for i in range(m)}
    if not ch.is_pair[0]:
        if kind is None:
            why = "the answer kind of this request is not comparable (code or open-ended), so no cascade"
        elif not pl.pair_ok[0].any():
            why = (
                f"fewer than two first-stage candidates (cheaper than {names[int(pl.E[0])]} with predicted "
                f"quality ≥ {quality_floor})"
            )
        else:
            why = "a single model scores higher than every cascade at this trade-off"
        return CascadePlan(
            mode="single",
            first=[names[j]],
            escalate_to=None,
            kind=kind,
            lam=float(lam),
            expected_quality=float(ch.Q[0]),
            expected_cost_usd=float(ch.C[0]),
            expected_latency_s=float(ch.L[0]),
            quality=quality,
            cost_usd=cost,
            latency_s=lat,
            reason=why,
        )
    b, e = int(ch.second[0]), int(ch.E[0])
    return CascadePlan(
        mode="cascade",
        first=[names[j], names[b]],
        escalate_to=names[e],
        kind=kind,
        lam=float(lam),
        expected_quality=float(ch.Q[0]),
        expected_cost_usd=float(ch.C[0]),
        expected_latency_s=float(ch.L[0]),
        p_agree=float(ch.p_agree[0]),
        accept_if_agree=bool(ch.acc_agree[0]),
        accept_if_disagree=bool(ch.acc_dis[0]),
        threshold_agree=float(ch.thr_agree[0]),
        threshold_disagree=float(ch.thr_dis[0]),
        confidence_agree=float(ch.conf_agree[0]),
        confidence_disagree=float(ch.conf_dis[0]),
        quality=quality,
        cost_usd=cost,
        latency_s=lat,
        reason=f"cascade scores highest: expected quality {float(ch.Q[0]):.3f} at ${float(ch.C[0]) * 1000:.4g} "
        f"per 1k calls (P(agree) = {float(ch.p_agree[0]):.2f})",
    )
