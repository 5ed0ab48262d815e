"""Issue 14, items 1, 2, 3 and 5: circuit breaker, error classes, stream fallback, input hygiene.

Every test runs real calls through LiteLLM against the replay server's fault injection.
"""

from __future__ import annotations

import time

import pytest

from zerorouter_integrations.dispatch import ModelEndpoint, RetryPolicy
from zerorouter_integrations.errors import (
    AllModelsFailedError,
    CallerError,
    StreamInterruptedError,
    ZeroRouterError,
)
from zerorouter_integrations.stores import MemoryStore
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer
from zerorouter_integrations.testing.fixtures import replay_endpoints, replay_router

POOL = ["gpt-3.5-turbo-1106", "claude-instant-v1", "mistralai/mixtral-8x7b-chat"]
PROMPT = "Translate 'good morning' into French."


@pytest.fixture()
def server():
    with ReplayServer({m: ModelBehaviour() for m in POOL}, seed=1) as srv:
        yield srv


def _router(server, **kwargs):
    kwargs.setdefault("retry", RetryPolicy(max_retries=2, backoff_s=0.0, timeout_s=5.0))
    return replay_router(server, POOL, store=MemoryStore(), **kwargs)


def _with_endpoints(eps):
    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
    from zerorouter_integrations.router import ZeroRouter

    return ZeroRouter(RouterArtifact.load(DEFAULT_ARTIFACT), models=POOL, endpoints=eps, store=MemoryStore())


def _first(router) -> str:
    return router.route(PROMPT).chosen


# ---------------------------------------------------------------------------------------- item 1
def test_circuit_counts_calls_not_retries_opens_probes_and_closes(server):
    router = _router(server, cooldown_after=2, cooldown_s=3.0)
    top = _first(router)
    server.set_behaviour(top, fail_rate=1.0, fail_status=503)
    r = router.complete(PROMPT)
    assert r.model != top and sum(a.model == top for a in r.attempts) == 3  # one call, three tries
    st = router.store.get_stats(top)
    assert st.n_errors == 1 and st.consecutive_errors == 1 and st.cooldown_until == 0.0
    router.complete(PROMPT)  # the second failed call opens the circuit
    d = router.route(PROMPT)
    assert top not in d.ranking and "circuit open" in d.removed[top]
    assert router.health()["models"][top]["state"] == "open"
    before = server.request_count(top)
    assert router.complete(PROMPT).model != top and server.request_count(top) == before  # skipped
    time.sleep(max(0.0, router.store.get_stats(top).cooldown_until - time.time()) + 0.05)
    server.set_behaviour(top, fail_rate=0.0)
    probe = router.route(PROMPT)  # half-open: admitted to one probe
    assert top in probe.ranking
    assert "probe" in router.route(PROMPT).removed[top]  # while that probe is in flight
    r = router.complete(PROMPT, allowed_models=[top])
    assert r.model == top  # the probe succeeded: closed
    assert (
        router.health()["models"][top]["state"] == "closed"
        and router.store.get_stats(top).cooldown_until == 0
    )


def test_retry_after_is_honoured_and_the_pool_is_never_empty(server):
    router = _router(server, cooldown_after=3, cooldown_s=30.0)
    top = _first(router)
    server.set_behaviour(top, fail_rate=1.0, fail_status=429, retry_after_s=5)
    r = router.complete(PROMPT)
    assert r.model != top and sum(a.model == top for a in r.attempts) == 1  # no retry into Retry-After
    st = router.store.get_stats(top)
    assert st.consecutive_errors == 1 and st.cooldown_until > time.time() + 4  # honoured after one call
    # every model open: the one whose cooldown ends first is tried, and the decision says so
    for m in POOL:
        server.set_behaviour(m, fail_rate=1.0, fail_status=500)
    with pytest.raises(AllModelsFailedError):
        for _ in range(4):
            router.complete(PROMPT)
    for m in POOL:
        for _ in range(3):
            router.store.record_error(m, error_type="server_error", cooldown_after=3, cooldown_s=30.0)
    ends = {m: router.store.get_stats(m).cooldown_until for m in POOL}
    d = router.route(PROMPT)
    assert d.chosen == min(ends, key=ends.get) and d.notes and "cooldown ends first" in d.notes[0]
    server.set_behaviour(d.chosen, fail_rate=0.0)
    assert router.complete(PROMPT).model == d.chosen


# ---------------------------------------------------------------------------------------- item 2
@pytest.mark.parametrize(
    ("messages", "params", "field"),
    [
        ([{"role": "user", "content": 42}], {}, "messages[0].content"),
        ([{"role": "user", "content": [{"type": "text", "text": 7}]}], {}, "messages[0].content[0].text"),
        ([{"role": "user", "content": [{"type": "hologram"}]}], {}, "messages[0].content[0].type"),
        ([{"role": "wizard", "content": "hi"}], {}, "messages[0].role"),
        (
            [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"function": {"name": "f", "arguments": {}}}],
                },
            ],
            {},
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}],
            {},
            "messages[1].tool_call_id",
        ),
        ("hello", {"temperature": object()}, "temperature"),
        ("hello", {"temperature": float("nan")}, "temperature"),
        ([], {}, "messages"),
        ([{"role": "user", "content": ""}, {"role": "assistant", "content": ""}], {}, "messages"),
        ("lone \ud800 surrogate", {}, "messages[0].content"),
    ],
)
def test_caller_errors_are_raised_before_any_model_is_called(server, messages, params, field):
    router = _router(server)
    for call in (router.complete, lambda m, **kw: list(router.stream(m, **kw))):
        with pytest.raises(CallerError) as err:
            call(messages, **params)
        assert err.value.field == field and field.split(".")[-1].split("[")[0] in str(err.value)
    assert server.request_count() == 0 and router.store.all_stats() == {}  # never charged to a model


def test_configuration_errors_mark_the_model_and_rejections_leave_health_alone(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    eps = replay_endpoints(server, POOL)
    top = _first(_router(server))
    others = [m for m in POOL if m != top]
    eps[top] = ModelEndpoint(
        top, f"openai/{top}", api_base=server.base_url, input_cost_per_token=1e-7
    )  # no key
    router = _with_endpoints(eps)
    r = router.complete(PROMPT)
    assert r.model != top and r.attempts[0].kind == "configuration" and len(r.attempts) == 1
    d = router.route(PROMPT)
    assert top not in d.ranking and "API key" in d.removed[top]
    assert router.store.get_stats(top) is None  # not a health failure
    # a request-specific rejection (context length): fall back, health untouched
    second = d.chosen
    server.set_behaviour(
        second, fail_rate=1.0, fail_status=400, fail_message="maximum context length exceeded"
    )
    r = router.complete(PROMPT)
    assert r.model in others and r.model != second and r.attempts[0].kind == "rejected"
    assert router.store.get_stats(second).n_errors == 0
    assert second in router.route(PROMPT).ranking
    # unknown provider string: a configuration error too
    eps2 = replay_endpoints(server, POOL)
    eps2[others[0]] = ModelEndpoint(others[0], "no-such-provider/x", api_key="k", input_cost_per_token=1e-7)
    r2 = _with_endpoints(eps2)
    with pytest.raises(ZeroRouterError):
        r2.complete(PROMPT, allowed_models=[others[0]])
    assert "provider prefix" in r2.route(PROMPT).removed[others[0]]


# ---------------------------------------------------------------------------------------- item 3
def test_stream_falls_back_before_content_and_raises_with_partial_text_after(server):
    router = _router(server, retry=RetryPolicy(max_retries=0, backoff_s=0.0, timeout_s=5.0))
    top = _first(router)
    server.set_behaviour(top, fail_rate=1.0, fail_mode="close")
    chunks = list(router.stream(PROMPT))
    assert chunks[-1].final and chunks[-1].response.model != top
    assert all(c.model != top for c in chunks) and "".join(c.content for c in chunks)
    server.set_behaviour(top, fail_rate=1.0, fail_mode="midstream", tokens_per_s=2000.0)
    got = []
    with pytest.raises(StreamInterruptedError) as err:
        for c in router.stream(PROMPT, allowed_models=[top]):
            got.append(c.content)
    assert err.value.model == top and err.value.partial_text == "".join(got) and err.value.partial_text
    assert err.value.cause is not None


# ---------------------------------------------------------------------------------------- item 5
def test_hostile_text_is_routed_and_system_only_conversations_route(server):
    router = _router(server)
    for text in ("lone \ud800 surrogate", "\udfff", "a\x00b\ufffe\U0010ffff", "é" * 3000):
        d = router.route(text)
        assert d.chosen in POOL
    r = router.complete([{"role": "system", "content": "You are terse. Say hello."}])
    assert r.content
    with pytest.raises(CallerError):
        router.route([{"role": "system", "content": ""}])
