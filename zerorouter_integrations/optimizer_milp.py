"""The integer program itself: options as sparse rows, HiGHS (:func:`scipy.optimize.milp`) on them, the
exact path, and the best achievable value of a violated constraint (:func:`raise_infeasible`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from zerorouter_integrations.errors import InfeasibleError, ZeroRouterError
from zerorouter_integrations.extras import need

__all__ = [
    "LP_METHOD",
    "STATUS_TEXT",
    "SolverOptions",
    "assignment_from_x",
    "best_value",
    "options_from_mask",
    "raise_infeasible",
    "solve_exact",
    "solve_milp",
]


LP_METHOD = "highs-ipm"  # interior point + crossover: a vertex with duals; faster here than dual simplex


STATUS_TEXT = {
    0: "optimal",
    1: "time_limit",
    2: "infeasible",
    3: "unbounded",
    4: "error",
}


@dataclass
class SolverOptions:
    rows: np.ndarray  # prompt index per option
    cols: np.ndarray  # model index per option
    q: np.ndarray
    c: np.ndarray
    l: np.ndarray | None
    n: int
    m: int


def options_from_mask(Q, C, L, keep: np.ndarray) -> SolverOptions:
    rows, cols = np.nonzero(keep)
    return SolverOptions(
        rows=rows,
        cols=cols,
        q=Q[rows, cols],
        c=C[rows, cols],
        l=None if L is None else L[rows, cols],
        n=Q.shape[0],
        m=Q.shape[1],
    )


def solve_milp(
    opts: SolverOptions,
    objective: np.ndarray,
    *,
    assign_eq: bool = True,
    knapsacks: Sequence[tuple[np.ndarray, float, float]] = (),
    capacity: np.ndarray | None = None,
    time_limit_s: float | None = None,
    mip_rel_gap: float = 1e-4,
    integral: bool = True,
):
    """Minimise ``objective @ x`` over the kept options; returns scipy's ``OptimizeResult``."""
    need("fit", "route_batch's integer program (HiGHS through SciPy)")
    import scipy.sparse as sp  # lazy: scipy.optimize costs ~1.5 s to import
    from scipy.optimize import Bounds, LinearConstraint, milp

    v = len(opts.rows)
    ones = np.ones(v)
    cons = []
    a_assign = sp.csr_array((ones, (opts.rows, np.arange(v))), shape=(opts.n, v))
    if assign_eq:
        cons.append(LinearConstraint(a_assign, 1.0, 1.0))
    else:
        cons.append(LinearConstraint(a_assign, 0.0, 1.0))
    for coef, lb, ub in knapsacks:
        # scale each knapsack row to coefficients of order 1 (costs are ~1e-5 USD)
        scale = float(np.max(np.abs(coef))) if coef.size else 1.0
        scale = scale if scale > 0 else 1.0
        cons.append(LinearConstraint(sp.csr_array(coef.reshape(1, -1) / scale), lb / scale, ub / scale))
    if capacity is not None:
        capped = np.flatnonzero(np.isfinite(capacity) & (capacity < opts.n))
        if capped.size:
            pos = np.full(opts.m, -1)
            pos[capped] = np.arange(capped.size)
            sel = pos[opts.cols] >= 0
            a_cap = sp.csr_array(
                (ones[sel], (pos[opts.cols[sel]], np.flatnonzero(sel))), shape=(capped.size, v)
            )
            cons.append(LinearConstraint(a_cap, -np.inf, capacity[capped]))
    # output_flag=False silences HiGHS's own prints (some sub-MIP messages ignore disp=False);
    # scipy passes it through verbatim with a RuntimeWarning that is filtered here.
    options: dict[str, Any] = {
        "disp": False,
        "mip_rel_gap": float(mip_rel_gap),
        "presolve": True,
        "output_flag": False,
    }
    if time_limit_s is not None:
        options["time_limit"] = float(time_limit_s)
    # scale the objective to coefficients of order 1 (HiGHS also stops on an absolute gap of 1e-6,
    # which would be meaningless for costs of 1e-5 USD); values are scaled back below
    obj_scale = float(np.max(np.abs(objective))) if v else 1.0
    obj_scale = obj_scale if obj_scale > 0 and np.isfinite(obj_scale) else 1.0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unrecognized options detected", category=RuntimeWarning)
        res = milp(
            objective / obj_scale,
            integrality=ones if integral else np.zeros(v),
            bounds=Bounds(0.0, 1.0),
            constraints=cons,
            options=options,
        )
    for key in ("fun", "mip_dual_bound"):
        val = res.get(key)
        if val is not None:
            res[key] = val * obj_scale
    return res


def assignment_from_x(opts: SolverOptions, x: np.ndarray) -> np.ndarray:
    sel = x > 0.5
    assignment = np.full(opts.n, -1, dtype=np.int64)
    assignment[opts.rows[sel]] = opts.cols[sel]
    if np.any(assignment < 0) or sel.sum() != opts.n:
        raise ZeroRouterError(
            "the solver returned a non-integral or incomplete assignment "
            f"({int(sel.sum())} options selected for {opts.n} prompts)"
        )
    return assignment


def solve_exact(
    opts: SolverOptions,
    objective: np.ndarray,
    rows_all: list[tuple[np.ndarray, float, float]],
    cap: np.ndarray | None,
    *,
    time_limit_s: float | None,
    mip_rel_gap: float,
):
    """Solve with HiGHS and make the knapsack rows hold exactly.

    HiGHS accepts rows violated within its feasibility tolerance (~1e-6 after scaling); the caller's
    budget / target / latency are hard limits, so a hair's violation is repaired by tightening the
    violated row by that amount and solving again (at most a few rounds).

    Returns ``(x, res, status)``; ``x`` is None when no feasible assignment was found.
    """
    for _ in range(4):
        res = solve_milp(
            opts,
            objective,
            knapsacks=rows_all,
            capacity=cap,
            time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap,
        )
        status = STATUS_TEXT.get(int(res.status), str(res.status))
        if res.x is None:
            return None, res, status
        x = np.round(res.x)
        tightened = []
        violated = False
        for coef, lb, ub in rows_all:
            act = float(coef @ x)
            if act > ub + 1e-12 * max(1.0, abs(ub)):
                violated = True
                ub = ub - (act - ub)
            elif act < lb - 1e-12 * max(1.0, abs(lb)):
                violated = True
                lb = lb + (lb - act)
            tightened.append((coef, lb, ub))
        rows_all = tightened
        if not violated:
            return x, res, status
    raise ZeroRouterError(  # pragma: no cover - would need a pathological instance
        "could not obtain an assignment that meets the constraints exactly"
    )


def best_value(
    opts: SolverOptions,
    what: Literal["count", "min_cost", "max_quality", "min_latency"],
    *,
    knapsacks: Sequence[tuple[np.ndarray, float, float]] = (),
    capacity: np.ndarray | None,
    time_limit_s: float | None,
) -> float | None:
    """Best achievable value of one quantity under the other constraints (for error messages)."""
    if what == "count":
        res = solve_milp(
            opts, -np.ones(len(opts.rows)), assign_eq=False, capacity=capacity, time_limit_s=time_limit_s
        )
        return None if res.x is None else float(round(-res.fun))
    if capacity is None and not knapsacks:  # separable: per-row optimum
        vals = {"min_cost": opts.c, "max_quality": -opts.q, "min_latency": opts.l}[what]
        best = np.full(opts.n, np.inf)
        np.minimum.at(best, opts.rows, cast(np.ndarray, vals))
        total = float(best.sum())
        return {"min_cost": total, "max_quality": -total / opts.n, "min_latency": total / opts.n}[what]
    obj = {"min_cost": opts.c, "max_quality": -opts.q, "min_latency": opts.l}[what]
    res = solve_milp(
        opts, cast(np.ndarray, obj), knapsacks=knapsacks, capacity=capacity, time_limit_s=time_limit_s
    )
    if res.x is None:
        return None
    val = float(obj @ np.round(res.x))
    return {"min_cost": val, "max_quality": -val / opts.n, "min_latency": val / opts.n}[what]


def raise_infeasible(
    opts, mode, budget, target, mean_latency_s, cap, knapsacks, status, message, time_limit_s
):
    """Work out which constraint cannot be met and raise InfeasibleError with its best value."""
    if status == "time_limit":
        raise ZeroRouterError(
            f"HiGHS reached the time limit ({time_limit_s} s) before finding any feasible assignment "
            f"({message}); raise time_limit_s or loosen the constraints"
        )
    n = opts.n
    if cap is not None:
        best = best_value(opts, "count", capacity=cap, time_limit_s=time_limit_s)
        if best is not None and best < n:
            raise InfeasibleError(
                f"capacities cannot serve all {n} prompts: at most {int(best)} can be assigned "
                f"(capacity {cap.tolist()}); solver status: {status}",
                best_value=best,
                status=status,
            )
    if mean_latency_s is not None:
        best = best_value(opts, "min_latency", capacity=cap, time_limit_s=time_limit_s)
        if best is not None and best > mean_latency_s:
            raise InfeasibleError(
                f"mean_latency_s={mean_latency_s} is below the lowest achievable mean latency "
                f"{best:.6g} s; solver status: {status}",
                best_value=best,
                status=status,
            )
    if mode == "max_quality":
        best = best_value(opts, "min_cost", knapsacks=knapsacks, capacity=cap, time_limit_s=time_limit_s)
        raise InfeasibleError(
            f"budget {budget:.6g} USD is below the cheapest feasible assignment "
            f"({'unknown' if best is None else f'{best:.6g}'} USD for {n} prompts); solver status: {status}",
            best_value=best,
            status=status,
        )
    best = best_value(opts, "max_quality", knapsacks=knapsacks, capacity=cap, time_limit_s=time_limit_s)
    raise InfeasibleError(
        f"target mean quality {target:.6g} is above the best achievable "
        f"{'unknown' if best is None else f'{best:.6g}'} for {n} prompts; solver status: {status}",
        best_value=best,
        status=status,
    )
