"""``llamaindex_router``: the conformance suite plus routing-specific checks.

Every call is real: ``ZeroRouterLLM`` → the core ``ZeroRouter`` (encoder, decision, dispatch) →
LiteLLM → HTTP to a local :class:`ReplayServer`. Nothing of ours is mocked.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ImageBlock, MessageRole, TextBlock
from llamaindex_conformance import LlamaIndexLLMConformance, invoke

from llamaindex_router import MiniLMEmbedding, ZeroRouterLLM
from llamaindex_router._convert import to_openai_messages
from zerorouter_integrations.errors import AllModelsFailedError, CallerError, UnknownModelError
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer
from zerorouter_integrations.testing.fixtures import replay_endpoints, replay_router

REPO = Path(__file__).resolve().parents[1]
FAILING_POOL = ["gpt-3.5-turbo-1106", "claude-instant-v1", "mistralai/mistral-7b-chat"]


@pytest.fixture(scope="module")
def server():
    with ReplayServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def router(server):
    return replay_router(server)


@pytest.fixture(scope="module")
def failing_router():
    from zerorouter_integrations.dispatch import RetryPolicy

    with ReplayServer(default_behaviour=ModelBehaviour(fail_rate=1.0, fail_status=503)) as srv:
        # no retries and no cooldown: every call tries the whole ranking and fails on each model
        yield replay_router(
            srv, models=FAILING_POOL, retry=RetryPolicy(max_retries=0, backoff_s=0.0), cooldown_after=10**6
        )


class TestZeroRouterLLMConformance(LlamaIndexLLMConformance):
    expected_error = AllModelsFailedError

    @pytest.fixture
    def llm(self, router):
        return ZeroRouterLLM(router)

    @pytest.fixture
    def failing_llm(self, failing_router):
        return ZeroRouterLLM(failing_router)

    def assert_response_metadata(self, llm, response):
        meta = response.additional_kwargs
        pool = llm.router.models
        assert meta["model"] in pool
        assert meta["usage"]["input_tokens"] > 0 and meta["usage"]["output_tokens"] > 0
        assert meta["usage"]["prompt_tokens"] == meta["usage"]["input_tokens"]
        assert meta["cost_usd"] > 0
        assert meta["latency_s"] > 0
        assert meta["request_id"]
        decision = meta["routing_decision"]
        assert decision["request_id"] == meta["request_id"]
        assert meta["model"] in [c["model"] for c in decision["candidates"]]
        assert isinstance(response.raw, dict)
        assert response.raw["usage"]["output_tokens"] == meta["usage"]["output_tokens"]
        assert response.raw["model"] == meta["model"]
        if isinstance(response, ChatResponse):
            extra = response.message.additional_kwargs
            assert extra["model"] == meta["model"] and extra["usage"] == meta["usage"]
            assert extra["cost_usd"] == meta["cost_usd"]

    def assert_error(self, llm, error):
        tried = [a.model for a in error.attempts]
        assert set(tried) == set(FAILING_POOL)
        for name in FAILING_POOL:
            assert name in str(error)
        assert all(a.status_code == 503 for a in error.attempts)


# ------------------------------------------------------------------ streaming details
@pytest.mark.parametrize("method", ["stream_chat", "astream_chat", "stream_complete", "astream_complete"])
async def test_stream_usage_and_cost_only_on_the_final_response(router, method):
    llm = ZeroRouterLLM(router)
    final, parts = await invoke(llm, method)
    assert final.delta == "" and final.additional_kwargs["cost_usd"] > 0
    for p in parts[:-1]:
        assert p.delta  # no empty (usage-only) chunk is passed on
        assert "cost_usd" not in p.additional_kwargs
        assert p.additional_kwargs["model"] == final.additional_kwargs["model"]


# ------------------------------------------------------------------ routing options
def _chosen(resp):
    return resp.additional_kwargs["routing_decision"]


def test_model_bypasses_routing(router):
    llm = ZeroRouterLLM(router)
    resp = llm.chat([ChatMessage(role="user", content="hello")], model="claude-v2")
    assert resp.additional_kwargs["model"] == "claude-v2"
    assert _chosen(resp)["policy"]["mode"] == "forced"
    with pytest.raises(UnknownModelError):
        llm.chat([ChatMessage(role="user", content="hello")], model="no-such-model")


def test_a_prompt_that_is_not_text_is_named(router):
    """``complete(5)``: LlamaIndex would make it an empty message; the adapter says what was wrong."""
    import asyncio

    llm = ZeroRouterLLM(router)
    for bad in (5, None, ["a list"]):
        with pytest.raises(CallerError, match=f"prompt must be a string, got {type(bad).__name__}"):
            llm.complete(bad)  # type: ignore[arg-type]
        with pytest.raises(CallerError, match="prompt must be a string"):
            asyncio.run(llm.acomplete(bad))  # type: ignore[arg-type]
    assert llm.complete("hello").text


def test_allowed_models_default_and_per_call(router):
    llm = ZeroRouterLLM(router, allowed_models=["claude-v2", "gpt-3.5-turbo-1106", "claude-instant-v1"])
    msgs = [ChatMessage(role="user", content="Summarise the plot of Hamlet.")]
    r = llm.chat(msgs)
    assert r.additional_kwargs["model"] in llm.allowed_models
    assert {c["model"] for c in _chosen(r)["candidates"]} <= set(llm.allowed_models)
    r = llm.chat(msgs, allowed_models=["claude-instant-v1", "gpt-4-1106-preview"])  # narrowed, not widened
    assert [c["model"] for c in _chosen(r)["candidates"]] == ["claude-instant-v1"]


def test_modes_pick_the_extremes(router):
    llm = ZeroRouterLLM(router)
    msgs = [ChatMessage(role="user", content="Prove that there are infinitely many primes.")]
    cheap = _chosen(llm.chat(msgs, mode="min_cost"))
    best = _chosen(llm.chat(msgs, mode="max_quality"))
    assert cheap["chosen"] == min(cheap["candidates"], key=lambda c: c["predicted_cost_usd"])["model"]
    assert best["chosen"] == max(best["candidates"], key=lambda c: c["predicted_quality"])["model"]


def test_budget_and_quality_target_policies(router):
    msgs = [ChatMessage(role="user", content="Write a haiku about routers.")]
    by_budget = ZeroRouterLLM(router, budget_usd_per_1k=0.2).chat(msgs)
    assert _chosen(by_budget)["policy"].get("budget_usd_per_1k") == pytest.approx(0.2)
    per_call = ZeroRouterLLM(router).chat(msgs, quality_target=0.9, reference_model="gpt-4-1106-preview")
    assert _chosen(per_call)["policy"].get("reference") == "gpt-4-1106-preview"
    with pytest.raises(ValueError, match="not both"):
        ZeroRouterLLM(router).chat(msgs, quality_target=0.9, budget=1.0)
    with pytest.raises(ValueError, match="mode="):
        ZeroRouterLLM(router).chat(msgs, mode="fastest")
    with pytest.raises(ValueError, match="not both"):
        ZeroRouterLLM(router, quality_target=0.9, budget_usd_per_1k=1.0)


def test_session_id_reaches_the_decision(router):
    llm = ZeroRouterLLM(router, session_id="li-session-1")
    r = llm.chat([ChatMessage(role="user", content="Hi there")])
    assert _chosen(r)["session_id"] == "li-session-1"
    r = llm.chat([ChatMessage(role="user", content="Hi again")], session_id="other")
    assert _chosen(r)["session_id"] == "other"


def test_llm_parameters_reach_the_model(router, server):
    llm = ZeroRouterLLM(router, temperature=0.3, max_tokens=50, additional_kwargs={"top_p": 0.5})
    r = llm.chat([ChatMessage(role="user", content="Count to three.")], model="claude-v2")
    body = server.requests[-1].body
    assert body["temperature"] == 0.3 and body["top_p"] == 0.5
    assert (body.get("max_tokens") or body.get("max_completion_tokens")) == 50
    assert r.message.content


def test_metadata_follows_the_pool(router):
    llm = ZeroRouterLLM(router)
    windows = [c.context_window for c in (router.capabilities(m) for m in router.models) if c.context_window]
    assert llm.metadata.context_window == (min(windows) if windows else 4096)
    assert llm.metadata.model_name == "zerorouter"
    small = ZeroRouterLLM(router, allowed_models=["claude-v2"], max_tokens=77).metadata
    assert small.num_output == 77
    assert small.context_window == (router.capabilities("claude-v2").context_window or 4096)


def test_function_calling_flag_needs_every_pool_model(server):
    r = replay_router(server, models=["claude-v2", "gpt-3.5-turbo-1106"])
    r.predictor.profiles_["claude-v2"].capabilities = {"supports_tools": False, "context_window": 2048}
    assert ZeroRouterLLM(r).metadata.is_function_calling_model is False
    assert ZeroRouterLLM(r).metadata.context_window == 2048
    only_tools = ZeroRouterLLM(r, allowed_models=["gpt-3.5-turbo-1106"]).metadata
    assert only_tools.is_function_calling_model is True
    assert only_tools.context_window == r._capabilities("gpt-3.5-turbo-1106").context_window


def test_router_built_lazily_from_an_artifact(server):
    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT

    models = ["claude-v2", "gpt-3.5-turbo-1106"]
    llm = ZeroRouterLLM(
        artifact_path=DEFAULT_ARTIFACT, models=models, endpoints=replay_endpoints(server, models)
    )
    assert llm._router is None
    r = llm.complete("What is the capital of France?")
    assert r.additional_kwargs["model"] in models
    assert llm.router.models == models


def test_constructor_validation(router):
    with pytest.raises(ValueError, match="router= was given together with models"):
        ZeroRouterLLM(router, models=["claude-v2"])
    with pytest.raises(TypeError, match="expected a zerorouter ZeroRouter"):
        ZeroRouterLLM(object())
    with pytest.raises(ValueError):
        ZeroRouterLLM(router, temperature=3.0)
    assert ZeroRouterLLM.class_name() == "ZeroRouterLLM"


# ------------------------------------------------------------------ message conversion
def test_to_openai_messages_covers_roles_tools_and_images():
    history = [
        ChatMessage(role=MessageRole.SYSTEM, content="sys"),
        ChatMessage(
            role=MessageRole.USER,
            blocks=[TextBlock(text="look"), ImageBlock(url="https://example.com/a.png")],
        ),
        ChatMessage(
            role=MessageRole.ASSISTANT,
            content="",
            additional_kwargs={
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": {"a": 1}}}
                ],
                "model": "m",
                "usage": {"input_tokens": 1},
                "cost_usd": 0.1,
            },
        ),
        ChatMessage(
            role=MessageRole.TOOL, content="3", additional_kwargs={"tool_call_id": "c1", "name": "add"}
        ),
        ChatMessage(role=MessageRole.CHATBOT, content="done"),
    ]
    snapshot = [m.model_dump() for m in history]
    out = to_openai_messages(history)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool", "assistant"]
    assert out[1]["content"][1] == {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    assert out[2]["tool_calls"][0]["function"] == {"name": "add", "arguments": json.dumps({"a": 1})}
    assert "usage" not in out[2] and "model" not in out[2]  # our metadata is never sent back
    assert out[3] == {"role": "tool", "content": "3", "tool_call_id": "c1", "name": "add"}
    assert [m.model_dump() for m in history] == snapshot
    with pytest.raises(TypeError, match="expected a llama_index ChatMessage"):
        to_openai_messages([{"role": "user", "content": "x"}])


# ------------------------------------------------------------------ embeddings
@pytest.fixture(scope="module")
def embed_model():
    return MiniLMEmbedding()


def test_minilm_embedding_sync(embed_model):
    q = embed_model.get_query_embedding("How do I reset my password?")
    docs = embed_model.get_text_embedding_batch(
        [
            "To reset your password, open Settings and choose Reset password.",
            "Our office is closed on public holidays.",
        ]
    )
    assert len(q) == 384 and len(docs) == 2
    assert math.isclose(sum(x * x for x in q), 1.0, rel_tol=1e-3)
    sims = [sum(a * b for a, b in zip(q, d)) for d in docs]
    assert sims[0] > sims[1]
    assert embed_model.get_text_embedding("x") == pytest.approx(
        embed_model.get_query_embedding("x"), abs=1e-6
    )


async def test_minilm_embedding_async(embed_model):
    q = await embed_model.aget_query_embedding("hello world")
    many = await embed_model.aget_text_embedding_batch(["hello world", "bye"])
    assert q == pytest.approx(many[0], abs=1e-5)
    assert len(await embed_model.aget_text_embedding("bye")) == 384


def test_minilm_embedding_shares_the_router_encoder(router):
    emb = MiniLMEmbedding(router=router)
    assert emb.encoder is router.encoder
    with pytest.raises(ValueError, match="not both"):
        MiniLMEmbedding(router.encoder, router=router)


# ------------------------------------------------------------------ import cost
def test_import_defers_heavy_modules():
    code = (
        "import sys; import llamaindex_router as m; "
        "from llamaindex_router import ZeroRouterLLM, MiniLMEmbedding, RoutingStatsHandler; "
        "heavy = ['litellm', 'sentence_transformers', 'torch', 'onnxruntime', 'transformers', "
        "'zerorouter_integrations.router', 'zerorouter_integrations.encoder']; "
        "print([h for h in heavy if h in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_cascade_per_call(router):
    """cascade=True runs the core cascade: stages in the decision, cost summed over them."""
    from llama_index.core.llms import ChatMessage

    llm = ZeroRouterLLM(router=router)
    resp = llm.chat(
        [
            ChatMessage(
                role="user",
                content="Question: Which is a mammal?\nA) shark\nB) dolphin\n"
                "C) trout\nAnswer with the letter.",
            )
        ],
        cascade=True,
    )
    ak = resp.additional_kwargs
    assert ak["routing_decision"]["stages"] and ak["cost_usd"] > 0
    assert ak["model"] in router.models
