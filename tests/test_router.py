"""ZeroRouter end to end: decisions, dispatch through LiteLLM's HTTP path to the replay server,
feedback into the profile store, cooldown, onboarding purity, quality feedback, offline default."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from zerorouter_integrations.dispatch import RetryPolicy
from zerorouter_integrations.errors import NoAdmissibleModelError, UnknownModelError
from zerorouter_integrations.policy import Policy
from zerorouter_integrations.stores import SQLiteStore
from zerorouter_integrations.tables import load_table
from zerorouter_integrations.testing import ReplayServer
from zerorouter_integrations.testing.fixtures import replay_router

POOL = ["gpt-4-1106-preview", "gpt-3.5-turbo-1106", "mistralai/mixtral-8x7b-chat", "zero-one-ai/Yi-34B-Chat"]


@pytest.fixture(scope="module")
def server(data_dir):
    with ReplayServer(table_dirs=[data_dir / "routerbench_subset"]) as srv:
        srv.wait_loaded(timeout=60)
        yield srv


@pytest.fixture(scope="module")
def rb_prompts(data_dir):
    t = load_table(data_dir / "routerbench_subset")
    return t.prompts.groupby("task", group_keys=False).head(8)["prompt"].tolist()


@pytest.fixture()
def router(server, tmp_path):
    return replay_router(
        server, POOL, store=SQLiteStore(tmp_path / "profiles.db"), retry=RetryPolicy(max_retries=0)
    )


def _check(resp, pool=POOL):
    assert (resp.model in pool and resp.model == resp.decision.chosen) or resp.attempts
    assert resp.content
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    assert resp.cost_usd > 0 and resp.latency_s > 0
    assert resp.decision.candidates and resp.decision.ranking[0] == resp.decision.chosen


def test_complete_acomplete_stream_astream(router, rb_prompts, server):
    msgs = [{"role": "user", "content": rb_prompts[0]}]
    r = router.complete(msgs, max_tokens=64)
    _check(r)
    assert server.request_count(r.model) >= 1
    # The recorded real answer of the chosen model is what came back.
    r2 = asyncio.run(router.acomplete(msgs, max_tokens=64))
    _check(r2)
    chunks = list(router.stream(msgs))
    assert chunks[-1].final and not any(c.final for c in chunks[:-1])
    final = chunks[-1].response
    _check(final)
    assert "".join(c.content for c in chunks[:-1]) == final.content
    assert final.ttft_s is not None and final.ttft_s <= final.latency_s

    async def collect():
        return [c async for c in router.astream(msgs)]

    achunks = asyncio.run(collect())
    assert achunks[-1].final
    _check(achunks[-1].response)


def test_routing_options_and_bypass(router, rb_prompts):
    d = router.route(rb_prompts[1], allowed_models=["gpt-3.5-turbo-1106", "zero-one-ai/Yi-34B-Chat"])
    assert set(d.ranking) == {"gpt-3.5-turbo-1106", "zero-one-ai/Yi-34B-Chat"}
    assert "gpt-4-1106-preview" in d.removed
    d = router.route(rb_prompts[1], denied_models=["gpt-4-1106-preview"])
    assert "gpt-4-1106-preview" not in d.ranking
    with pytest.raises(UnknownModelError, match="nope"):
        router.route("hi", allowed_models=["nope"])
    with pytest.raises(NoAdmissibleModelError, match="removed"):
        router.route("hi", allowed_models=["gpt-4-1106-preview"], denied_models=["gpt-4-1106-preview"])
    r = (
        router.complete("Say hi", model="claude-v1")
        if "claude-v1" in router.endpoints
        else router.complete("Say hi", model="zero-one-ai/Yi-34B-Chat")
    )
    assert r.decision.policy["mode"] == "forced" and r.model == r.decision.chosen
    text = str(router.route(rb_prompts[2]))
    assert "pred. quality" in text and "expected saving" in text


def test_plain_prompts_keep_the_context_window_check(router, rb_prompts):
    """A plain request that fits every context window skips the per-model constraint pass; one that
    does not is still filtered, with the reason named."""
    windows = {m: router.capabilities(m).context_window for m in router.models}
    known = {m: w for m, w in windows.items() if w}
    assert known, "the replay pool's LiteLLM names should carry context windows"
    smallest = min(known.values())
    assert router.route(rb_prompts[0]).removed == {}
    long_prompt = "word " * (4 * smallest + 400)  # over 5 × smallest tokens (4 characters per token)
    d = router.route(long_prompt)
    too_small = {m for m, w in known.items() if w < smallest + 450}
    assert too_small and too_small <= set(d.removed) and not too_small & set(d.ranking)
    assert all(d.removed[m].startswith(f"context window {known[m]} < prompt") for m in too_small)


def test_fallback_in_decision_order_and_feedback(router, rb_prompts, server, tmp_path):
    d = router.route(rb_prompts[3])
    first, second = d.ranking[0], d.ranking[1]
    server.set_behaviour(first, fail_rate=1.0, fail_status=500)
    try:
        r = router.complete(rb_prompts[3], request_id="req-fallback")
    finally:
        server.set_behaviour(first, fail_rate=0.0)
    assert r.model == second
    assert [a.model for a in r.attempts] == [first] and r.attempts[0].status_code == 500
    stats = router.store.get_stats(second)
    assert stats.n_calls >= 1 and stats.ewma_latency_s > 0 and stats.ewma_cost_usd > 0
    assert router.store.get_stats(first).n_errors == 1


def test_latency_feedback_moves_traffic(server, rb_prompts, tmp_path):
    """A model whose replayed latency is raised 5× is chosen less often under a latency weight."""
    pool = ["gpt-3.5-turbo-1106", "mistralai/mixtral-8x7b-chat"]
    router = replay_router(
        server, pool, store=SQLiteStore(tmp_path / "lat.db"), policy=Policy(lam=0.0, mu=0.5)
    )
    for m in pool:
        server.set_behaviour(m, latency_s=0.02)
    before = [router.route(p).chosen for p in rb_prompts]
    slow = max(pool, key=before.count)
    fast = next(m for m in pool if m != slow)
    server.set_behaviour(slow, latency_s=0.25)
    server.set_behaviour(fast, latency_s=0.05)
    try:
        for _ in range(6):
            router.complete("Say hi", model=slow)
            router.complete("Say hi", model=fast)
    finally:
        for m in pool:
            server.set_behaviour(m, latency_s=0.0)
    s_slow, s_fast = router.store.get_stats(slow), router.store.get_stats(fast)
    assert s_slow.n_calls == 6 and s_fast.n_calls == 6
    assert s_slow.ewma_latency_s > 2 * s_fast.ewma_latency_s
    after = [router.route(p).chosen for p in rb_prompts]
    assert after.count(slow) < before.count(slow), (before.count(slow), after.count(slow))


def test_errors_cool_a_model_down_and_it_comes_back(server, rb_prompts, tmp_path):
    router = replay_router(
        server,
        POOL,
        store=SQLiteStore(tmp_path / "cd.db"),
        retry=RetryPolicy(max_retries=0),
        cooldown_after=2,
        cooldown_s=1.0,
    )
    bad = router.route(rb_prompts[4]).chosen
    server.set_behaviour(bad, fail_rate=1.0, fail_status=503)
    try:
        for _ in range(2):
            r = router.complete(rb_prompts[4], allowed_models=None)
            assert r.model != bad
        d = router.route(rb_prompts[4])
        assert bad not in d.ranking and "circuit open" in d.removed[bad]
    finally:
        server.set_behaviour(bad, fail_rate=0.0)
    deadline = time.time() + 10
    while bad not in router.route(rb_prompts[4]).ranking:
        assert time.time() < deadline, "the model never came back after its cooldown"
        time.sleep(0.2)
    r = router.complete(rb_prompts[4], model=bad)
    assert r.model == bad and router.store.get_stats(bad).consecutive_errors == 0


def test_stickiness_escalates_only(router, rb_prompts):
    caps = {m: router.capability(m) for m in router.models}
    top = max(caps, key=caps.get)
    router.complete(rb_prompts[5], session_id="conv-1", model=None) if False else None
    r = router.complete(rb_prompts[5], session_id="conv-1", allowed_models=[top])
    assert r.model == top
    for p in rb_prompts[6:10]:
        d = router.route(p, session_id="conv-1")
        assert all(caps[m] >= caps[top] for m in d.ranking)
        assert d.sticky


def test_onboard_leaves_everything_else_identical_and_record_quality(server, rb_prompts, tmp_path, data_dir):
    router = replay_router(server, POOL, store=SQLiteStore(tmp_path / "q.db"))
    space_before = json.dumps(
        __import__("zerorouter_integrations.artifact", fromlist=["x"]).space_to_dict(router.predictor.space_),
        sort_keys=True,
    )
    profiles_before = {
        m: json.dumps(p.to_dict(), sort_keys=True) for m, p in router.predictor.profiles_.items()
    }
    t = load_table(data_dir / "routerbench_subset")
    ids = t.prompt_ids[:60]
    scores = t.scores(ids, ["claude-v2"])[:, 0]
    ok = ~np.isnan(scores)
    texts = [x for x, keep in zip(t.texts(ids), ok) if keep]
    picked = router.select_anchors(texts, k=20)
    assert len(set(picked)) == 20
    from zerorouter_integrations.testing.fixtures import replay_endpoints

    ep = replay_endpoints(server, ["claude-v2"])["claude-v2"]
    profile = router.onboard("claude-v2-new", [texts[i] for i in picked], scores[ok][picked], endpoint=ep)
    assert profile.ability.n_obs == 20 and "claude-v2-new" in router.models
    assert (
        json.dumps(
            __import__("zerorouter_integrations.artifact", fromlist=["x"]).space_to_dict(
                router.predictor.space_
            ),
            sort_keys=True,
        )
        == space_before
    )
    for m, before in profiles_before.items():
        assert json.dumps(router.predictor.profiles_[m].to_dict(), sort_keys=True) == before
    # Quality feedback: a thumbs-down lowers the chosen model's predicted quality on similar prompts.
    r = router.complete(rb_prompts[0])
    q_before = router.predictor.predict(Z=np.asarray([r.decision.latent]), models=[r.model]).quality[0, 0]
    for _ in range(5):
        router.record_quality(r.request_id, 0.0)
    q_after = router.predictor.predict(Z=np.asarray([r.decision.latent]), models=[r.model]).quality[0, 0]
    assert q_after < q_before
    assert len(router.store.quality_observations(r.model)) == 5
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        router.record_quality(r.request_id, 2)
    with pytest.raises(KeyError, match="unknown request_id"):
        router.record_quality("nope", 1.0)


def test_route_batch_respects_budget_and_target(router, rb_prompts):
    res = router.route_batch(rb_prompts, mode="min_cost", quality_target=0.8)
    assert res.mean_quality >= 0.8 - 1e-9
    cheapest = router.route_batch(rb_prompts, mode="min_cost", quality_target=0.0).total_cost
    budget = (cheapest + res.total_cost) / 2
    res2 = router.route_batch(rb_prompts, mode="max_quality", budget_usd=budget)
    assert res2.total_cost <= budget + 1e-12 and res2.status == "optimal"
    from zerorouter_integrations.errors import InfeasibleError

    with pytest.raises(InfeasibleError, match="cheapest possible") as err:
        router.route_batch(rb_prompts, mode="max_quality", budget_usd=cheapest / 2)
    assert err.value.best_value == pytest.approx(cheapest)


def test_default_loads_and_routes_offline_with_sockets_disabled(tmp_path):
    code = (
        "import socket\n"
        "def _blocked(*a, **k):\n"
        "    raise RuntimeError('network access attempted')\n"
        "socket.socket.connect = _blocked\n"
        "socket.create_connection = _blocked\n"
        "socket.getaddrinfo = _blocked\n"
        "from zerorouter_integrations.artifact import RouterArtifact, DEFAULT_ARTIFACT\n"
        "a = RouterArtifact.load(DEFAULT_ARTIFACT)\n"
        "from zerorouter_integrations.router import ZeroRouter\n"
        "r = ZeroRouter(a, endpoints={})\n"
        "d = r.route('What is 12 * 7? Answer with a number.')\n"
        "print('chosen', d.chosen, len(r.models))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert lines["chosen"].split()[0]
    assert int(lines["chosen"].split()[1]) == 83
