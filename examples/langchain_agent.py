"""A LangChain agent (``create_agent``) whose tool-calling model is the router.

The replay server answers the first model call with a ``get_weather`` tool call built from the
tool's JSON schema (the city is taken from the question), and the call after the tool result with
"The tool returned: …". :class:`~langchain_router.ZeroRouterMiddleware` routes the run's first model
call (session = the run's ``thread_id``) and pins the rest of the run to that model::

    python examples/langchain_agent.py
    ZEROROUTER_API_BASE=http://127.0.0.1:8011/v1 python examples/langchain_agent.py   # a running server
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from zerorouter_integrations.data import find_data_dir

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = find_data_dir(table="routerbench_subset")

QUESTION = "What is the weather in Paris today?"
THREAD_ID = "weather-demo"


def _weather_call(body: dict) -> Any:
    """Replay script: call get_weather with the city named in the question (not after a tool result)."""
    last = body["messages"][-1]
    if last.get("role") == "tool" or not body.get("tools"):
        return None  # fall through: "The tool returned: ..." / the generic answer
    m = re.search(r"weather in ([A-Z][\w-]+)", str(last.get("content")))
    return {"tool_call": {"name": "get_weather", "arguments": {"city": m.group(1) if m else "Paris"}}}


#: Scripted replies for the replay server (tests that serve this example pass them to theirs).
SCRIPTED = [(r"weather in ", _weather_call)]


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
    """Run the agent once; return its messages, the model of each model call, usage and cost."""
    from langchain.agents import create_agent
    from langchain_core.callbacks import get_usage_metadata_callback
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool

    from langchain_router import ZeroRouterChat, ZeroRouterMiddleware, get_routing_usage_callback
    from zerorouter_integrations.testing.fixtures import replay_router

    @tool
    def get_weather(city: str) -> str:
        """Return the current weather in a city."""
        return f"sunny and 21 °C in {city}"

    with replay(base_url, SCRIPTED) as server:
        router = replay_router(server)
        agent = create_agent(
            ZeroRouterChat(router=router),
            tools=[get_weather],
            system_prompt="You answer weather questions. Use the get_weather tool.",
            middleware=[ZeroRouterMiddleware()],
        )
        with get_usage_metadata_callback() as usage, get_routing_usage_callback() as routing:
            result = agent.invoke(
                {"messages": [{"role": "user", "content": QUESTION}]},
                config={"configurable": {"thread_id": THREAD_ID}},
            )
        ai = [m for m in result["messages"] if isinstance(m, AIMessage)]
        return {
            "pool": router.models,
            "messages": result["messages"],
            "answer": ai[-1].text,
            "models": [m.response_metadata["model_name"] for m in ai],
            "model": ai[0].response_metadata["model_name"],
            "response_cost": sum(m.response_metadata["response_cost"] for m in ai),
            "tool_calls": [tc for m in ai for tc in m.tool_calls],
            "usage_by_model": dict(usage.usage_metadata),
            "routing_usage": routing.to_dict(),
            "summary": routing.summary(),
        }


if __name__ == "__main__":
    out = main(sys.argv[1] if len(sys.argv) > 1 else None)
    for m in out["messages"]:
        print(f"{m.type:>6}: {m.text or m.tool_calls}")
    print(f"\nmodel calls → {out['models']}  total cost ${out['response_cost']:.6f}")
    print(out["summary"])
