"""``zerorouter serve`` over real HTTP: the openai SDK (sync, async, stream, tools, structured output),
LangChain's ChatOpenAI, feedback, metrics, and bad input answered in OpenAI's error shape."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
import yaml
from serve_process import ServeProcess

from zerorouter_integrations.testing import ReplayServer

KEY = "gw-test-key"
POOL = {"gpt-4o-mini-2024-07-18", "gpt-4o-2024-05-13"}
WEATHER = {
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
PERSON = {
    "name": "person",
    "schema": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    "strict": True,
}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def replay():
    with ReplayServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def gateway(replay, tmp_path_factory):
    cfg = {
        "model_list": [
            {
                "model_name": "cheap",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini-2024-07-18",
                    "api_base": replay.base_url,
                    "api_key": "sk-r",
                },
            },
            {
                "model_name": "strong",
                "litellm_params": {
                    "model": "openai/gpt-4o-2024-05-13",
                    "api_base": replay.base_url,
                    "api_key": "sk-r",
                },
            },
        ],
        "zerorouter": {
            "policies": {"budget-0.5": {"budget_usd_per_1k": 0.5}, "quality-0.99": {"quality_target": 0.99}},
            "cooldown_after": 2,
            "cooldown_s": 8.0,
            "server": {"max_body_bytes": 200_000},
        },
    }
    path = tmp_path_factory.mktemp("serve") / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with ServeProcess(path, "--api-key-env", "ZR_GATEWAY_KEY", env={"ZR_GATEWAY_KEY": KEY}) as proc:
        yield proc


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url, api_key=KEY, max_retries=0, timeout=180)


def test_models_lists_virtual_models_policies_and_real_names(client):
    ids = [m.id for m in client.models.list()]
    assert ids[:4] == ["zerorouter", "zerorouter-cascade", "zerorouter/budget-0.5", "zerorouter/quality-0.99"]
    assert POOL <= set(ids) and {"cheap", "strong"} <= set(ids)


def test_sync_completion_with_headers(client, replay):
    replay.reset_counters()
    raw = client.chat.completions.with_raw_response.create(
        model="zerorouter", messages=user("What is 17 * 3?"), max_tokens=32, temperature=0.2, stop=["\n\n"]
    )
    r = raw.parse()
    assert r.model in POOL and raw.headers["x-zerorouter-model"] == r.model
    assert len(raw.headers["x-zerorouter-request-id"]) == 32
    cost, saving = float(raw.headers["x-zerorouter-cost-usd"]), float(raw.headers["x-zerorouter-saving-usd"])
    assert cost > 0 and saving >= 0
    assert r.choices[0].message.content and r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    sent = replay.requests[-1].body
    assert sent["max_tokens"] == 32 and sent["temperature"] == 0.2 and sent["stop"] == ["\n\n"]
    assert replay.request_count(r.model) == 1


def test_named_policy_and_real_model_bypass(client):
    cheap = client.chat.completions.with_raw_response.create(
        model="cheap", messages=user("Prove Fermat's last theorem.")
    )
    assert cheap.headers["x-zerorouter-model"] == "gpt-4o-mini-2024-07-18"
    strong = client.chat.completions.create(model="gpt-4o-2024-05-13", messages=user("hi"))
    assert strong.model == "gpt-4o-2024-05-13"
    top = client.chat.completions.create(
        model="zerorouter/quality-0.99", messages=user("Prove that sqrt(2) is irrational.")
    )
    assert top.model in POOL


def test_stream_with_final_usage_chunk(client):
    chunks = list(
        client.chat.completions.create(
            model="zerorouter",
            messages=user("Write a limerick about routers."),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert {c.model for c in chunks} <= POOL
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]


async def test_async_concurrent(gateway):
    aclient = openai.AsyncOpenAI(base_url=gateway.url, api_key=KEY, max_retries=0, timeout=180)
    prompts = [f"Give me fact number {i} about the moon." for i in range(8)]
    rs = await asyncio.gather(
        *(aclient.chat.completions.create(model="zerorouter", messages=user(p)) for p in prompts)
    )
    assert len({r.id for r in rs}) == 8 and all(r.model in POOL for r in rs)
    stream = await aclient.chat.completions.create(
        model="zerorouter-cascade", messages=user("What is 2+2?"), stream=True
    )
    parts = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in parts if c.choices)
    await aclient.close()


def test_tools_and_tool_choice(client):
    r = client.chat.completions.create(
        model="zerorouter",
        messages=user("What's the weather in Paris?"),
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    # streamed tool call deltas assemble into the same call
    chunks = list(
        client.chat.completions.create(
            model="zerorouter", messages=user("Weather in Oslo?"), tools=[WEATHER], stream=True
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].function.name == "get_weather"
    assert "city" in json.loads("".join(d.function.arguments or "" for d in deltas))
    none = client.chat.completions.create(
        model="zerorouter", messages=user("Weather in Rome?"), tools=[WEATHER], tool_choice="none"
    )
    assert not none.choices[0].message.tool_calls and none.choices[0].message.content


def test_structured_output(client):
    from pydantic import BaseModel

    # only gpt-4o-mini-2024-07-18 supports json_schema (LiteLLM's map): the router keeps to it
    r = client.chat.completions.create(
        model="zerorouter",
        messages=user("Invent a person."),
        response_format={"type": "json_schema", "json_schema": PERSON},
    )
    assert r.model == "gpt-4o-mini-2024-07-18"
    obj = json.loads(r.choices[0].message.content)
    assert isinstance(obj["name"], str) and isinstance(obj["age"], int)
    r = client.chat.completions.create(
        model="zerorouter",
        messages=user("Answer in JSON: a colour."),
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(r.choices[0].message.content), dict)

    class Person(BaseModel):
        name: str
        age: int

    parsed = client.chat.completions.parse(
        model="zerorouter", messages=user("Invent a person."), response_format=Person
    )
    assert isinstance(parsed.choices[0].message.parsed, Person)


def test_langchain_chat_openai(gateway):
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    llm = ChatOpenAI(base_url=gateway.url, api_key=KEY, model="zerorouter", max_retries=0)
    msg = llm.invoke([HumanMessage("What is the capital of France?")])
    assert msg.content and msg.response_metadata["model_name"] in POOL
    assert msg.usage_metadata["output_tokens"] > 0
    streamed = list(llm.stream("Count to five."))
    assert "".join(c.content for c in streamed)
    tool_msg = llm.bind_tools([WEATHER], tool_choice="get_weather").invoke("Weather in Lima?")
    assert tool_msg.tool_calls[0]["name"] == "get_weather"

    class Person(BaseModel):
        name: str
        age: int

    p = llm.with_structured_output(Person, method="json_schema").invoke("Invent a person.")
    assert isinstance(p, Person)


def test_feedback_reaches_record_quality(client, gateway):
    raw = client.chat.completions.with_raw_response.create(
        model="zerorouter", messages=user("What is 12 squared?")
    )
    rid = raw.headers["x-zerorouter-request-id"]
    h = {"Authorization": f"Bearer {KEY}"}
    ok = httpx.post(gateway.url + "/feedback", json={"request_id": rid, "score": 1.0}, headers=h)
    assert ok.status_code == 200 and ok.json()["model"] == raw.headers["x-zerorouter-model"]
    unknown = httpx.post(gateway.url + "/feedback", json={"request_id": "nope", "score": 1}, headers=h)
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    bad = httpx.post(gateway.url + "/feedback", json={"request_id": rid, "score": 3}, headers=h)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "score"
    metrics = httpx.get(gateway.root + "/metrics", headers=h).text
    assert "zerorouter_feedback_total 1.0" in metrics


def assert_openai_error(resp: httpx.Response, status: int, needle: str) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and needle in err["message"]
    return err


def test_bad_input_gets_openai_errors_and_the_server_keeps_serving(gateway, client):
    url, h = (
        gateway.url + "/chat/completions",
        {"Authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )
    assert_openai_error(
        httpx.post(url, content=b'{"model": "zerorouter", "messages": [', headers=h), 400, "not valid JSON"
    )
    err = assert_openai_error(
        httpx.post(url, json={"model": "zerorouter/nope", "messages": user("x")}, headers=h),
        400,
        "zerorouter/nope",
    )
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert_openai_error(
        httpx.post(url, json={"model": "zerorouter", "messages": []}, headers=h), 400, "messages"
    )
    assert_openai_error(
        httpx.post(url, json={"model": "zerorouter", "messages": user("x"), "temperature": 9}, headers=h),
        400,
        "temperature",
    )
    deep = b'{"model": "zerorouter", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert_openai_error(httpx.post(url, content=deep, headers=h), 400, "nests too deeply")
    feedback = gateway.url + "/feedback"
    assert_openai_error(httpx.post(feedback, content=b'{"x": ', headers=h), 400, "not valid JSON")
    assert_openai_error(
        httpx.post(feedback, content=b'{"request_id": ' + b"[" * 5000 + b"]" * 5000 + b"}", headers=h),
        400,
        "nests too deeply",
    )
    assert_openai_error(
        httpx.post(url, json={"model": "zerorouter", "messages": user("x"), "stream": "yes"}, headers=h),
        400,
        "stream='yes'",
    )
    big = {"model": "zerorouter", "messages": user("x" * 300_000)}
    assert_openai_error(httpx.post(url, json=big, headers=h), 413, "limit")
    assert_openai_error(httpx.post(url, json={"model": "zerorouter", "messages": user("x")}), 401, "API key")
    assert_openai_error(
        httpx.get(gateway.url + "/models", headers={"Authorization": "Bearer wrong"}), 401, "API key"
    )
    assert_openai_error(httpx.get(gateway.root + "/nowhere"), 404, "/nowhere")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.url, api_key="wrong", max_retries=0).chat.completions.create(
            model="zerorouter", messages=user("x")
        )
    with pytest.raises(openai.BadRequestError, match="gpt-99") as exc_info:
        client.chat.completions.create(model="gpt-99", messages=user("x"))
    assert exc_info.value.code == "model_not_found"
    assert httpx.get(gateway.root + "/health").json()["status"] == "ok"
    assert (
        client.chat.completions.create(model="zerorouter", messages=user("still there?"))
        .choices[0]
        .message.content
    )
    metrics = httpx.get(gateway.root + "/metrics", headers=h).text
    assert 'status="413"' in metrics and 'status="401"' in metrics and 'status="400"' in metrics


def test_failing_providers_give_502_and_recover(gateway, client, replay):
    url, h = gateway.url + "/chat/completions", {"Authorization": f"Bearer {KEY}"}
    for m in POOL:
        replay.set_behaviour(m, fail_rate=1.0, fail_status=500)
    try:
        for _ in range(2):  # two failed calls per model (a call's retries count once) open every circuit
            err = assert_openai_error(
                httpx.post(url, json={"model": "zerorouter", "messages": user("hi")}, headers=h),
                502,
                "failed",
            )
            assert err["code"] == "all_models_failed"
        # every circuit is open: the pool is never emptied, the model whose cooldown ends first is tried
        err = assert_openai_error(
            httpx.post(url, json={"model": "zerorouter", "messages": user("hi")}, headers=h), 502, "failed"
        )
        assert err["code"] == "all_models_failed"
    finally:
        for m in POOL:
            replay.set_behaviour(m, fail_rate=0.0)
    time.sleep(8.5)  # the config's cooldown_s
    assert client.chat.completions.create(model="zerorouter", messages=user("back?")).model in POOL
    metrics = httpx.get(gateway.root + "/metrics", headers=h).text
    assert 'status="502"' in metrics and "all_models_failed" in metrics
