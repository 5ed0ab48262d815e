"""The single-knapsack path of the batch program (no capacity, no mean-latency row): the Lagrangian
bound by bisection, a greedy incumbent and its improvement, reduced-cost fixing, then HiGHS on the rest."""

from __future__ import annotations

from typing import Any

import numpy as np

from zerorouter_integrations.errors import InfeasibleError
from zerorouter_integrations.optimizer_milp import (
    SolverOptions,
    assignment_from_x,
    solve_exact,
)

__all__ = ["compact", "improve_assignment", "lagrangian_choice", "solve_single_knapsack"]


def compact(keep: np.ndarray, *arrays: np.ndarray):
    """Move each row's kept options to the front; returns (col_index, kept_mask, *arrays) n × k."""
    order = np.argsort(~keep, axis=1, kind="stable")
    k = max(1, int(keep.sum(axis=1).max()))
    idx = order[:, :k]
    kc = np.take_along_axis(keep, idx, axis=1)
    return (idx, kc, *(np.take_along_axis(a, idx, axis=1) for a in arrays))


def lagrangian_choice(Q: np.ndarray, C: np.ndarray, K: np.ndarray, lam: float):
    """Per row: argmax of ``Q − lam·C`` over kept options, ties to the cheaper; and the max score."""
    S = np.where(K, Q - lam * C, -np.inf)
    best = S.max(axis=1)
    tie = S >= (best - 1e-12 * (1.0 + np.abs(best)))[:, None]
    j = np.where(tie, C, np.inf).argmin(axis=1)
    return j, best, S


def improve_assignment(
    V, W, K, j, j_alt, cap, lam, *, model_of=None, room=None, iters: int = 60, n_cand: int = 4096
):
    """Heuristic incumbent for ``max ΣV  s.t.  ΣW ≤ cap`` (one option per row), from a feasible ``j``.

    Budget mode is ``V = Q, W = C``; target mode is ``V = −C, W = −Q, cap = −T``. Moves:

    1. the prompts that switch at the Lagrangian breakpoint (``j_alt``), as many as fit;
    2. rounds of the best affordable single move per prompt, best value per resource first;
    3. pair swaps: give up some value on one prompt to free resource for a larger gain on another
       (candidates: the ``n_cand`` moves with the best Lagrangian price ``dV − lam·dW``).

    With ``room`` (remaining capacity per model) and ``model_of`` (model of each option), no move
    enters a model without room (slots freed within one batch of moves are not reused: safe).
    """
    n = V.shape[0]
    rows = np.arange(n)
    eps = 1e-12 * max(1.0, abs(cap))
    slack = lambda jj: cap - float(W[rows, jj].sum()) - eps  # noqa: E731
    room = None if room is None else np.array(room, dtype=float)

    def prefix(rs, cs, dw, r):
        take = np.cumsum(np.maximum(dw, 0.0)) <= r
        if room is not None and rs.size:
            tm = model_of[rs, cs]
            order = np.argsort(tm, kind="stable")
            st = tm[order]
            starts = np.r_[0, np.flatnonzero(np.diff(st)) + 1]
            within = np.arange(st.size) - np.repeat(starts, np.diff(np.r_[starts, st.size]))
            rank = np.empty_like(within)
            rank[order] = within
            take &= rank < room[tm]
        bad = np.flatnonzero(~take)
        if bad.size:
            take[bad[0] :] = False
        return take

    def apply(rs, cs):
        if room is not None and rs.size:
            np.add.at(room, model_of[rs, j[rs]], 1.0)
            np.add.at(room, model_of[rs, cs], -1.0)
        j[rs] = cs

    diff = np.flatnonzero(j_alt != j)
    if diff.size:
        dw = W[diff, j_alt[diff]] - W[diff, j[diff]]
        take = prefix(diff, j_alt[diff], dw, slack(j))
        apply(diff[take], j_alt[diff[take]])
    for _ in range(iters):
        r = slack(j)
        dV = V - V[rows, j][:, None]
        dW = W - W[rows, j][:, None]
        open_ = K if room is None else K & (room[model_of] > 0)
        ok = open_ & (dV > 0) & (dW <= r)
        if ok.any():  # single moves, best value per unit of resource first
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = np.where(ok, np.where(dW > 0, dV / dW, np.inf), -np.inf)
            jj = gain.argmax(axis=1)
            cand = np.flatnonzero(ok.any(axis=1))
            cand = cand[np.argsort(-gain[cand, jj[cand]], kind="stable")]
            take = prefix(cand, jj[cand], dW[cand, jj[cand]], r)
            take[0] = True
            apply(cand[take], jj[cand[take]])
            continue
        # pair swaps
        price = np.where(K, dV - lam * dW, -np.inf)
        up = open_ & (dV > 0) & (dW > 0)
        down = open_ & (dV < 0) & (dW < 0)
        ui = np.flatnonzero(up.ravel())
        di = np.flatnonzero(down.ravel())
        if ui.size == 0 or di.size == 0:
            break
        flat_price = price.ravel()
        if ui.size > n_cand:
            ui = ui[np.argpartition(-flat_price[ui], n_cand)[:n_cand]]
        if di.size > n_cand:
            di = di[np.argpartition(-flat_price[di], n_cand)[:n_cand]]
        u_e, u_g, u_row = dW.ravel()[ui], dV.ravel()[ui], ui // K.shape[1]
        order = np.argsort(u_e, kind="stable")
        u_e, u_g, u_row, ui = u_e[order], u_g[order], u_row[order], ui[order]
        pref = np.maximum.accumulate(u_g)
        pref_arg = np.maximum.accumulate(np.where(u_g >= pref, np.arange(len(u_g)), 0))
        d_f, d_l, d_row = -dW.ravel()[di], dV.ravel()[di], di // K.shape[1]
        pos = np.searchsorted(u_e, r + d_f, side="right") - 1
        valid = pos >= 0
        net = np.full(di.size, -np.inf)
        pa = pref_arg[np.maximum(pos, 0)]
        net[valid] = pref[pos[valid]] + d_l[valid]
        net[valid & (u_row[pa] == d_row)] = -np.inf
        floor = 1e-15 * max(1.0, float(np.abs(V[rows, j]).sum()))
        u = d = None
        for b in np.argsort(-net)[:64]:
            if not np.isfinite(net[b]) or net[b] <= floor:
                break
            cu, cd = ui[pa[b]], di[b]
            if room is not None:
                mu_ = model_of[cu // K.shape[1], cu % K.shape[1]]
                md_ = model_of[cd // K.shape[1], cd % K.shape[1]]
                if mu_ == md_ and room[mu_] < 2:
                    continue
            u, d = cu, cd
            break
        if u is None:
            break
        apply(np.array([u // K.shape[1]]), np.array([u % K.shape[1]]))
        apply(np.array([d // K.shape[1]]), np.array([d % K.shape[1]]))
    return j


def solve_single_knapsack(Qm, Cm, keep, mode, budget, target, *, time_limit_s, mip_rel_gap):
    """Exact solver for one knapsack row (budget or quality target) and one choice per prompt.

    1. Lagrangian relaxation: ``max_j Q − λ·C`` per prompt; λ* found by geometric bisection to a
       relative bracket of 1e-12 (value of the relaxation = LP bound).
    2. Incumbent: the feasible side of the bracket, then greedy upgrades (budget mode) or
       downgrades (target mode) that keep the row satisfied.
    3. If bound − incumbent ≤ ``mip_rel_gap``·|incumbent| we are done (the same stopping rule
       as HiGHS). Otherwise every option whose Lagrangian reduced cost exceeds the gap is removed
       (it cannot be part of any solution better than the incumbent: exact), prompts left with
       one option are fixed, and HiGHS solves the small remaining program.
    """
    n = Qm.shape[0]
    rows = np.arange(n)
    idx, K, Q, C = compact(keep, Qm, Cm)
    to_cols = lambda j: idx[rows, j]  # noqa: E731
    Qk = np.where(K, Q, -np.inf)
    Ck = np.where(K, C, np.inf)
    # extreme choices: top quality (λ → 0, ties cheaper) and cheapest (λ → ∞, ties better)
    j_top = np.where(Qk >= Qk.max(axis=1, keepdims=True), Ck, np.inf).argmin(axis=1)
    j_cheap = np.where(Ck <= Ck.min(axis=1, keepdims=True), -Qk, np.inf).argmin(axis=1)
    q_top, c_top = Q[rows, j_top], C[rows, j_top]
    q_cheap, c_cheap = Q[rows, j_cheap], C[rows, j_cheap]
    info: dict[str, Any] = {"path": "lagrangian"}

    if mode == "max_quality":
        B = float(budget)
        if c_top.sum() <= B:
            return to_cols(j_top), "optimal", 0.0, {**info, "binding": False}
        if c_cheap.sum() > B:
            best = float(c_cheap.sum())
            raise InfeasibleError(
                f"budget {B:.6g} USD is below the cheapest possible assignment ({best:.6g} USD for "
                f"{n} prompts, every prompt on its cheapest admissible model)",
                best_value=best,
                status="infeasible",
            )
        value = lambda j: float(C[rows, j].sum())  # noqa: E731
        feasible = lambda v: v <= B  # noqa: E731
    else:
        T = float(target) * n
        if q_top.sum() < T:
            best = float(q_top.mean())
            raise InfeasibleError(
                f"target mean quality {target:.6g} is above the best achievable {best:.6g} "
                f"(every prompt on its best model, {n} prompts)",
                best_value=best,
                status="infeasible",
            )
        if q_cheap.sum() >= T:
            return to_cols(j_cheap), "optimal", 0.0, {**info, "binding": False}
        value = lambda j: float(Q[rows, j].sum())  # noqa: E731
        feasible = lambda v: v >= T  # noqa: E731

    # bracket of λ containing every breakpoint
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(K & (C > c_cheap[:, None]), (Q - q_cheap[:, None]) / (C - c_cheap[:, None]), -np.inf)
        down = np.where(K & (C < c_top[:, None]), (q_top[:, None] - Q) / (c_top[:, None] - C), np.inf)
    lam_hi = float(up.max()) * (1 + 1e-9) + 1e-300
    lam_lo = max(float(down.min()) * (1 - 1e-9), 1e-300)
    # budget: cost(lo) > B ≥ cost(hi). target: quality(lo) ≥ T > quality(hi).
    j_lo, _, _ = lagrangian_choice(Q, C, K, lam_lo)
    j_hi, _, _ = lagrangian_choice(Q, C, K, lam_hi)
    lo_ok = mode == "min_cost"
    if feasible(value(j_lo)) != lo_ok or feasible(value(j_hi)) == lo_ok:  # pragma: no cover
        lam_lo, lam_hi = 1e-300, 1e300
        j_lo, _, _ = lagrangian_choice(Q, C, K, lam_lo)
        j_hi, _, _ = lagrangian_choice(Q, C, K, lam_hi)
    for _ in range(200):
        if lam_hi <= lam_lo * (1 + 1e-12):
            break
        mid = float(np.sqrt(lam_lo * lam_hi))
        j_mid, _, _ = lagrangian_choice(Q, C, K, mid)
        if feasible(value(j_mid)) == lo_ok:
            lam_lo, j_lo = mid, j_mid
        else:
            lam_hi, j_hi = mid, j_mid

    # incumbent
    if mode == "max_quality":
        inc = improve_assignment(Q, C, K, j_hi.copy(), j_lo, B, lam_hi)
        z_inc = float(Q[rows, inc].sum())
        bounds = []
        for lam in (lam_lo, lam_hi):
            _, best, S = lagrangian_choice(Q, C, K, lam)
            bounds.append((float(best.sum()) + lam * B, lam, best, S))
        ub, lam, best, S = min(bounds, key=lambda t: t[0])
        gap_abs = max(0.0, ub - z_inc)
        delta = best[:, None] - S
    else:
        inc = improve_assignment(-C, -Q, K, j_lo.copy(), j_hi, -T, 1.0 / lam_lo)
        z_inc = float(C[rows, inc].sum())
        bounds = []
        for lam in (lam_lo, lam_hi):
            _, best, S = lagrangian_choice(Q, C, K, lam)
            bounds.append(((T - float(best.sum())) / lam, lam, best, S))
        lb, lam, best, S = max(bounds, key=lambda t: t[0])
        gap_abs = max(0.0, z_inc - lb)
        delta = (best[:, None] - S) / lam
    scale = max(abs(z_inc), 1e-300)
    info.update(
        binding=True, lam=lam, bound=float(ub if mode == "max_quality" else lb), incumbent_gap=gap_abs / scale
    )
    if gap_abs <= mip_rel_gap * scale:
        return to_cols(inc), "optimal", gap_abs / scale, {**info, "n_residual_prompts": 0}

    # reduced-cost fixing, then HiGHS on the prompts that still have a choice
    tol = 1e-9 * scale + 1e-15
    keep2 = K & (delta <= gap_abs + tol)
    keep2[rows, inc] = True
    free = keep2.sum(axis=1) > 1
    info["n_residual_prompts"] = int(free.sum())
    fixed = ~free
    sub_keep = keep2[free]
    r_rows, r_cols = np.nonzero(sub_keep)
    sub_rows = np.flatnonzero(free)
    opts = SolverOptions(
        rows=r_rows,
        cols=r_cols,
        q=Q[sub_rows][r_rows, r_cols],
        c=C[sub_rows][r_rows, r_cols],
        l=None,
        n=int(free.sum()),
        m=K.shape[1],
    )
    inc_free = inc[free]
    if mode == "max_quality":
        fixed_part = float(Q[rows[fixed], inc[fixed]].sum())
        rhs = B - float(C[rows[fixed], inc[fixed]].sum())
        main = (opts.c, -np.inf, rhs)
        objective = -opts.q
        z_res_inc = float(Q[sub_rows, inc_free].sum())
    else:
        fixed_part = float(C[rows[fixed], inc[fixed]].sum())
        rhs = T - float(Q[rows[fixed], inc[fixed]].sum())
        main = (opts.q, rhs, np.inf)
        c_scale = max(float(np.mean(opts.c)), 1e-300)
        objective = opts.c / c_scale
        z_res_inc = float(C[sub_rows, inc_free].sum())
    rel = min(1.0, max(1e-12, mip_rel_gap * scale / max(abs(z_res_inc), 1e-300)))
    x, res, status = solve_exact(opts, objective, [main], None, time_limit_s=time_limit_s, mip_rel_gap=rel)
    info["solver_message"] = str(res.message)
    best_assign = inc
    if x is not None:
        cand = inc.copy()
        cand[sub_rows] = assignment_from_x(opts, x)
        if mode == "max_quality":
            better = float(Q[rows, cand].sum()) > z_inc and float(C[rows, cand].sum()) <= B
        else:
            better = float(C[rows, cand].sum()) < z_inc and float(Q[rows, cand].sum()) >= T
        if better:
            best_assign = cand
    if status != "optimal":
        status = "time_limit" if status == "time_limit" else status
    # gap against the better of the Lagrangian bound and HiGHS's dual bound on the residual
    dual = getattr(res, "mip_dual_bound", None)
    if mode == "max_quality":
        z = float(Q[rows, best_assign].sum())
        bound = ub if dual is None or not np.isfinite(dual) else min(ub, fixed_part - dual)
        gap = max(0.0, bound - z) / max(abs(z), 1e-300)
    else:
        z = float(C[rows, best_assign].sum())
        bound = lb if dual is None or not np.isfinite(dual) else max(lb, fixed_part + dual * c_scale)
        gap = max(0.0, z - bound) / max(abs(z), 1e-300)
    if status == "infeasible":  # residual cannot be infeasible (the incumbent fits); be safe
        status = "optimal" if gap <= mip_rel_gap else "feasible"
    return to_cols(best_assign), status, gap, info
