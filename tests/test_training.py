"""fit_artifact: latent-only models shape the space but get no profile; the shipped default includes the
open-ended table (its priced models routable, its unpriced ones absent)."""

from __future__ import annotations

import numpy as np
import pytest

from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
from zerorouter_integrations.latent.irt import IRTSpace
from zerorouter_integrations.tables import load_table
from zerorouter_integrations.training import fit_artifact


@pytest.fixture(scope="module")
def small_table(data_dir):
    t = load_table(data_dir / "routerbench_subset")
    ids = t.prompts.groupby("task", group_keys=False).head(40)["prompt_id"].tolist()
    return t.subset(prompt_ids=ids)


def _fit(table, **kw):
    space = IRTSpace(seed=0, local_clusters=4, stack=False, max_iter=60)
    return fit_artifact(table, space=space, n_anchors=10, n_calibration=50, show_progress=False, **kw)


def test_latent_only_models_shape_the_space_without_a_profile(small_table):
    with_it = _fit(small_table, latent_only_models=["claude-v2"])
    without = _fit(small_table, exclude_models=["claude-v2"])
    pred = with_it.predictor
    assert "claude-v2" not in pred.profiles_ and "claude-v2" not in pred.space_.abilities_
    assert "claude-v2" not in pred.space_.models_
    assert (
        set(pred.profiles_)
        == set(without.predictor.profiles_)
        == set(small_table.model_names) - {"claude-v2"}
    )
    assert with_it.build["latent_only_models"] == ["claude-v2"]
    assert with_it.build["score_type"] == small_table.score_type == "binary"
    # its outcomes were fit: the space (and the prior of new models) differ from a fit without them
    assert not np.allclose(pred.space_.W_, without.predictor.space_.W_)
    # the artifact round-trips and routes among the profiled models only
    back = RouterArtifact.from_dict(with_it.to_dict())
    assert list(back.predictor.profiles_) == list(pred.profiles_)


def test_latent_only_bad_inputs(small_table):
    with pytest.raises(ValueError, match="no-such-model"):
        _fit(small_table, latent_only_models=["no-such-model"])
    with pytest.raises(ValueError, match="every model is latent-only"):
        _fit(small_table, latent_only_models=small_table.model_names)


def test_shipped_default_covers_the_open_ended_table(data_dir):
    art = RouterArtifact.load(DEFAULT_ARTIFACT)
    assert "alpacaeval" in art.build["tables"] and "alpacaeval" in art.build["held_out_prompt_ids"]
    models = load_table(data_dir / "alpacaeval").models
    priced = set(models.loc[models["input_usd_per_1m"].notna(), "model"])
    unpriced = set(models["model"]) - priced
    profiles = set(art.predictor.profiles_)
    assert priced <= profiles and not unpriced & profiles
    assert unpriced <= set(art.build["latent_only_models"])
    # 0/1 benchmarks, partial credit and win probabilities: "mixed" (the cascade stays available)
    assert art.build["score_type"] == "mixed" and art.predictor.score_type_ == "mixed"
