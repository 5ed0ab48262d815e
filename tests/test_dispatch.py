"""Dispatcher: real LiteLLM calls to a local replay server; retries, fallback, streams, cost, callbacks."""

from __future__ import annotations

import json
import socket

import pytest

from zerorouter_integrations.dispatch import (
    Attempt,
    Dispatcher,
    DispatchResult,
    ModelEndpoint,
    RetryPolicy,
    StreamDelta,
    StreamEnd,
    Usage,
)
from zerorouter_integrations.errors import (
    AllModelsFailedError,
    NoAdmissibleModelError,
    SchemaError,
    UnknownModelError,
)
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer

IN_PRICE, OUT_PRICE = 1e-6, 2e-6
MAGIC_TOOL = {
    "type": "function",
    "function": {
        "name": "magic_function",
        "description": "Apply a magic function to an input.",
        "parameters": {"type": "object", "properties": {"input": {"type": "integer"}}, "required": ["input"]},
    },
}
FAILING = {
    "f500": ModelBehaviour(fail_rate=1.0, fail_status=500),
    "f503": ModelBehaviour(fail_rate=1.0, fail_status=503),
    "f429": ModelBehaviour(fail_rate=1.0, fail_status=429),
    "hang": ModelBehaviour(fail_rate=1.0, fail_mode="timeout", hang_s=3),
    "close": ModelBehaviour(fail_rate=1.0, fail_mode="close"),
    "f400": ModelBehaviour(fail_rate=1.0, fail_status=400),
    "ctx": ModelBehaviour(
        fail_rate=1.0,
        fail_status=400,
        fail_message="This model's maximum context length is 8 tokens, you requested 9.",
    ),
    "mid": ModelBehaviour(fail_rate=1.0, fail_mode="midstream"),
}
RETRY = RetryPolicy(max_retries=1, backoff_s=0.0, timeout_s=5.0)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def server():
    models = {
        "ok": ModelBehaviour(),
        "ok2": ModelBehaviour(),
        "gpt-4o-mini": ModelBehaviour(),
        "mystery": ModelBehaviour(),
        **FAILING,
    }
    with ReplayServer(models) as srv:
        yield srv


@pytest.fixture(scope="module")
def endpoints(server):
    eps = {
        name: ModelEndpoint(
            name,
            f"openai/{name}",
            api_base=server.base_url,
            api_key="sk-test",
            input_cost_per_token=IN_PRICE,
            output_cost_per_token=OUT_PRICE,
        )
        for name in ["ok", "ok2", *FAILING]
    }
    # priced by LiteLLM's own map / not priced at all
    eps["gpt-4o-mini"] = ModelEndpoint(
        "gpt-4o-mini", "openai/gpt-4o-mini", api_base=server.base_url, api_key="sk-test"
    )
    eps["mystery"] = ModelEndpoint("mystery", "openai/mystery", api_base=server.base_url, api_key="sk-test")
    eps["refused"] = ModelEndpoint(
        "refused", "openai/refused", api_base=f"http://127.0.0.1:{_closed_port()}/v1", api_key="sk-test"
    )
    return eps


@pytest.fixture()
def dispatcher(endpoints):
    return Dispatcher(endpoints, retry=RETRY)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _check(result: DispatchResult, model: str) -> None:
    assert result.model == model
    assert result.content and isinstance(result.content, str)
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    expected = result.usage.input_tokens * IN_PRICE + result.usage.output_tokens * OUT_PRICE
    assert result.cost_usd == pytest.approx(expected) and result.cost_usd > 0 and result.cost_known
    assert result.latency_s > 0 and result.ttft_s is not None and 0 < result.ttft_s <= result.latency_s
    assert result.finish_reason == "stop"


def _collect(events) -> tuple[list[StreamDelta], DispatchResult]:
    events = list(events)
    assert isinstance(events[-1], StreamEnd)
    assert all(isinstance(e, StreamDelta) for e in events[:-1])
    return events[:-1], events[-1].result


async def _acollect(agen) -> tuple[list[StreamDelta], DispatchResult]:
    return _collect([e async for e in agen])


# ---------------------------------------------------------------- the four call shapes


def test_complete(dispatcher, server):
    result = dispatcher.complete(["ok"], user("hello"))
    _check(result, "ok")
    assert result.attempts == [] and result.tool_calls == []
    assert result.response.choices[0].message.content == result.content
    assert result.ttft_s == result.latency_s


async def test_acomplete(dispatcher):
    _check(await dispatcher.acomplete(["ok2", "ok"], user("hello")), "ok2")


def test_stream(dispatcher):
    deltas, result = _collect(dispatcher.stream(["ok"], user("hello stream")))
    _check(result, "ok")
    assert "".join(d.content_delta for d in deltas) == result.content
    assert all(d.model == "ok" for d in deltas) and len(deltas) > 1
    assert result.response.choices[0].message.content == result.content
    assert result.content == dispatcher.complete(["ok"], user("hello stream")).content


async def test_astream(dispatcher):
    deltas, result = await _acollect(dispatcher.astream(["ok"], user("hello stream")))
    _check(result, "ok")
    assert "".join(d.content_delta for d in deltas) == result.content


# ---------------------------------------------------------------- fallback


@pytest.mark.parametrize(
    ("failing", "error_type"),
    [
        ("f500", "server_error"),
        ("f503", "server_error"),
        ("f429", "rate_limit"),
        ("close", "connection_error"),
        ("refused", "connection_error"),
    ],
)
def test_retryable_errors_retry_then_fall_back(dispatcher, server, failing, error_type):
    before = server.request_count(failing)
    result = dispatcher.complete([failing, "ok"], user("fallback please"))
    _check(result, "ok")
    assert [(a.model, a.error_type, a.retryable) for a in result.attempts] == [
        (failing, error_type, True)
    ] * 2
    assert all(isinstance(a, Attempt) and a.latency_s >= 0 for a in result.attempts)
    if failing != "refused":
        assert server.request_count(failing) - before == 2  # one try + one retry, no hidden SDK retries


def test_timeout_falls_back(endpoints):
    d = Dispatcher(endpoints, retry=RetryPolicy(max_retries=0, backoff_s=0.0, timeout_s=0.3))
    result = d.complete(["hang", "ok"], user("slow"))
    assert result.model == "ok"
    assert [(a.model, a.error_type) for a in result.attempts] == [("hang", "timeout")]


async def test_async_fallback_in_order(dispatcher):
    result = await dispatcher.acomplete(["f500", "f429", "ok2"], user("x"))
    assert result.model == "ok2"
    assert [a.model for a in result.attempts] == ["f500", "f500", "f429", "f429"]


@pytest.mark.parametrize(
    ("failing", "error_type", "status"),
    [
        ("f400", "bad_request", 400),
        ("ctx", "context_window_exceeded", 400),
    ],
)
def test_non_retryable_errors_skip_to_next_model(dispatcher, server, failing, error_type, status):
    before = server.request_count(failing)
    result = dispatcher.complete([failing, "ok"], user("x"))
    assert result.model == "ok"
    assert [(a.model, a.error_type, a.status_code, a.retryable) for a in result.attempts] == [
        (failing, error_type, status, False)
    ]
    assert server.request_count(failing) - before == 1


def test_all_fail_lists_every_attempt(dispatcher):
    with pytest.raises(AllModelsFailedError) as info:
        dispatcher.complete(["f500", "f400", "refused"], user("x"))
    attempts = info.value.attempts
    assert [(a.model, a.error_type) for a in attempts] == [
        ("f500", "server_error"),
        ("f500", "server_error"),
        ("f400", "bad_request"),
        ("refused", "connection_error"),
        ("refused", "connection_error"),
    ]
    for name in ("f500", "f400", "refused"):
        assert name in str(info.value)


async def test_async_all_fail(dispatcher):
    with pytest.raises(AllModelsFailedError) as info:
        await dispatcher.acomplete(["f400", "ctx"], user("x"))
    assert [a.error_type for a in info.value.attempts] == ["bad_request", "context_window_exceeded"]


def test_stream_falls_back_before_first_delta(dispatcher):
    deltas, result = _collect(dispatcher.stream(["f500", "close", "ok"], user("x")))
    assert result.model == "ok" and [a.model for a in result.attempts] == ["f500", "f500", "close", "close"]
    assert all(d.model == "ok" for d in deltas)


async def test_astream_falls_back_before_first_delta(dispatcher):
    _, result = await _acollect(dispatcher.astream(["f429", "ok2"], user("x")))
    assert result.model == "ok2" and len(result.attempts) == 2


def test_stream_error_after_first_delta_propagates(dispatcher, server):
    before = server.request_count("ok")
    got = []
    with pytest.raises(Exception) as info:
        for event in dispatcher.stream(["mid", "ok"], user("x")):
            got.append(event)
    assert not isinstance(info.value, AllModelsFailedError)
    assert got and all(isinstance(e, StreamDelta) and e.model == "mid" for e in got)
    assert server.request_count("ok") == before  # no fallback once text was yielded


async def test_astream_error_after_first_delta_propagates(dispatcher):
    got = []
    with pytest.raises(Exception) as info:
        async for event in dispatcher.astream(["mid", "ok"], user("x")):
            got.append(event)
    assert not isinstance(info.value, AllModelsFailedError) and got


# ---------------------------------------------------------------- params, tools, cost


def test_params_pass_through(dispatcher):
    short = dispatcher.complete(["ok"], user("x"), max_tokens=2, temperature=0.0)
    assert short.finish_reason == "length" and len(short.content) <= 8
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    js = dispatcher.complete(
        ["ok"],
        user("give me 42"),
        response_format={"type": "json_schema", "json_schema": {"name": "N", "schema": schema}},
    )
    assert json.loads(js.content) == {"n": 42}


def test_tool_calls_non_stream(dispatcher):
    result = dispatcher.complete(
        ["ok"], user("What is magic_function(3)?"), tools=[MAGIC_TOOL], tool_choice="auto"
    )
    (tc,) = result.tool_calls
    assert tc["type"] == "function" and tc["id"].startswith("call_")
    assert tc["function"]["name"] == "magic_function" and json.loads(tc["function"]["arguments"]) == {
        "input": 3
    }
    assert result.finish_reason == "tool_calls"


def test_streamed_tool_calls_assembled(dispatcher):
    deltas, result = _collect(
        dispatcher.stream(["f500", "ok"], user("What is magic_function(3)?"), tools=[MAGIC_TOOL])
    )
    assert result.model == "ok" and result.finish_reason == "tool_calls"
    (tc,) = result.tool_calls
    assert tc["function"]["name"] == "magic_function" and json.loads(tc["function"]["arguments"]) == {
        "input": 3
    }
    assert tc["id"].startswith("call_")
    assert sum(len(d.tool_call_deltas) for d in deltas) >= 2  # arguments arrived in pieces
    assert all(td["index"] == 0 for d in deltas for td in d.tool_call_deltas)
    assert result.response.choices[0].message.tool_calls[0].function.name == "magic_function"
    assert result.ttft_s is not None and result.cost_usd > 0


async def test_astreamed_tool_calls_assembled(dispatcher):
    _, result = await _acollect(dispatcher.astream(["ok"], user("magic_function(5)"), tools=[MAGIC_TOOL]))
    assert json.loads(result.tool_calls[0]["function"]["arguments"]) == {"input": 5}


def test_cost_from_litellm_map_or_unknown(dispatcher):
    known = dispatcher.complete(["gpt-4o-mini"], user("x"))
    assert known.cost_known and known.cost_usd > 0
    streamed = _collect(dispatcher.stream(["gpt-4o-mini"], user("x")))[1]
    assert streamed.cost_known and streamed.cost_usd > 0
    unknown = dispatcher.complete(["mystery"], user("x"))
    assert unknown.cost_usd == 0.0 and not unknown.cost_known
    assert not _collect(dispatcher.stream(["mystery"], user("x")))[1].cost_known


# ---------------------------------------------------------------- callbacks, keys, validation


def test_callbacks_invoked_and_isolated(endpoints):
    seen: list[tuple] = []

    def on_success(model: str, result: DispatchResult) -> None:
        seen.append(("ok", model, result.cost_usd))
        raise RuntimeError("a broken callback must not break the call")

    def on_error(model: str, attempt: Attempt) -> None:
        seen.append(("err", model, attempt.error_type))
        raise RuntimeError("nor this one")

    d = Dispatcher(endpoints, retry=RETRY, on_success=on_success, on_error=on_error)
    result = d.complete(["f500", "f400", "ok"], user("x"))
    assert result.model == "ok"
    assert seen == [
        ("err", "f500", "server_error"),
        ("err", "f500", "server_error"),
        ("err", "f400", "bad_request"),
        ("ok", "ok", result.cost_usd),
    ]
    seen.clear()
    _collect(d.stream(["ok"], user("x")))
    assert seen == [("ok", "ok", pytest.approx(seen[0][2]))]


def test_api_key_env_read_at_call_time(monkeypatch):
    with ReplayServer(require_api_key="sk-from-env") as srv:
        ep = ModelEndpoint("m", "openai/m", api_base=srv.base_url, api_key_env="ZR_TEST_KEY")
        d = Dispatcher({"m": ep}, retry=RETRY)
        monkeypatch.setenv("ZR_TEST_KEY", "sk-wrong")
        with pytest.raises(AllModelsFailedError) as info:
            d.complete(["m"], user("x"))
        assert [a.error_type for a in info.value.attempts] == ["authentication"]  # not retried
        monkeypatch.setenv("ZR_TEST_KEY", "sk-from-env")
        assert d.complete(["m"], user("x")).model == "m"


def test_order_validation(dispatcher):
    with pytest.raises(UnknownModelError, match="nope"):
        dispatcher.complete(["ok", "nope"], user("x"))
    with pytest.raises(NoAdmissibleModelError):
        dispatcher.complete([], user("x"))


def test_endpoint_round_trip_and_validation():
    ep = ModelEndpoint(
        "m", "openai/m", api_base="http://h/v1", api_key_env="K", input_cost_per_token=1e-7, extra={"seed": 1}
    )
    assert ModelEndpoint.from_dict(json.loads(json.dumps(ep.to_dict()))) == ep
    assert hash(ep) == hash(ModelEndpoint.from_dict(ep.to_dict()))
    with pytest.raises(SchemaError, match="bogus"):
        ModelEndpoint.from_dict({**ep.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="litellm_model"):
        ModelEndpoint("m", "")
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


def test_usage_from_litellm_shapes():
    u = Usage.from_litellm(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2},
        }
    )
    assert u == Usage(10, 5, 15, 4, 2)
    assert Usage.from_litellm(None) == Usage()
