"""A LiteLLM config as the pool: core, LangChain, LlamaIndex and the CLI, over the real replay server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.litellm_config import (
    BalancedEndpoint,
    LiteLLMConfig,
    config_policies,
    resolve_profile_name,
)
from zerorouter_integrations.router import ZeroRouter
from zerorouter_integrations.testing import ReplayServer

ROUTED = {"gpt-3.5-turbo-1106", "gpt-4-1106-preview"}
MISSING = "ZR_TEST_NEVER_SET_KEY"
PROMPTS = [
    "What is 2 + 2?",
    "Prove that there are infinitely many primes, then give a short Lean 4 formalisation.",
    "Write a haiku about autumn.",
    "Explain the difference between TCP and UDP in two sentences.",
    "Solve for x: 3x + 7 = 22. Show each step.",
    "Translate 'good morning' into French.",
]


@pytest.fixture(scope="module")
def server():
    with ReplayServer() as srv:
        yield srv


def four_deployments(base_url: str) -> dict:
    """2 deployments on the replay server, 1 with a missing key, 1 the artifact does not know."""
    return {
        "model_list": [
            {
                "model_name": "cheap",
                "litellm_params": {
                    "model": "openai/gpt-3.5-turbo-1106",
                    "api_base": base_url,
                    "api_key": "sk-test",
                },
                "model_info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
            },
            {
                "model_name": "strong",
                "litellm_params": {
                    "model": "openai/gpt-4-1106-preview",
                    "api_base": base_url,
                    "api_key": "os.environ/ZR_TEST_REPLAY_KEY",
                },
                "model_info": {"max_input_tokens": 128000},
            },
            {
                "model_name": "claude",
                "litellm_params": {
                    "model": "anthropic/claude-3-haiku-20240307",
                    "api_key": f"os.environ/{MISSING}",
                },
            },
            {
                "model_name": "my-new-model",
                "litellm_params": {
                    "model": "openai/my-new-model",
                    "api_base": base_url,
                    "api_key": "sk-test",
                },
            },
        ]
    }


@pytest.fixture
def config_path(server, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ZR_TEST_REPLAY_KEY", "sk-from-env")
    monkeypatch.delenv(MISSING, raising=False)
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(four_deployments(server.base_url)))
    return p


def assert_names_the_other_two(text: str) -> None:
    assert "my-new-model" in text and "zerorouter onboard --live --model my-new-model" in text
    assert "--litellm-model openai/my-new-model" in text
    assert "claude" in text and f"set {MISSING}" in text
    assert "sk-test" not in text and "sk-from-env" not in text  # keys never printed


def test_core_routes_among_the_two_and_names_the_others(config_path, server):
    with pytest.warns(UserWarning) as rec:
        router = ZeroRouter.from_litellm_config(config_path)
    assert_names_the_other_two(str(rec[0].message))
    assert set(router.models) == ROUTED and set(router.endpoints) == ROUTED
    assert {s.deployment.model_name for s in router.config_pool.skipped} == {"claude", "my-new-model"}
    # model_info prices reach the profile the router predicts costs with
    assert router.profiles["gpt-3.5-turbo-1106"].input_usd_per_token == 1e-6
    assert router.profiles["gpt-4-1106-preview"].capabilities["context_window"] == 128000
    # the env key is a reference, never stored in the endpoint
    assert router.endpoints["gpt-4-1106-preview"].api_key is None
    assert router.endpoints["gpt-4-1106-preview"].api_key_env == "ZR_TEST_REPLAY_KEY"
    server.reset_counters()
    chosen = set()
    for prompt in PROMPTS:
        d = router.route(prompt)
        assert {c.model for c in d.candidates} <= ROUTED
        r = router.complete(prompt, max_tokens=16)
        assert r.model in ROUTED
        chosen.add(r.model)
    assert server.request_count() == len(PROMPTS)
    assert sum(server.request_count(m) for m in ROUTED) == len(PROMPTS)
    assert router.config_pool.resolve_name("cheap") == "gpt-3.5-turbo-1106"
    r = router.complete("hi", model=router.config_pool.resolve_name("strong"))
    assert r.model == "gpt-4-1106-preview"


def test_langchain_routes_among_the_two(config_path):
    from langchain_router import ZeroRouterChat

    llm = ZeroRouterChat(litellm_config=str(config_path), max_tokens=16)
    with pytest.warns(UserWarning) as rec:
        msg = llm.invoke("Write a haiku about autumn.")
    assert_names_the_other_two(str(rec[0].message))
    assert msg.response_metadata["model_name"] in ROUTED
    assert set(llm.get_router().models) == ROUTED
    with pytest.raises(ValueError, match="litellm_config"):
        ZeroRouterChat(litellm_config=str(config_path), models=["gpt-4-1106-preview"])


def test_llamaindex_routes_among_the_two(config_path):
    from llamaindex_router import ZeroRouterLLM

    llm = ZeroRouterLLM(litellm_config=yaml.safe_load(config_path.read_text()), max_tokens=16)
    with pytest.warns(UserWarning) as rec:
        out = llm.complete("Solve for x: 3x + 7 = 22.")
    assert_names_the_other_two(str(rec[0].message))
    assert out.additional_kwargs["model"] in ROUTED
    assert set(llm.router.models) == ROUTED


def test_cli_route_with_config(config_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop(MISSING, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "zerorouter_integrations.cli",
            "route",
            "--config",
            str(config_path),
            "--json",
            "What is 2 + 2?",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    decision = json.loads(proc.stdout)
    assert decision["chosen"] in ROUTED
    assert {c["model"] for c in decision["candidates"]} <= ROUTED
    assert_names_the_other_two(proc.stderr)
    bad = subprocess.run(
        [sys.executable, "-m", "zerorouter_integrations.cli", "route", "--config", "nope.yaml", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 2 and "nope.yaml" in bad.stderr


def test_several_deployments_of_one_model_share_a_profile_and_are_balanced():
    with ReplayServer() as a, ReplayServer() as b:
        cfg = {
            "model_list": [
                {
                    "model_name": "gpt-3.5",
                    "litellm_params": {
                        "model": "openai/gpt-3.5-turbo-1106",
                        "api_base": s.base_url,
                        "api_key": "k",
                    },
                }
                for s in (a, b)
            ]
            + [
                {
                    "model_name": "big",
                    "litellm_params": {
                        "model": "openai/gpt-4-1106-preview",
                        "api_base": a.base_url,
                        "api_key": "k",
                    },
                }
            ]
        }
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing is skipped: no warning
            router = ZeroRouter.from_litellm_config(cfg)
        ep = router.endpoints["gpt-3.5-turbo-1106"]
        assert isinstance(ep, BalancedEndpoint) and len(ep.deployments) == 2
        for _ in range(40):
            router.complete("Translate 'good morning' into French.", model="gpt-3.5-turbo-1106", max_tokens=8)
        na, nb = a.request_count("gpt-3.5-turbo-1106"), b.request_count("gpt-3.5-turbo-1106")
        assert na + nb == 40 and min(na, nb) >= 8, (na, nb)


def test_names_resolve_like_litellm_spells_them(config_path):
    profiles = ZeroRouter.default(endpoints={}).artifact.predictor.profiles_
    assert resolve_profile_name(["openai/gpt-4o-mini-2024-07-18"], profiles) == "gpt-4o-mini-2024-07-18"
    assert resolve_profile_name(["gpt-4o-mini"], profiles) == "gpt-4o-mini-2024-07-18"
    assert resolve_profile_name(["together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"], profiles) is not None
    assert resolve_profile_name(["openai/surely-not-a-model"], profiles) is None


def test_bad_configs_name_the_bad_value(tmp_path):
    with pytest.raises(SchemaError, match="model_list"):
        LiteLLMConfig.load({"general_settings": {}})
    with pytest.raises(SchemaError, match=r"model_list\[0\].litellm_params.model"):
        LiteLLMConfig.load([{"model_name": "x", "litellm_params": {}}])
    with pytest.raises(SchemaError, match="input_cost_per_token"):
        LiteLLMConfig.load(
            [
                {
                    "model_name": "x",
                    "litellm_params": {"model": "openai/x"},
                    "model_info": {"input_cost_per_token": "cheap"},
                }
            ]
        )
    with pytest.raises(SchemaError, match="not found"):
        LiteLLMConfig.load(tmp_path / "missing.yaml")
    (tmp_path / "latin1.yaml").write_bytes("model_list: [{model_name: caf\xe9}]".encode("latin-1"))
    with pytest.raises(SchemaError, match=r"latin1\.yaml: not UTF-8"):
        LiteLLMConfig.load(tmp_path / "latin1.yaml")
    (tmp_path / "deep.yaml").write_text("model_list: " + "[" * 50_000)
    with pytest.raises(SchemaError, match=r"deep\.yaml: nests too deeply"):
        LiteLLMConfig.load(tmp_path / "deep.yaml")
    with pytest.raises(SchemaError, match="no deployment can be routed"):
        ZeroRouter.from_litellm_config([{"model_name": "x", "litellm_params": {"model": "openai/unknown-x"}}])
    cfg = LiteLLMConfig.load(
        {
            "model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x"}}],
            "zerorouter": {"policies": {"budget-0.5": {"budget_usd_per_1k": 0.5}, "bad": {"speed": 1}}},
        }
    )
    with pytest.raises(SchemaError, match=r"policies\.bad"):
        config_policies(cfg)
