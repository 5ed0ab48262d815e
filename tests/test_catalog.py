"""The model-name catalog: every shipped profile dispatchable or benchmark-only, names resolve, unknown
names get the closest matches, no attempts without keys, and deciding never imports LiteLLM."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zerorouter_integrations import catalog
from zerorouter_integrations._env import import_litellm
from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
from zerorouter_integrations.cli import main
from zerorouter_integrations.dispatch import ModelEndpoint
from zerorouter_integrations.errors import NoAdmissibleModelError, SchemaError, UnknownModelError
from zerorouter_integrations.router import ZeroRouter
from zerorouter_integrations.testing import ReplayServer

ROOT = Path(__file__).resolve().parents[1]
ALL_KEYS = sorted({v for alts in catalog._CREDENTIALS.values() for alt in alts for v in alt})


@pytest.fixture(scope="module")
def shipped():
    return RouterArtifact.load(DEFAULT_ARTIFACT).predictor.profiles_


@pytest.fixture()
def no_keys(monkeypatch):
    for var in [*ALL_KEYS, "OPENAI_BASE_URL", "OPENAI_API_BASE"]:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_every_shipped_profile_is_dispatchable_or_benchmark_only(shipped):
    litellm = import_litellm()
    dispatchable, only = [], []
    for name, p in shipped.items():
        e = catalog.entry(name, p.litellm_model)
        if e.benchmark_only is not None:
            assert name in catalog.BENCHMARK_ONLY, f"{name}: {e.benchmark_only}"
            only.append(name)
            continue
        _, provider, _, _ = litellm.get_llm_provider(e.litellm_model)  # raises when LiteLLM cannot tell
        assert provider == e.provider, (name, e.litellm_model, provider, e.provider)
        dispatchable.append(name)
    assert len(dispatchable) + len(only) == len(shipped) == 83
    assert len(only) == len(catalog.BENCHMARK_ONLY) and len(dispatchable) >= 60
    assert set(catalog.CURRENT) <= set(shipped) and set(catalog.BENCHMARK_ONLY) <= set(shipped)


def test_readme_example_pool_is_dispatchable(shipped):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"ZeroRouter\.default\(\s*models=\[([^\]]+)\]", text)
    assert m, "the README's example pool (ZeroRouter.default(models=[...])) is gone"
    names = re.findall(r'"([^"]+)"', m.group(1))
    assert len(names) >= 2
    for n in names:
        e = catalog.entry(catalog.resolve(n), None)
        e = catalog.entry(e.name, shipped[e.name].litellm_model)
        assert e.dispatchable, (n, e)


@pytest.mark.parametrize(
    ("name", "profile"),
    [
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("openai/gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("gpt-4o", "gpt-4o-2024-05-13"),
        ("anthropic/claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
        ("anthropic/claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
        ("claude-3-opus-latest", "claude-3-opus-20240229"),
        ("GPT-4O-MINI-2024-07-18", "gpt-4o-mini-2024-07-18"),
        ("deepseek/deepseek-chat", "deepseek-chat"),  # two profiles share the string: the same-named one
        ("gemini/gemini-1.5-pro-001", "gemini-1.5-pro"),  # the catalog's current string
        ("meta/llama-2-70b-chat", "meta/llama-2-70b-chat"),  # a profile name with a slash
    ],
)
def test_resolve(name, profile):
    assert catalog.resolve(name) == profile


def test_unknown_names_get_the_closest_matches():
    with pytest.raises(UnknownModelError) as ei:
        catalog.resolve("gpt-4o-mni")
    assert ei.value.suggestions[0] == "gpt-4o-mini-2024-07-18"
    assert "closest: gpt-4o-mini-2024-07-18" in str(ei.value)
    with pytest.raises(UnknownModelError) as ei:
        catalog.resolve("llama-3.1-405b")
    assert all("405B" in s for s in ei.value.suggestions[:3])
    assert "Athene-70B" not in str(ei.value)  # not the first names alphabetically
    err = pickle.loads(pickle.dumps(ei.value))
    assert str(err) == str(ei.value) and err.suggestions == ei.value.suggestions
    with pytest.raises(UnknownModelError, match="non-empty"):
        catalog.resolve("  ")


def test_router_takes_user_names_and_refuses_benchmark_only(no_keys):
    r = ZeroRouter.default(models=["gpt-4o-mini", "anthropic/claude-3-5-sonnet-20241022", "Athene-70B"])
    assert r.models == ["gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022", "Athene-70B"]
    assert r.endpoints["claude-3-5-sonnet-20241022"].litellm_model == "anthropic/claude-3-5-sonnet-20241022"
    assert "Athene-70B" not in r.endpoints
    assert r.route("What is 17 * 23?").chosen != "Athene-70B"  # decides among dispatchable models
    with pytest.raises(SchemaError, match="benchmark-only"):
        r.complete("hi", model="Athene-70B")
    with pytest.raises(SchemaError, match="benchmark-only: Athene-70B"):
        ZeroRouter.default(models=["Athene-70B"]).complete("hi")
    with pytest.raises(UnknownModelError, match="closest: gpt-4o-mini-2024-07-18"):
        ZeroRouter.default(models=["gpt-4o-mni"])


def test_cli_and_python_pick_the_same_models(capsys):
    prompt = "Write a Python function that merges two sorted lists."
    for pool in (None, "gpt-4o-mini,claude-3-5-sonnet-latest,Athene-70B,deepseek-chat"):
        args = ["route", prompt, "--json"] + (["--models", pool] if pool else [])
        assert main(args) == 0
        cli = json.loads(capsys.readouterr().out)
        r = ZeroRouter.default(**({"models": pool.split(",")} if pool else {}))
        d = r.route(prompt)
        assert cli["chosen"] == d.chosen
        assert [c["model"] for c in cli["candidates"]] == [c.model for c in d.candidates]
        assert not set(catalog.BENCHMARK_ONLY) & {c.model for c in d.candidates}


def test_without_keys_nothing_is_attempted_and_the_error_names_what_to_set(no_keys):
    r = ZeroRouter.default()
    with pytest.raises(NoAdmissibleModelError) as ei:
        r.complete("What is 2 + 2?")
    msg = str(ei.value)
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHERAI_API_KEY"):
        assert var in msg
    assert r._executor is None  # no provider was called (the executor is built on the first call)


def test_only_models_with_credentials_are_called(no_keys):
    with ReplayServer() as srv:
        no_keys.setenv("OPENAI_API_KEY", "sk-test")
        no_keys.setenv("OPENAI_BASE_URL", srv.base_url)
        no_keys.setenv("OPENAI_API_BASE", srv.base_url)
        r = ZeroRouter.default()
        resp = r.complete("What is 2 + 2?", max_tokens=8)
        assert len(srv.requests) == 1 and not resp.attempts
        assert catalog.provider_of(r.endpoints[resp.model].litellm_model) == "openai"
        assert all(  # OpenAI's chat or text-completion endpoints: the models the key serves
            catalog.credential_env(catalog.provider_of(r.endpoints[c.model].litellm_model))
            == (("OPENAI_API_KEY",),)
            for c in resp.decision.candidates
        )


def test_missing_credentials_rules(no_keys):
    ep = ModelEndpoint(name="x", litellm_model="anthropic/claude-3-5-sonnet-20241022")
    assert catalog.missing_credentials(ep) == ["ANTHROPIC_API_KEY"]
    assert catalog.missing_credentials(ep, environ={"ANTHROPIC_API_KEY": "k"}) == []
    assert catalog.missing_credentials(ModelEndpoint(name="x", litellm_model="gpt-4o", api_key="k")) == []
    local = ModelEndpoint(name="x", litellm_model="openai/m", api_base="http://127.0.0.1:9/v1")
    assert catalog.missing_credentials(local) == []
    named = ModelEndpoint(name="x", litellm_model="openai/m", api_key_env="MY_KEY")
    assert catalog.missing_credentials(named) == ["MY_KEY"]
    assert catalog.missing_credentials(named, environ={"MY_KEY": "k"}) == []
    assert catalog.missing_credentials(ModelEndpoint(name="x", litellm_model="hosted_vllm/m")) == []
    bedrock = ModelEndpoint(name="x", litellm_model="bedrock/anthropic.claude-v2")
    assert catalog.missing_credentials(bedrock, environ={"AWS_PROFILE": "p"}) == []


def test_price_map_is_litellms_own_and_read_without_importing_it():
    litellm = import_litellm()
    for name in ("gpt-4o-mini", "openai/gpt-4o-mini", "deepseek/deepseek-chat", "gpt-3.5-turbo"):
        ours, theirs = catalog.model_info(name), litellm.get_model_info(name)
        assert ours["max_input_tokens"] == theirs["max_input_tokens"]
        assert ours["input_cost_per_token"] == theirs["input_cost_per_token"]
    assert catalog.model_info("openai/zerorouter-replay-model-xyz") is None
    code = (
        "import sys\n"
        "from zerorouter_integrations.router import ZeroRouter\n"
        "r = ZeroRouter.default()\n"
        "d = r.route('What is 12 * 7?', max_tokens=50, tools=[{'type': 'function', 'function': {'name': 'f'}}])\n"
        "print(d.chosen, 'litellm' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    chosen, litellm_loaded, _torch_loaded = out.stdout.split()
    assert chosen and litellm_loaded == "False"
