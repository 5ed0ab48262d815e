"""LCEL chain whose model is the router: ``prompt | ZeroRouterChat | StrOutputParser()``.

Runs offline against a local replay server that serves the eleven routerbench models (their
recorded answers where a prompt is known), every request going through the router's decision and
LiteLLM's real HTTP path::

    python examples/langchain_lcel_chain.py            # starts its own replay server
    ZEROROUTER_API_BASE=http://127.0.0.1:8011/v1 python examples/langchain_lcel_chain.py   # a running server
    python examples/langchain_lcel_chain.py http://127.0.0.1:8011/v1   # uses a running one

The usage callbacks report tokens (``get_usage_metadata_callback``) and calls / cost / latency
(``get_routing_usage_callback``) per model that actually answered.
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

QUESTIONS = [
    "Write a function to filter odd numbers.",
    'What is the pH level for pure water?\nA) 7.0\nB) 1.6\nC) 11.2\nD) 2.3\nPrint only a single choice  from "A" '
    'or "B" or "C" or "D" without explanation.\nAnswer:',
    "Write a function to find the n'th star number.",
]


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
    """Run the chain on three questions; return the answers, the routed models, usage and cost."""
    from langchain_core.callbacks import get_usage_metadata_callback
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    from langchain_router import ZeroRouterChat, get_routing_usage_callback
    from zerorouter_integrations.testing.fixtures import replay_router

    with replay(base_url) as server:
        router = replay_router(server)
        llm = ZeroRouterChat(router=router)  # default policy: 95 % of the reference model's quality
        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", "You are a careful assistant. Answer briefly."),
                ("human", "{question}"),
            ]
        )
        chain = prompt | llm | StrOutputParser()
        with get_usage_metadata_callback() as usage, get_routing_usage_callback() as routing:
            answers = chain.batch([{"question": q} for q in QUESTIONS])
            # The same chain without the parser keeps the message and its routing metadata. Routing
            # options can come per call through the config:
            message = (prompt | llm).invoke(
                {"question": QUESTIONS[0]}, config={"configurable": {"quality_target": 0.8}}
            )
        meta = message.response_metadata
        return {
            "pool": router.models,
            "answers": answers,
            "message": message,
            "model": meta["model_name"],
            "response_cost": meta["response_cost"],
            "usage_by_model": dict(usage.usage_metadata),
            "routing_usage": routing.to_dict(),
            "summary": routing.summary(),
        }


if __name__ == "__main__":
    out = main(sys.argv[1] if len(sys.argv) > 1 else None)
    for q, a in zip(QUESTIONS, out["answers"], strict=True):
        print(f"Q: {q.splitlines()[0]}\nA: {a[:200]!r}\n")
    d = out["message"].response_metadata["routing_decision"]
    print(
        f"last call → {out['model']}  cost ${out['response_cost']:.6f}  "
        f"expected saving vs {d['reference_model']}: {d['expected_saving_fraction']}"
    )
    print(out["summary"])
