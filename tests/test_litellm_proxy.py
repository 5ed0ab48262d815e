"""LiteLLM's proxy for real: the openai SDK → a ``litellm --config`` proxy process (zerorouter's
pre-call hook loaded from the config) → the replay server, routed as zerorouter decides."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from serve_process import REPO, free_port

from zerorouter_integrations.policy import Policy
from zerorouter_integrations.router import ZeroRouter
from zerorouter_integrations.testing import ReplayServer

MASTER = "sk-zr-proxy-test-0123456789abcdef"
GROUPS = {"mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-05-13", "gpt-35": "gpt-3.5-turbo-0125"}
PROMPTS = [
    "What is 2 + 2?",
    "Prove that there are infinitely many primes, then formalise the proof in Lean 4.",
    "Write a haiku about autumn leaves.",
    "Explain the CAP theorem and its consequences for distributed databases in detail.",
    "Translate 'thank you' into Japanese.",
    "Derive the closed form of the sum of the first n cubes and prove it by induction.",
]


def proxy_config(base_url: str) -> dict:
    return {
        "model_list": [
            {
                "model_name": group,
                "litellm_params": {"model": f"openai/{m}", "api_base": base_url, "api_key": "sk-r"},
            }
            for group, m in GROUPS.items()
        ],
        "litellm_settings": {"callbacks": "zerorouter_integrations.litellm_proxy.proxy_hook"},
        "general_settings": {"master_key": MASTER},
        "zerorouter": {"policies": {"top": {"quality_target": 1.0, "reference": GROUPS["gpt-4o"]}}},
    }


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    binary = shutil.which("litellm", path=str(Path(sys.executable).parent)) or shutil.which("litellm")
    assert binary, "the litellm CLI is not installed (pip install -e '.[dev]')"
    with ReplayServer() as replay:
        folder = tmp_path_factory.mktemp("proxy")
        cfg = folder / "config.yaml"
        cfg.write_text(yaml.safe_dump(proxy_config(replay.base_url)))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        log = open(folder / "proxy.log", "w")
        proc = subprocess.Popen(
            [binary, "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        root = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                assert proc.poll() is None, (folder / "proxy.log").read_text()[-4000:]
                try:
                    if httpx.get(root + "/health/liveliness", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, (folder / "proxy.log").read_text()[-4000:]
                time.sleep(0.5)
            yield root, replay, cfg
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def test_proxy_routes_as_zerorouter_decides(proxy):
    root, replay, cfg = proxy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        router = ZeroRouter.from_litellm_config(cfg)
    top = router.with_policy(Policy.for_quality_target(1.0, reference=GROUPS["gpt-4o"]))
    client = openai.OpenAI(base_url=root + "/v1", api_key=MASTER, max_retries=0, timeout=180)
    seen = set()
    for virtual, expect_router in (("zerorouter", router), ("zerorouter/top", top)):
        for prompt in PROMPTS:
            expected = expect_router.route(prompt).chosen
            n = len(replay.requests)
            r = client.chat.completions.create(model=virtual, messages=[{"role": "user", "content": prompt}])
            assert r.choices[0].message.content
            sent = replay.requests[n:]
            assert [q.model for q in sent] == [expected], (virtual, prompt)
            seen.add(expected)
    assert len(seen) >= 2  # the decisions differ by prompt and policy: the proxy follows each one
    # a real model group passes through untouched
    n = len(replay.requests)
    client.chat.completions.create(model="gpt-35", messages=[{"role": "user", "content": "hi"}])
    assert [q.model for q in replay.requests[n:]] == ["gpt-3.5-turbo-0125"]
    # streaming goes the same way
    prompt = PROMPTS[1]
    n = len(replay.requests)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="zerorouter", messages=[{"role": "user", "content": prompt}], stream=True
        )
        if c.choices
    )
    assert text and [q.model for q in replay.requests[n:]] == [router.route(prompt).chosen]


def test_proxy_falls_back_down_zerorouters_ranking(proxy):
    root, replay, cfg = proxy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        router = ZeroRouter.from_litellm_config(cfg)
    prompt = "Write a haiku about winter."
    ranking = router.route(prompt).ranking
    replay.set_behaviour(ranking[0], fail_rate=1.0, fail_status=500)
    try:
        client = openai.OpenAI(base_url=root + "/v1", api_key=MASTER, max_retries=0, timeout=180)
        n = len(replay.requests)
        r = client.chat.completions.create(model="zerorouter", messages=[{"role": "user", "content": prompt}])
        assert r.choices[0].message.content
        models = [q.model for q in replay.requests[n:]]
        assert models[0] == ranking[0] and models[-1] == ranking[1]
    finally:
        replay.set_behaviour(ranking[0], fail_rate=0.0)
