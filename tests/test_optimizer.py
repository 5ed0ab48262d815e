"""The batch integer program against brute force on small instances, and its error paths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from zerorouter_integrations.errors import InfeasibleError, UnknownModelError
from zerorouter_integrations.optimizer import BatchAssignment, optimize_batch, prune_dominated

N, M = 6, 3
ALL = np.array(list(itertools.product(range(M), repeat=N)))  # every assignment of 6 prompts to 3 models


def _instance(seed: int, *, n: int = N, m: int = M, ties: bool = False):
    rng = np.random.default_rng(seed)
    price = 10 ** rng.uniform(-4, -1, m)
    Q = np.clip(rng.uniform(0.1, 0.9, (n, m)) + 0.3 * (np.log10(price) + 2.5)[None, :] / 1.5, 0, 1)
    C = price[None, :] * rng.lognormal(0, 0.3, (n, m))
    L = rng.uniform(0.2, 5.0, (n, m))
    if ties:  # coarse grids make equal costs / qualities common (dominance tie rules)
        Q = np.round(Q * 4) / 4
        C = np.round(C / C.max() * 3) / 3 * 1e-3 + 1e-4
        L = np.round(L)
    return Q, C, L


def _brute(Q, C, L=None, *, capacity=None, mean_latency_s=None, mask=None):
    """Totals (quality, cost, latency) of every feasible assignment."""
    rows = np.arange(Q.shape[0])
    ok = np.ones(len(ALL), dtype=bool)
    if mask is not None:
        ok &= mask[rows, ALL].all(axis=1)
    if capacity is not None:
        counts = np.stack([(ALL == j).sum(axis=1) for j in range(Q.shape[1])], axis=1)
        ok &= (counts <= np.asarray(capacity)[None, :]).all(axis=1)
    tq = Q[rows, ALL].sum(axis=1)
    tc = C[rows, ALL].sum(axis=1)
    tl = None if L is None else L[rows, ALL].sum(axis=1)
    if mean_latency_s is not None:
        ok &= tl <= mean_latency_s * Q.shape[0] + 1e-12
    return tq, tc, tl, ok


def _check_result(res: BatchAssignment, Q, C):
    rows = np.arange(Q.shape[0])
    assert res.assignment.shape == (Q.shape[0],)
    assert res.total_quality == pytest.approx(Q[rows, res.assignment].sum())
    assert res.total_cost == pytest.approx(C[rows, res.assignment].sum())
    assert res.mean_quality == pytest.approx(res.total_quality / Q.shape[0])
    assert res.status == "optimal"


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("with_capacity", [False, True])
def test_max_quality_equals_brute_force(seed, with_capacity):
    Q, C, _ = _instance(seed, ties=seed % 4 == 0)
    rng = np.random.default_rng(1000 + seed)
    cap = rng.integers(2, N + 1, M) if with_capacity else None
    tq, tc, _, ok = _brute(Q, C, capacity=cap)
    lo, hi = tc[ok].min(), tc[ok].max()
    budget = float(lo + rng.uniform(0.05, 0.9) * (hi - lo))
    best = tq[ok & (tc <= budget)].max()
    res = optimize_batch(Q, C, mode="max_quality", budget=budget, capacity=cap, mip_rel_gap=1e-9)
    _check_result(res, Q, C)
    assert res.total_cost <= budget * (1 + 1e-12)
    assert res.total_quality == pytest.approx(best, rel=1e-7, abs=1e-9)
    if cap is not None:
        assert np.all(np.bincount(res.assignment, minlength=M) <= cap)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("with_capacity", [False, True])
def test_min_cost_equals_brute_force(seed, with_capacity):
    Q, C, _ = _instance(seed, ties=seed % 4 == 1)
    rng = np.random.default_rng(2000 + seed)
    cap = rng.integers(2, N + 1, M) if with_capacity else None
    tq, tc, _, ok = _brute(Q, C, capacity=cap)
    lo, hi = tq[ok].min() / N, tq[ok].max() / N
    target = float(lo + rng.uniform(0.05, 0.95) * (hi - lo))
    best = tc[ok & (tq >= target * N)].min()
    res = optimize_batch(Q, C, mode="min_cost", target=target, capacity=cap, mip_rel_gap=1e-9)
    _check_result(res, Q, C)
    assert res.mean_quality >= target - 1e-12
    assert res.total_cost == pytest.approx(best, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("mode", ["max_quality", "min_cost"])
def test_latency_constraints_equal_brute_force(seed, mode):
    Q, C, L = _instance(seed)
    rng = np.random.default_rng(3000 + seed)
    max_lat = max(float(np.quantile(L, 0.8)), float(L.min(axis=1).max()))
    mask = L <= max_lat
    _, _, tl, ok0 = _brute(Q, C, L, mask=mask)
    mean_lat = float((tl[ok0].min() + rng.uniform(0.2, 0.8) * (tl[ok0].max() - tl[ok0].min())) / N)
    tq, tc, tl, ok = _brute(Q, C, L, mask=mask, mean_latency_s=mean_lat)
    kw = dict(L=L, max_latency_s=max_lat, mean_latency_s=mean_lat, mip_rel_gap=1e-9)
    if mode == "max_quality":
        budget = float(np.median(tc[ok]))
        best = tq[ok & (tc <= budget)].max()
        res = optimize_batch(Q, C, mode=mode, budget=budget, **kw)
        assert res.total_cost <= budget * (1 + 1e-12)
        assert res.total_quality == pytest.approx(best, rel=1e-7)
    else:
        target = float(np.median(tq[ok]) / N)
        best = tc[ok & (tq >= target * N)].min()
        res = optimize_batch(Q, C, mode=mode, target=target, **kw)
        assert res.mean_quality >= target - 1e-12
        assert res.total_cost == pytest.approx(best, rel=1e-7)
    assert np.all(L[np.arange(N), res.assignment] <= max_lat)
    assert res.mean_latency_s <= mean_lat + 1e-12


@pytest.mark.parametrize("seed", range(30))
def test_pruning_keeps_optimality(seed):
    rng = np.random.default_rng(seed)
    n, m = 40, 8
    Q, C, _L = _instance(seed, n=n, m=m, ties=seed % 2 == 0)
    cap = rng.integers(3, 20, m) if seed % 3 == 0 else None
    budget = float(C.min(axis=1).sum() + rng.uniform(0.1, 0.8) * (C.max(axis=1) - C.min(axis=1)).sum())
    a = optimize_batch(Q, C, mode="max_quality", budget=budget, capacity=cap, mip_rel_gap=1e-9)
    b = optimize_batch(Q, C, mode="max_quality", budget=budget, capacity=cap, mip_rel_gap=1e-9, prune=False)
    assert a.total_quality == pytest.approx(b.total_quality, rel=1e-8)
    assert a.n_options <= b.n_options
    target = float(Q.min(axis=1).mean() + 0.6 * (Q.max(axis=1).mean() - Q.min(axis=1).mean()))
    a = optimize_batch(Q, C, mode="min_cost", target=target, capacity=cap, mip_rel_gap=1e-9)
    b = optimize_batch(Q, C, mode="min_cost", target=target, capacity=cap, mip_rel_gap=1e-9, prune=False)
    assert a.total_cost == pytest.approx(b.total_cost, rel=1e-8)


@pytest.mark.parametrize("seed", range(12))
def test_lagrangian_path_equals_plain_highs(seed):
    """Without side rows the fast path (Lagrangian bound, greedy incumbent, reduced-cost fixing)
    is used; a mean-latency row that cannot bind forces the LP + HiGHS path. Both must agree."""
    rng = np.random.default_rng(seed)
    n, m = 150, 10
    Q, C, _ = _instance(seed, n=n, m=m, ties=seed % 3 == 0)
    loose = {"L": np.zeros((n, m)), "mean_latency_s": 1.0}
    budget = float(C.min(axis=1).sum() + rng.uniform(0.05, 0.9) * (C.max(axis=1) - C.min(axis=1)).sum())
    a = optimize_batch(Q, C, mode="max_quality", budget=budget, mip_rel_gap=1e-9)
    b = optimize_batch(Q, C, mode="max_quality", budget=budget, **loose, mip_rel_gap=1e-9)
    assert a.extra["path"] == "lagrangian" and b.extra["path"] == "highs"
    assert a.total_quality == pytest.approx(b.total_quality, rel=1e-8)
    assert a.total_cost <= budget * (1 + 1e-12)
    lo, hi = Q[np.arange(n), C.argmin(axis=1)].mean(), Q.max(axis=1).mean()
    target = float(lo + rng.uniform(0.05, 0.95) * (hi - lo))
    a = optimize_batch(Q, C, mode="min_cost", target=target, mip_rel_gap=1e-9)
    b = optimize_batch(Q, C, mode="min_cost", target=target, **loose, mip_rel_gap=1e-9)
    assert a.total_cost == pytest.approx(b.total_cost, rel=1e-8)
    assert a.mean_quality >= target - 1e-12


def test_prune_dominated_rules():
    Q = np.array([[0.5, 0.6, 0.6, 0.4, 0.9]])
    C = np.array([[1.0, 1.0, 1.0, 2.0, 3.0]])
    keep = prune_dominated(Q, C, np.ones_like(Q, dtype=bool))
    # 0 is dominated by 1 (same cost, better); 2 duplicates 1 (first kept); 3 costs more, worse
    assert keep.tolist() == [[False, True, False, False, True]]
    # with latency as a third criterion, a slower-but-cheaper option survives
    L = np.array([[1.0, 5.0, 5.0, 0.5, 9.0]])
    keep = prune_dominated(Q, C, np.ones_like(Q, dtype=bool), L)
    assert keep.tolist() == [[True, True, False, True, True]]
    # only uncapacitated models may dominate
    keep = prune_dominated(Q, C, np.ones_like(Q, dtype=bool), dominator_ok=np.array([1, 0, 0, 1, 1], bool))
    assert keep.tolist() == [[True, True, True, False, True]]


@pytest.mark.parametrize("seed", range(10))
def test_infeasible_budget_reports_min_cost(seed):
    Q, C, _ = _instance(seed)
    _, tc, _, ok = _brute(Q, C)
    cheapest = tc.min()
    with pytest.raises(InfeasibleError) as ei:
        optimize_batch(Q, C, mode="max_quality", budget=cheapest * 0.99)
    assert ei.value.best_value == pytest.approx(cheapest)
    assert "budget" in str(ei.value)
    # with capacities the cheapest feasible assignment is dearer
    cap = np.array([2, 2, 2])
    _, tc, _, ok = _brute(Q, C, capacity=cap)
    with pytest.raises(InfeasibleError) as ei:
        optimize_batch(Q, C, mode="max_quality", budget=tc[ok].min() * 0.999, capacity=cap)
    assert ei.value.best_value == pytest.approx(tc[ok].min(), rel=1e-7)
    assert ei.value.status == "infeasible"


@pytest.mark.parametrize("seed", range(10))
def test_infeasible_target_reports_max_quality(seed):
    Q, C, _ = _instance(seed)
    best = Q.max(axis=1).mean()
    with pytest.raises(InfeasibleError) as ei:
        optimize_batch(Q, C, mode="min_cost", target=best + 0.01)
    assert ei.value.best_value == pytest.approx(best)
    cap = np.array([1, 2, 3])
    tq, _, _, ok = _brute(Q, C, capacity=cap)
    with pytest.raises(InfeasibleError) as ei:
        optimize_batch(Q, C, mode="min_cost", target=tq[ok].max() / N + 1e-3, capacity=cap)
    assert ei.value.best_value == pytest.approx(tq[ok].max() / N, rel=1e-7)


def test_infeasible_capacity_and_latency():
    Q, C, L = _instance(0)
    with pytest.raises(InfeasibleError) as ei:
        optimize_batch(Q, C, mode="max_quality", budget=1.0, capacity={0: 1, 1: 2, 2: 1})
    assert ei.value.best_value == 4
    assert "at most 4" in str(ei.value)
    with pytest.raises(InfeasibleError) as ei:
        optimize_batch(Q, C, mode="max_quality", budget=1.0, L=L, mean_latency_s=0.01)
    assert ei.value.best_value == pytest.approx(L.min(axis=1).mean())
    mask = np.ones_like(Q, dtype=bool)
    mask[2] = False
    with pytest.raises(InfeasibleError, match="no admissible model"):
        optimize_batch(Q, C, mode="max_quality", budget=1.0, mask=mask)


def test_names_capacity_by_name_and_validation():
    Q, C, _ = _instance(3)
    names = ["small", "medium", "large"]
    res = optimize_batch(Q, C, mode="max_quality", budget=1e3, capacity={"large": 2}, model_names=names)
    assert res.models == names
    assert res.counts().get("large", 0) <= 2
    assert len(res.chosen_models) == N
    with pytest.raises(UnknownModelError):
        optimize_batch(Q, C, mode="max_quality", budget=1.0, capacity={"huge": 1}, model_names=names)
    with pytest.raises(ValueError, match="budget"):
        optimize_batch(Q, C, mode="max_quality")
    with pytest.raises(ValueError, match="target"):
        optimize_batch(Q, C, mode="min_cost")
    with pytest.raises(ValueError, match="mode"):
        optimize_batch(Q, C, mode="fastest", budget=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        optimize_batch(Q, C[:, :2], mode="max_quality", budget=1.0)
    with pytest.raises(ValueError, match="L="):
        optimize_batch(Q, C, mode="max_quality", budget=1.0, max_latency_s=1.0)


def test_non_binding_constraints_give_the_obvious_answer():
    Q, C, _ = _instance(5)
    rows = np.arange(N)
    res = optimize_batch(Q, C, mode="max_quality", budget=1e6)
    assert res.total_quality == pytest.approx(Q.max(axis=1).sum())
    res = optimize_batch(Q, C, mode="min_cost", target=0.0)
    assert res.total_cost == pytest.approx(C.min(axis=1).sum())
    assert np.all(C[rows, res.assignment] == C.min(axis=1))


def test_realistic_batch_meets_budget_and_target():
    rng = np.random.default_rng(7)
    n, m = 2000, 20
    logp = rng.uniform(-6, -3, m)
    Q = 1 / (
        1 + np.exp(-(rng.normal(0, 1, (n, 1)) + 1.2 * (logp + 4.5)[None, :] + rng.normal(0, 0.5, (n, m))))
    )
    C = 10 ** logp[None, :] * rng.lognormal(6, 0.5, (n, 1))
    budget = 0.3 * C[np.arange(n), Q.argmax(axis=1)].sum()
    res = optimize_batch(Q, C, mode="max_quality", budget=budget, mip_rel_gap=1e-6)
    assert res.total_cost <= budget * (1 + 1e-12)
    assert res.mip_gap is not None and res.mip_gap <= 1e-6
    res_b = optimize_batch(Q, C, mode="min_cost", target=res.mean_quality, mip_rel_gap=1e-6)
    assert res_b.mean_quality >= res.mean_quality - 1e-12
    assert res_b.total_cost <= res.total_cost * (1 + 1e-5)
