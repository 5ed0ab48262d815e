"""RAG with LlamaIndex on zerorouter: a ``VectorStoreIndex`` embedded with the bundled MiniLM, queried
through a query engine whose LLM is the router.

Run it offline (a local replay server answers for every pool model; LiteLLM makes real HTTP calls)::

    python examples/llamaindex_rag.py                 # starts its own replay server
    ZEROROUTER_API_BASE=http://127.0.0.1:8011/v1 python examples/llamaindex_rag.py   # a running server
    python examples/llamaindex_rag.py --base-url URL  # or uses a running one (zerorouter serve-replay)

With real providers, build the router with ``ZeroRouter.default(models=[...])`` and set their API keys.
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from typing import Any

DOCUMENTS = [
    "zerorouter routes each LLM request to the cheapest model that is likely to answer it well. "
    "It predicts every model's quality on the prompt from a latent space learned on benchmark data.",
    "To add a new model, zerorouter onboards it from its scores on about one hundred anchor prompts; "
    "no retraining of the router is needed.",
    "Costs are computed from each model's price per input and output token; the router reports the "
    "saving against a reference model for every request.",
    "The office cafeteria serves soup on Mondays and pasta on Fridays.",
]
QUESTION = "How does zerorouter add a new model?"


@dataclass(frozen=True)
class _Server:
    base_url: str


def main(base_url: str | None = None) -> dict[str, Any]:
    """Build the index, ask :data:`QUESTION`, and return the answer with its routing figures.

    Returns
    -------
    dict
        ``answer``, ``sources`` (retrieved texts), ``model`` (the routed model), ``cost_usd``,
        ``pool`` and ``stats`` (per-model summary of the LLM calls).
    """
    from llama_index.core import Document, VectorStoreIndex

    from llamaindex_router import MiniLMEmbedding, RoutingStatsHandler, ZeroRouterLLM
    from zerorouter_integrations.endpoints import api_base_from_env
    from zerorouter_integrations.testing import ReplayServer
    from zerorouter_integrations.testing.fixtures import replay_router

    with contextlib.ExitStack() as stack:
        base_url = base_url or api_base_from_env()  # the ZEROROUTER_API_BASE setting
        server: Any = _Server(base_url) if base_url else stack.enter_context(ReplayServer())
        router = replay_router(server)
        llm = ZeroRouterLLM(router, max_tokens=256)
        embed_model = MiniLMEmbedding(router=router)  # same MiniLM (and cache) as the router's encoder

        index = VectorStoreIndex.from_documents(
            [Document(text=t) for t in DOCUMENTS], embed_model=embed_model
        )
        query_engine = index.as_query_engine(llm=llm, similarity_top_k=2)
        with RoutingStatsHandler().attach() as stats:
            response = query_engine.query(QUESTION)
        summary = stats.summary()
    model = next(iter(summary["models"]))
    return {
        "answer": str(response),
        "sources": [n.node.get_content() for n in response.source_nodes],
        "model": model,
        "cost_usd": summary["total"]["cost_usd"],
        "pool": router.models,
        "stats": summary,
        "table": stats.table(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running replay server (default: start one)")
    out = main(parser.parse_args().base_url)
    print(f"Q: {QUESTION}\nA: {out['answer']}\n")
    print("retrieved:", *[f"  - {s[:80]}…" for s in out["sources"]], sep="\n")
    print(f"\nrouted to {out['model']}, cost ${out['cost_usd']:.6f}\n")
    print(out["table"])
