"""Two ``zerorouter serve`` replicas on one real Redis share health, stickiness and feedback."""

from __future__ import annotations

import httpx
import pytest
import yaml
from serve_process import ServeProcess

from zerorouter_integrations.testing import ReplayServer

CHEAP, STRONG, FLAKY = "gpt-4o-mini-2024-07-18", "gpt-4o-2024-05-13", "gpt-3.5-turbo-0125"


@pytest.fixture(scope="module")
def replicas(redis_url, tmp_path_factory):
    store = redis_url.rsplit("/", 1)[0] + "/5"  # a database of its own
    with ReplayServer() as replay:
        cfg = {
            "model_list": [
                {
                    "model_name": name,
                    "litellm_params": {
                        "model": f"openai/{name}",
                        "api_base": replay.base_url,
                        "api_key": "k",
                    },
                }
                for name in (CHEAP, STRONG, FLAKY)
            ],
            "zerorouter": {
                "policies": {"top": {"quality_target": 1.0, "reference": STRONG}, "cheapest": {"lam": 1.0e6}},
                "cooldown_after": 2,
                "cooldown_s": 120.0,
            },
        }
        path = tmp_path_factory.mktemp("replicas") / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        a, b = ServeProcess(path, "--store", store), ServeProcess(path, "--store", store)
        try:
            a.wait_ready(), b.wait_ready()
            yield a, b, replay
        finally:
            a.stop(), b.stop()


def chat(proc: ServeProcess, model: str, text: str, session: str | None = None) -> dict:
    headers = {"x-zerorouter-session-id": session} if session else {}
    r = httpx.post(
        proc.url + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        headers=headers,
        timeout=180,
    )
    assert r.status_code in (200, 502), r.text
    return r.json()


def test_stickiness_is_shared(replicas):
    a, b, _ = replicas
    first = chat(a, "zerorouter/top", "Prove that there are infinitely many primes.", session="conv-1")
    assert first["model"] == STRONG
    # the cheapest policy on the other replica would pick the cheap model ...
    other = chat(b, "zerorouter/cheapest", "hi", session="conv-2")
    assert other["model"] != STRONG
    # ... but conv-1 already used the strong model (recorded by replica a): escalate-only
    later = chat(b, "zerorouter/cheapest", "hi", session="conv-1")
    assert later["model"] == STRONG and later["zerorouter"]["decision"]["sticky"] is True


def test_feedback_is_shared(replicas):
    a, b, _ = replicas
    routed = chat(a, "zerorouter", "What is 7 * 8?")
    r = httpx.post(b.url + "/feedback", json={"request_id": routed["zerorouter"]["request_id"], "score": 0.0})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == routed["model"]
    assert "zerorouter_feedback_total 1.0" in httpx.get(b.root + "/metrics").text


def test_health_is_shared(replicas):
    a, b, replay = replicas
    before = chat(b, "zerorouter", "Name a colour.")
    assert FLAKY not in before["zerorouter"]["decision"]["removed"]
    replay.set_behaviour(FLAKY, fail_rate=1.0, fail_status=500)
    try:
        for _ in range(2):  # asked by name on replica a: two failed calls (a call's retry counts once)
            failed = chat(a, FLAKY, "Name a colour.")
            assert failed["error"]["code"] == "all_models_failed"
    finally:
        replay.set_behaviour(FLAKY, fail_rate=0.0)
    # replica b never called it, yet knows its circuit is open
    after = chat(b, "zerorouter", "Name a colour.")
    assert after["zerorouter"]["decision"]["removed"][FLAKY].startswith("circuit open")
    assert after["model"] != FLAKY
