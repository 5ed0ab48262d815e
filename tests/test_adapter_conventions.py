"""Framework conventions of both adapters: endpoint forms, offline token counting, LangChain's own keywords.

Real components: the replay server on 127.0.0.1, real LiteLLM, LangChain's ``trim_messages``, a real
LlamaIndex query engine and chat memory.
"""

from __future__ import annotations

import pytest

from zerorouter_integrations.dispatch import ModelEndpoint
from zerorouter_integrations.testing import ReplayServer

POOL = ["gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"]


@pytest.fixture(scope="module")
def server():
    with ReplayServer() as srv:
        yield srv


def _endpoint_forms(server: ReplayServer) -> dict:
    """The same pool in both accepted forms: a plain dict and a ModelEndpoint."""
    return {
        POOL[0]: {"litellm_model": f"openai/{POOL[0]}", "api_base": server.base_url, "api_key": "sk-test"},
        POOL[1]: ModelEndpoint(POOL[1], f"openai/{POOL[1]}", api_base=server.base_url, api_key="sk-test"),
    }


def _conversation(n: int) -> list[tuple[str, str]]:
    return [
        (role, f"turn {i}: " + "a fairly long sentence about routing requests to models. " * 5)
        for i in range(n)
        for role in ("user", "assistant")
    ]


# ----------------------------------------------------------------------------- LlamaIndex
def test_llamaindex_dict_endpoints_answer_inside_a_query_engine(server) -> None:
    from llama_index.core import Document, VectorStoreIndex

    from llamaindex_router import MiniLMEmbedding, ZeroRouterLLM

    llm = ZeroRouterLLM(models=POOL, endpoints=_endpoint_forms(server), max_tokens=64)
    index = VectorStoreIndex.from_documents(
        [Document(text="zerorouter routes LLM calls to the cheapest good model.")],
        embed_model=MiniLMEmbedding(),
    )
    server.reset_counters()
    resp = index.as_query_engine(llm=llm).query("What does zerorouter do?")
    assert str(resp).strip() and str(resp) != "Empty Response"
    assert server.request_count() >= 1
    assert {r.model for r in server.requests} <= set(POOL)


def test_llamaindex_counts_tokens_offline_and_memory_trims(server) -> None:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.memory import ChatMemoryBuffer

    from llamaindex_router import ZeroRouterLLM

    llm = ZeroRouterLLM(models=POOL, endpoints=_endpoint_forms(server))
    text = "The quick brown fox jumps over the lazy dog."
    assert 8 <= llm.count_tokens(text) <= 14
    assert len(llm.tokenizer(text)) == llm.count_tokens(text)
    chat = [ChatMessage(role=r, content=c) for r, c in _conversation(10)]
    total = llm.count_message_tokens(chat)
    assert total > sum(llm.count_tokens(m.content) for m in chat)  # per-message overhead counted
    memory = ChatMemoryBuffer.from_defaults(token_limit=total // 3, tokenizer_fn=llm.tokenizer)
    memory.put_messages(chat)
    kept = memory.get()
    assert 0 < len(kept) < len(chat)
    assert kept[-1].content == chat[-1].content  # the most recent turns are kept


# ----------------------------------------------------------------------------- LangChain
def _chat(server: ReplayServer, **kw):
    from langchain_router import ZeroRouterChat

    return ZeroRouterChat(models=POOL, endpoints=_endpoint_forms(server), **kw)


def test_langchain_accepts_the_same_endpoint_forms(server) -> None:
    llm = _chat(server)
    server.reset_counters()
    msg = llm.invoke("What is 2 + 2?")
    assert msg.content and msg.response_metadata["model_name"] in POOL
    assert server.request_count() == 1


def test_langchain_counts_tokens_offline_and_trim_messages_trims(server) -> None:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, trim_messages

    llm = _chat(server)
    assert 8 <= llm.get_num_tokens("The quick brown fox jumps over the lazy dog.") <= 14
    history = [SystemMessage("You are terse.")] + [
        HumanMessage(c) if r == "user" else AIMessage(c) for r, c in _conversation(10)
    ]
    total = llm.get_num_tokens_from_messages(history)
    assert total > sum(llm.get_num_tokens(m.content) for m in history)
    trimmed = trim_messages(
        history,
        max_tokens=total // 3,
        token_counter=llm,
        strategy="last",
        include_system=True,
        start_on="human",
    )
    assert 1 < len(trimmed) < len(history)
    assert trimmed[0] == history[0] and trimmed[-1] == history[-1]
    assert llm.get_num_tokens_from_messages(trimmed) <= total // 3
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return city

    assert llm.get_num_tokens_from_messages(
        history[:2], tools=[get_weather]
    ) > llm.get_num_tokens_from_messages(history[:2])


def test_langchain_keywords_stay_out_of_the_provider_request_and_stream_usage_works(server) -> None:
    llm = _chat(server)
    server.reset_counters()
    chunks = list(llm.stream("Say hello.", stream_usage=False, ls_extra="trace-only"))
    assert chunks and all(c.usage_metadata is None for c in chunks)
    body = server.requests[-1].body
    assert "stream_usage" not in body and not [k for k in body if k.startswith("ls_")]
    with_usage = list(llm.stream("Say hello."))
    assert with_usage[-1].usage_metadata and with_usage[-1].usage_metadata["total_tokens"] > 0
    off = _chat(server, stream_usage=False)
    assert all(c.usage_metadata is None for c in off.stream("Say hello."))
    msg = llm.invoke("Say hello.", stream_usage=True)  # harmless on a non-stream call
    assert msg.usage_metadata["total_tokens"] > 0
    assert "stream_usage" not in server.requests[-1].body
