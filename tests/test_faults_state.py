"""Issue 14, items 6 and 7: atomic changes, validated artifacts, and money that is never silently zero."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
from zerorouter_integrations.errors import SchemaError, UnknownModelError
from zerorouter_integrations.policy import Policy
from zerorouter_integrations.router import ZeroRouter

POOL = ["gpt-4o-2024-05-13", "gpt-4o-mini-2024-07-18", "claude-3-haiku-20240307", "gemini-1.5-flash-exp-0827"]


@pytest.fixture(scope="module")
def raw_artifact() -> dict:
    return json.loads(gzip.decompress(DEFAULT_ARTIFACT.read_bytes()))


@pytest.fixture()
def router() -> ZeroRouter:
    art = RouterArtifact.load(DEFAULT_ARTIFACT)
    known = [m for m in POOL if m in art.predictor.profiles_]
    assert len(known) == len(POOL), f"expected the shipped artifact to hold {POOL}"
    return ZeroRouter(art, models=known)


def _anchors(router: ZeroRouter, n: int = 20) -> tuple[list[str], list[float]]:
    texts = router.artifact.anchors.texts[:n]
    return texts, [float(i % 3 != 0) for i in range(n)]


# ---------------------------------------------------------------------------------------- item 6
def test_failed_onboard_leaves_the_router_unchanged(router, tmp_path):
    before = router.save(tmp_path / "before.json.gz").read_bytes()
    decision_before = router.route("What is 17 * 23?").to_dict()
    texts, scores = _anchors(router)
    bad_calls = [
        dict(scores=[math.nan, *scores[1:]]),
        dict(scores=scores, costs=[-1e-4] * len(texts)),
        dict(scores=scores, costs=[math.inf] * len(texts)),
        dict(scores=scores, input_usd_per_token=-1e-6, output_usd_per_token=1e-6),
        dict(scores=scores, latency_prior={"ttft_s": -0.5}),
        # accepted by the profile, but route() could not read it: refused, and rolled back
        dict(scores=scores, input_usd_per_token=1e-6, output_usd_per_token=2e-6, capabilities={"bogus": 1}),
    ]
    for kwargs in bad_calls:
        s = kwargs.pop("scores")
        with pytest.raises((ValueError, SchemaError)):
            router.onboard("new-model", texts, s, **kwargs)
        assert "new-model" not in router.models and "new-model" not in router.predictor.profiles_
        assert router.save(tmp_path / "after.json.gz").read_bytes() == before
    after = router.route("What is 17 * 23?").to_dict()
    assert after["chosen"] == decision_before["chosen"]
    # a good onboard still works afterwards
    p = router.onboard("new-model", texts, scores, input_usd_per_token=1e-7, output_usd_per_token=2e-7)
    assert p.price_known and "new-model" in router.models


def test_record_quality_and_with_policy_are_atomic(router):
    from zerorouter_integrations.stores import MemoryStore

    router.store = MemoryStore()
    d = router.route("Name a prime number larger than 100.")
    router.store.put_request(d.request_id, {"model": d.chosen, "latent": d.latent})
    ability = router.predictor.profiles_[d.chosen].ability
    for bad in (2.0, -0.1, math.nan, True, "1"):
        with pytest.raises(ValueError):
            router.record_quality(d.request_id, bad)
    router.store.put_request("wrong-dims", {"model": d.chosen, "latent": [0.1]})
    with pytest.raises(ValueError, match="dims"):
        router.record_quality("wrong-dims", 1.0)
    assert router.predictor.profiles_[d.chosen].ability is ability
    assert router.store.quality_observations(d.chosen) == []
    router.record_quality(d.request_id, 1.0)
    assert len(router.store.quality_observations(d.chosen)) == 1

    policy_before = router.policy
    with pytest.raises(UnknownModelError):
        router.with_policy(Policy.for_quality_target(0.9, reference="no-such-model"))
    assert router.policy is policy_before
    clone = router.with_policy(Policy.for_quality_target(0.5))
    texts, scores = _anchors(router)
    clone.onboard("only-in-clone", texts, scores, input_usd_per_token=1e-7, output_usd_per_token=1e-7)
    assert "only-in-clone" in clone.models and "only-in-clone" not in router.models


# ---------------------------------------------------------------------------------------- item 6: artifacts
def _write(tmp_path, name: str, payload: bytes) -> str:
    f = tmp_path / name
    f.write_bytes(payload)
    return str(f)


def _mutated(raw: dict, change) -> bytes:
    d = json.loads(json.dumps(raw))
    change(d)
    return gzip.compress(json.dumps(d).encode())


@pytest.mark.parametrize(
    ("label", "change", "field"),
    [
        ("missing-space", lambda d: d.pop("space"), "space"),
        ("missing-profiles", lambda d: d.pop("profiles"), "profiles"),
        ("wrong-format", lambda d: d.update(format=99), "format"),
        ("profiles-not-list", lambda d: d.update(profiles={"a": 1}), "profiles"),
        ("name-wrong-type", lambda d: d["profiles"][2].update(name=7), "profiles[2].name"),
        (
            "duplicate-name",
            lambda d: d["profiles"][3].update(name=d["profiles"][1]["name"]),
            "profiles[3].name",
        ),
        (
            "negative-price",
            lambda d: d["profiles"][0].update(input_usd_per_token=-1e-6),
            "profiles[0].input_usd_per_token",
        ),
        (
            "negative-latency",
            lambda d: d["profiles"][1]["latency_prior"].update(ttft_s=-2),
            "profiles[1].latency_prior.ttft_s",
        ),
        (
            "cost-wrong-type",
            lambda d: d["profiles"][4]["cost"].update(intercept_usd="cheap"),
            "profiles[4].cost.intercept_usd",
        ),
        ("anchors-ragged", lambda d: d["anchors"]["texts"].pop(), "anchors"),
    ],
)
def test_malformed_artifacts_name_file_and_field(raw_artifact, tmp_path, label, change, field):
    path = _write(tmp_path, f"{label}.json.gz", _mutated(raw_artifact, change))
    with pytest.raises(SchemaError) as err:
        ZeroRouter.load(path)
    assert label in str(err.value) and field in str(err.value)


def test_truncated_and_non_finite_artifacts(raw_artifact, tmp_path):
    data = DEFAULT_ARTIFACT.read_bytes()
    path = _write(tmp_path, "truncated.json.gz", data[: len(data) // 2])
    with pytest.raises(SchemaError, match=r"truncated\.json\.gz"):
        RouterArtifact.load(path)
    text = json.dumps(raw_artifact).replace('"intercept_usd": ', '"intercept_usd": NaN, "x": ', 1)
    path = _write(tmp_path, "nan.json.gz", gzip.compress(text.encode()))
    with pytest.raises(SchemaError, match=r"nan\.json\.gz.*profiles\[0\]\.cost\.intercept_usd.*NaN"):
        RouterArtifact.load(path)


# ---------------------------------------------------------------------------------------- item 7
def test_price_unknown_models_are_left_out_with_that_reason(router):
    d = router.route("Summarize the plot of Hamlet in two sentences.")
    unpriced = "gemini-1.5-flash-exp-0827"  # in the shipped artifact without prices or observed costs
    assert not router.predictor.profiles_[unpriced].price_known
    assert unpriced not in d.ranking and "price unknown" in d.removed[unpriced]
    texts, scores = _anchors(router)
    from zerorouter_integrations.dispatch import ModelEndpoint

    ep = ModelEndpoint("no-price", "openai/no-price-model", api_base="http://127.0.0.1:9/v1")
    router.onboard("no-price", texts, scores, endpoint=ep)
    d = router.route("Summarize the plot of Hamlet in two sentences.")
    assert "no-price" in router.models and "no-price" not in d.ranking
    assert "price unknown" in d.removed["no-price"]
    ep = ModelEndpoint("priced", "openai/priced-model", api_base="http://127.0.0.1:9/v1")
    router.onboard("priced", texts, scores, costs=[1e-4] * len(texts), endpoint=ep)
    assert "priced" in router.route("Summarize the plot of Hamlet in two sentences.").ranking


def test_predicted_cost_counts_every_input_token(router):
    short = "Explain the following log. " + "x" * 8_000
    long = "Explain the following log. " + "x" * 400_000
    ds, dl = router.route(short), router.route(long)
    for d, n_chars in ((ds, len(short)), (dl, len(long))):
        for c in d.candidates:
            expected = router.predictor.profiles_[c.model].cost.predict(math.ceil(n_chars / 4))
            assert c.predicted_cost_usd == pytest.approx(float(np.asarray(expected)), rel=1e-9)
