"""Capability filters, with LiteLLM's real (offline) model map."""

from __future__ import annotations

import json

import pytest

from zerorouter_integrations.constraints import (
    PERMISSIVE,
    ModelCapabilities,
    RequestNeeds,
    capabilities_from_litellm,
    estimate_tokens,
    filter_models,
    needs_from_request,
)
from zerorouter_integrations.errors import SchemaError, UnknownModelError

POOL = ["small", "text-only", "big", "no-tools"]
CAPS = {
    "small": ModelCapabilities(context_window=4096, max_output_tokens=1024, supports_vision=True),
    "text-only": ModelCapabilities(
        context_window=16385, max_output_tokens=4096, supports_vision=False, supports_json_schema=False
    ),
    "big": ModelCapabilities(context_window=128000, max_output_tokens=16384, supports_vision=True),
    "no-tools": ModelCapabilities(
        context_window=32000,
        supports_tools=False,
        supports_vision=True,
        supports_response_format=False,
        supports_json_schema=False,
    ),
}


def _filter(needs, **kw):
    return filter_models(POOL, CAPS, needs, **kw)


def test_nothing_needed_keeps_everything():
    kept, removed = _filter(RequestNeeds(prompt_tokens=100))
    assert kept == POOL and removed == {}


def test_context_window_counts_prompt_plus_max_tokens():
    kept, removed = _filter(RequestNeeds(prompt_tokens=3900, max_tokens=512))
    assert kept == ["text-only", "big", "no-tools"]
    assert removed == {"small": "context window 4096 < prompt 3900 + max_tokens 512"}
    kept, removed = _filter(RequestNeeds(prompt_tokens=20000))
    assert kept == ["big", "no-tools"]
    assert removed["text-only"] == "context window 16385 < prompt 20000 tokens"


def test_max_output_tokens():
    kept, removed = _filter(RequestNeeds(prompt_tokens=10, max_tokens=2000))
    assert kept == ["text-only", "big", "no-tools"]  # no-tools has an unknown output limit
    assert removed == {"small": "max_tokens 2000 > max output 1024 tokens"}


def test_tools_vision_json_schema_response_format():
    assert _filter(RequestNeeds(prompt_tokens=10, needs_tools=True))[1] == {
        "no-tools": "no tool calling (the request passes tools)"
    }
    kept, removed = _filter(RequestNeeds(prompt_tokens=10, needs_vision=True))
    assert kept == ["small", "big", "no-tools"] and list(removed) == ["text-only"]
    kept, removed = _filter(
        RequestNeeds(prompt_tokens=10, needs_json_schema=True, needs_response_format=True)
    )
    assert kept == ["small", "big"]
    assert set(removed) == {"text-only", "no-tools"} and "json_schema" in removed["text-only"]
    kept, removed = _filter(RequestNeeds(prompt_tokens=10, needs_response_format=True))
    assert kept == ["small", "text-only", "big"] and list(removed) == ["no-tools"]


def test_several_reasons_are_joined():
    _, removed = _filter(RequestNeeds(prompt_tokens=5000, needs_tools=True), deny=["no-tools"])
    assert removed["no-tools"] == "in the deny list; no tool calling (the request passes tools)"
    assert removed["small"].startswith("context window 4096")


def test_allow_and_deny():
    needs = RequestNeeds(prompt_tokens=10)
    kept, removed = _filter(needs, allow=["big", "small"])
    assert kept == ["small", "big"]
    assert removed == {"text-only": "not in the allow list", "no-tools": "not in the allow list"}
    kept, removed = _filter(needs, deny=["big"])
    assert kept == ["small", "text-only", "no-tools"] and removed == {"big": "in the deny list"}
    with pytest.raises(UnknownModelError, match="gpt-5"):
        _filter(needs, allow=["gpt-5"])
    with pytest.raises(UnknownModelError):
        _filter(needs, deny=["typo"])


def test_unknown_capabilities_are_never_filtered():
    kept, removed = filter_models(
        ["mystery", "small"],
        CAPS,
        RequestNeeds(
            prompt_tokens=10**6, max_tokens=10**5, needs_tools=True, needs_vision=True, needs_json_schema=True
        ),
    )
    assert kept == ["mystery"] and list(removed) == ["small"]


def test_needs_from_request():
    messages = [
        {"role": "system", "content": "x" * 40},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "y" * 41},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
    ]
    needs = needs_from_request(messages, max_tokens=256)
    assert needs.prompt_tokens == -(-(40 + 41 + 1 + 2) // 4)
    assert needs.needs_vision and not needs.needs_tools and needs.max_tokens == 256
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    needs = needs_from_request(
        [{"role": "user", "content": "hi"}],
        tools=tools,
        response_format={"type": "json_schema", "json_schema": {"name": "x"}},
    )
    assert needs.needs_tools and needs.needs_json_schema and needs.needs_response_format
    assert needs.prompt_tokens == estimate_tokens("hi" + json.dumps(tools))
    needs = needs_from_request([{"role": "user", "content": "hi"}], response_format={"type": "json_object"})
    assert needs.needs_response_format and not needs.needs_json_schema
    needs = needs_from_request([{"role": "user", "content": "hi"}], response_format={"type": "text"})
    assert not needs.needs_response_format
    assert not needs_from_request([{"role": "user", "content": "a"}]).needs_vision


def test_capabilities_from_litellm_known_models():
    mini = capabilities_from_litellm("gpt-4o-mini")
    assert mini.context_window == 128000 and mini.max_output_tokens == 16384
    assert mini.supports_tools and mini.supports_vision and mini.supports_json_schema
    turbo = capabilities_from_litellm("gpt-3.5-turbo")
    assert turbo.context_window == 16385 and turbo.max_output_tokens == 4096
    assert turbo.supports_tools and not turbo.supports_vision
    assert capabilities_from_litellm("openai/gpt-4o-mini") == mini
    caps = {"gpt-4o-mini": mini, "gpt-3.5-turbo": turbo}
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]
    kept, removed = filter_models(list(caps), caps, needs_from_request(image))
    assert kept == ["gpt-4o-mini"] and "image" in removed["gpt-3.5-turbo"]
    long = [{"role": "user", "content": "z" * 4 * 20000}]
    kept, removed = filter_models(list(caps), caps, needs_from_request(long, max_tokens=100))
    assert kept == ["gpt-4o-mini"]
    assert removed["gpt-3.5-turbo"] == "context window 16385 < prompt 20000 + max_tokens 100"


def test_capabilities_overrides_and_unknown_models():
    turbo = capabilities_from_litellm(
        "gpt-3.5-turbo", overrides={"supports_vision": True, "context_window": 4096}
    )
    assert turbo.supports_vision and turbo.context_window == 4096 and turbo.max_output_tokens == 4096
    unknown = capabilities_from_litellm("openai/zerorouter-replay-model-xyz")
    assert unknown == PERMISSIVE and unknown.context_window is None
    tuned = capabilities_from_litellm(
        "zerorouter-unknown", overrides={"context_window": 2048, "supports_tools": False}
    )
    assert tuned.context_window == 2048 and not tuned.supports_tools and tuned.supports_vision
    with pytest.raises(SchemaError, match="context_size"):
        capabilities_from_litellm("gpt-4o-mini", overrides={"context_size": 1})


def test_round_trip():
    caps = ModelCapabilities(context_window=8192, supports_vision=True)
    assert ModelCapabilities.from_dict(json.loads(json.dumps(caps.to_dict()))) == caps
    assert RequestNeeds(prompt_tokens=3).to_dict()["prompt_tokens"] == 3
