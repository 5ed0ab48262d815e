"""``ZEROROUTER_API_BASE``: one OpenAI-compatible server for every pool model (real LiteLLM, replay server)."""

from __future__ import annotations

import pytest

from zerorouter_integrations.endpoints import API_BASE_ENV, API_KEY_ENV, PLACEHOLDER_KEY, api_base_from_env
from zerorouter_integrations.testing import ReplayServer

POOL = ["gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"]


def test_unset_or_empty_means_no_gateway_and_a_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_BASE_ENV, raising=False)
    assert api_base_from_env() is None
    monkeypatch.setenv(API_BASE_ENV, "  ")
    assert api_base_from_env() is None
    monkeypatch.setenv(API_BASE_ENV, "http://127.0.0.1:4000/v1/")
    assert api_base_from_env() == "http://127.0.0.1:4000/v1"
    monkeypatch.setenv(API_BASE_ENV, "127.0.0.1:4000")
    with pytest.raises(ValueError, match=r"ZEROROUTER_API_BASE='127\.0\.0\.1:4000'.*base URL"):
        api_base_from_env()


def test_every_pool_model_goes_to_the_server_with_the_key_read_at_call_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zerorouter_integrations.dispatch import ModelEndpoint
    from zerorouter_integrations.errors import ZeroRouterError
    from zerorouter_integrations.router import ZeroRouter

    with ReplayServer(require_api_key="sk-gw") as server:
        monkeypatch.setenv(API_BASE_ENV, server.base_url)
        monkeypatch.delenv(API_KEY_ENV, raising=False)
        router = ZeroRouter.default(models=POOL)
        assert sorted(router.endpoints) == sorted(POOL)
        ep = router.endpoints[POOL[0]]
        assert (ep.litellm_model, ep.api_base) == (f"openai/{POOL[0]}", server.base_url)
        profile = router.profiles[POOL[0]]
        assert ep.input_cost_per_token == profile.input_usd_per_token  # list prices kept
        # without the key the server refuses (the placeholder is sent), naming the cause
        with pytest.raises(ZeroRouterError, match=r"401|[Aa]uth|key"):
            router.complete("What is 2 + 2?")
        assert server.requests and all(r.status == 401 for r in server.requests)
        monkeypatch.setenv(API_KEY_ENV, "sk-gw")  # read at call time: the same router now works
        resp = router.complete("What is 2 + 2?")
        assert resp.model in POOL and resp.content
        assert server.requests[-1].model == resp.model
        # explicit endpoints win over the setting
        own = {
            POOL[1]: ModelEndpoint(name=POOL[1], litellm_model="openai/x", api_base="http://127.0.0.1:9/v1")
        }
        assert ZeroRouter.default(models=POOL, endpoints=own).endpoints == own
    assert PLACEHOLDER_KEY != "sk-gw"
