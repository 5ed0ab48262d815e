"""Learning from logs: the shipped prior refined with simulated deployment logs of a real table.

The logs are what a deployment of the shipped default would write on prompts of routerbench_subset
the default was not fit on (one model per prompt, the table's costs); feedback is the table's score,
except where a test changes it to play a regression of one model.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
from zerorouter_integrations.encoder import QueryEncoder
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.features import PromptFeaturizer
from zerorouter_integrations.fromlogs import fit_from_logs
from zerorouter_integrations.logfit import Observations, eb_offsets, refine_artifact
from zerorouter_integrations.tables import load_table
from zerorouter_integrations.testing.logsim import complete_pool, simulate_deployment, split_log_eval

FAST_GRID = {"penalties": ((math.inf, math.inf), (math.inf, 0.01), (0.1, 0.01)), "widening": (1.0, 16.0)}


@pytest.fixture(scope="module")
def prior():
    return RouterArtifact.load(DEFAULT_ARTIFACT)


@pytest.fixture(scope="module")
def featurizer(prior, tmp_path_factory):
    settings = {k: v for k, v in prior.encoder.items() if k in ("max_seq_length", "precision")}
    enc = QueryEncoder(**settings, cache_dir=tmp_path_factory.mktemp("emb"), show_progress=False)
    return PromptFeaturizer(enc)


@pytest.fixture(scope="module")
def deployment(prior, featurizer, data_dir):
    table = load_table(data_dir / "routerbench_subset")
    held = [p.split("/", 1)[1] for p in prior.build["held_out_prompt_ids"]["routerbench_subset"]]
    pool, usable = complete_pool(table, held, list(prior.predictor.profiles_))
    logged, evaluated = split_log_eval(table, usable[:320], seed=0)
    calls, scores = simulate_deployment(table, prior, logged, pool, featurizer, feedback_fraction=1.0, seed=0)
    return table, pool, calls, scores, evaluated


def test_simulated_logs_are_one_model_per_prompt_with_table_costs(deployment):
    table, pool, calls, scores, _ = deployment
    assert len({c.call_id for c in calls}) == len(calls) > 100
    assert all(c.model in pool for c in calls) and len({c.model for c in calls}) >= 2
    c = calls[0]
    pid = c.call_id.removeprefix("call-")
    assert c.cost_usd == pytest.approx(table.costs([pid], [c.model])[0, 0])
    assert scores[c.call_id] == table.scores([pid], [c.model])[0, 0]


def test_logged_propensities_are_the_policy_mix(deployment):
    _, _, calls, _, _ = deployment
    props = np.array([c.propensity for c in calls], dtype=float)
    assert ((props > 0) & (props <= 1)).all()
    # A choice both prices of the mix make has propensity 1; one only one side makes, mix or 1 − mix.
    others = sorted(set(np.round(props[props < 1], 9)))
    assert len(others) <= 2 and (len(others) < 2 or others[0] + others[1] == pytest.approx(1.0))


def test_empirical_bayes_offsets_shrink_noise_and_find_a_real_shift():
    rng = np.random.default_rng(0)

    def groups(shifts, n):
        out = {}
        for j, d in enumerate(shifts):
            s = rng.normal(0.0, 1.5, n)
            out[f"m{j}"] = (s, (rng.random(n) < 1 / (1 + np.exp(-(s + d)))).astype(float))
        return out

    tau, off = eb_offsets(groups([0.0] * 6, 40))  # the prior is right: nothing to learn
    assert tau < 0.3 and max(abs(d) for d, _ in off.values()) < 0.3
    shifts = [-2.0, -1.0, 0.0, 1.0, 2.0]
    tau, off = eb_offsets(groups(shifts, 300))
    assert 0.8 < tau < 3.0
    for j, d in enumerate(shifts):
        delta, var = off[f"m{j}"]
        assert abs(delta - d) < 0.4 and 0 < var < 0.1


def test_a_regressed_model_is_learned_from_feedback(deployment, prior, featurizer):
    table, pool, calls, scores, evaluated = deployment
    counts = {m: sum(c.model == m for c in calls) for m in pool}
    victim = max(counts, key=counts.get)
    # The victim's API regressed: every logged answer of it is graded 0.
    graded = {
        k: (0.0 if next(c for c in calls if c.call_id == k).model == victim else v) for k, v in scores.items()
    }
    before = json.dumps(prior.to_dict(), sort_keys=True)
    refined, report, info = fit_from_logs(
        calls, graded, prior=prior, featurizer=featurizer, holdout=0.25, seed=0, **FAST_GRID
    )
    assert json.dumps(prior.to_dict(), sort_keys=True) == before  # the prior is not changed
    X = featurizer.transform(table.texts(evaluated))
    q0 = prior.predictor.predict(X, models=[victim]).quality.mean()
    q1 = refined.predictor.predict(X, models=[victim]).quality.mean()
    assert q1 < q0 - 0.2, (q0, q1)
    ll = report.metrics["log loss (logged model)"]
    assert ll["refined"] < ll["prior"] - 2 * ll["diff_sd"]
    assert info.updated_models[victim] == counts[victim] and info.prior_widening != "none"
    assert len(info.cv_log_loss) == 7  # the grid and the prior unchanged
    for key in (
        "DM value of own choice",
        "DM cost of own choice (USD)",
        "Brier (logged model)",
        "IPS value of own choice",  # the simulated deployment logs its propensities
        "IPS match rate (choice = logged model)",
    ):
        assert math.isfinite(report.metrics[key]["refined"]) and math.isfinite(report.metrics[key]["diff_sd"])
    assert "held out" in report.to_markdown()
    # The refined artifact round-trips and records what was learned.
    refined2 = RouterArtifact.from_dict(json.loads(json.dumps(refined.to_dict())))
    q2 = refined2.predictor.predict(X, models=[victim]).quality.mean()
    assert q2 == pytest.approx(q1)
    assert refined2.build["refined_from_logs"]["n_observations"] == len(graded)
    # Calibration prompts are now the logged traffic.
    assert len(refined.calibration_Z) == min(600, len(calls))


def test_unknown_models_are_onboarded_or_reported(deployment, prior, featurizer):
    _, _, calls, scores, _ = deployment
    ids = list(scores)[:30]
    X = featurizer.transform([next(c.prompt for c in calls if c.call_id == i) for i in ids])
    obs = Observations(
        ids, X, ["brand-new-model"] * 20 + ["rare-model"] * 10, np.r_[np.ones(20), np.zeros(10)]
    )
    obs.models[20:] = ["rare-model"] * 10
    new, info = refine_artifact(
        prior, obs.take(np.arange(25)), featurizer=featurizer, min_onboard=10, **FAST_GRID
    )
    assert info.onboarded_models == ["brand-new-model"]
    assert info.skipped_models == {"rare-model": "5 scored calls; onboarding needs 10"}
    assert "brand-new-model" in new.predictor.profiles_ and "brand-new-model" not in prior.predictor.profiles_


def test_no_scores_is_a_clear_error(deployment, prior, featurizer):
    _, _, calls, _, _ = deployment
    with pytest.raises(SchemaError, match="none of the"):
        fit_from_logs(calls, {}, prior=prior, featurizer=featurizer)
    with pytest.raises(ValueError, match="holdout"):
        fit_from_logs(calls, {"x": 1.0}, prior=prior, featurizer=featurizer, holdout=1.5)
