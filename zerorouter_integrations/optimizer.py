"""ZeroRouter's dual-mode batch integer program, solved with HiGHS through :func:`scipy.optimize.milp`.

Given predicted quality ``Q`` and predicted cost ``C`` for a batch of ``n`` prompts and ``m`` models
(both ``n × m``), choose one model per prompt:

* ``mode="max_quality"``: maximise ``Σ_i Q[i, a_i]`` subject to ``Σ_i C[i, a_i] ≤ budget``
  (``budget`` is the total USD for the whole batch);
* ``mode="min_cost"``: minimise ``Σ_i C[i, a_i]`` subject to ``mean_i Q[i, a_i] ≥ target``.

Optional side constraints: a per-assignment latency cap (``max_latency_s`` removes every option with
``L > max_latency_s``), a batch mean-latency cap (``mean_latency_s``), a per-model capacity (maximum
number of prompts a model may take) and an admissibility ``mask``.

Formulation
-----------
One binary variable ``x_o`` per kept option ``o = (i, j)``; one equality row per prompt
(``Σ_j x_ij = 1``); one knapsack row for the budget (or the quality target, or the mean latency); one
row per capacitated model. All matrices are :mod:`scipy.sparse`.

Solution paths (all exact up to ``mip_rel_gap``, HiGHS's own stopping rule)
-----------------------------------------------------------------------------
Handed to HiGHS as it is, a 10,000 × 50 multiple-choice knapsack takes minutes: its LP bound is
tight but branch and bound struggles to find incumbents that close a 1e-6 gap. So:

* **No capacity, no mean-latency row** (``path="lagrangian"``): the Lagrangian relaxation
  ``max_j Q − λ·C`` per prompt gives the LP bound (λ by geometric bisection); a greedy incumbent
  (breakpoint prompts, best-ratio upgrades, pair swaps) usually lands within the gap at once.
  Otherwise every option whose Lagrangian reduced cost exceeds bound − incumbent is removed (it is in
  no better solution), prompts left with one option are fixed, and HiGHS solves the few that remain.
* **Capacities or a mean-latency row** (``path="highs"``): when capacities are the only side rows,
  the problem without them is solved first; if its optimum respects the capacities it is optimal
  (``path="lagrangian (capacity not binding)"``). Otherwise the LP relaxation is solved with duals
  (``linprog``, HiGHS), rounded to an incumbent and improved with capacity-aware moves, options
  are fixed by LP reduced cost, and HiGHS branches on the rest.

Dominance pruning
-----------------
Before the program is built, each prompt's *dominated* options are removed: option ``j`` of prompt
``i`` is dominated when another admissible option ``k`` of the same prompt costs no more and is no
worse in quality (and, when ``mean_latency_s`` is given, is no slower), with a deterministic tie
rule for identical options. Replacing a dominated option by its dominator keeps every knapsack row
satisfied and the objective no worse, so pruning is **exact** without capacities.

With capacities the exchange can overfill the dominating model, so pruning is not exact in
general. It is then restricted to dominators whose model is *uncapacitated* (capacity absent or
``≥ n``): swapping onto such a model never violates a capacity row, so this restricted pruning stays
exact. ``prune=False`` switches pruning off entirely.

Infeasibility
-------------
When no assignment satisfies the constraints, :class:`~zerorouter_integrations.errors.InfeasibleError`
is raised with ``best_value`` set to the best achievable value of the violated quantity: the
minimum total cost (budget too small), the maximum mean quality (target too high), the minimum mean
latency (latency cap too tight) or the maximum number of prompts the capacities can serve (capacity
too small), each computed under the remaining constraints.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from zerorouter_integrations.errors import InfeasibleError, UnknownModelError, ZeroRouterError

__all__ = ["BatchAssignment", "optimize_batch", "prune_dominated"]

_LP_METHOD = "highs-ipm"  # interior point + crossover: a vertex with duals; faster here than dual simplex

_STATUS_TEXT = {
    0: "optimal",
    1: "time_limit",
    2: "infeasible",
    3: "unbounded",
    4: "error",
}


@dataclass
class BatchAssignment:
    """The result of :func:`optimize_batch`.

    Attributes
    ----------
    assignment : ndarray of int, shape (n_prompts,)
        Column (model) index chosen for each prompt.
    models : list of str or None
        Model names (the ``model_names`` passed in), so ``models[assignment[i]]`` names prompt ``i``'s model.
    total_quality, total_cost : float
        ``Σ_i Q[i, a_i]`` and ``Σ_i C[i, a_i]`` (USD) of the assignment.
    mean_quality, mean_cost : float
        The same divided by the number of prompts.
    status : str
        ``"optimal"`` (proven within ``mip_rel_gap``) or ``"time_limit"`` (a feasible, possibly
        sub-optimal assignment found before HiGHS's time limit).
    mip_gap : float or None
        Relative gap between the assignment and the best bound known (Lagrangian / LP / HiGHS).
    solve_time_s : float
        Wall time of the whole call (pruning, building and solving), in seconds.
    n_options : int
        Number of (prompt, model) options kept after masking and pruning (binary variables).
    mean_latency_s : float or None
        Mean latency of the assignment when ``L`` was given.
    extra : dict
        Diagnostics: ``path``, ``n_residual_prompts`` / ``n_variables_after_fixing``,
        ``solver_message``, ``pruned``.
    """

    assignment: np.ndarray
    models: list[str] | None
    total_quality: float
    total_cost: float
    mean_quality: float
    mean_cost: float
    status: str
    mip_gap: float | None
    solve_time_s: float
    n_options: int
    mean_latency_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chosen_models(self) -> list[str] | list[int]:
        """Model name per prompt (indices when no names were given)."""
        if self.models is None:
            return [int(a) for a in self.assignment]
        return [self.models[int(a)] for a in self.assignment]

    def counts(self) -> dict[str | int, int]:
        """Number of prompts assigned to each model that received at least one."""
        vals, cnt = np.unique(self.assignment, return_counts=True)
        keys = [self.models[int(v)] if self.models is not None else int(v) for v in vals]
        return {k: int(c) for k, c in zip(keys, cnt)}


# --------------------------------------------------------------------------------------------------
# validation helpers


def _as_matrix(name: str, a: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_prompts × n_models); got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}; expected {shape} like Q")
    return arr


def _capacity_vector(
    capacity: Mapping[Any, int] | np.ndarray | Sequence[float] | None,
    m: int,
    model_names: Sequence[str] | None,
) -> np.ndarray | None:
    """Capacity per model as a float array (``inf`` = unlimited), or None."""
    if capacity is None:
        return None
    cap = np.full(m, np.inf)
    if isinstance(capacity, Mapping):
        names = list(model_names) if model_names is not None else None
        for key, val in capacity.items():
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                if not 0 <= int(key) < m:
                    raise ValueError(f"capacity key {key} is not a model index in [0, {m})")
                j = int(key)
            else:
                if names is None or key not in names:
                    raise UnknownModelError(str(key), names or [])
                j = names.index(key)
            cap[j] = np.inf if val is None else float(val)
    else:
        arr = np.asarray(capacity, dtype=float)
        if arr.shape != (m,):
            raise ValueError(f"capacity array has shape {arr.shape}; expected ({m},), one entry per model")
        cap = np.where(np.isnan(arr), np.inf, arr)
    if np.any(cap < 0):
        raise ValueError(f"capacity must be ≥ 0 for every model; got {cap.tolist()}")
    return np.floor(cap)


# --------------------------------------------------------------------------------------------------
# dominance pruning


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


# --------------------------------------------------------------------------------------------------
# program building and solving


@dataclass
class _Options:
    rows: np.ndarray  # prompt index per option
    cols: np.ndarray  # model index per option
    q: np.ndarray
    c: np.ndarray
    l: np.ndarray | None
    n: int
    m: int


def _options_from_mask(Q, C, L, keep: np.ndarray) -> _Options:
    rows, cols = np.nonzero(keep)
    return _Options(
        rows=rows,
        cols=cols,
        q=Q[rows, cols],
        c=C[rows, cols],
        l=None if L is None else L[rows, cols],
        n=Q.shape[0],
        m=Q.shape[1],
    )


def _solve(
    opts: _Options,
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


def _assignment_from_x(opts: _Options, x: np.ndarray) -> np.ndarray:
    sel = x > 0.5
    assignment = np.full(opts.n, -1, dtype=np.int64)
    assignment[opts.rows[sel]] = opts.cols[sel]
    if np.any(assignment < 0) or sel.sum() != opts.n:
        raise ZeroRouterError(
            "the solver returned a non-integral or incomplete assignment "
            f"({int(sel.sum())} options selected for {opts.n} prompts)"
        )
    return assignment


def _best_value(
    opts: _Options,
    what: Literal["count", "min_cost", "max_quality", "min_latency"],
    *,
    knapsacks: Sequence[tuple[np.ndarray, float, float]] = (),
    capacity: np.ndarray | None,
    time_limit_s: float | None,
) -> float | None:
    """Best achievable value of one quantity under the other constraints (for error messages)."""
    if what == "count":
        res = _solve(
            opts, -np.ones(len(opts.rows)), assign_eq=False, capacity=capacity, time_limit_s=time_limit_s
        )
        return None if res.x is None else float(round(-res.fun))
    if capacity is None and not knapsacks:  # separable: per-row optimum
        vals = {"min_cost": opts.c, "max_quality": -opts.q, "min_latency": opts.l}[what]
        best = np.full(opts.n, np.inf)
        np.minimum.at(best, opts.rows, vals)
        total = float(best.sum())
        return {"min_cost": total, "max_quality": -total / opts.n, "min_latency": total / opts.n}[what]
    obj = {"min_cost": opts.c, "max_quality": -opts.q, "min_latency": opts.l}[what]
    res = _solve(opts, obj, knapsacks=knapsacks, capacity=capacity, time_limit_s=time_limit_s)
    if res.x is None:
        return None
    val = float(obj @ np.round(res.x))
    return {"min_cost": val, "max_quality": -val / opts.n, "min_latency": val / opts.n}[what]


def optimize_batch(
    Q: Any,
    C: Any,
    *,
    mode: Literal["max_quality", "min_cost"],
    budget: float | None = None,
    target: float | None = None,
    L: Any = None,
    max_latency_s: float | None = None,
    mean_latency_s: float | None = None,
    capacity: Mapping[Any, int] | np.ndarray | None = None,
    mask: Any = None,
    model_names: Sequence[str] | None = None,
    time_limit_s: float | None = 60.0,
    mip_rel_gap: float = 1e-4,
    prune: bool = True,
) -> BatchAssignment:
    """Assign one model to each prompt of a batch by integer programming.

    Parameters
    ----------
    Q : array-like, shape (n_prompts, n_models)
        Predicted quality in [0, 1].
    C : array-like, shape (n_prompts, n_models)
        Predicted cost of each call in USD.
    mode : {"max_quality", "min_cost"}
        ``"max_quality"``: maximise total quality with total cost ≤ ``budget``.
        ``"min_cost"``: minimise total cost with mean quality ≥ ``target``.
    budget : float, optional
        Total USD for the whole batch (required for ``"max_quality"``).
    target : float, optional
        Minimum mean predicted quality over the batch (required for ``"min_cost"``).
    L : array-like, shape (n_prompts, n_models), optional
        Predicted latency in seconds (required by the two latency constraints).
    max_latency_s : float, optional
        Per-assignment cap: options with ``L > max_latency_s`` are not admissible.
    mean_latency_s : float, optional
        Cap on the batch's mean latency (seconds).
    capacity : mapping or array, optional
        Maximum number of prompts per model; a mapping from model name (needs ``model_names``) or
        column index to count, or an array of length ``n_models`` (``inf``/``nan`` = unlimited).
    mask : array-like of bool, shape (n_prompts, n_models), optional
        ``True`` where the model may serve the prompt (e.g. from capability filters).
    model_names : sequence of str, optional
        Column names, used for capacity keys and copied to the result.
    time_limit_s : float or None, default=60.0
        HiGHS time limit; on expiry the best assignment found is returned with status ``"time_limit"``.
    mip_rel_gap : float, default=1e-4
        Relative MIP gap at which HiGHS stops.
    prune : bool, default=True
        Remove dominated options first (exact; restricted to uncapacitated dominators when
        ``capacity`` is given, see the module docstring).

    Returns
    -------
    BatchAssignment

    Raises
    ------
    InfeasibleError
        When no assignment meets the constraints; ``best_value`` holds the best achievable value
        of the violated quantity (min total cost, max mean quality, min mean latency, or max number
        of prompts the capacities can serve) and ``status`` the solver status.
    ValueError
        For malformed inputs (shapes, missing ``budget``/``target``/``L``, unknown mode).
    UnknownModelError
        A capacity key that is not in ``model_names``.
    """
    t0 = time.perf_counter()
    Qm = _as_matrix("Q", Q)
    n, m = Qm.shape
    Cm = _as_matrix("C", C, (n, m))
    Lm = None if L is None else _as_matrix("L", L, (n, m))
    if n == 0:
        raise ValueError("Q has no prompts (0 rows); nothing to assign")
    if model_names is not None and len(model_names) != m:
        raise ValueError(f"model_names has {len(model_names)} names; Q has {m} columns")
    if mode not in ("max_quality", "min_cost"):
        raise ValueError(f"mode must be 'max_quality' or 'min_cost'; got {mode!r}")
    if mode == "max_quality" and budget is None:
        raise ValueError("mode='max_quality' needs budget= (total USD for the batch)")
    if mode == "min_cost" and target is None:
        raise ValueError("mode='min_cost' needs target= (minimum mean quality)")
    if (max_latency_s is not None or mean_latency_s is not None) and Lm is None:
        raise ValueError("max_latency_s / mean_latency_s need L= (predicted latency, seconds)")

    admissible = np.ones((n, m), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if admissible.shape != (n, m):
        raise ValueError(f"mask has shape {admissible.shape}; expected {(n, m)} like Q")
    finite = np.isfinite(Qm) & np.isfinite(Cm)
    if Lm is not None:
        finite &= np.isfinite(Lm)
    admissible = admissible & finite
    if max_latency_s is not None:
        admissible &= Lm <= max_latency_s
    empty = np.flatnonzero(~admissible.any(axis=1))
    if empty.size:
        raise InfeasibleError(
            f"{empty.size} prompt(s) have no admissible model (first rows: {empty[:10].tolist()}); "
            "check mask, max_latency_s and NaN predictions",
            best_value=None,
            status="infeasible",
        )
    cap = _capacity_vector(capacity, m, model_names)

    keep = admissible
    if prune:
        dom_ok = None if cap is None else ~(np.isfinite(cap) & (cap < n))
        keep = prune_dominated(Qm, Cm, admissible, Lm if mean_latency_s is not None else None, dom_ok)
    n_kept = int(keep.sum())
    solved = None
    if cap is None and mean_latency_s is None:
        solved = _solve_single_knapsack(
            Qm, Cm, keep, mode, budget, target, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap
        )
    elif mean_latency_s is None:
        # Dropping the capacities gives a relaxation; when its optimum happens to respect them it
        # is optimal for the capacitated program too (exact), and far cheaper to find.
        relaxed_keep = prune_dominated(Qm, Cm, admissible) if prune else admissible
        try:
            a, st, g, inf = _solve_single_knapsack(
                Qm,
                Cm,
                relaxed_keep,
                mode,
                budget,
                target,
                time_limit_s=time_limit_s,
                mip_rel_gap=mip_rel_gap,
            )
        except InfeasibleError:
            a = None  # the capacitated program is infeasible too; the general path says why
        if a is not None and np.all(np.bincount(a, minlength=m) <= cap):
            solved = (a, st, g, {**inf, "path": "lagrangian (capacity not binding)"})
    if solved is not None:
        assignment, status, gap, info = solved
    else:
        assignment, status, gap, info = _solve_general(
            Qm,
            Cm,
            Lm,
            keep,
            mode,
            budget,
            target,
            mean_latency_s,
            cap,
            time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap,
        )
    rows = np.arange(n)
    qa, ca = Qm[rows, assignment], Cm[rows, assignment]
    return BatchAssignment(
        assignment=assignment,
        models=None if model_names is None else list(model_names),
        total_quality=float(qa.sum()),
        total_cost=float(ca.sum()),
        mean_quality=float(qa.mean()),
        mean_cost=float(ca.mean()),
        status=status,
        mip_gap=gap,
        solve_time_s=time.perf_counter() - t0,
        n_options=n_kept,
        mean_latency_s=None if Lm is None else float(Lm[rows, assignment].mean()),
        extra={**info, "pruned": bool(prune)},
    )


def _solve_exact(
    opts: _Options,
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
        res = _solve(
            opts,
            objective,
            knapsacks=rows_all,
            capacity=cap,
            time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap,
        )
        status = _STATUS_TEXT.get(int(res.status), str(res.status))
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


def _solve_general(Qm, Cm, Lm, keep, mode, budget, target, mean_latency_s, cap, *, time_limit_s, mip_rel_gap):
    """Capacities and/or a mean-latency row.

    LP relaxation with duals (HiGHS through ``linprog``), an incumbent by rounding it, exact
    reduced-cost fixing against that incumbent, then HiGHS's branch and bound on what is left.
    """
    n = Qm.shape[0]
    opts = _options_from_mask(Qm, Cm, Lm, keep)
    knapsacks: list[tuple[np.ndarray, float, float]] = []
    if mean_latency_s is not None:
        knapsacks.append((opts.l, -np.inf, float(mean_latency_s) * n))
    if mode == "max_quality":
        main = (opts.c, -np.inf, float(budget))
        objective = -opts.q
    else:
        main = (opts.q, float(target) * n, np.inf)
        # scale the objective to O(1) per prompt so HiGHS's absolute gap (1e-6) means little
        objective = opts.c / max(float(np.mean(opts.c)), 1e-300)
    rows_all = [*knapsacks, main]
    info: dict[str, Any] = {"path": "highs", "n_variables": len(opts.rows)}

    # 1. LP relaxation with duals. Infeasible relaxation → infeasible program (diagnosed below).
    lp = _lp_relaxation(opts, objective, rows_all, cap)
    if lp is None:
        _raise_infeasible(
            opts,
            mode,
            budget,
            target,
            mean_latency_s,
            cap,
            knapsacks,
            "infeasible",
            "the LP relaxation is infeasible",
            time_limit_s,
        )
    x_lp, z_lp, d, price = lp
    # 2. incumbent by rounding the LP solution; 3. reduced-cost fixing: with any feasible
    # incumbent of value z_inc, an option with z_lp + d_j > z_inc is in no better solution (exact).
    inc = _round_incumbent(opts, x_lp, d, rows_all, cap)
    if inc is not None and mean_latency_s is None and price is not None:
        inc = _improve_general(Qm, Cm, keep, opts, inc, mode, budget, target, cap, price)
    sub = opts
    z_inc = None
    if inc is not None and d is not None:
        z_inc = float(objective @ inc)
        tol = 1e-7 * (abs(z_inc) + opts.n)
        keep_var = (z_lp + np.maximum(d, 0.0) <= z_inc + tol) | (inc > 0.5)
        info["n_variables_after_fixing"] = int(keep_var.sum())
        sel = np.flatnonzero(keep_var)
        sub = _Options(
            rows=opts.rows[sel],
            cols=opts.cols[sel],
            q=opts.q[sel],
            c=opts.c[sel],
            l=None if opts.l is None else opts.l[sel],
            n=opts.n,
            m=opts.m,
        )
        rows_sub = [(coef[sel], lb, ub) for coef, lb, ub in rows_all]
        objective_sub = objective[sel]
        inc_sub = inc[sel]
        # LP bound already certifies the incumbent?
        if z_inc - z_lp <= mip_rel_gap * max(abs(z_inc), 1e-300):
            info["solver_message"] = "rounded LP solution is within mip_rel_gap of the LP bound"
            return (
                _assignment_from_x(sub, inc_sub),
                "optimal",
                float((z_inc - z_lp) / max(abs(z_inc), 1e-300)),
                info,
            )
    else:
        rows_sub, objective_sub, inc_sub = rows_all, objective, None
    x, res, status = _solve_exact(
        sub, objective_sub, rows_sub, cap, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap
    )
    info["solver_message"] = str(res.message)
    if x is None or (inc_sub is not None and float(objective_sub @ x) > float(objective_sub @ inc_sub)):
        if inc_sub is None:
            _raise_infeasible(
                opts, mode, budget, target, mean_latency_s, cap, knapsacks, status, res.message, time_limit_s
            )
        x = inc_sub
        status = "optimal" if status == "optimal" else "time_limit"
    z = float(objective_sub @ x)
    gap = max(0.0, z - z_lp) / max(abs(z), 1e-300)
    hg = getattr(res, "mip_gap", None)
    if hg is not None and np.isfinite(hg):
        gap = min(gap, float(hg))
    return _assignment_from_x(sub, x), status, gap, info


def _lp_relaxation(opts: _Options, objective: np.ndarray, rows_all, cap):
    """LP relaxation via ``linprog(method=_LP_METHOD)``: ``(x, value, reduced_costs or None)``.

    Returns None when the relaxation is infeasible. Reduced costs are ``c − Aᵀy`` from the row
    duals; they are dropped (None) if the dual objective does not reproduce the LP value.
    """
    import scipy.sparse as sp
    from scipy.optimize import linprog

    v = len(opts.rows)
    ones = np.ones(v)
    a_eq = sp.csr_array((ones, (opts.rows, np.arange(v))), shape=(opts.n, v))
    ub_rows, ub_rhs = [], []
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
        objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.ones(opts.n), bounds=(0, 1), method=_LP_METHOD
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


def _improve_general(Qm, Cm, keep, opts, inc, mode, budget, target, cap, price):
    """Run :func:`_improve` on a rounded incumbent, respecting capacities; returns a 0/1 vector."""
    n, m = Qm.shape
    idx, K, Qc, Cc = _compact(keep, Qm, Cm)
    a = np.full(n, -1)
    a[opts.rows[inc > 0.5]] = opts.cols[inc > 0.5]
    j = np.argmax(idx == a[:, None], axis=1)
    capv = np.full(m, np.inf) if cap is None else cap
    room = capv - np.bincount(a, minlength=m)
    if mode == "max_quality":
        j = _improve(Qc, Cc, K, j, j.copy(), float(budget), price, model_of=idx, room=room)
    else:
        # the objective of the general path is cost / mean cost; its price is per quality unit
        lam = price * max(float(np.mean(opts.c)), 1e-300)
        j = _improve(-Cc, -Qc, K, j, j.copy(), -float(target) * n, lam, model_of=idx, room=room)
    chosen = idx[np.arange(n), j]
    pos = np.full((n, m), -1)
    pos[opts.rows, opts.cols] = np.arange(len(opts.rows))
    sel = pos[np.arange(n), chosen]
    if np.any(sel < 0):  # pragma: no cover - compact options are the kept options
        return inc
    out = np.zeros(len(opts.rows))
    out[sel] = 1.0
    return out


def _round_incumbent(opts: _Options, x_lp, d, rows_all, cap) -> np.ndarray | None:
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


# --------------------------------------------------------------------------------------------------
# fast exact path for the plain multiple-choice knapsack (no capacity, no mean-latency row)


def _compact(keep: np.ndarray, *arrays: np.ndarray):
    """Move each row's kept options to the front; returns (col_index, kept_mask, *arrays) n × k."""
    order = np.argsort(~keep, axis=1, kind="stable")
    k = max(1, int(keep.sum(axis=1).max()))
    idx = order[:, :k]
    kc = np.take_along_axis(keep, idx, axis=1)
    return (idx, kc, *(np.take_along_axis(a, idx, axis=1) for a in arrays))


def _choice(Q: np.ndarray, C: np.ndarray, K: np.ndarray, lam: float):
    """Per row: argmax of ``Q − lam·C`` over kept options, ties to the cheaper; and the max score."""
    S = np.where(K, Q - lam * C, -np.inf)
    best = S.max(axis=1)
    tie = S >= (best - 1e-12 * (1.0 + np.abs(best)))[:, None]
    j = np.where(tie, C, np.inf).argmin(axis=1)
    return j, best, S


def _solve_single_knapsack(Qm, Cm, keep, mode, budget, target, *, time_limit_s, mip_rel_gap):
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
    idx, K, Q, C = _compact(keep, Qm, Cm)
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
    j_lo, _, _ = _choice(Q, C, K, lam_lo)
    j_hi, _, _ = _choice(Q, C, K, lam_hi)
    lo_ok = mode == "min_cost"
    if feasible(value(j_lo)) != lo_ok or feasible(value(j_hi)) == lo_ok:  # pragma: no cover
        lam_lo, lam_hi = 1e-300, 1e300
        j_lo, _, _ = _choice(Q, C, K, lam_lo)
        j_hi, _, _ = _choice(Q, C, K, lam_hi)
    for _ in range(200):
        if lam_hi <= lam_lo * (1 + 1e-12):
            break
        mid = float(np.sqrt(lam_lo * lam_hi))
        j_mid, _, _ = _choice(Q, C, K, mid)
        if feasible(value(j_mid)) == lo_ok:
            lam_lo, j_lo = mid, j_mid
        else:
            lam_hi, j_hi = mid, j_mid

    # incumbent
    if mode == "max_quality":
        inc = _improve(Q, C, K, j_hi.copy(), j_lo, B, lam_hi)
        z_inc = float(Q[rows, inc].sum())
        bounds = []
        for lam in (lam_lo, lam_hi):
            _, best, S = _choice(Q, C, K, lam)
            bounds.append((float(best.sum()) + lam * B, lam, best, S))
        ub, lam, best, S = min(bounds, key=lambda t: t[0])
        gap_abs = max(0.0, ub - z_inc)
        delta = best[:, None] - S
    else:
        inc = _improve(-C, -Q, K, j_lo.copy(), j_hi, -T, 1.0 / lam_lo)
        z_inc = float(C[rows, inc].sum())
        bounds = []
        for lam in (lam_lo, lam_hi):
            _, best, S = _choice(Q, C, K, lam)
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
    opts = _Options(
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
    x, res, status = _solve_exact(opts, objective, [main], None, time_limit_s=time_limit_s, mip_rel_gap=rel)
    info["solver_message"] = str(res.message)
    best_assign = inc
    if x is not None:
        cand = inc.copy()
        cand[sub_rows] = _assignment_from_x(opts, x)
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


def _improve(V, W, K, j, j_alt, cap, lam, *, model_of=None, room=None, iters: int = 60, n_cand: int = 4096):
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


def _raise_infeasible(
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
        best = _best_value(opts, "count", capacity=cap, time_limit_s=time_limit_s)
        if best is not None and best < n:
            raise InfeasibleError(
                f"capacities cannot serve all {n} prompts: at most {int(best)} can be assigned "
                f"(capacity {cap.tolist()}); solver status: {status}",
                best_value=best,
                status=status,
            )
    if mean_latency_s is not None:
        best = _best_value(opts, "min_latency", capacity=cap, time_limit_s=time_limit_s)
        if best is not None and best > mean_latency_s:
            raise InfeasibleError(
                f"mean_latency_s={mean_latency_s} is below the lowest achievable mean latency "
                f"{best:.6g} s; solver status: {status}",
                best_value=best,
                status=status,
            )
    if mode == "max_quality":
        best = _best_value(opts, "min_cost", knapsacks=knapsacks, capacity=cap, time_limit_s=time_limit_s)
        raise InfeasibleError(
            f"budget {budget:.6g} USD is below the cheapest feasible assignment "
            f"({'unknown' if best is None else f'{best:.6g}'} USD for {n} prompts); solver status: {status}",
            best_value=best,
            status=status,
        )
    best = _best_value(opts, "max_quality", knapsacks=knapsacks, capacity=cap, time_limit_s=time_limit_s)
    raise InfeasibleError(
        f"target mean quality {target:.6g} is above the best achievable "
        f"{'unknown' if best is None else f'{best:.6g}'} for {n} prompts; solver status: {status}",
        best_value=best,
        status=status,
    )
