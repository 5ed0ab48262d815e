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

Modules
-------
This module holds the public :func:`optimize_batch` and the capacity / mean-latency path;
:mod:`~zerorouter_integrations.optimizer_pruning` the dominance pruning and the LP bounds and rounding,
:mod:`~zerorouter_integrations.optimizer_knapsack` the Lagrangian single-knapsack path, and
:mod:`~zerorouter_integrations.optimizer_milp` the program itself (HiGHS) and infeasibility reports.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from zerorouter_integrations.errors import InfeasibleError, UnknownModelError
from zerorouter_integrations.extras import need
from zerorouter_integrations.optimizer_knapsack import (
    solve_single_knapsack,
)
from zerorouter_integrations.optimizer_milp import (
    SolverOptions,
    assignment_from_x,
    options_from_mask,
    raise_infeasible,
    solve_exact,
)
from zerorouter_integrations.optimizer_pruning import (
    improve_general,
    lp_relaxation,
    prune_dominated,
    round_incumbent,
)

__all__ = ["BatchAssignment", "optimize_batch", "prune_dominated"]


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


# --------------------------------------------------------------------------------------------------
# program building and solving


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
    need("fit", "route_batch's integer program (HiGHS through SciPy)")
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
    if max_latency_s is not None and Lm is not None:  # Lm is given whenever max_latency_s is (checked above)
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
        solved = solve_single_knapsack(
            Qm, Cm, keep, mode, budget, target, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap
        )
    elif mean_latency_s is None:
        # Dropping the capacities gives a relaxation; when its optimum happens to respect them it
        # is optimal for the capacitated program too (exact), and far cheaper to find.
        relaxed_keep = prune_dominated(Qm, Cm, admissible) if prune else admissible
        try:
            a, st, g, inf = solve_single_knapsack(
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
        if a is not None and cap is not None and np.all(np.bincount(a, minlength=m) <= cap):
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


def _solve_general(Qm, Cm, Lm, keep, mode, budget, target, mean_latency_s, cap, *, time_limit_s, mip_rel_gap):
    """Capacities and/or a mean-latency row.

    LP relaxation with duals (HiGHS through ``linprog``), an incumbent by rounding it, exact
    reduced-cost fixing against that incumbent, then HiGHS's branch and bound on what is left.
    """
    n = Qm.shape[0]
    opts = options_from_mask(Qm, Cm, Lm, keep)
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
    lp = lp_relaxation(opts, objective, rows_all, cap)
    if lp is None:
        raise_infeasible(
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
    inc = round_incumbent(opts, x_lp, d, rows_all, cap)
    if inc is not None and mean_latency_s is None and price is not None:
        inc = improve_general(Qm, Cm, keep, opts, inc, mode, budget, target, cap, price)
    sub = opts
    z_inc = None
    if inc is not None and d is not None:
        z_inc = float(objective @ inc)
        tol = 1e-7 * (abs(z_inc) + opts.n)
        keep_var = (z_lp + np.maximum(d, 0.0) <= z_inc + tol) | (inc > 0.5)
        info["n_variables_after_fixing"] = int(keep_var.sum())
        sel = np.flatnonzero(keep_var)
        sub = SolverOptions(
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
                assignment_from_x(sub, inc_sub),
                "optimal",
                float((z_inc - z_lp) / max(abs(z_inc), 1e-300)),
                info,
            )
    else:
        rows_sub, objective_sub, inc_sub = rows_all, objective, None
    x, res, status = solve_exact(
        sub, objective_sub, rows_sub, cap, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap
    )
    info["solver_message"] = str(res.message)
    if x is None or (inc_sub is not None and float(objective_sub @ x) > float(objective_sub @ inc_sub)):
        if inc_sub is None:
            raise_infeasible(
                opts, mode, budget, target, mean_latency_s, cap, knapsacks, status, res.message, time_limit_s
            )
        x = inc_sub
        status = "optimal" if status == "optimal" else "time_limit"
    z = float(objective_sub @ x)
    gap = max(0.0, z - z_lp) / max(abs(z), 1e-300)
    hg = getattr(res, "mip_gap", None)
    if hg is not None and np.isfinite(hg):
        gap = min(gap, float(hg))
    return assignment_from_x(sub, x), status, gap, info
