"""The LangChain adapter end to end: the three examples, streaming, tools, bypass, config, callbacks.

Every model call goes through :class:`ZeroRouterChat`, the core's routing decision, the dispatcher
and LiteLLM's real HTTP path to one module-scoped local :class:`ReplayServer` (the eleven
routerbench models). Nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableBinding
from langchain_core.tools import tool

from langchain_router import (
    RoutingUsageCallbackHandler,
    ZeroRouterChat,
    get_routing_usage_callback,
)
from langchain_router._messages import (
    dict_to_message,
    message_to_dict,
    normalize_tool_choice,
    usage_to_metadata,
)
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.errors import AllModelsFailedError, InfeasibleError, UnknownModelError
from zerorouter_integrations.testing.fixtures import ROUTERBENCH_MODELS

ROOT = Path(__file__).resolve().parents[1]
DATA = find_data_dir(table="routerbench_subset")
POOL = set(ROUTERBENCH_MODELS)
CHEAP = "claude-instant-v1"
OTHER = "mistralai/mistral-7b-chat"


def _load_example(name: str) -> Any:
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"zr_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


AGENT_EXAMPLE = _load_example("langchain_agent")


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    from zerorouter_integrations.testing import ReplayServer

    tables = [DATA] if (DATA / "prompts.parquet").is_file() else []
    with ReplayServer(table_dirs=tables, scripted=AGENT_EXAMPLE.SCRIPTED) as srv:
        yield srv


@pytest.fixture(scope="module")
def router(server: Any) -> Any:
    from zerorouter_integrations.testing.fixtures import replay_router

    return replay_router(server)


@pytest.fixture
def llm(router: Any) -> ZeroRouterChat:
    return ZeroRouterChat(router=router)


def _assert_usage_per_model(usage_by_model: dict, routing_usage: dict, models: set[str]) -> None:
    """get_usage_metadata_callback keys usage by the model that answered (not 'zerorouter')."""
    assert set(usage_by_model) == models
    assert set(routing_usage) == models
    for m in models:
        assert usage_by_model[m]["input_tokens"] == routing_usage[m]["input_tokens"] > 0
        assert usage_by_model[m]["output_tokens"] == routing_usage[m]["output_tokens"] > 0
        assert routing_usage[m]["cost_usd"] > 0


# ------------------------------------------------------------------------------------ examples
def test_example_lcel_chain(server: Any) -> None:
    out = _load_example("langchain_lcel_chain").main(server.base_url)
    assert len(out["answers"]) == 3 and all(isinstance(a, str) and a for a in out["answers"])
    assert out["model"] in POOL
    assert out["response_cost"] > 0
    decision = out["message"].response_metadata["routing_decision"]
    assert decision["chosen"] == out["model"] and decision["candidates"]
    assert "reference" in decision["policy"] or "lam" in decision["policy"]
    models = {m for m in out["routing_usage"]}
    assert models <= POOL and sum(u["calls"] for u in out["routing_usage"].values()) == 4
    _assert_usage_per_model(out["usage_by_model"], out["routing_usage"], models)
    assert "TOTAL" in out["summary"]


def test_example_agent(server: Any) -> None:
    out = AGENT_EXAMPLE.main(server.base_url)
    assert out["model"] in POOL
    assert out["response_cost"] > 0
    assert [tc["name"] for tc in out["tool_calls"]] == ["get_weather"]
    assert out["tool_calls"][0]["args"] == {"city": "Paris"}
    tool_msgs = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert tool_msgs and "sunny" in tool_msgs[0].text
    assert out["answer"].startswith("The tool returned:")
    # the middleware routed the first call (session = the thread) and pinned the rest of the run
    assert len(out["models"]) == 2 and len(set(out["models"])) == 1
    ai = [m for m in out["messages"] if isinstance(m, AIMessage)]
    first, second = (m.response_metadata["routing_decision"] for m in ai)
    assert first["session_id"] == AGENT_EXAMPLE.THREAD_ID and first["policy"].get("mode") != "forced"
    assert second["policy"] == {"mode": "forced"}
    _assert_usage_per_model(out["usage_by_model"], out["routing_usage"], {out["model"]})
    assert out["routing_usage"][out["model"]]["calls"] == 2


def test_example_rag(server: Any) -> None:
    out = _load_example("langchain_rag").main(server.base_url)
    assert any("anchor prompts" in c for c in out["context"])
    assert isinstance(out["answer"], str) and out["answer"]
    assert out["model"] in POOL
    assert out["response_cost"] > 0
    _assert_usage_per_model(out["usage_by_model"], out["routing_usage"], {out["model"]})


# ------------------------------------------------------------------------------------ invoke
def test_invoke_metadata(llm: ZeroRouterChat, server: Any) -> None:
    msg = llm.invoke("Write a function to filter odd numbers.")
    meta = msg.response_metadata
    assert meta["model_name"] in POOL and meta["model_provider"] == "zerorouter"
    assert meta["response_cost"] > 0 and meta["latency_s"] > 0
    assert meta["finish_reason"] == "stop" and meta["request_id"]
    assert meta["routing_decision"]["chosen"] == meta["model_name"]
    u = msg.usage_metadata
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"] > 0
    assert server.requests[-1].model == meta["model_name"]  # the request really went there


async def test_ainvoke_and_astream(llm: ZeroRouterChat) -> None:
    msg = await llm.ainvoke("Write a function to get a colon of a tuple.")
    assert msg.response_metadata["model_name"] in POOL and msg.usage_metadata["output_tokens"] > 0
    chunks = [c async for c in llm.astream("Write a function to get a colon of a tuple.")]
    assert [c.chunk_position for c in chunks].count("last") == 1 and chunks[-1].chunk_position == "last"
    assert sum(1 for c in chunks if c.usage_metadata) == 1 and chunks[-1].usage_metadata


# ------------------------------------------------------------------------------------ streaming
def test_stream_usage_on_last_chunk_only(llm: ZeroRouterChat) -> None:
    chunks = list(llm.stream("Write a function to find the n'th star number."))
    assert len(chunks) > 2
    with_usage = [i for i, c in enumerate(chunks) if c.usage_metadata]
    assert with_usage == [len(chunks) - 1]
    last = chunks[-1]
    assert last.chunk_position == "last" and last.content == ""
    assert all(c.chunk_position is None for c in chunks[:-1])
    assert last.response_metadata["model_name"] in POOL and last.response_metadata["response_cost"] > 0
    assert all("model_name" not in c.response_metadata for c in chunks[:-1])
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.text and full.usage_metadata["output_tokens"] > 0
    assert full.response_metadata["model_name"] == last.response_metadata["model_name"]


def test_stream_tool_call_chunks(llm: ZeroRouterChat) -> None:
    @tool
    def lookup(code: int) -> str:
        """Look up a product by its code."""
        return "ok"

    full: AIMessageChunk | None = None
    for c in llm.bind_tools([lookup], tool_choice="lookup").stream("Find product 42."):
        full = c if full is None else full + c
    assert full is not None and full.chunk_position == "last"
    assert full.tool_calls == [
        {"name": "lookup", "args": {"code": 42}, "id": full.tool_calls[0]["id"], "type": "tool_call"}
    ]


# ------------------------------------------------------------------------------------ tools
def test_bind_tools_tool_choice_mapping(llm: ZeroRouterChat, server: Any) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @tool
    def mul(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    expected = {
        "any": "required",
        True: "required",
        "auto": "auto",
        "none": "none",
        "mul": {"type": "function", "function": {"name": "mul"}},
    }
    for choice, wire in expected.items():
        bound = llm.bind_tools([add, mul], tool_choice=choice)
        assert isinstance(bound, RunnableBinding) and bound.kwargs["tool_choice"] == wire
        assert [t["function"]["name"] for t in bound.kwargs["tools"]] == ["add", "mul"]
    assert "tool_choice" not in llm.bind_tools([add]).kwargs
    with pytest.raises(ValueError, match="names no bound tool"):
        llm.bind_tools([add], tool_choice="div")

    msg = llm.bind_tools([add, mul], tool_choice="mul").invoke("What is 6 times 7?")
    assert msg.tool_calls[0]["name"] == "mul" and msg.tool_calls[0]["args"] == {"a": 6, "b": 7}
    assert server.requests[-1].body["tool_choice"] == {"type": "function", "function": {"name": "mul"}}
    msg = llm.bind_tools([add, mul], tool_choice="any").invoke("What is 2 plus 3?")
    assert server.requests[-1].body["tool_choice"] == "required"
    assert msg.tool_calls[0]["name"] == "add"

    # the tool result goes back as an OpenAI "tool" message and the model answers from it
    history = [HumanMessage("What is 2 plus 3?"), msg, ToolMessage("5", tool_call_id=msg.tool_calls[0]["id"])]
    answer = llm.bind_tools([add, mul]).invoke(history)
    assert answer.text == "The tool returned: 5"
    sent = server.requests[-1].body["messages"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "add"
    assert sent[2] == {"role": "tool", "tool_call_id": msg.tool_calls[0]["id"], "content": "5"}


def test_structured_output_methods(llm: ZeroRouterChat) -> None:
    from pydantic import BaseModel

    class Person(BaseModel):
        """A person."""

        name: str
        age: int

    for method in ("function_calling", "json_schema"):
        p = llm.with_structured_output(Person, method=method).invoke("Alice is 31 years old.")
        assert isinstance(p, Person) and p.age == 31
    raw = llm.with_structured_output(Person, include_raw=True).invoke("Bob is 40.")
    assert raw["parsing_error"] is None and raw["parsed"].age == 40
    assert raw["raw"].response_metadata["model_name"] in POOL


# ------------------------------------------------------------------------------------ bypass
def test_per_call_model_bypasses_routing(llm: ZeroRouterChat, server: Any) -> None:
    msg = llm.invoke("Hello there", model=CHEAP)
    assert msg.response_metadata["model_name"] == CHEAP
    assert msg.response_metadata["routing_decision"]["policy"] == {"mode": "forced"}
    assert server.requests[-1].model == CHEAP
    pinned = ZeroRouterChat(router=llm.router, model=OTHER)
    assert pinned.invoke("Hello").response_metadata["model_name"] == OTHER
    assert pinned._get_ls_params()["ls_model_name"] == OTHER
    assert llm._get_ls_params(model=CHEAP)["ls_model_name"] == CHEAP
    assert llm._get_ls_params()["ls_model_name"] == "zerorouter"
    assert llm._get_ls_params()["ls_provider"] == "zerorouter"
    with pytest.raises(UnknownModelError, match="What to do"):
        llm.invoke("Hello", model="gpt-does-not-exist")


# ------------------------------------------------------------------------------------ config
def test_routing_options_via_config(llm: ZeroRouterChat) -> None:
    allowed = [CHEAP, OTHER]
    msg = llm.invoke(
        "Write a function to filter odd numbers.",
        config={"configurable": {"allowed_models": allowed, "thread_id": "thread-cfg-1"}},
    )
    d = msg.response_metadata["routing_decision"]
    assert msg.response_metadata["model_name"] in allowed
    assert set(d["ranking"]) <= set(allowed)
    assert d["session_id"] == "thread-cfg-1"  # default session: the run's thread id

    msg = llm.invoke(
        "Write a function to filter odd numbers.",
        config={"metadata": {"allowed_models": CHEAP, "conversation_id": "conv-7"}},
    )
    assert msg.response_metadata["model_name"] == CHEAP
    assert msg.response_metadata["routing_decision"]["session_id"] == "conv-7"

    # kwargs win over config; quality_target / budget become a calibrated policy
    msg = llm.invoke(
        "Write a function to filter odd numbers.",
        allowed_models=[OTHER],
        config={"configurable": {"allowed_models": [CHEAP]}},
    )
    assert msg.response_metadata["model_name"] == OTHER
    cheap_policy = llm.invoke(
        "Write a function to filter odd numbers.", config={"configurable": {"budget_usd_per_1k": 0.5}}
    )
    assert cheap_policy.response_metadata["routing_decision"]["policy"].get("budget_usd_per_1k") == 0.5
    with pytest.raises(InfeasibleError, match="What to do: raise budget_usd_per_1k"):
        llm.invoke("Hello", budget_usd_per_1k=1e-9)
    q = llm.invoke(
        "Write a function to filter odd numbers.", config={"configurable": {"quality_target": 0.5}}
    )
    assert q.response_metadata["routing_decision"]["policy"].get("reference_fraction") == 0.5


def test_session_escalates_only(llm: ZeroRouterChat, router: Any) -> None:
    strongest = max(router.models, key=router.capability)
    first = llm.invoke(
        "Write a function to filter odd numbers.", session_id="sticky-1", allowed_models=[strongest]
    )
    assert first.response_metadata["model_name"] == strongest
    second = llm.invoke("Hello", config={"configurable": {"session_id": "sticky-1"}})
    d = second.response_metadata["routing_decision"]
    assert second.response_metadata["model_name"] == strongest
    assert d["sticky"] or set(d["ranking"]) == {strongest}


# ------------------------------------------------------------------------------------ callbacks
def test_routing_usage_handler_aggregates(llm: ZeroRouterChat) -> None:
    handler = RoutingUsageCallbackHandler()
    prompts = ["Write a function to filter odd numbers.", "Write a function to get a colon of a tuple."] * 3
    models = [CHEAP, OTHER] * 3
    msgs = [
        llm.invoke(p, model=m, config={"callbacks": [handler]}) for p, m in zip(prompts, models, strict=True)
    ]
    msgs += llm.batch(prompts, config={"callbacks": [handler], "max_concurrency": 4}, model=CHEAP)
    usage = handler.usage
    assert set(usage) == {CHEAP, OTHER}
    assert usage[CHEAP].calls == 9 and usage[OTHER].calls == 3 and handler.total_calls == 12
    for model, mu in usage.items():
        mine = [m for m in msgs if m.response_metadata["model_name"] == model]
        assert mu.input_tokens == sum(m.usage_metadata["input_tokens"] for m in mine)
        assert mu.output_tokens == sum(m.usage_metadata["output_tokens"] for m in mine)
        assert math.isclose(mu.cost_usd, sum(m.response_metadata["response_cost"] for m in mine))
        assert mu.mean_latency_s > 0
    assert math.isclose(handler.total_cost_usd, sum(m.response_metadata["response_cost"] for m in msgs))
    table = handler.summary()
    assert CHEAP in table and OTHER in table and table.splitlines()[-1].startswith("TOTAL")

    with get_routing_usage_callback() as cb, get_usage_metadata_callback() as core_cb:
        list(llm.stream("Hello", model=OTHER))
        llm.invoke("Hello", model=CHEAP)
    assert {m: u.calls for m, u in cb.usage.items()} == {OTHER: 1, CHEAP: 1}
    assert set(core_cb.usage_metadata) == {OTHER, CHEAP}
    assert core_cb.usage_metadata[OTHER]["input_tokens"] == cb.usage[OTHER].input_tokens
    llm.invoke("Hello", model=CHEAP)  # outside the block: not counted
    assert cb.total_calls == 2


# ------------------------------------------------------------------------------------ pure helpers
def test_message_conversion_round_trip() -> None:
    ai = AIMessage("", tool_calls=[{"name": "f", "args": {"x": "你好"}, "id": "c1", "type": "tool_call"}])
    d = message_to_dict(ai)
    assert d == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": "你好"}'}}
        ],
    }
    back = dict_to_message(d)
    assert isinstance(back, AIMessage) and back.tool_calls[0]["args"] == {"x": "你好"}
    img = HumanMessage(
        content=[
            {"type": "text", "text": "what is this?"},
            {"type": "image", "base64": "AAAA", "mime_type": "image/png"},
            {"type": "image", "url": "https://example.com/a.png"},
        ]
    )
    parts = message_to_dict(img)["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert parts[2]["image_url"]["url"] == "https://example.com/a.png"
    assert message_to_dict(SystemMessage([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])) == {
        "role": "system",
        "content": "ab",
    }
    assert message_to_dict(ToolMessage([{"type": "text", "text": "5"}], tool_call_id="c1")) == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "5",
    }
    anthropic_ai = AIMessage(
        [{"type": "text", "text": "thinking"}, {"type": "tool_use", "id": "c2", "name": "g", "input": {}}],
        tool_calls=[{"name": "g", "args": {}, "id": "c2", "type": "tool_call"}],
    )
    d = message_to_dict(anthropic_ai)
    assert d["content"] == "thinking" and d["tool_calls"][0]["function"]["arguments"] == "{}"
    bad = dict_to_message(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c3", "type": "function", "function": {"name": "h", "arguments": "{not json"}}
            ],
        }
    )
    assert not bad.tool_calls and bad.invalid_tool_calls[0]["name"] == "h"
    assert normalize_tool_choice(None, ["a"]) is None
    assert usage_to_metadata({"input_tokens": 3, "output_tokens": 4, "cache_read_tokens": 1}) == {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
        "input_token_details": {"cache_read": 1},
    }


def test_embeddings_share_the_router_encoder(router: Any) -> None:
    from langchain_router import ZeroRouterEmbeddings

    emb = ZeroRouterEmbeddings(encoder=router.encoder)
    docs = emb.embed_documents(["routing picks cheap models", "the Eiffel Tower is in Paris"])
    q = emb.embed_query("which model is cheap?")
    assert len(docs) == 2 and len(q) == len(docs[0]) == 384
    assert math.isclose(sum(x * x for x in q), 1.0, rel_tol=1e-4)
    assert asyncio.run(emb.aembed_query("which model is cheap?")) == pytest.approx(q, abs=1e-6)
    assert json.dumps(q)  # plain floats


def test_cascade_through_the_chat_model(router: Any) -> None:
    """cascade=True goes through the core cascade: the decision lists its stages, cost sums them."""
    llm = ZeroRouterChat(router=router, cascade=True)
    msg = llm.invoke(
        "Question: Which is a mammal?\nA) shark\nB) dolphin\nC) trout\nD) eel\nAnswer with the letter."
    )
    meta = msg.response_metadata
    assert meta["routing_decision"]["stages"], meta["routing_decision"]
    assert meta["response_cost"] > 0 and msg.usage_metadata["total_tokens"] > 0
    chunks = list(llm.stream("Question: 2 + 2 = ?\nA) 3\nB) 4\nAnswer with the letter."))
    assert sum(1 for c in chunks if c.usage_metadata) == 1


async def test_middleware_routes_once_per_run_across_runs(router: Any) -> None:
    """Async agent, checkpointed thread: each run routes its first call, pins the rest, never de-escalates."""
    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver

    from langchain_router import ZeroRouterMiddleware

    @tool
    def get_weather(city: str) -> str:
        """Return the current weather in a city."""
        return f"rain in {city}"

    agent = create_agent(
        ZeroRouterChat(router=router),
        tools=[get_weather],
        checkpointer=InMemorySaver(),
        middleware=[ZeroRouterMiddleware()],
    )
    config = {"configurable": {"thread_id": "mw-thread-2"}}
    runs = []
    for question in ("What is the weather in Rome?", "And what is the weather in Oslo?"):
        before = len((await agent.aget_state(config)).values.get("messages", [])) if runs else 0
        result = await agent.ainvoke({"messages": [{"role": "user", "content": question}]}, config)
        runs.append([m for m in result["messages"][before:] if isinstance(m, AIMessage)])
    for ai in runs:
        decisions = [m.response_metadata["routing_decision"] for m in ai]
        assert len(ai) == 2 and ai[0].response_metadata["model_name"] == ai[1].response_metadata["model_name"]
        assert decisions[0]["policy"].get("mode") != "forced" and decisions[1]["policy"] == {"mode": "forced"}
        assert decisions[0]["session_id"] == "mw-thread-2"
    first_model = runs[0][0].response_metadata["model_name"]
    second = runs[1][0].response_metadata
    assert router.capability(second["model_name"]) >= router.capability(first_model)  # escalate-only
    assert runs[1][0].tool_calls[0]["args"] == {"city": "Oslo"}


def test_lazy_router_fills_missing_api_key(server: Any) -> None:
    """Built from endpoints (no router given): the model's api_key goes to endpoints that have none."""
    endpoints = {
        m: {
            "litellm_model": f"openai/{m}",
            "api_base": server.base_url,
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
        }
        for m in (CHEAP, OTHER)
    }
    server.require_api_key = "sk-lazy"
    try:
        keyed = ZeroRouterChat(models=[CHEAP, OTHER], endpoints=endpoints, api_key="sk-lazy", max_retries=0)
        msg = keyed.invoke("Write a function to filter odd numbers.")
        assert (
            msg.response_metadata["model_name"] in (CHEAP, OTHER)
            and msg.response_metadata["response_cost"] > 0
        )
        assert all(ep.secret_api_key() == "sk-lazy" for ep in keyed.get_router().endpoints.values())
        assert server.requests[-1].status == 200
        keyless = ZeroRouterChat(models=[CHEAP, OTHER], endpoints=endpoints, max_retries=0)
        with pytest.raises(AllModelsFailedError, match="What to do: check each failing endpoint"):
            keyless.invoke("Write a function to filter odd numbers.")
    finally:
        server.require_api_key = None


def test_agent_steps_are_routed_on_what_they_ask(router: Any) -> None:
    """A real ``create_agent`` run without the pinning middleware: every model call is routed on its own
    turn, so the step after a tool result is judged on the question and that result (not the system
    prompt), sync and async alike, and each step's decision is what ``route()`` decides for its messages."""
    from langchain.agents import create_agent

    def run(result: str, *, use_async: bool = False) -> list[AIMessage]:
        @tool
        def get_weather(city: str) -> str:
            """Return the current weather in a city."""
            return result

        agent = create_agent(
            ZeroRouterChat(router=router),
            tools=[get_weather],
            system_prompt="You answer weather questions. Use the get_weather tool.",
        )
        inputs = {"messages": [{"role": "user", "content": AGENT_EXAMPLE.QUESTION}]}
        out = asyncio.run(agent.ainvoke(inputs)) if use_async else agent.invoke(inputs)
        return [m for m in out["messages"] if isinstance(m, AIMessage)]

    plain = run("sunny and 21 °C in Paris")
    hard = run(
        "ERROR: the weather service needs a signed request. Prove that your HMAC-SHA256 construction is "
        "secure, then implement it in Rust with constant-time comparison, and retry."
    )
    assert len(plain) == len(hard) == 2 and plain[0].tool_calls and hard[0].tool_calls

    def quality(m: AIMessage) -> dict[str, float]:
        cands = m.response_metadata["routing_decision"]["candidates"]
        return {c["model"]: c["predicted_quality"] for c in cands}

    # the first step is the same question in both runs; the tool-result steps read their own results
    assert quality(plain[0]) == pytest.approx(quality(hard[0]), abs=1e-12)
    assert quality(plain[1]) != pytest.approx(quality(plain[0]), abs=1e-6)
    assert quality(plain[1]) != pytest.approx(quality(hard[1]), abs=1e-6)
    # each step's decision is route()'s for that step's messages (same scores, same model), async too
    steps = [
        [
            {"role": "system", "content": "You answer weather questions. Use the get_weather tool."},
            {"role": "user", "content": AGENT_EXAMPLE.QUESTION},
        ]
    ]
    again = run("sunny and 21 °C in Paris", use_async=True)
    for got, msg in zip((plain[0], again[0]), steps * 2):
        d = router.route(msg, tools=[{"type": "function", "function": {"name": "get_weather"}}])
        meta = got.response_metadata["routing_decision"]
        assert meta["chosen"] == d.chosen and quality(got) == pytest.approx(
            {c.model: c.predicted_quality for c in d.candidates}, abs=1e-12
        )
    assert [m.response_metadata["model_name"] for m in again] == [
        m.response_metadata["model_name"] for m in plain
    ]
