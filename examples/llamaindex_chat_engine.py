"""A LlamaIndex chat engine on zerorouter: a two-turn conversation (the second turn streamed) over a
small knowledge base, every LLM call routed, the conversation kept on one session (escalate-only
stickiness: a follow-up never goes to a weaker model than the conversation already used).

Run it offline (a local replay server answers for every pool model; LiteLLM makes real HTTP calls)::

    python examples/llamaindex_chat_engine.py
    ZEROROUTER_API_BASE=http://127.0.0.1:8011/v1 python examples/llamaindex_chat_engine.py   # a running server
    python examples/llamaindex_chat_engine.py --base-url URL   # a running `zerorouter serve-replay`
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from typing import Any

DOCUMENTS = [
    "Orders ship within two business days from our warehouse in Lyon.",
    "Returns are free within 30 days; start one from the Orders page.",
    "Gift cards cannot be refunded or exchanged for cash.",
]
TURNS = ["How long does shipping take?", "And can I return an order after three weeks?"]


@dataclass(frozen=True)
class _Server:
    base_url: str


def main(base_url: str | None = None) -> dict[str, Any]:
    """Chat for two turns and return the answers with the routed models and costs.

    Returns
    -------
    dict
        ``turns`` (one dict per turn: ``question``, ``answer``, ``models``, ``cost_usd``),
        ``model`` (the model of the last turn's answer), ``cost_usd`` (total), ``pool``.
    """
    from llama_index.core import Document, VectorStoreIndex

    from llamaindex_router import MiniLMEmbedding, RoutingStatsHandler, ZeroRouterLLM
    from zerorouter_integrations.endpoints import api_base_from_env
    from zerorouter_integrations.testing import ReplayServer
    from zerorouter_integrations.testing.fixtures import replay_router

    turns = []
    with contextlib.ExitStack() as stack:
        base_url = base_url or api_base_from_env()  # the ZEROROUTER_API_BASE setting
        server: Any = _Server(base_url) if base_url else stack.enter_context(ReplayServer())
        router = replay_router(server)
        llm = ZeroRouterLLM(router, session_id="chat-engine-example", max_tokens=256)
        index = VectorStoreIndex.from_documents(
            [Document(text=t) for t in DOCUMENTS], embed_model=MiniLMEmbedding(router=router)
        )
        chat_engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm, similarity_top_k=1)

        for i, question in enumerate(TURNS):
            with RoutingStatsHandler().attach() as stats:
                if i == 0:
                    answer = str(chat_engine.chat(question))
                else:  # stream the follow-up
                    streaming = chat_engine.stream_chat(question)
                    answer = "".join(streaming.response_gen)
            summary = stats.summary()
            turns.append(
                {
                    "question": question,
                    "answer": answer,
                    "models": list(summary["models"]),
                    "cost_usd": summary["total"]["cost_usd"],
                    "table": stats.table(),
                }
            )
        last_model = chat_engine.chat_history[-1].additional_kwargs.get("model")
    return {
        "turns": turns,
        "model": last_model or turns[-1]["models"][-1],
        "cost_usd": sum(t["cost_usd"] for t in turns),
        "pool": router.models,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running replay server (default: start one)")
    out = main(parser.parse_args().base_url)
    for t in out["turns"]:
        print(
            f"user: {t['question']}\nassistant: {t['answer']}\n  (routed to {', '.join(t['models'])}, "
            f"${t['cost_usd']:.6f})\n"
        )
    print(f"total cost ${out['cost_usd']:.6f}")
