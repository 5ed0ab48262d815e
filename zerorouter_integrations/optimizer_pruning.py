"""Pruning and bounds for the batch program: exact dominance pruning of each prompt's options, the LP
relaxation with duals, rounding it to an incumbent and improving that under capacities."""

from __future__ import annotations

from typing import Any

import numpy as np

from zerorouter_integrations.extras import need
from zerorouter_integrations.optimizer_knapsack import (
    compact,
    improve_assignment,
)
from zerorouter_integrations.optimizer_milp import (
    LP_METHOD,
    SolverOptions,
)

__all__ = ["improve_general", "lp_relaxation", "prune_dominated", "round_incumbent"]


def prune_dominated(
    Q: np.ndarray,
    C: np.ndarray,
    admissible: np.ndarray,
    L: np.ndarray | None = None,
    dominator_ok: np.ndarray | None = None,
    *,
    chunk: int = 1024,
) -> np.ndarray:
    """Mask of the options that survive dominance pruning.

    Option ``(i, j)`` is removed when an admissible option ``(i, k)`` with ``dominator_ok[k]`` has
    ``C[i, k] ≤ C[i, j]``, ``Q[i, k] ≥ Q[i, j]`` (and ``L[i, k] ≤ L[i, j]`` when ``L`` is given), with
    at least one strict inequality, or all equal and ``k`` ordered first (so one of identical
    options survives).

    Parameters
    ----------
    Q, C : ndarray, shape (n, m)
        Quality and cost.
    admissible : ndarray of bool, shape (n, m)
        Options that may be chosen at all.
    L : ndarray, shape (n, m), optional
        Latency; when given it is a third dominance criterion.
    dominator_ok : ndarray of bool, shape (m,), optional
        Models allowed to dominate others (default: all). Used to keep pruning exact under
        capacities: only uncapacitated models may dominate.
    chunk : int, default=1024
        Rows per block in the three-criteria (pairwise) computation.

    Returns
    -------
    ndarray of bool, shape (n, m)
        ``True`` for kept options (always a subset of ``admissible``; each row with an admissible
        option keeps at least one).
    """
    n, m = Q.shape
    dom_ok = np.ones(m, dtype=bool) if dominator_ok is None else np.asarray(dominator_ok, dtype=bool)
    if L is None:
        # sort each row by (cost asc, quality desc, index asc); an option is dominated iff some
        # eligible option before it in this order has quality ≥ its quality.
        Cs = np.where(admissible, C, np.inf)
        Qs = np.where(admissible, Q, -np.inf)
        order = np.lexsort((np.broadcast_to(np.arange(m), (n, m)), -Qs, Cs), axis=1)
        Qo = np.take_along_axis(Qs, order, axis=1)
        elig = np.take_along_axis(admissible & dom_ok[None, :], order, axis=1)
        Qd = np.where(elig, Qo, -np.inf)
        prev_max = np.empty_like(Qd)
        prev_max[:, 0] = -np.inf
        if m > 1:
            prev_max[:, 1:] = np.maximum.accumulate(Qd, axis=1)[:, :-1]
        keep_sorted = Qo > prev_max
        keep = np.zeros((n, m), dtype=bool)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        return keep & admissible

    keep = admissible.copy()
    idx = np.arange(m)
    earlier = idx[None, :] < idx[:, None]  # [j, k]: k ordered before j
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        q, c, l, a = Q[s:e], C[s:e], L[s:e], admissible[s:e]
        # [row, j, k]: does k dominate j?
        le_c = c[:, None, :] <= c[:, :, None]
        ge_q = q[:, None, :] >= q[:, :, None]
        le_l = l[:, None, :] <= l[:, :, None]
        weak = le_c & ge_q & le_l
        strict = (
            (c[:, None, :] < c[:, :, None])
            | (q[:, None, :] > q[:, :, None])
            | (l[:, None, :] < l[:, :, None])
        )
        dom = weak & (strict | earlier[None, :, :])
        dom &= (a & dom_ok[None, :])[:, None, :]
        dom[:, idx, idx] = False
        keep[s:e] &= ~dom.any(axis=2)
    return keep


def lp_relaxation(opts: SolverOptions, objective: np.ndarray, rows_all, cap):
    """LP relaxation via ``linprog(method=LP_METHOD)``: ``(x, value, reduced_costs or None)``.

    Returns None when the relaxation is infeasible. Reduced costs are ``c − Aᵀy`` from the row
    duals; they are dropped (None) if the dual objective does not reproduce the LP value.
    """
    need("fit", "route_batch's LP bound (HiGHS through SciPy)")
    import scipy.sparse as sp
    from scipy.optimize import linprog

    v = len(opts.rows)
    ones = np.ones(v)
    a_eq = sp.csr_array((ones, (opts.rows, np.arange(v))), shape=(opts.n, v))
    ub_rows: list[Any] = []
    ub_rhs: list[float] = []
    main_pos, main_scale = None, 1.0  # the last row of rows_all is the budget / target row
    for coef, lb, ub in rows_all:
        scale = float(np.max(np.abs(coef))) if coef.size else 1.0
        scale = scale if scale > 0 else 1.0
        main_pos, main_scale = len(ub_rows), scale
        if np.isfinite(ub):
            ub_rows.append(sp.csr_array(coef.reshape(1, -1) / scale))
            ub_rhs.append(ub / scale)
        if np.isfinite(lb):
            ub_rows.append(sp.csr_array(-coef.reshape(1, -1) / scale))
            ub_rhs.append(-lb / scale)
    if cap is not None:
        capped = np.flatnonzero(np.isfinite(cap) & (cap < opts.n))
        if capped.size:
            pos = np.full(opts.m, -1)
            pos[capped] = np.arange(capped.size)
            selv = pos[opts.cols] >= 0
            ub_rows.append(
                sp.csr_array(
                    (ones[selv], (pos[opts.cols[selv]], np.flatnonzero(selv))), shape=(capped.size, v)
                )
            )
            ub_rhs.extend(cap[capped].tolist())
    a_ub = sp.vstack(ub_rows, format="csr") if ub_rows else None
    b_ub = np.array(ub_rhs) if ub_rows else None
    res = linprog(
        objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.ones(opts.n), bounds=(0, 1), method=LP_METHOD
    )
    if res.status != 0 or res.x is None:
        return None
    # shadow price of the main row per unit of its resource, in objective units (≥ 0)
    price = None
    try:
        if main_pos is not None:
            price = -float(np.asarray(res.ineqlin.marginals)[main_pos]) / main_scale
    except (AttributeError, IndexError, TypeError):  # pragma: no cover
        price = None
    d = None
    try:
        y_eq = np.asarray(res.eqlin.marginals)
        d = objective - a_eq.T @ y_eq
        dual_obj = float(y_eq.sum())
        if a_ub is not None:
            y_ub = np.asarray(res.ineqlin.marginals)
            d = d - a_ub.T @ y_ub
            dual_obj += float(y_ub @ b_ub)
        dual_obj += float(np.minimum(d, 0.0).sum())
        if abs(dual_obj - float(res.fun)) > 1e-6 * (1.0 + abs(float(res.fun))):
            d = None
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - older scipy
        d = None
    return res.x, float(res.fun), d, price


def round_incumbent(opts: SolverOptions, x_lp, d, rows_all, cap) -> np.ndarray | None:
    """A feasible 0/1 vector near the LP solution, or None.

    Integral rows keep their LP option; each fractional row takes, in order of reduced cost, the
    first option that fits the remaining capacities and leaves every knapsack row satisfiable by
    the cheapest-in-that-row choices of the rows still open.
    """
    n = opts.n
    v = len(opts.rows)
    order = np.lexsort((-x_lp, opts.rows))
    first = np.r_[True, opts.rows[order][1:] != opts.rows[order][:-1]]
    top = order[first]  # per row, the option with the largest LP value
    integral_row = x_lp[top] > 1 - 1e-7
    x = np.zeros(v)
    x[top[integral_row]] = 1.0
    frac_rows = opts.rows[top[~integral_row]]
    used_cap = np.bincount(opts.cols, weights=x, minlength=opts.m)
    capv = np.full(opts.m, np.inf) if cap is None else cap
    # knapsack rows as  coef·x ≤ ub  (a ≥ row becomes −coef·x ≤ −lb)
    rows_le = []
    for coef, lb, ub in rows_all:
        if np.isfinite(ub):
            rows_le.append((coef, ub))
        if np.isfinite(lb):
            rows_le.append((-coef, -lb))
    usage = [float(coef @ x) for coef, _ in rows_le]
    # minimum future usage of each knapsack row over the open rows
    open_mask = np.isin(opts.rows, frac_rows)
    future = []
    for coef, _ in rows_le:
        mins = np.full(n, np.inf)
        np.minimum.at(mins, opts.rows[open_mask], coef[open_mask])
        future.append(mins)
    rank = d if d is not None else -x_lp
    for r in frac_rows:
        idx = np.flatnonzero(opts.rows == r)
        idx = idx[np.argsort(rank[idx], kind="stable")]
        for k in range(len(rows_le)):
            future[k][r] = 0.0
        fut_sum = [float(f[np.isfinite(f)].sum()) for f in future]
        chosen = None
        for o in idx:
            if used_cap[opts.cols[o]] + 1 > capv[opts.cols[o]]:
                continue
            if all(
                usage[k] + coef[o] + fut_sum[k] <= rhs + 1e-12 * max(1.0, abs(rhs))
                for k, (coef, rhs) in enumerate(rows_le)
            ):
                chosen = o
                break
        if chosen is None:
            return None
        x[chosen] = 1.0
        used_cap[opts.cols[chosen]] += 1
        for k, (coef, _) in enumerate(rows_le):
            usage[k] += float(coef[chosen])
    for coef, rhs in rows_le:
        if float(coef @ x) > rhs + 1e-12 * max(1.0, abs(rhs)):
            return None
    if np.any(used_cap > capv):
        return None
    return x


def improve_general(Qm, Cm, keep, opts, inc, mode, budget, target, cap, price):
    """Run :func:`improve_assignment` on a rounded incumbent, respecting capacities; returns a 0/1 vector."""
    n, m = Qm.shape
    idx, K, Qc, Cc = compact(keep, Qm, Cm)
    a = np.full(n, -1)
    a[opts.rows[inc > 0.5]] = opts.cols[inc > 0.5]
    j = np.argmax(idx == a[:, None], axis=1)
    capv = np.full(m, np.inf) if cap is None else cap
    room = capv - np.bincount(a, minlength=m)
    if mode == "max_quality":
        j = improve_assignment(Qc, Cc, K, j, j.copy(), float(budget), price, model_of=idx, room=room)
    else:
        # the objective of the general path is cost / mean cost; its price is per quality unit
        lam = price * max(float(np.mean(opts.c)), 1e-300)
        j = improve_assignment(-Cc, -Qc, K, j, j.copy(), -float(target) * n, lam, model_of=idx, room=room)
    chosen = idx[np.arange(n), j]
    pos = np.full((n, m), -1)
    pos[opts.rows, opts.cols] = np.arange(len(opts.rows))
    sel = pos[np.arange(n), chosen]
    if np.any(sel < 0):  # pragma: no cover - compact options are the kept options
        return inc
    out = np.zeros(len(opts.rows))
    out[sel] = 1.0
    return out
