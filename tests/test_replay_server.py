"""The local OpenAI-compatible replay server, over real HTTP on 127.0.0.1 (LiteLLM and httpx)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import httpx
import openai
import pyarrow.parquet as pq
import pytest

from zerorouter_integrations._env import import_litellm
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer

DATA = find_data_dir(table="routerbench_subset")
needs_data = pytest.mark.skipif(
    not (DATA / "prompts.parquet").is_file(), reason="routerbench_subset not present"
)

MAGIC_TOOL = {
    "type": "function",
    "function": {
        "name": "magic_function",
        "description": "Apply a magic function to an input.",
        "parameters": {"type": "object", "properties": {"input": {"type": "integer"}}, "required": ["input"]},
    },
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def litellm():
    return import_litellm()


@pytest.fixture(scope="module")
def server():
    with ReplayServer(table_dirs=[DATA] if DATA.is_dir() else ()) as srv:
        yield srv


def call(litellm, server, model: str, messages, **kw):
    return litellm.completion(
        model=f"openai/{model}",
        messages=messages,
        api_base=server.base_url,
        api_key="sk-test",
        num_retries=0,
        max_retries=0,
        **kw,
    )


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------- answers


@needs_data
def test_recorded_routerbench_response_is_replayed(litellm, server):
    prompts = pq.read_table(DATA / "prompts.parquet", columns=["prompt_id", "task", "prompt"]).to_pylist()
    row = next(r for r in prompts if r["task"] == "mbpp")
    outcomes = pq.read_table(DATA / "outcome_extras.parquet").to_pylist()
    recorded = {r["model"]: r["response"] for r in outcomes if r["prompt_id"] == row["prompt_id"]}
    assert len(recorded) >= 2
    for model in sorted(recorded)[:2]:  # includes a model name with a slash ("WizardLM/...")
        resp = call(litellm, server, model, user(row["prompt"]))
        assert resp.choices[0].message.content == recorded[model]
        assert resp.usage.prompt_tokens == math.ceil(len(row["prompt"]) / 4)
        assert resp.usage.completion_tokens == math.ceil(len(recorded[model]) / 4)
    assert server.requests[-1].source == "recorded"


@needs_data
def test_recorded_response_matches_question_only(litellm, server):
    extras = pq.read_table(DATA / "prompt_extras.parquet", columns=["prompt_id", "question_only"]).to_pylist()
    prompts = {r["prompt_id"]: r["prompt"] for r in pq.read_table(DATA / "prompts.parquet").to_pylist()}
    row = next(
        r
        for r in extras
        if r["prompt_id"].startswith("arc") and r["question_only"] != prompts[r["prompt_id"]]
    )
    outcomes = pq.read_table(DATA / "outcome_extras.parquet").to_pylist()
    model, answer = next((r["model"], r["response"]) for r in outcomes if r["prompt_id"] == row["prompt_id"])
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": row["question_only"]},
    ]
    assert call(litellm, server, model, messages).choices[0].message.content == answer


def test_deterministic_reply_for_unknown_prompt(litellm, server):
    a1 = call(litellm, server, "alpha", user("a prompt nobody recorded")).choices[0].message.content
    a2 = call(litellm, server, "alpha", user("a prompt nobody recorded")).choices[0].message.content
    b = call(litellm, server, "beta", user("a prompt nobody recorded")).choices[0].message.content
    c = call(litellm, server, "alpha", user("another prompt")).choices[0].message.content
    assert a1 == a2 and a1 != b and a1 != c
    assert server.requests[-1].source == "deterministic"


def test_responses_mapping_and_max_tokens(litellm):
    with ReplayServer(responses={"ping": {"m1": "pong-1"}, "hello": "hi there, how are you today?"}) as srv:
        assert call(litellm, srv, "m1", user("ping")).choices[0].message.content == "pong-1"
        assert call(litellm, srv, "m2", user("hello")).choices[0].message.content.startswith("hi there")
        short = call(litellm, srv, "m2", user("hello"), max_tokens=2)
        assert short.choices[0].message.content == "hi there"[:8]
        assert short.choices[0].finish_reason == "length"
        stopped = call(litellm, srv, "m2", user("hello"), stop=[","])
        assert stopped.choices[0].message.content == "hi there"


# ---------------------------------------------------------------- streams


def test_stream_sends_usage_chunk_last(server):
    body = {
        "model": "alpha",
        "messages": user("stream me"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=5) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == math.ceil(len(text) / 4)


def test_stream_through_litellm_matches_non_stream(litellm, server):
    full = call(litellm, server, "alpha", user("same text")).choices[0].message.content
    parts, usage = [], None
    for chunk in call(
        litellm, server, "alpha", user("same text"), stream=True, stream_options={"include_usage": True}
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    assert "".join(parts) == full
    assert usage is not None and usage.completion_tokens == math.ceil(len(full) / 4)


# ---------------------------------------------------------------- tools and JSON


def _skip_mcp(litellm) -> dict:
    # LiteLLM imports its MCP gateway for every call with tools; skip it when `mcp` is absent.
    from zerorouter_integrations import dispatch

    dispatch._ll()
    return {"_skip_mcp_handler": True} if dispatch._SKIP_MCP else {}


def test_tool_call_built_from_schema(litellm, server):
    kw = _skip_mcp(litellm)
    resp = call(
        litellm,
        server,
        "alpha",
        user("What is the value of magic_function(3)? Use the tool."),
        tools=[MAGIC_TOOL, WEATHER_TOOL],
        **kw,
    )
    (tc,) = resp.choices[0].message.tool_calls
    assert tc.function.name == "magic_function" and json.loads(tc.function.arguments) == {"input": 3}
    assert resp.choices[0].finish_reason == "tool_calls"

    forced = call(
        litellm,
        server,
        "alpha",
        user("Weather please"),
        tools=[MAGIC_TOOL, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        **kw,
    )
    args = json.loads(forced.choices[0].message.tool_calls[0].function.arguments)
    assert forced.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert isinstance(args["city"], str) and args["unit"] == "C"

    none = call(litellm, server, "alpha", user("no tools now"), tools=[MAGIC_TOOL], tool_choice="none", **kw)
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content

    after = call(
        litellm,
        server,
        "alpha",
        [
            *user("magic_function(3)?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": tc.id,
                        "type": "function",
                        "function": {"name": "magic_function", "arguments": '{"input": 3}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": tc.id, "content": "5"},
        ],
        tools=[MAGIC_TOOL],
        **kw,
    )
    assert after.choices[0].message.content == "The tool returned: 5"


def test_scripted_answers(litellm):
    def forecast(body: dict) -> dict:
        return {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "F"}}}

    with ReplayServer(
        scripted=[
            (r"weather", forecast),
            (r"^hello$", "scripted hello"),
            (r"magic", {"tool_calls": [{"name": "magic_function", "arguments": {"input": 7}}]}),
        ]
    ) as srv:
        kw = _skip_mcp(litellm)
        resp = call(litellm, srv, "m", user("what's the weather?"), tools=[WEATHER_TOOL], **kw)
        assert json.loads(resp.choices[0].message.tool_calls[0].function.arguments) == {
            "city": "Paris",
            "unit": "F",
        }
        assert call(litellm, srv, "m", user("hello")).choices[0].message.content == "scripted hello"
        magic = call(litellm, srv, "m", user("magic please"), tools=[MAGIC_TOOL], **kw)
        assert json.loads(magic.choices[0].message.tool_calls[0].function.arguments) == {"input": 7}
        # a static tool-call script is skipped after the tool result, so agent loops end
        done = call(
            litellm,
            srv,
            "m",
            [*user("magic please"), {"role": "tool", "tool_call_id": "x", "content": "14"}],
            tools=[MAGIC_TOOL],
            **kw,
        )
        assert done.choices[0].message.content == "The tool returned: 14"
        assert srv.requests[0].source == "scripted"


def test_json_response_format(litellm, server):
    schema = {
        "type": "object",
        "properties": {
            "setup": {"type": "string"},
            "rating": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "kind": {"anyOf": [{"$ref": "#/$defs/Kind"}, {"type": "null"}]},
        },
        "required": ["setup", "rating"],
        "$defs": {"Kind": {"type": "string", "enum": ["pun", "knock-knock"]}},
    }
    resp = call(
        litellm,
        server,
        "alpha",
        user("Tell me a joke rated 8"),
        response_format={"type": "json_schema", "json_schema": {"name": "Joke", "schema": schema}},
    )
    obj = json.loads(resp.choices[0].message.content)
    assert isinstance(obj["setup"], str) and obj["rating"] == 8 and obj["kind"] == "pun"
    assert isinstance(obj["tags"], list) and isinstance(obj["tags"][0], str)
    plain = call(litellm, server, "alpha", user("json please"), response_format={"type": "json_object"})
    assert isinstance(json.loads(plain.choices[0].message.content), dict)


# ---------------------------------------------------------------- failures


@pytest.fixture()
def faulty():
    with ReplayServer({"ok": ModelBehaviour(), "bad": ModelBehaviour(fail_rate=1.0)}, seed=7) as srv:
        yield srv


def test_fail_status_500_and_429_with_retry_after(faulty):
    with httpx.Client(base_url=faulty.base_url, timeout=5) as c:
        r = c.post("/chat/completions", json={"model": "bad", "messages": user("x")})
        assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
        faulty.set_behaviour("bad", fail_status=429, retry_after_s=2)
        r = c.post("/chat/completions", json={"model": "bad", "messages": user("x")})
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert c.post("/chat/completions", json={"model": "ok", "messages": user("x")}).status_code == 200


def test_fail_timeout_hangs_past_client_timeout(faulty):
    faulty.set_behaviour("bad", fail_mode="timeout", hang_s=5)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            faulty.base_url + "/chat/completions", json={"model": "bad", "messages": user("x")}, timeout=0.3
        )


def test_fail_close_drops_connection(faulty, litellm):
    faulty.set_behaviour("bad", fail_mode="close")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.post(
            faulty.base_url + "/chat/completions", json={"model": "bad", "messages": user("x")}, timeout=5
        )
    with pytest.raises(openai.APIError):  # LiteLLM maps it to a connection / 5xx error
        call(litellm, faulty, "bad", user("x"), timeout=5)


def test_midstream_failure_sends_some_chunks_then_resets(faulty):
    faulty.set_behaviour("bad", fail_mode="midstream")
    got = []
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        with httpx.stream(
            "POST",
            faulty.base_url + "/chat/completions",
            timeout=5,
            json={"model": "bad", "messages": user("x"), "stream": True},
        ) as r:
            for line in r.iter_lines():
                got.append(line)
    assert any('"content"' in line for line in got)


def test_fail_first_n_and_seeded_fail_rate(faulty):
    faulty.set_behaviour("ok", fail_first_n=2)
    with httpx.Client(base_url=faulty.base_url, timeout=5) as c:
        codes = [
            c.post("/chat/completions", json={"model": "ok", "messages": user("x")}).status_code
            for _ in range(3)
        ]
        faulty.set_behaviour("ok", latency_s=0.0)  # changing another field does not re-arm it
        codes.append(c.post("/chat/completions", json={"model": "ok", "messages": user("x")}).status_code)
    assert codes == [500, 500, 200, 200]

    def draws(seed: int) -> list[int]:
        with (
            ReplayServer(default_behaviour=ModelBehaviour(fail_rate=0.5), seed=seed) as srv,
            httpx.Client(base_url=srv.base_url, timeout=5) as c,
        ):
            return [
                c.post("/chat/completions", json={"model": "m", "messages": user("x")}).status_code
                for _ in range(12)
            ]

    first = draws(3)
    assert first == draws(3) and {200, 500} == set(first)


def test_counters_log_models_and_health(faulty):
    with httpx.Client(base_url=faulty.base_url, timeout=5) as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert {m["id"] for m in c.get("/models").json()["data"]} == {"ok", "bad"}
        c.post("/chat/completions", json={"model": "ok", "messages": user("x")})
        c.post("/chat/completions", json={"model": "bad", "messages": user("x")})
        unknown = c.post("/chat/completions", json={"model": "nope", "messages": user("x")})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
        assert c.post("/chat/completions", content=b"{not json").status_code == 400
    assert faulty.request_count("ok") == 1 and faulty.request_count("bad") == 1
    assert [(r.model, r.status, r.source) for r in faulty.requests[:2]] == [
        ("ok", 200, "deterministic"),
        ("bad", 500, "failure"),
    ]
    faulty.reset_counters()
    assert faulty.request_count() == 0 and faulty.requests == []


def test_behaviour_validation():
    with pytest.raises(ValueError, match="fail_mode"):
        ModelBehaviour(fail_mode="explode")
    with pytest.raises(ValueError, match="fail_rate"):
        ModelBehaviour(fail_rate=2)


def test_serve_replay_cli_prints_url_and_stops_on_ctrl_c():
    code = "from zerorouter_integrations.testing.replay import serve_replay_main; raise SystemExit(serve_replay_main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--latency", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C must reach the child as in a terminal: a shell that runs the suite in the background
        # starts it with SIGINT ignored, and a child inherits that (Python then never raises KeyboardInterrupt)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert httpx.get(url.removesuffix("/v1") + "/health", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0  # generous: a loaded CI machine
