"""Per-query policy: choice, ranking, λ calibration to budgets and quality targets."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.errors import (
    InfeasibleError,
    NoAdmissibleModelError,
    NotFittedError,
    UnknownModelError,
)
from zerorouter_integrations.policy import Policy, choose_rows, prompt_uniform

DATA = find_data_dir(table="routerbench_subset")


def synthetic(n: int = 500, m: int = 10, seed: int = 0):
    """Costs spanning three orders of magnitude, quality rising with price, prompt difficulty."""
    rng = np.random.default_rng(seed)
    logp = np.sort(rng.uniform(-6.5, -3.5, m))
    ability = 1.5 * (logp - logp.mean()) + rng.normal(0, 0.3, m)
    difficulty = rng.normal(0, 1.2, (n, 1))
    Q = 1 / (1 + np.exp(-(ability[None, :] - difficulty + rng.normal(0, 0.6, (n, m)))))
    tokens = rng.lognormal(6, 0.7, (n, 1))
    C = 10 ** logp[None, :] * tokens * rng.lognormal(0, 0.1, (n, m))
    names = [f"model-{j}" for j in range(m)]
    return Q, C, names


def routerbench(n: int = 500, seed: int = 0):
    """A realistic instance: RouterBench's recorded per-call USD cost and a smoothed quality
    prediction (half the observed 0/1 score, half the model's mean on that task)."""
    pd = pytest.importorskip("pandas")
    if not (DATA / "outcomes.parquet").exists():
        pytest.skip("routerbench_subset data not available")
    o = pd.read_parquet(DATA / "outcomes.parquet", columns=["prompt_id", "model", "score", "cost_usd"])
    o["task"] = o["prompt_id"].str.split(":").str[0]
    o["task_mean"] = o.groupby(["task", "model"])["score"].transform("mean")
    o["q"] = 0.5 * o["score"] + 0.5 * o["task_mean"]
    q = o.pivot(index="prompt_id", columns="model", values="q").dropna()
    c = o.pivot(index="prompt_id", columns="model", values="cost_usd").loc[q.index]
    keep = c.notna().all(axis=1)
    q, c = q[keep], c[keep]
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(q), size=min(n, len(q)), replace=False)
    return q.to_numpy()[rows], c.to_numpy()[rows], list(q.columns)


# ------------------------------------------------------------------ choice and ranking


def test_choose_and_rank_basic():
    Q = np.array([[0.90, 0.60, 0.85], [0.80, 0.79, 0.10]])
    C = np.array([[1e-2, 1e-4, 1e-3], [1e-2, 1e-4, 1e-5]])
    p = Policy(lam=10.0)
    assert p.choose(Q, C).tolist() == [2, 1]  # 0.85-0.01 > 0.9-0.1 ; 0.79-0.001 > 0.8-0.1
    assert Policy(lam=0.0).choose(Q, C).tolist() == [0, 0]
    assert p.rank(Q[0], C[0]).tolist() == [2, 0, 1]
    mask = np.array([[True, True, False], [True, False, True]])
    assert p.choose(Q, C, mask=mask).tolist() == [0, 0]
    assert p.rank(Q[0], C[0], mask=mask[0]).tolist() == [0, 1]
    np.testing.assert_allclose(p.scores(Q, C), Q - 10.0 * C)


def test_ties_go_to_the_cheaper_model():
    Q = np.array([[0.5, 0.5, 0.5]])
    C = np.array([[3e-3, 1e-3, 2e-3]])
    assert Policy(lam=0.0).choose(Q, C).tolist() == [1]
    assert Policy(lam=0.0).rank(Q[0], C[0]).tolist() == [1, 2, 0]
    # equal score and equal cost: lower index
    assert Policy(lam=0.0).rank([0.5, 0.5], [1e-3, 1e-3]).tolist() == [0, 1]


def test_latency_term_and_units():
    Q = np.array([[0.9, 0.88]])
    C = np.array([[1e-3, 1e-3]])
    L = np.array([[10.0, 1.0]])
    p = Policy(lam=100.0, mu=0.01)
    np.testing.assert_allclose(p.scores(Q, C, L), Q - 100 * C - 0.01 * L)
    assert p.choose(Q, C, L).tolist() == [1]
    assert p.rank(Q[0], C[0], L[0]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="L="):
        p.choose(Q, C)


def test_no_admissible_model_raises():
    Q, C, _ = synthetic(5, 3)
    mask = np.ones_like(Q, dtype=bool)
    mask[3] = False
    with pytest.raises(NoAdmissibleModelError):
        Policy(lam=1.0).choose(Q, C, mask=mask)
    with pytest.raises(NoAdmissibleModelError):
        Policy(lam=1.0).rank(Q[3], C[3], mask=mask[3])


def test_choose_rows_matches_rank_for_every_prompt():
    Q, C, _ = synthetic(200, 8, seed=3)
    p = Policy(lam=2000.0)
    chosen = p.choose(Q, C)
    assert all(p.rank(Q[i], C[i])[0] == chosen[i] for i in range(len(Q)))
    assert np.array_equal(chosen, choose_rows(Q, C, np.ones_like(Q, dtype=bool), 2000.0))


# ------------------------------------------------------------------ calibration


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("frac", [0.05, 0.2, 0.5, 0.8, 0.95])
def test_budget_calibration_within_one_percent(seed, frac):
    Q, C, names = synthetic(500, 10, seed)
    rows = np.arange(len(Q))
    lo, hi = C.min(axis=1).mean(), C[rows, Q.argmax(axis=1)].mean()
    budget_1k = 1000 * (lo + frac * (hi - lo))
    p = Policy.for_budget(budget_1k).fit(Q, C, model_names=names)
    cal = p.calibration_
    assert cal["binding"]
    assert cal["relative_error"] <= 0.01
    assert cal["cost_usd_per_1k"] <= budget_1k * (1 + 1e-9)  # feasible side
    # choose() on the calibration set reproduces the calibration exactly
    chosen = p.choose(Q, C)
    assert C[rows, chosen].mean() * 1000 == pytest.approx(cal["cost_usd_per_1k"], rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("frac", [0.05, 0.2, 0.5, 0.8, 0.95])
def test_quality_calibration_within_one_percent(seed, frac):
    Q, C, _names = synthetic(500, 10, seed)
    rows = np.arange(len(Q))
    lo, hi = Q[rows, C.argmin(axis=1)].mean(), Q.max(axis=1).mean()
    target = lo + frac * (hi - lo)
    p = Policy.for_quality_target(target).fit(Q, C)
    cal = p.calibration_
    assert cal["relative_error"] <= 0.01
    assert cal["mean_quality"] >= target * (1 - 1e-9)
    assert Q[rows, p.choose(Q, C)].mean() == pytest.approx(cal["mean_quality"], rel=1e-12)


@pytest.mark.parametrize("fraction", [0.8, 0.9, 0.95, 0.99])
def test_reference_fraction_target(fraction):
    Q, C, names = synthetic(500, 10, seed=11)
    ref = names[-1]
    p = Policy.for_quality_target(fraction, reference=ref).fit(Q, C, model_names=names)
    cal = p.calibration_
    target = fraction * Q[:, -1].mean()
    assert cal["target"] == pytest.approx(target)
    assert abs(cal["mean_quality"] - target) <= 0.01 * target
    assert cal["reference"] == ref
    assert cal["reference_mean_cost_usd"] == pytest.approx(C[:, -1].mean())
    assert 0 < cal["saving_fraction"] < 1


@pytest.mark.parametrize("seed", range(3))
def test_calibration_on_realistic_routerbench_costs(seed):
    Q, C, names = routerbench(500, seed)
    rows = np.arange(len(Q))
    spend = C[rows, Q.argmax(axis=1)].mean()
    for frac in (0.1, 0.3, 0.6):
        budget_1k = 1000 * (C.min(axis=1).mean() + frac * (spend - C.min(axis=1).mean()))
        p = Policy.for_budget(budget_1k).fit(Q, C, model_names=names)
        assert p.calibration_["relative_error"] <= 0.01
    p = Policy.for_quality_target(0.95, reference="gpt-4-1106-preview").fit(Q, C, model_names=names)
    assert p.calibration_["relative_error"] <= 0.01
    assert p.calibration_["saving_fraction"] > 0


def test_calibration_with_latency_price_and_mask():
    Q, C, _names = synthetic(600, 10, seed=5)
    rng = np.random.default_rng(0)
    L = rng.uniform(0.3, 8.0, Q.shape)
    mask = rng.random(Q.shape) > 0.2
    mask[np.arange(len(Q)), C.argmin(axis=1)] = True
    p = Policy(budget_usd_per_1k=1000 * np.median(C), mu=0.005).fit(Q, C, L, mask=mask)
    assert p.calibration_["relative_error"] <= 0.01
    chosen = p.choose(Q, C, L, mask=mask)
    assert mask[np.arange(len(Q)), chosen].all()


def test_keys_make_the_mix_follow_prompt_hashes():
    Q, C, _ = synthetic(500, 10, seed=2)
    keys = [f"prompt-{i}" for i in range(len(Q))]
    rows = np.arange(len(Q))
    target = 0.5 * (Q[rows, C.argmin(axis=1)].mean() + Q.max(axis=1).mean())
    p = Policy(quality_target=target).fit(Q, C, keys=keys)
    chosen = p.choose(Q, C, keys=keys)
    assert Q[rows, chosen].mean() == pytest.approx(p.calibration_["mean_quality"], rel=1e-12)
    assert p.calibration_["relative_error"] <= 0.01
    # one prompt at a time with its key gives the same choice as the batch
    assert all(p.rank(Q[i], C[i], key=keys[i])[0] == chosen[i] for i in range(0, 500, 7))
    assert 0.0 <= prompt_uniform("x") < 1.0 and prompt_uniform("x") == prompt_uniform("x")


def test_rank_without_key_is_seeded():
    Q, C, _ = synthetic(500, 10, seed=4)
    rows = np.arange(len(Q))
    target = 0.4 * Q[rows, C.argmin(axis=1)].mean() + 0.6 * Q.max(axis=1).mean()
    a = Policy(quality_target=target, random_state=7).fit(Q, C)
    b = pickle.loads(pickle.dumps(a))
    ra = [a.rank(Q[i], C[i])[0] for i in range(100)]
    rb = [b.rank(Q[i], C[i])[0] for i in range(100)]
    assert ra == rb


def _mixed_policy():
    """A synthetic calibration whose quality target falls between two prices (both sides of the mix used)."""
    Q, C, _ = synthetic(400, 8, seed=5)
    rows = np.arange(len(Q))
    target = 0.5 * Q[rows, C.argmin(axis=1)].mean() + 0.5 * Q.max(axis=1).mean()
    p = Policy(quality_target=target).fit(Q, C)
    assert p.lam_alt_ is not None and 0 < p.mix_ < 1
    return Q, C, p


def test_keyless_rank_is_a_function_of_its_inputs_and_scores_follow_the_key():
    """No draw per call: the same inputs take the same side of the mix; keyed scores match the ranking."""
    Q, C, p = _mixed_policy()
    for i in range(40):
        assert len({tuple(p.rank(Q[i], C[i]).tolist()) for _ in range(5)}) == 1
    keys = [f"request-{i}" for i in range(len(Q))]
    sides = {p.lam_for(k) for k in keys}
    assert sides == {p.lam_, p.lam_alt_}  # both sides of the mix occur
    S = p.scores(Q, C, keys=keys)
    lam = np.array([p.lam_for(k) for k in keys])
    np.testing.assert_allclose(S, Q - lam[:, None] * C)
    for i in range(0, 400, 9):
        assert p.rank(Q[i], C[i], key=keys[i])[0] == int(np.argmax(S[i]))
    np.testing.assert_allclose(p.scores(Q, C), Q - p.lam_ * C)  # no keys: the upper end, as before
    with pytest.raises(ValueError, match="keys has 3 entries"):
        p.scores(Q, C, keys=keys[:3])


def test_choice_probabilities_are_the_two_sides_of_the_mix():
    """Propensities: 1 − mix on the upper price's choice, mix on the lower's, summing to 1 per prompt."""
    Q, C, p = _mixed_policy()
    rows = np.arange(len(Q))
    P = p.choice_probabilities(Q, C)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    hi = choose_rows(Q, C, np.ones(Q.shape, bool), p.lam_)
    lo = choose_rows(Q, C, np.ones(Q.shape, bool), p.lam_alt_)
    differ = hi != lo
    assert differ.any() and (~differ).any()
    np.testing.assert_allclose(P[rows, hi][differ], 1 - p.mix_)
    np.testing.assert_allclose(P[rows, lo][differ], p.mix_)
    np.testing.assert_allclose(P[rows, hi][~differ], 1.0)
    keyed = p.choose(Q, C, keys=[f"k{i}" for i in rows])  # whichever side a key takes has its probability
    assert np.all(P[rows, keyed] > 0)
    plain = Policy(lam=float(p.lam_)).choice_probabilities(Q, C)
    np.testing.assert_array_equal(plain[rows, hi], 1.0)
    with pytest.raises(ValueError, match="got 3 model columns"):
        p.choice_probabilities(Q[:, :3], C[:, :3])


def test_prompt_uniform_takes_every_text():
    """UTF-8 texts hash as before; a lone surrogate hashes as its code unit instead of raising."""
    import hashlib

    h = hashlib.blake2b(b"What is 17 * 23?", digest_size=8).digest()
    assert prompt_uniform("What is 17 * 23?") == int.from_bytes(h, "big") / 2.0**64
    u = prompt_uniform("lone \ud800")
    assert 0.0 <= u < 1.0 and u == prompt_uniform("lone \ud800") != prompt_uniform("lone \ud801")


def test_monotone_in_budget():
    Q, C, _ = synthetic(400, 8, seed=9)
    budgets = 1000 * np.quantile(C, [0.2, 0.4, 0.6, 0.8])
    qual = [Policy.for_budget(b).fit(Q, C).calibration_["mean_quality"] for b in budgets]
    assert qual == sorted(qual)


def test_non_binding_targets():
    Q, C, _ = synthetic(300, 6, seed=1)
    p = Policy.for_budget(1e9).fit(Q, C)
    assert p.lam_ == 0.0 and not p.calibration_["binding"]
    assert np.array_equal(p.choose(Q, C), Q.argmax(axis=1))
    p = Policy.for_quality_target(0.0).fit(Q, C)
    assert not p.calibration_["binding"]
    assert np.array_equal(p.choose(Q, C), C.argmin(axis=1))


def test_infeasible_targets_raise_with_best_value():
    Q, C, _ = synthetic(300, 6, seed=1)
    cheapest_1k = 1000 * C.min(axis=1).mean()
    with pytest.raises(InfeasibleError) as ei:
        Policy.for_budget(0.5 * cheapest_1k).fit(Q, C)
    assert ei.value.best_value == pytest.approx(cheapest_1k)
    best_q = Q.max(axis=1).mean()
    with pytest.raises(InfeasibleError) as ei:
        Policy.for_quality_target(best_q + 0.01).fit(Q, C)
    assert ei.value.best_value == pytest.approx(best_q)
    assert "above the best achievable" in str(ei.value)


def test_tiny_calibration_set_warns():
    Q, C, _ = synthetic(8, 4, seed=0)
    rows = np.arange(len(Q))
    target = 0.5 * (Q[rows, C.argmin(axis=1)].mean() + Q.max(axis=1).mean())
    errs = []
    for t in np.linspace(target * 0.9, target * 1.1, 9):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            p = Policy.for_quality_target(t).fit(Q, C)
        errs.append((p.calibration_["relative_error"], len(w)))
    # a warning is issued exactly when the achieved value is more than 1 % off
    assert all((e > 0.01) == (n > 0) for e, n in errs)


@pytest.mark.filterwarnings("ignore:calibration reached")
def test_parameter_validation_and_sklearn_conventions():
    Q, C, names = synthetic(50, 4)
    with pytest.raises(ValueError, match="exactly one"):
        Policy(lam=1.0, budget_usd_per_1k=1.0).fit(Q, C)
    with pytest.raises(ValueError, match="exactly one"):
        Policy().fit(Q, C)
    with pytest.raises(ValueError, match="reference="):
        Policy(reference_fraction=0.9).fit(Q, C)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        Policy.for_quality_target(1.5, reference="model-1")
    with pytest.raises(UnknownModelError):
        Policy.for_quality_target(0.9, reference="nope").fit(Q, C, model_names=names)
    with pytest.raises(NotFittedError):
        Policy.for_budget(1.0).choose(Q, C)
    p = Policy.for_budget(2.0, mu=0.1)
    assert p.get_params()["budget_usd_per_1k"] == 2.0
    assert repr(p) == "Policy(mu=0.1, budget_usd_per_1k=2.0)"
    assert not hasattr(p, "lam_")  # constructor stores parameters only
    p.set_params(mu=0.0)
    assert p.mu == 0.0
    with pytest.raises(ValueError, match="invalid parameter"):
        p.set_params(gamma=1)
    fitted = p.fit(Q, C)
    assert fitted is p
    clone = pickle.loads(pickle.dumps(p))
    assert np.array_equal(clone.choose(Q, C), p.choose(Q, C))
    with pytest.raises(ValueError, match="fitted on 4"):
        p.choose(Q[:, :3], C[:, :3])


def test_unmasked_fast_path_matches_the_masked_path_and_keeps_the_errors():
    """``choose`` without a mask takes a lean path; it must choose exactly as the general one."""
    Q, C, _ = synthetic(400, 12, seed=7)
    rows = np.arange(len(Q))
    target = 0.5 * (Q[rows, C.argmin(axis=1)].mean() + Q.max(axis=1).mean())
    p = Policy(quality_target=target).fit(Q, C)
    assert p.lam_alt_ is not None and 0 < p.mix_ < 1  # a mixed calibration: both sides are exercised
    everything = np.ones(Q.shape, dtype=bool)
    np.testing.assert_array_equal(p.choose(Q, C), p.choose(Q, C, mask=everything))
    keys = [f"k{i}" for i in rows]
    np.testing.assert_array_equal(p.choose(Q, C, keys=keys), p.choose(Q, C, mask=everything, keys=keys))
    for i in range(0, 400, 37):  # one prompt at a time, as a router calls it
        assert p.choose(Q[i : i + 1], C[i : i + 1])[0] == p.choose(Q, C)[i]
    bad = C.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite prediction at prompt 3, model 2"):
        p.choose(Q, bad)
    with pytest.raises(ValueError, match="must be ≥ 0"):
        p.choose(Q, -C)
    with pytest.raises(ValueError, match="keys has 2 entries"):
        p.choose(Q, C, keys=["a", "b"])
