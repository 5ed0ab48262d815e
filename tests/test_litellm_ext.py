"""LiteLLM Router integration: zerorouter's ranking picks the deployment; the callback reports outcomes."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from zerorouter_integrations._env import import_litellm
from zerorouter_integrations.errors import NoAdmissibleModelError
from zerorouter_integrations.litellm_ext import deployment_keys, deployment_name, match_deployment
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer

GROUP = "zerorouter"


@pytest.fixture(scope="module")
def litellm():
    return import_litellm()


@pytest.fixture(scope="module")
def server():
    with ReplayServer(
        {
            "cheap": ModelBehaviour(),
            "mid": ModelBehaviour(),
            "strong": ModelBehaviour(),
            "flaky": ModelBehaviour(fail_rate=1.0),
        }
    ) as srv:
        yield srv


def model_list(server) -> list[dict]:
    prices = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    return [
        # matched by the explicit model_info["zerorouter_name"]
        {
            "model_name": GROUP,
            "litellm_params": server.litellm_params("cheap", **prices),
            "model_info": {"id": "dep-cheap", "zerorouter_name": "cheap"},
        },
        # matched by model_info["id"]
        {
            "model_name": GROUP,
            "litellm_params": server.litellm_params("mid", **prices),
            "model_info": {"id": "mid-deployment"},
        },
        # matched by litellm_params["model"] without its provider prefix
        {
            "model_name": GROUP,
            "litellm_params": server.litellm_params("strong", **prices),
            "model_info": {"id": "dep-strong"},
        },
        {
            "model_name": GROUP,
            "litellm_params": server.litellm_params("flaky", **prices),
            "model_info": {"id": "dep-flaky", "zerorouter_name": "flaky"},
        },
    ]


class Ranker:
    """A stand-in for ZeroRouter.route: ranks by a keyword in the last message."""

    def __init__(self) -> None:
        self.calls: list[list] = []

    def __call__(self, messages: list) -> list[str]:
        self.calls.append(messages)
        text = messages[-1]["content"]
        if "hard" in text:
            return ["strong", "mid", "cheap"]
        if "medium" in text:
            return ["mid-deployment", "cheap"]
        if "flaky" in text:
            return ["flaky", "mid-deployment"]
        return ["cheap", "strong"]


@pytest.fixture()
def router(litellm, server):
    from zerorouter_integrations.litellm_ext import ZeroRouterStrategy

    r = litellm.Router(model_list=model_list(server), num_retries=0, allowed_fails=0, cooldown_time=60)
    ranker = Ranker()
    strategy = ZeroRouterStrategy(ranker).attach(r)
    r.ranker, r.strategy = ranker, strategy
    yield r
    r.discard()


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _counts(server) -> dict[str, int]:
    return {m: server.request_count(m) for m in ("cheap", "mid", "strong", "flaky")}


@pytest.mark.parametrize(
    ("text", "model", "model_id"),
    [
        ("an easy one", "cheap", "dep-cheap"),
        ("a medium one", "mid", "mid-deployment"),
        ("a hard one", "strong", "dep-strong"),
    ],
)
def test_sync_router_uses_top_ranked_deployment(router, server, text, model, model_id):
    before = _counts(server)
    resp = router.completion(model=GROUP, messages=user(text))
    after = _counts(server)
    assert {m: after[m] - before[m] for m in after} == {m: int(m == model) for m in after}
    assert resp._hidden_params["model_id"] == model_id
    assert resp.choices[0].message.content.startswith(f"{model} says")
    assert router.ranker.calls[-1] == user(text)


async def test_async_router_uses_top_ranked_deployment(router, server):
    before = _counts(server)
    hard, easy = await asyncio.gather(
        router.acompletion(model=GROUP, messages=user("hard")),
        router.acompletion(model=GROUP, messages=user("easy")),
    )
    assert hard._hidden_params["model_id"] == "dep-strong" and easy._hidden_params["model_id"] == "dep-cheap"
    after = _counts(server)
    assert after["strong"] - before["strong"] == 1 and after["cheap"] - before["cheap"] == 1

    stream = await router.acompletion(model=GROUP, messages=user("medium"), stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.startswith("mid says")


def test_cooling_down_deployment_is_skipped(router, server, litellm):
    with pytest.raises(Exception):
        router.completion(model=GROUP, messages=user("flaky"))  # 500, and dep-flaky goes to cooldown
    before = _counts(server)
    for _ in range(2):
        resp = router.completion(model=GROUP, messages=user("flaky again"))
        assert resp._hidden_params["model_id"] == "mid-deployment"
    assert server.request_count("flaky") == before["flaky"]


async def test_async_cooling_down_deployment_is_skipped(router, server):
    with pytest.raises(Exception):
        await router.acompletion(model=GROUP, messages=user("flaky"))
    resp = await router.acompletion(model=GROUP, messages=user("flaky again"))
    assert resp._hidden_params["model_id"] == "mid-deployment"


def test_unmatched_ranking_falls_back_or_raises(litellm, server):
    from zerorouter_integrations.litellm_ext import ZeroRouterStrategy

    r = litellm.Router(model_list=model_list(server), num_retries=0)
    try:
        lenient = ZeroRouterStrategy(lambda m: ["not-a-model"]).attach(r)
        dep = lenient.get_available_deployment(GROUP, messages=user("x"), request_kwargs={})
        assert dep["model_info"]["id"] == "dep-cheap"  # the group's first deployment
        strict = ZeroRouterStrategy(lambda m: ["not-a-model"], fallback="error").attach(r)
        with pytest.raises(NoAdmissibleModelError, match="not-a-model"):
            strict.get_available_deployment(GROUP, messages=user("x"), request_kwargs={})
        with pytest.raises(NoAdmissibleModelError):
            asyncio.run(strict.async_get_available_deployment(GROUP, messages=user("x"), request_kwargs={}))
    finally:
        r.discard()


def test_async_select_is_used_on_the_async_path(litellm, server):
    from zerorouter_integrations.litellm_ext import ZeroRouterStrategy

    async def aselect(messages):
        return ["strong"]

    r = litellm.Router(model_list=model_list(server), num_retries=0)
    try:
        ZeroRouterStrategy(lambda m: ["cheap"], aselect=aselect).attach(r)
        assert r.completion(model=GROUP, messages=user("x"))._hidden_params["model_id"] == "dep-cheap"
        resp = asyncio.run(r.acompletion(model=GROUP, messages=user("x")))
        assert resp._hidden_params["model_id"] == "dep-strong"
    finally:
        r.discard()


def test_naming_convention_helpers():
    deps = [
        {
            "model_name": GROUP,
            "litellm_params": {"model": "openai/a"},
            "model_info": {"id": "1", "zerorouter_name": "b"},
        },
        {"model_name": GROUP, "litellm_params": {"model": "openai/b"}, "model_info": {"id": "2"}},
    ]
    assert deployment_keys(deps[1]) == ["2", "openai/b", "b"]
    assert deployment_name(deps[0]) == "b" and deployment_name(deps[1]) == "b"
    # an explicit zerorouter_name wins over a model string that happens to be equal
    assert match_deployment(["b"], deps) is deps[0]
    assert match_deployment(["openai/b"], deps) is deps[1]
    assert match_deployment(["zzz", "2"], deps) is deps[1]
    assert match_deployment(["zzz"], deps) is None


# ---------------------------------------------------------------- callback


def _wait_for(events: list, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout  # sync LiteLLM callbacks run in a worker thread
    while len(events) < n and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture()
def callback(litellm):
    from zerorouter_integrations.litellm_ext import ZeroRouterCallback

    events: list[tuple] = []
    lock = threading.Lock()

    def on_success(model, result):
        with lock:
            events.append(("ok", model, result))

    def on_error(model, attempt):
        with lock:
            events.append(("err", model, attempt))

    cb = ZeroRouterCallback(on_success=on_success, on_error=on_error).register()
    cb.events = events
    yield cb
    cb.unregister()
    assert cb not in litellm.logging_callback_manager.get_all_callbacks()


def test_callback_receives_cost_and_latency_sync(router, callback):
    resp = router.completion(model=GROUP, messages=user("hard"))
    _wait_for(callback.events, 1)
    assert len(callback.events) == 1
    kind, model, result = callback.events[0]
    assert (kind, model) == ("ok", "strong")
    expected = resp.usage.prompt_tokens * 1e-6 + resp.usage.completion_tokens * 2e-6
    assert result.cost_usd == pytest.approx(expected) and result.cost_known
    assert result.latency_s > 0 and result.ttft_s == result.latency_s
    assert result.usage.output_tokens == resp.usage.completion_tokens
    assert result.content == resp.choices[0].message.content


async def test_callback_receives_cost_latency_ttft_async_and_errors(router, callback):
    stream = await router.acompletion(
        model=GROUP, messages=user("easy"), stream=True, stream_options={"include_usage": True}
    )
    async for _ in stream:
        pass
    with pytest.raises(Exception):
        await router.acompletion(model=GROUP, messages=user("flaky"))
    for _ in range(200):
        if {e[0] for e in callback.events} == {"ok", "err"}:
            break
        await asyncio.sleep(0.02)
    ok = [e for e in callback.events if e[0] == "ok"]
    err = [e for e in callback.events if e[0] == "err"]
    assert len(ok) == 1 and ok[0][1] == "cheap"
    result = ok[0][2]
    assert result.cost_usd > 0 and result.latency_s > 0
    assert result.ttft_s is not None and 0 <= result.ttft_s <= result.latency_s
    assert len(err) == 1 and err[0][1] == "flaky"
    assert err[0][2].error_type == "server_error" and err[0][2].status_code == 500
