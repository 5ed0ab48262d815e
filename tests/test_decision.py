"""RoutingDecision display and serialisation, session stickiness, latency estimates."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from zerorouter_integrations.decision import Candidate, RoutingDecision, SessionStickiness, Stage
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.latency import (
    LatencyPrior,
    expected_latency_s,
    latency_matrix,
    latency_params,
    p95_latency_s,
    sla_mask,
)


def _decision(**kw) -> RoutingDecision:
    base = dict(
        request_id="req-1",
        chosen="gpt-4o-mini",
        candidates=[
            Candidate("gpt-4o-mini", 0.81, 0.05, 1.5e-4, 1.2, 0.79),
            Candidate("gpt-4o", np.float64(0.86), None, 2.5e-3, None, np.float32(0.61)),
            Candidate("llama-3-8b", 0.55, 0.1, 2e-5, 0.4, float("nan")),
        ],
        removed={"gpt-3.5-turbo": "context window 16385 < prompt 20000 + max_tokens 100"},
        policy={"kind": "budget", "target": 0.5, "lam": np.float64(123.4), "mu": 0.0},
        reference_model="gpt-4o",
        reference_cost_usd=2.5e-3,
        reference_quality=0.86,
    )
    base.update(kw)
    return RoutingDecision(**base)


def test_plans_round_trip_and_show_in_the_table():
    from zerorouter_integrations.plan import CascadePlan, SinglePlan, accept_answers, plan_from_dict

    d = _decision(plan=SinglePlan(["gpt-4o-mini", "gpt-4o", "llama-3-8b"]))
    assert "plan: gpt-4o-mini, fallbacks gpt-4o, llama-3-8b" in str(d)
    back = RoutingDecision.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back.plan == d.plan and back.plan.order == ["gpt-4o-mini", "gpt-4o", "llama-3-8b"]
    cp = CascadePlan(
        mode="cascade",
        first=["llama-3-8b", "gpt-4o-mini"],
        escalate_to="gpt-4o",
        kind="choice",
        lam=np.float64(12.5),
        expected_quality=0.8,
        expected_cost_usd=3e-4,
        expected_latency_s=1.5,
        threshold_agree=0.7,
        threshold_disagree=0.9,
        confidence_agree=0.95,
        confidence_disagree=0.4,
        quality={"llama-3-8b": 0.6, "gpt-4o-mini": 0.8},
        escalation=["gpt-4o"],
        extractor=lambda text: text,
    )
    d = _decision(plan=cp)
    text = str(d)
    assert "plan: cascade llama-3-8b + gpt-4o-mini" in text and "escalate to gpt-4o" in text
    js = json.loads(json.dumps(d.to_dict()))
    assert js["plan"]["extractor"] == "custom" and js["plan"]["lam"] == 12.5
    again = plan_from_dict(js["plan"])
    assert again.first == cp.first and again.extractor == "auto" and again.order == [*cp.first, "gpt-4o"]
    ok, why = accept_answers(cp, {"llama-3-8b": "b", "gpt-4o-mini": "b"})
    assert ok and why["agreement"] and why["answer_model"] == "llama-3-8b"
    ok, why = accept_answers(cp, {"llama-3-8b": "a", "gpt-4o-mini": "b"})
    assert not ok and "disagree" in why["reason"]
    ok, why = accept_answers(cp, {"llama-3-8b": None, "gpt-4o-mini": "b"})
    assert not ok and why["answer_model"] == "gpt-4o-mini" and why["confidence"] == 0.8
    with pytest.raises(ValueError, match="plan='other'"):
        plan_from_dict({"plan": "other"})


def test_table_text_names_models_reasons_and_saving():
    d = _decision(
        session_id="s-1",
        sticky=True,
        routing_time_s=0.0012,
        stages=[Stage("route", ["gpt-4o-mini"], "accepted", {})],
    )
    text = str(d)
    for name in ("gpt-4o-mini", "gpt-4o", "llama-3-8b", "gpt-3.5-turbo"):
        assert name in text
    assert "context window 16385 < prompt 20000 + max_tokens 100" in text
    assert "0.810 ± 0.050" in text
    assert "expected saving vs gpt-4o: $2.35 per 1k calls (94.0%)" in text
    assert "→" in text.splitlines()[3] and "gpt-4o-mini" in text.splitlines()[3]
    assert "sticky" in text and "stage route" in text and "1.20 ms" in text
    # fixed width: every candidate row has the same column layout as the header
    lines = text.splitlines()
    assert lines[1].index("model") == lines[3].index("gpt-4o-mini")


def test_properties():
    d = _decision()
    assert d.ranking == ["gpt-4o-mini", "gpt-4o", "llama-3-8b"]
    assert d.expected_saving_usd == pytest.approx(2.5e-3 - 1.5e-4)
    assert d.expected_saving_fraction == pytest.approx(0.94)
    assert _decision(reference_cost_usd=None).expected_saving_usd is None
    assert _decision(reference_cost_usd=0.0).expected_saving_fraction is None
    assert "expected saving" not in str(_decision(reference_cost_usd=None))


def test_round_trip_is_json_serializable():
    d = _decision(
        session_id="s",
        sticky=True,
        stages=[Stage("cascade", ["a", "b"], "escalated", {"confidence": np.float64(0.4)})],
    )
    payload = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    back = RoutingDecision.from_dict(payload)
    assert back.ranking == d.ranking and back.chosen == d.chosen and back.removed == d.removed
    assert back.candidates[2].score is None  # NaN became null
    assert back.candidates[1].predicted_quality == pytest.approx(0.86)
    assert back.stages[0].detail == {"confidence": 0.4}
    assert back.to_dict() == payload
    assert payload["expected_saving_usd"] == pytest.approx(d.expected_saving_usd)
    with pytest.raises(SchemaError, match="chosen"):
        RoutingDecision.from_dict({"request_id": "x"})


def test_rich_rendering():
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(_decision())
    out = console.export_text()
    assert "gpt-4o-mini" in out and "gpt-3.5-turbo" in out and "saving" in out


# ------------------------------------------------------------------ stickiness


def test_stickiness_never_deescalates_random_sequences():
    rng = np.random.default_rng(0)
    models = [f"m{i}" for i in range(8)]
    for trial in range(200):
        capability = {m: float(c) for m, c in zip(models, rng.normal(0, 1, len(models)))}
        s = SessionStickiness()
        sid = f"s{trial}"
        used: list[float] = []
        for _ in range(rng.integers(1, 12)):
            ranking = list(rng.permutation(models)[: rng.integers(1, len(models) + 1)])
            kept, sticky = s.filter(sid, ranking, capability)
            floor = max(used) if used else None
            assert kept == [m for m in ranking if floor is None or capability[m] >= floor]
            assert sticky == (len(kept) < len(ranking))
            if not kept:
                continue
            model = kept[rng.integers(0, len(kept))]
            assert floor is None or capability[model] >= floor
            s.record(sid, model, capability[model])
            used.append(capability[model])
            assert s.floor(sid) == max(used)


def test_stickiness_details():
    s = SessionStickiness()
    cap = {"small": 0.1, "mid": 0.5, "big": 0.9}
    assert s.filter(None, ["small", "big"], cap) == (["small", "big"], False)
    s.record(None, "big", 0.9)  # no session: nothing stored
    s.record("a", "mid", 0.5)
    assert s.filter("a", ["small", "big", "mid", "unknown"], cap) == (["big", "mid"], True)
    assert s.filter("b", ["small"], cap) == (["small"], False)
    s.record("a", "small", 0.1)  # a lower model does not lower the floor
    assert s.floor("a") == 0.5
    assert s.store.get_session("a")["models"] == ["mid", "small"]


class _DictStore:
    """A store with only the two methods the protocol asks for (like a ProfileStore)."""

    def __init__(self):
        self.d = {}

    def get_session(self, sid):
        return self.d.get(sid)

    def set_session(self, sid, payload):
        self.d[sid] = json.loads(json.dumps(payload))


def test_external_store_keeps_other_keys_and_threads_are_safe():
    store = _DictStore()
    store.set_session("s", {"user": "u1"})
    s = SessionStickiness(store)
    s.record("s", "mid", 0.5)
    assert store.d["s"]["user"] == "u1" and store.d["s"]["capability_floor"] == 0.5
    mem = SessionStickiness()
    threads = [threading.Thread(target=mem.record, args=("t", f"m{i}", float(i))) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mem.floor("t") == 31.0


async def test_async_twins():
    s = SessionStickiness(_DictStore())
    await s.arecord("s", "mid", 0.5)
    assert await s.afilter("s", ["small", "mid"], {"small": 0.1, "mid": 0.5}) == (["mid"], True)
    assert await s.afilter(None, ["small"], {}) == (["small"], False)


# ------------------------------------------------------------------ latency


def test_latency_estimates():
    assert expected_latency_s(0.5, 50.0, 100) == pytest.approx(2.5)
    assert p95_latency_s(0.5, 50.0, 100) == pytest.approx(5.0)
    assert p95_latency_s(0.5, 50.0, 100, factor=1.5) == pytest.approx(3.75)
    assert p95_latency_s(0.5, 50.0, 100, observed_p95_s=4.2) == pytest.approx(4.2)
    arr = p95_latency_s(np.array([0.5, 0.5]), 50.0, 100, observed_p95_s=np.array([np.nan, 1.0]))
    np.testing.assert_allclose(arr, [5.0, 1.0])
    with pytest.raises(ValueError, match="tokens_per_s"):
        expected_latency_s(0.1, 0.0, 10)


class _Stats:
    def __init__(self, ttft=None, tps=None, out=None):
        self.ewma_ttft_s, self.ewma_tokens_per_s, self.ewma_output_tokens = ttft, tps, out


def test_latency_params_prefer_observations():
    prior = LatencyPrior(ttft_s=1.0, tokens_per_s=20.0, output_tokens=100)
    assert latency_params(None, prior) == (1.0, 20.0, 100.0)
    assert latency_params(_Stats(ttft=0.2), prior) == (0.2, 20.0, 100.0)
    assert latency_params(_Stats(ttft=0.2, tps=80.0, out=50.0), prior) == (0.2, 80.0, 50.0)


def test_latency_matrix_and_sla_mask():
    models = ["fast", "slow"]
    stats = {"fast": _Stats(ttft=0.1, tps=100.0)}
    priors = {"slow": LatencyPrior(ttft_s=2.0, tokens_per_s=10.0)}
    out_tokens = np.array([[100.0], [10.0]])
    L = latency_matrix(models, stats, priors, out_tokens)
    np.testing.assert_allclose(L, [[1.1, 12.0], [0.2, 3.0]])
    P = latency_matrix(models, stats, priors, out_tokens, kind="p95", observed_p95_s={"slow": 20.0})
    np.testing.assert_allclose(P, [[2.2, 20.0], [0.4, 20.0]])
    assert latency_matrix(models).shape == (1, 2)
    mask = sla_mask(np.array([[1.0, np.nan, 5.0]]), 2.0)
    assert mask.tolist() == [[True, True, False]]
    assert sla_mask(np.array([np.nan]), 2.0, unknown="drop").tolist() == [False]
    assert sla_mask(np.array([9.0]), None).tolist() == [True]
