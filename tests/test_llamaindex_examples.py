"""The LlamaIndex examples run end to end, and the instrumentation handler aggregates per model.

The examples share one replay server (their ``main(base_url)``); every LLM call is real LiteLLM
HTTP to it through the real router.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation import get_dispatcher

from llamaindex_router import RoutingStatsHandler, ZeroRouterLLM, attach, detach
from zerorouter_integrations.testing import ReplayServer
from zerorouter_integrations.testing.fixtures import replay_router

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server():
    with ReplayServer() as srv:
        yield srv


def test_rag_example(server):
    out = _load("llamaindex_rag").main(server.base_url)
    assert out["model"] in out["pool"]
    assert out["cost_usd"] > 0
    assert out["answer"].strip()
    assert any("anchor prompts" in s for s in out["sources"])  # MiniLM retrieved the right document
    assert out["stats"]["total"]["calls"] >= 1


def test_chat_engine_example(server):
    out = _load("llamaindex_chat_engine").main(server.base_url)
    assert out["model"] in out["pool"]
    assert out["cost_usd"] > 0
    assert [t["question"] for t in out["turns"]] == _load("llamaindex_chat_engine").TURNS
    for turn in out["turns"]:
        assert turn["answer"].strip() and turn["cost_usd"] > 0
        assert set(turn["models"]) <= set(out["pool"])


def test_agent_example(server):
    out = _load("llamaindex_agent").main(server.base_url)
    assert out["tool_calls"] == [("multiply", {"a": 6, "b": 7}, "42")]
    assert "42" in out["answer"]
    assert out["model"] in out["pool"]
    assert out["cost_usd"] > 0
    assert out["stats"]["total"]["calls"] == 2  # the tool-choosing step and the final answer


# ------------------------------------------------------------------ instrumentation
@pytest.fixture(scope="module")
def router(server):
    return replay_router(server)


def test_stats_handler_aggregates_per_model(router):
    llm = ZeroRouterLLM(router)
    msgs = [ChatMessage(role="user", content="Name a prime number.")]
    expected: dict[str, dict[str, float]] = {}

    def add(meta):
        e = expected.setdefault(meta["model"], {"calls": 0, "in": 0, "out": 0, "cost": 0.0})
        e["calls"] += 1
        e["in"] += meta["usage"]["input_tokens"]
        e["out"] += meta["usage"]["output_tokens"]
        e["cost"] += meta["cost_usd"]

    with RoutingStatsHandler().attach() as stats:
        add(llm.chat(msgs, model="claude-v2").additional_kwargs)
        add(llm.chat(msgs, model="claude-v2").additional_kwargs)
        add(llm.complete("Name a colour.", model="gpt-3.5-turbo-1106").additional_kwargs)
        *_, last = llm.stream_chat(msgs, model="claude-instant-v1")
        add(last.additional_kwargs)
        add(llm.chat(msgs).additional_kwargs)  # routed
    summary = stats.summary()
    assert set(summary["models"]) == set(expected)
    for model, e in expected.items():
        got = summary["models"][model]
        assert got["calls"] == e["calls"]
        assert got["input_tokens"] == e["in"] and got["output_tokens"] == e["out"]
        assert got["cost_usd"] == pytest.approx(e["cost"])
        assert got["mean_latency_s"] > 0
    assert summary["total"]["calls"] == 5
    assert summary["total"]["cost_usd"] == pytest.approx(sum(e["cost"] for e in expected.values()))
    assert "claude-v2" in stats.table()
    # detached on exit: later calls are not counted
    llm.chat(msgs, model="claude-v2")
    assert stats.summary()["total"]["calls"] == 5
    assert all(h is not stats for h in get_dispatcher().event_handlers)


def test_stats_handler_counts_failed_attempts_and_ignores_foreign_responses(server, router):
    from llama_index.core.base.llms.types import ChatResponse

    server.set_behaviour("claude-v1", fail_first_n=1, fail_status=500)  # fails once, the retry succeeds
    try:
        handler = attach()
        try:
            r = ZeroRouterLLM(router).chat([ChatMessage(role="user", content="hi")], model="claude-v1")
            handler.record(ChatResponse(message=ChatMessage(role="assistant", content="x")))  # not routed
        finally:
            detach(handler)
    finally:
        server.set_behaviour("claude-v1", fail_first_n=0)
    summary = handler.summary()
    failed = r.additional_kwargs["failed_attempts"]
    assert [a["model"] for a in failed] == ["claude-v1"] and failed[0]["status_code"] == 500
    assert summary["models"]["claude-v1"] == {**summary["models"]["claude-v1"], "calls": 1, "errors": 1}
    assert summary["total"]["errors"] == 1
    assert summary["ignored"] == 1
