"""Retrieval-augmented generation with the router as the answering model.

The retriever is an ``InMemoryVectorStore`` (langchain-core) over a few documents, embedded with the
bundled MiniLM through :class:`~langchain_router.ZeroRouterEmbeddings` (the router's own encoder, so
nothing is loaded twice and nothing is downloaded)::

    python examples/langchain_rag.py
    ZEROROUTER_API_BASE=http://127.0.0.1:8011/v1 python examples/langchain_rag.py   # a running server
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from zerorouter_integrations.data import find_data_dir

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = find_data_dir(table="routerbench_subset")

DOCUMENTS = [
    "The router sends each request to the cheapest model that is predicted to answer it well.",
    "Predicted quality comes from a latent space learned from benchmark outcomes of many models.",
    "A new model is added to the router by onboarding: it answers about one hundred anchor prompts.",
    "LiteLLM dispatches the call; when a model fails, the next model of the ranking answers.",
    "Within a conversation the router only escalates: it never moves to a weaker model.",
    "The Eiffel Tower was completed in 1889 and is 330 metres tall.",
]
QUESTION = "How is a new model added to the router?"


@contextlib.contextmanager
def replay(base_url: str | None = None, scripted: Sequence[Any] = ()) -> Iterator[Any]:
    """A started replay server (recorded routerbench answers when the data is here), or ``base_url``.

    ``base_url`` defaults to the ``ZEROROUTER_API_BASE`` setting (a running replay server or gateway).
    """
    from zerorouter_integrations.endpoints import api_base_from_env

    base_url = base_url or api_base_from_env()
    if base_url is not None:
        yield SimpleNamespace(base_url=base_url)
        return
    from zerorouter_integrations.testing import ReplayServer

    tables = [DATA_DIR] if (DATA_DIR / "prompts.parquet").is_file() else []
    with ReplayServer(table_dirs=tables, scripted=scripted) as server:
        yield server


def main(base_url: str | None = None) -> dict[str, Any]:
    """Answer one question from retrieved context; return the context, answer, model, usage, cost."""
    from langchain_core.callbacks import get_usage_metadata_callback
    from langchain_core.documents import Document
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableParallel, RunnablePassthrough
    from langchain_core.vectorstores import InMemoryVectorStore

    from langchain_router import ZeroRouterChat, ZeroRouterEmbeddings, get_routing_usage_callback
    from zerorouter_integrations.testing.fixtures import replay_router

    with replay(base_url) as server:
        router = replay_router(server)
        store = InMemoryVectorStore.from_documents(
            [Document(page_content=t) for t in DOCUMENTS], ZeroRouterEmbeddings(encoder=router.encoder)
        )
        retriever = store.as_retriever(search_kwargs={"k": 2})
        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", "Answer the question using only this context:\n{context}"),
                ("human", "{question}"),
            ]
        )

        def format_docs(docs: list[Document]) -> str:
            return "\n".join(f"- {d.page_content}" for d in docs)

        rag = (
            {"context": retriever | format_docs, "question": RunnablePassthrough()}
            | prompt
            | ZeroRouterChat(router=router)
            | RunnableParallel(answer=StrOutputParser(), message=RunnablePassthrough())
        )
        with get_usage_metadata_callback() as usage, get_routing_usage_callback() as routing:
            out = rag.invoke(QUESTION)
        meta = out["message"].response_metadata
        return {
            "pool": router.models,
            "context": [d.page_content for d in retriever.invoke(QUESTION)],
            "answer": out["answer"],
            "message": out["message"],
            "model": meta["model_name"],
            "response_cost": meta["response_cost"],
            "usage_by_model": dict(usage.usage_metadata),
            "routing_usage": routing.to_dict(),
            "summary": routing.summary(),
        }


if __name__ == "__main__":
    out = main(sys.argv[1] if len(sys.argv) > 1 else None)
    print("context:", *out["context"], sep="\n  ")
    print(f"answer ({out['model']}, ${out['response_cost']:.6f}): {out['answer'][:300]}")
    print(out["summary"])
