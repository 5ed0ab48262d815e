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
row per capacitated model. All matrices are :mod:`scipy.sparse` so a 10,000 × 50 batch builds in
milliseconds.

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
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from zerorouter_integrations.errors import InfeasibleError, UnknownModelError, ZeroRouterError

__all__ = ["BatchAssignment", "optimize_batch", "prune_dominated"]

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
        Solver status: ``"optimal"``, ``"time_limit"`` (a feasible, possibly sub-optimal assignment),
        or ``"trivial"`` when no program had to be solved (every prompt had one option left).
    mip_gap : float or None
        Relative MIP gap reported by HiGHS (``None`` when no program was solved).
    solve_time_s : float
        Wall time of the whole call (pruning, building and solving), in seconds.
    n_options : int
        Number of (prompt, model) options kept after masking and pruning (binary variables).
    mean_latency_s : float or None
        Mean latency of the assignment when ``L`` was given.
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
        strict = (c[:, None, :] < c[:, :, None]) | (q[:, None, :] > q[:, :, None]) | (
            l[:, None, :] < l[:, :, None]
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
    mip_rel_gap: float = 1e-6,
    integral: bool = True,
):
    """Minimise ``objective @ x`` over the kept options; returns scipy's ``OptimizeResult``."""
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
    options: dict[str, Any] = {"disp": False, "mip_rel_gap": float(mip_rel_gap), "presolve": True}
    if time_limit_s is not None:
        options["time_limit"] = float(time_limit_s)
    return milp(
        objective,
        integrality=ones if integral else np.zeros(v),
        bounds=Bounds(0.0, 1.0),
        constraints=cons,
        options=options,
    )


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
        res = _solve(opts, -np.ones(len(opts.rows)), assign_eq=False, capacity=capacity,
                     time_limit_s=time_limit_s)
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
    mip_rel_gap: float = 1e-6,
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
    mip_rel_gap : float, default=1e-6
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
    opts = _options_from_mask(Qm, Cm, Lm, keep)

    knapsacks: list[tuple[np.ndarray, float, float]] = []
    if mean_latency_s is not None:
        knapsacks.append((opts.l, -np.inf, float(mean_latency_s) * n))
    if mode == "max_quality":
        main = (opts.c, -np.inf, float(budget))
        objective = -opts.q
    else:
        main = (opts.q, float(target) * n, np.inf)
        objective = opts.c

    # HiGHS accepts rows violated by its feasibility tolerance (~1e-6 after scaling); the caller's
    # budget / target / latency are hard limits, so a hair's violation is repaired by tightening the
    # violated row by that amount and solving again (at most a few rounds).
    rows_all = [*knapsacks, main]
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
            _raise_infeasible(opts, mode, budget, target, mean_latency_s, cap, knapsacks, status,
                              res.message, time_limit_s)
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
            break
    else:  # pragma: no cover - would need a pathological instance
        raise ZeroRouterError("could not obtain an assignment that meets the constraints exactly")
    assignment = _assignment_from_x(opts, x)
    rows = np.arange(n)
    qa, ca = Qm[rows, assignment], Cm[rows, assignment]
    gap = getattr(res, "mip_gap", None)
    return BatchAssignment(
        assignment=assignment,
        models=None if model_names is None else list(model_names),
        total_quality=float(qa.sum()),
        total_cost=float(ca.sum()),
        mean_quality=float(qa.mean()),
        mean_cost=float(ca.mean()),
        status=status,
        mip_gap=None if gap is None else float(gap),
        solve_time_s=time.perf_counter() - t0,
        n_options=int(len(opts.rows)),
        mean_latency_s=None if Lm is None else float(Lm[rows, assignment].mean()),
        extra={"solver_message": str(res.message), "pruned": bool(prune)},
    )


def _raise_infeasible(opts, mode, budget, target, mean_latency_s, cap, knapsacks, status, message,
                      time_limit_s):
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
        best = _best_value(opts, "min_cost", knapsacks=knapsacks, capacity=cap,
                           time_limit_s=time_limit_s)
        raise InfeasibleError(
            f"budget {budget:.6g} USD is below the cheapest feasible assignment "
            f"({'unknown' if best is None else f'{best:.6g}'} USD for {n} prompts); solver status: {status}",
            best_value=best,
            status=status,
        )
    best = _best_value(opts, "max_quality", knapsacks=knapsacks, capacity=cap,
                       time_limit_s=time_limit_s)
    raise InfeasibleError(
        f"target mean quality {target:.6g} is above the best achievable "
        f"{'unknown' if best is None else f'{best:.6g}'} for {n} prompts; solver status: {status}",
        best_value=best,
        status=status,
    )
