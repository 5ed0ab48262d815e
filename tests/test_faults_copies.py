"""Issue 14, items 8 and 9: secrets never shown by the adapters; faithful pickles and deep copies."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
from langchain_core.load import dumpd, dumps

from zerorouter_integrations.dispatch import ModelEndpoint
from zerorouter_integrations.stores import MemoryStore, SQLiteStore
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer
from zerorouter_integrations.testing.fixtures import replay_router

POOL = ["gpt-3.5-turbo-1106", "claude-instant-v1", "mistralai/mixtral-8x7b-chat"]
SECRET = "sk-never-show-7c1e"
PROMPTS = ["What is 12 * 12?", "Write a limerick about a cat.", "Explain TCP slow start briefly."]


@pytest.fixture(scope="module")
def server():
    with ReplayServer({m: ModelBehaviour() for m in POOL}) as srv:
        yield srv


def _copies(obj):
    return [pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)]


def test_zerorouter_pickles_and_deep_copies_faithfully(server, tmp_path):
    for store in (MemoryStore(), SQLiteStore(tmp_path / "copies.db")):
        router = replay_router(server, POOL, store=store)
        router.complete(PROMPTS[0])
        for clone in _copies(router):
            assert clone.models == router.models and clone.endpoints == router.endpoints
            assert clone.encoder.precision == router.encoder.precision
            assert [clone.route(p).ranking for p in PROMPTS] == [router.route(p).ranking for p in PROMPTS]
            assert clone.complete(PROMPTS[1]).content  # locks and dispatcher rebuilt
            if isinstance(store, MemoryStore):  # copied, never replaced by an empty store
                assert clone.store is not store and clone.store.get_stats(router.complete(PROMPTS[0]).model)
            else:
                assert clone.store.path == store.path


def test_langchain_chat_model_hides_keys_and_copies(server):
    from langchain_router import ZeroRouterChat

    eps = {
        m: {
            "litellm_model": f"openai/{m}",
            "api_base": server.base_url,
            "api_key": SECRET,
            "input_cost_per_token": 1e-7,
        }
        for m in POOL
    }
    chat = ZeroRouterChat(models=POOL, endpoints=eps, api_key=SECRET, max_retries=0)
    for text in (
        repr(chat),
        str(chat),
        chat.model_dump_json(),
        json.dumps(dumpd(chat), default=str),
        dumps(chat),
    ):
        assert SECRET not in text
    answer = chat.invoke("What is 2 + 2?")
    assert answer.content and SECRET not in json.dumps(answer.response_metadata, default=str)
    for clone in (*_copies(chat), chat.model_copy(deep=True)):
        assert clone.get_router().models == chat.get_router().models
        assert all(ep.secret_api_key() == SECRET for ep in clone.get_router().endpoints.values())
        assert clone.invoke("What is 2 + 2?").content


def test_llamaindex_llm_takes_api_key_and_copies_route_over_the_same_pool(server):
    from llama_index.core.llms import ChatMessage

    from llamaindex_router import MiniLMEmbedding, ZeroRouterLLM

    server.require_api_key = SECRET
    try:
        eps = {
            m: ModelEndpoint(m, f"openai/{m}", api_base=server.base_url, input_cost_per_token=1e-7)
            for m in POOL
        }
        llm = ZeroRouterLLM(models=POOL, endpoints=eps, api_key=SECRET)
        for text in (repr(llm), llm.to_json(), json.dumps(llm.to_dict(), default=str)):
            assert SECRET not in text
        assert llm.chat([ChatMessage(role="user", content="Say hi.")]).message.content
        for clone in _copies(llm):
            assert clone.router.models == POOL and clone.router.endpoints == llm.router.endpoints
            assert clone.chat([ChatMessage(role="user", content="Say hi.")]).message.content
        lazy = ZeroRouterLLM(models=POOL, endpoints=eps, api_key=SECRET)  # router not built yet
        assert pickle.loads(pickle.dumps(lazy)).router.models == POOL
    finally:
        server.require_api_key = None
    router = replay_router(server, POOL)
    emb = MiniLMEmbedding(router=router)
    for clone in _copies(emb):
        assert clone.encoder.precision == router.encoder.precision
        assert np.allclose(clone.get_query_embedding("hello"), emb.get_query_embedding("hello"))


def test_langchain_embeddings_copy_with_their_encoder(server):
    from langchain_router import ZeroRouterEmbeddings

    router = replay_router(server, POOL)
    emb = ZeroRouterEmbeddings(encoder=router.encoder)
    for clone in _copies(emb):
        assert clone.encoder.precision == router.encoder.precision
        assert np.allclose(clone.embed_query("hello"), emb.embed_query("hello"))
