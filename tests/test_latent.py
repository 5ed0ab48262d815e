"""Latent spaces, onboarding purity, determinism, serialization (real MiniLM on a real zeroeval slice)."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest

from zerorouter_integrations.artifact import RouterArtifact, space_from_dict, space_to_dict
from zerorouter_integrations.errors import NotFittedError, SchemaError
from zerorouter_integrations.evaluation import ROUTERS, make_space
from zerorouter_integrations.latent.irt import IRTSpace, bayes_logistic
from zerorouter_integrations.predictor import QualityPredictor
from zerorouter_integrations.profiles import estimate_tokens


def _fit(name, X, table, seed=0, exclude=()):
    models = [m for m in table.model_names if m not in exclude]
    S = table.scores(models=models)
    C = table.costs(models=models)
    toks = np.array([estimate_tokens(t) for t in table.texts()], float)
    return QualityPredictor(make_space(name, seed)).fit(X, S, models, costs=C, input_tokens=toks)


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_every_space_fits_predicts_and_beats_the_mean(name, small_table, small_features):
    """Held-out log loss beats predicting each model's training mean (the spaces learn something)."""
    X = small_features
    n = len(X)
    rng = np.random.default_rng(1)
    test = rng.permutation(n)[: n // 4]
    train = np.setdiff1d(np.arange(n), test)
    models = small_table.model_names
    S = small_table.scores(models=models)
    keep = [j for j in range(len(models)) if (~np.isnan(S[train, j])).sum() > 20]
    models = [models[j] for j in keep]
    S = S[:, keep]
    space = make_space(name).fit(X[train], S[train], models)
    Z = space.transform(X[test])
    q, sd = space.predict_matrix(Z, [space.abilities_[m] for m in models])
    assert q.shape == sd.shape == (len(test), len(models))
    assert np.all((q > 0) & (q < 1)) and np.all(sd >= 0)
    obs = ~np.isnan(S[test])
    y = S[test][obs]
    base = np.broadcast_to(np.nanmean(S[train], axis=0), S[test].shape)[obs]
    pred = np.clip(q[obs], 1e-4, 1 - 1e-4)
    b = np.clip(base, 1e-4, 1 - 1e-4)
    ll = -np.mean(y * np.log(pred) + (1 - y) * np.log(1 - pred))
    ll_base = -np.mean(y * np.log(b) + (1 - y) * np.log(1 - b))
    assert ll < ll_base, f"{name}: held-out log loss {ll:.4f} not below the per-model mean's {ll_base:.4f}"


def test_fit_is_deterministic_with_a_seed(small_table, small_features):
    a = _fit("zerorouter", small_features, small_table, seed=3)
    b = _fit("zerorouter", small_features, small_table, seed=3)
    np.testing.assert_array_equal(a.space_.W_, b.space_.W_)
    for m in a.profiles_:
        assert a.profiles_[m].to_dict() == b.profiles_[m].to_dict()
    anchors_a = a.space_.select_anchors(a.space_.training_coordinates(), 30, seed=5)
    anchors_b = b.space_.select_anchors(b.space_.training_coordinates(), 30, seed=5)
    np.testing.assert_array_equal(anchors_a, anchors_b)


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_onboarding_leaves_space_and_other_profiles_byte_identical(name, small_table, small_features):
    new = "gpt-4o-mini-2024-07-18"
    pred = _fit(name, small_features, small_table, exclude=(new,))
    before_space = pickle.dumps(pred.space_)
    before_profiles = json.dumps({m: p.to_dict() for m, p in pred.profiles_.items()}, sort_keys=True)
    Z = pred.space_.training_coordinates()
    idx = pred.space_.select_anchors(Z, 40, seed=0)
    y = small_table.scores(models=[new])[idx, 0]
    ok = ~np.isnan(y)
    profile = pred.onboard(new, Z[idx][ok], y[ok])
    assert pickle.dumps(pred.space_) == before_space
    after = {m: p.to_dict() for m, p in pred.profiles_.items() if m != new}
    assert json.dumps(after, sort_keys=True) == before_profiles
    assert profile.ability.n_obs == int(ok.sum()) and pred.profiles_[new] is profile


def test_few_anchor_onboarding_shrinks_toward_the_population():
    """With 5 all-correct anchors the IRT posterior stays well below certainty (population prior)."""
    rng = np.random.default_rng(0)
    n, m, k = 400, 12, 3
    theta = rng.standard_normal((n, k))
    A = rng.standard_normal((m, k))
    b = rng.normal(0, 1, m)
    Y = (rng.random((n, m)) < 1 / (1 + np.exp(-(theta @ A.T + b)))).astype(float)
    X = np.hstack([theta + 0.1 * rng.standard_normal((n, k)), rng.standard_normal((n, 5))])
    space = IRTSpace(n_dims=3, max_iter=200).fit(X, Y, [f"m{j}" for j in range(m)])
    Z = space.training_coordinates()[:5]
    ab = space.fit_ability(Z, np.ones(5))
    p, sd = space.predict(space.transform(X[300:]), ab)
    assert p.mean() < 0.95 and sd.mean() > 0
    ab_many = space.fit_ability(space.training_coordinates()[:300], Y[:300, 0])
    p_many, sd_many = space.predict(space.transform(X[300:]), ab_many)
    assert sd_many.mean() < sd.mean()
    # Against the truth, the 300-anchor estimate is close to the known model's own fit.
    p_known, _ = space.predict(space.transform(X[300:]), space.abilities_["m0"])
    assert np.abs(p_many - p_known).mean() < 0.1


def test_population_prior_options():
    """The new-model prior: standardized shrinkage keeps every coordinate's variance; the bias SD floor."""
    rng = np.random.default_rng(1)
    n, m, k = 300, 10, 2
    theta = rng.standard_normal((n, k))
    A = rng.standard_normal((m, k))
    b = rng.normal(0, 0.2, m)  # known models of nearly equal overall ability
    Y = (rng.random((n, m)) < 1 / (1 + np.exp(-(theta @ A.T + b)))).astype(float)
    X = np.hstack([theta + 0.1 * rng.standard_normal((n, k)), rng.standard_normal((n, 4))])
    names = [f"m{j}" for j in range(m)]
    kw = dict(n_dims=2, max_iter=100, local_clusters=4)
    std = IRTSpace(min_bias_sd=0.0, **kw).fit(X, Y, names)
    W = np.stack([std.abilities_[nm].array("w") for nm in names])
    np.testing.assert_allclose(np.diag(std.prior_cov_), W.var(axis=0), rtol=1e-3, atol=1e-5)
    floored = IRTSpace(min_bias_sd=1.0, **kw).fit(X, Y, names)
    assert floored.prior_cov_[-1, -1] >= 1.0 - 1e-12
    np.testing.assert_allclose(floored.prior_cov_[:-1, :-1], std.prior_cov_[:-1, :-1])
    ident = IRTSpace(prior_shrinkage="identity", min_bias_sd=0.0, **kw).fit(X, Y, names)
    assert np.all(np.linalg.eigvalsh(ident.prior_cov_) > 0)
    with pytest.raises(ValueError, match="prior_shrinkage"):
        IRTSpace(prior_shrinkage="diagonal").fit(X, Y, names)
    with pytest.raises(ValueError, match="min_bias_sd"):
        IRTSpace(min_bias_sd=-1.0).fit(X, Y, names)


def test_bayes_logistic_matches_sklearn_without_prior():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-(X @ [1.0, -2.0, 0.5] + 0.3)))).astype(float)
    Xb = np.column_stack([X, np.ones(300)])
    w, cov = bayes_logistic(Xb, y, np.zeros(4), np.eye(4) * 1e-6)
    ref = LogisticRegression(C=1e6, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(w[:3], ref.coef_[0], rtol=1e-3, atol=1e-3)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_not_fitted_errors():
    with pytest.raises(NotFittedError, match="fit"):
        IRTSpace().transform(np.zeros((1, 3)))
    with pytest.raises(NotFittedError):
        QualityPredictor(IRTSpace()).predict(np.zeros((1, 3)))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="scores in \\[0, 1\\]"):
        IRTSpace().fit(np.zeros((3, 2)), np.array([[2.0], [0.0], [1.0]]), ["a"])
    with pytest.raises(ValueError, match="'a' has no observed score"):
        IRTSpace().fit(np.zeros((3, 2)), np.full((3, 1), np.nan), ["a"])
    with pytest.raises(ValueError, match="non-finite"):
        IRTSpace().fit(np.array([[np.nan, 0], [0, 0]]), np.ones((2, 1)), ["a"])


@pytest.mark.parametrize("name", ["zerorouter", "unirouter-kmeans", "unirouter-learned-map"])
def test_space_json_and_pickle_round_trip(name, small_table, small_features):
    pred = _fit(name, small_features, small_table)
    space = pred.space_
    clone = (
        space_from_dict(json.loads(json.dumps(space_to_dict(space))))
        if name == "zerorouter"
        else pickle.loads(pickle.dumps(space))
    )
    X = small_features[:20]
    a = [pred.profiles_[m].ability for m in list(pred.profiles_)[:5]]
    np.testing.assert_allclose(
        space.predict_matrix(space.transform(X), a)[0],
        clone.predict_matrix(clone.transform(X), a)[0],
        rtol=1e-12,
    )


def test_artifact_save_load_round_trip_and_atomicity(tmp_path, small_table, small_features):
    pred = _fit("zerorouter", small_features, small_table)
    art = RouterArtifact(
        predictor=pred,
        encoder={"max_seq_length": 128},
        features={"use_text_features": True},
        calibration_Z=pred.transform(small_features[:50]),
    )
    path = art.save(tmp_path / "a.json.gz")
    back = RouterArtifact.load(path)
    assert [p.to_dict() for p in back.predictor.profiles_.values()] == [
        p.to_dict() for p in pred.profiles_.values()
    ]
    q1 = pred.predict(small_features[:10]).quality
    q2 = back.predictor.predict(small_features[:10]).quality
    np.testing.assert_allclose(q1, q2, rtol=1e-12)
    # A failing save leaves the previous file intact and no temp file behind.
    good = path.read_bytes()
    bad = copy.copy(art)
    bad.build = {"oops": object()}
    with pytest.raises(TypeError):
        bad.save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json.gz"]
    (tmp_path / "junk.json.gz").write_bytes(b"not gzip")
    with pytest.raises(SchemaError, match="not a router artifact"):
        RouterArtifact.load(tmp_path / "junk.json.gz")


def test_stacked_prediction_matches_per_model_prediction(small_table, small_features):
    """The vectorized paths (one-hot local clusters, one prompt or many; dense coordinates) agree
    with ``predict`` of each ability on its own."""
    pred = _fit("zerorouter", small_features, small_table)
    space = pred.space_
    abilities = [p.ability for p in pred.profiles_.values()]
    stacked = space.stack_abilities(abilities)
    Z = space.transform(small_features[:40])
    assert space.local_clusters and np.all(Z[:, space.n_dims :].sum(axis=1) == 1.0)  # one-hot local part
    dense = Z.copy()
    dense[:, space.n_dims :] *= 0.9  # not one-hot: the general path
    for coords in (Z, Z[:1], Z[7:8], dense):
        q, sd = space.predict_stacked(coords, stacked)
        q_ref = np.column_stack([space.predict(coords, a)[0] for a in abilities])
        sd_ref = np.column_stack([space.predict(coords, a)[1] for a in abilities])
        np.testing.assert_allclose(q, q_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(sd, sd_ref, rtol=0, atol=1e-12)
    # every candidate weighted (the coarse-group means folded into the local rows), and the three
    # weights of earlier artifacts
    for w in ([0.4, 0.3, 0.2, 0.1], [0.5, 0.3, 0.2]):
        space.stack_weights_ = np.array(w)
        stacked = space.stack_abilities(abilities)
        for coords in (Z, Z[:1], dense):
            q, _sd = space.predict_stacked(coords, stacked)
            q_ref = np.column_stack([space.predict(coords, a)[0] for a in abilities])
            np.testing.assert_allclose(q, q_ref, rtol=0, atol=1e-12)


def test_transform_matches_the_standardized_formulation(small_table, small_features):
    """``transform`` folds the standardization into one product; it equals θ̂ = x̃ W + c and the
    nearest centre of x̃ = (x − mean) / scale."""
    space = _fit("zerorouter", small_features, small_table).space_
    X = small_features[:60]
    Xs = (X - space.x_mean_) / space.x_scale_
    Z = space.transform(X)
    k = space.n_dims
    np.testing.assert_allclose(Z[:, :k], Xs @ space.W_ + space.c_, rtol=0, atol=1e-10)
    nearest = ((Xs[:, None, :] - space.centers_[None]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(Z[:, k:].argmax(axis=1), nearest)


def test_predictor_sees_every_change_of_the_pool(small_table, small_features):
    """Predictions are served from a stacked copy of the pool; replacing an ability or cost model,
    onboarding, deleting a profile, or assigning a plain dict must all show up at once."""
    from zerorouter_integrations.latent.base import Ability
    from zerorouter_integrations.profiles import CostModel

    pred = _fit("zerorouter", small_features, small_table)
    Z = pred.transform(small_features[:5])
    first = pred.predict(Z=Z, input_tokens=np.full(5, 100.0))
    name = pred.models[0]
    p = pred.profiles_[name]
    w = p.ability.array("w").copy()
    w[-1] += 3.0  # a much better model
    p.ability = Ability(p.ability.kind, {**p.ability.params, "w": w}, n_obs=p.ability.n_obs)
    after = pred.predict(Z=Z, input_tokens=np.full(5, 100.0))
    assert np.all(after.quality[:, 0] > first.quality[:, 0])
    np.testing.assert_array_equal(after.quality[:, 1:], first.quality[:, 1:])
    p.cost = CostModel(intercept_usd=1.0, per_input_token_usd=0.01)
    assert pred.predict(Z=Z, input_tokens=np.full(5, 100.0)).cost_usd[0, 0] == pytest.approx(2.0)
    subset = pred.predict(Z=Z, models=[pred.models[2], name])
    assert subset.models == [pred.models[2], name] and subset.cost_usd[0, 1] == pytest.approx(1.0)
    pred.profiles_.pop(pred.models[1])
    assert pred.predict(Z=Z).quality.shape[1] == len(pred.models) == len(first.models) - 1
    pred.profiles_ = {n: pred.profiles_[n] for n in pred.models[:3]}  # a plain dict
    assert pred.predict(Z=Z).models == pred.models[:3]
    del pred.profiles_[pred.models[0]]
    assert pred.predict(Z=Z).quality.shape[1] == 2
    clone = pickle.loads(pickle.dumps(pred))
    np.testing.assert_array_equal(clone.predict(Z=Z).quality, pred.predict(Z=Z).quality)


def test_stacking_is_never_worse_than_its_candidates_out_of_fold(small_table, small_features):
    """The IRT space blends itself with cluster and overall means by out-of-fold loss (issue 15)."""
    from zerorouter_integrations.latent.stacking import CANDIDATES, simplex_weights

    models = small_table.model_names
    S = small_table.scores(models=models)
    space = IRTSpace(seed=0).fit(small_features, S, models)
    w = space.stack_weights_
    assert w.shape == (len(CANDIDATES),) and np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
    losses = space.stack_losses_
    assert set(losses) == {*CANDIDATES, "least_loss_blend", "blend"}
    assert losses["least_loss_blend"] <= min(losses[c] for c in CANDIDATES) + 1e-12
    assert losses["blend"] >= losses["least_loss_blend"] - 1e-12  # the top-choice guard only gives up loss
    # the blend is what predict() returns; an artifact without weights predicts the latent model alone
    Z = space.transform(small_features[:40])
    ab = space.abilities_[models[0]]
    P = space.candidate_predictions(Z, ab)
    np.testing.assert_allclose(space.predict(Z, ab)[0], P @ w)
    plain = copy.copy(space)
    del plain.stack_weights_
    np.testing.assert_allclose(plain.predict(Z, ab)[0], P[:, 0])
    # without stacking the weights are the latent model's vertex
    assert IRTSpace(seed=0, stack=False).fit(small_features, S, models).stack_weights_.tolist() == [
        1,
        0,
        0,
        0,
    ]
    with pytest.raises(ValueError, match="stack_folds"):
        IRTSpace(stack_folds=1).fit(small_features, S, models)
    # simplex_weights: a vertex when one candidate is best, an interior point when a mix is
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(float)
    noisy = np.clip(0.3 + 0.5 * (y - 0.3) + 0.2 * rng.standard_normal(2000), 0.01, 0.99)
    np.testing.assert_array_equal(simplex_weights(np.column_stack([y * 0.98 + 0.01, noisy]), y), [1.0, 0.0])
    overconfident = np.where((y == 1) ^ (rng.random(2000) < 0.2), 0.95, 0.05)  # 20 % confidently wrong
    mix = simplex_weights(np.column_stack([overconfident, np.full(2000, 0.3)]), y)
    assert 0.2 < mix[1] < 0.8


def test_stacking_validates_a_model_as_if_it_were_new(small_table, small_features):
    """A known model is validated under the prior of the others (it cannot be its own prior); with one
    known model the latent candidate is not blended; the coarse groups are a function of the cluster."""
    from zerorouter_integrations.latent.bayes import population_cov, prior_without
    from zerorouter_integrations.latent.clusters import coarse_groups

    rng = np.random.default_rng(0)
    W = rng.normal(size=(6, 5))
    mean, cov = prior_without(W, 2, min_bias_sd=3.0)
    np.testing.assert_allclose(mean, np.delete(W, 2, axis=0).mean(axis=0))
    ref = population_cov(np.delete(W, 2, axis=0))
    np.testing.assert_allclose(cov[:-1, :-1], ref[:-1, :-1])
    assert cov[-1, -1] == max(ref[-1, -1], 9.0)
    mean1, cov1 = prior_without(W[:1], 0)
    assert not mean1.any() and np.array_equal(cov1, np.eye(5))

    centers = np.vstack([rng.normal(size=(4, 3)), 10 + rng.normal(size=(4, 3))])
    groups = coarse_groups(centers, np.ones(8), seed=0)
    assert groups.shape == (8,) and len(set(groups[:4])) == 1 and len(set(groups[4:])) == 1
    assert groups[0] != groups[4]
    assert coarse_groups(centers[:3], np.ones(3), seed=0).tolist() == [0, 0, 0]

    models = small_table.model_names
    S = small_table.scores(models=models)
    one = IRTSpace(seed=0).fit(small_features, S[:, :1], models[:1])
    assert one.stack_weights_[0] == 0.0 and abs(one.stack_weights_.sum() - 1) < 1e-9
    space = IRTSpace(seed=0).fit(small_features, S, models)
    ab = space.abilities_[models[0]]
    local = space.transform(small_features)[:, space.n_dims :]
    coarse = ab.array("coarse")
    # constant within a coarse group
    for g in np.unique(space.coarse_groups_):
        assert np.ptp(coarse[space.coarse_groups_ == g]) < 1e-12
    assert np.all((local @ coarse >= 0) & (local @ coarse <= 1))


def test_top_choice_guard_falls_back_toward_the_best_model():
    """A blend whose first choice would lose to always calling the best model is moved toward the
    overall means until it does not."""
    from zerorouter_integrations.latent.stacking import (
        CANDIDATES,
        choose_weights,
        guard_top_choice,
        preference_gain,
        simplex_weights,
    )

    rng = np.random.default_rng(0)
    n = 400
    y_best = np.full(n, 0.5)
    y_weak = (rng.random(n) < 0.15).astype(float)
    noise = rng.random(n)  # a latent candidate that thinks the weak model beats the best one at random
    c = len(CANDIDATES)
    P = np.zeros((2 * n, c))
    P[:n, 0], P[n:, 0] = 0.5, np.where(noise < 0.3, 0.9, 0.1)
    overall = CANDIDATES.index("overall")
    P[:n, overall], P[n:, overall] = 0.5, 0.15
    P[:, 1] = P[:, 3] = P[:, overall]
    y = np.r_[y_best, y_weak]
    prompt, fold = np.r_[np.arange(n), np.arange(n)], np.r_[np.arange(n), np.arange(n)] % 2
    where = np.column_stack([prompt, np.r_[np.zeros(n), np.ones(n)], np.zeros(2 * n), fold]).astype(int)
    latent = np.eye(c)[0]
    gain, se = preference_gain(P, y, where, latent, best_by=overall)[0]
    assert gain < -2 * se  # clearly losing
    w = guard_top_choice(P, y, where, latent, fallback=overall)
    assert w[overall] > 0
    assert preference_gain(P, y, where, np.eye(c)[overall], best_by=overall)[0] == (0.0, 0.0)  # the vertex
    # a latent candidate that is right about where the weak model wins keeps its weight
    right = P.copy()
    right[n:, 0] = np.where(y_weak == 1, 0.9, 0.1)
    assert np.array_equal(guard_top_choice(right, y, where, latent, fallback=overall), latent)
    # choose_weights guards on the known models' rows (variant 0) only: the same prompts' rows of
    # abilities estimated from anchors (variant 1) losing do not move the weights; variant 0 losing does
    few = where[:, 0] < n // 4  # fewer anchor rows: the least-loss blend follows the known rows
    both = np.vstack([right, P[few]])
    where2 = np.vstack([where, where[few] + np.array([0, 0, 1, 0])])
    y2 = np.r_[y, y[few]]
    least_loss = simplex_weights(both, y2)
    w_known_right, _ = choose_weights(both, y2, where2)
    np.testing.assert_array_equal(w_known_right, least_loss)  # not guarded
    assert preference_gain(both, y2, where2, least_loss, best_by=overall)[1][0] < 0  # variant 1 loses
    swapped = where2.copy()
    swapped[:, 2] = 1 - swapped[:, 2]
    w_known_wrong, _ = choose_weights(both, y2, swapped)
    assert w_known_wrong[overall] > least_loss[overall]
    assert preference_gain(both, y2, swapped, w_known_wrong, best_by=overall)[0][0] >= 0
