"""A LlamaIndex ``FunctionAgent`` on zerorouter: the agent calls a Python tool, every LLM step routed.

The first step (which tool, with which arguments) and the final answer are separate LLM calls, so
each may go to a different model; the routing decision only admits models that support tools.

Run it offline (a local replay server answers for every pool model; LiteLLM makes real HTTP calls)::

    python examples/llamaindex_agent.py
    ZEROROUTER_API_BASE=http://127.0.0.1:8011/v1 python examples/llamaindex_agent.py   # a running server
    python examples/llamaindex_agent.py --base-url URL   # a running `zerorouter serve-replay`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

QUESTION = "What is 6 times 7? Use the multiply tool."


@dataclass(frozen=True)
class _Server:
    base_url: str


def multiply(a: int, b: int) -> int:
    """Multiply two integers and return the product."""
    return a * b


async def amain(base_url: str | None = None) -> dict[str, Any]:
    """Run the agent once; return its answer, the tool calls it made, and the routing figures.

    Returns
    -------
    dict
        ``answer``, ``tool_calls`` (``[(name, kwargs, output)]``), ``model`` (model of the final
        answer), ``models`` (per-step models), ``cost_usd`` (total), ``pool``, ``stats``.
    """
    from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
    from llama_index.core.tools import FunctionTool

    from llamaindex_router import RoutingStatsHandler, ZeroRouterLLM
    from zerorouter_integrations.endpoints import api_base_from_env
    from zerorouter_integrations.testing import ReplayServer
    from zerorouter_integrations.testing.fixtures import replay_router

    with contextlib.ExitStack() as stack:
        base_url = base_url or api_base_from_env()  # the ZEROROUTER_API_BASE setting
        server: Any = _Server(base_url) if base_url else stack.enter_context(ReplayServer())
        router = replay_router(server)
        llm = ZeroRouterLLM(router, max_tokens=256)
        agent = FunctionAgent(
            tools=[FunctionTool.from_defaults(fn=multiply)],
            llm=llm,
            system_prompt="You are a careful calculator. Always use your tools.",
        )
        tool_calls = []
        with RoutingStatsHandler().attach() as stats:
            handler = agent.run(user_msg=QUESTION)
            async for event in handler.stream_events():
                if isinstance(event, ToolCallResult):
                    tool_calls.append((event.tool_name, dict(event.tool_kwargs), event.tool_output.content))
            result = await handler
        summary = stats.summary()
    raw = result.raw if isinstance(result.raw, dict) else {}
    return {
        "answer": str(result.response.content or ""),
        "tool_calls": tool_calls,
        "model": raw.get("model") or next(iter(summary["models"])),
        "models": list(summary["models"]),
        "cost_usd": summary["total"]["cost_usd"],
        "pool": router.models,
        "stats": summary,
        "table": stats.table(),
    }


def main(base_url: str | None = None) -> dict[str, Any]:
    """Sync entry point of :func:`amain`."""
    return asyncio.run(amain(base_url))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running replay server (default: start one)")
    out = main(parser.parse_args().base_url)
    print(f"Q: {QUESTION}\nA: {out['answer']}")
    for name, kwargs, output in out["tool_calls"]:
        print(f"  tool {name}({kwargs}) -> {output}")
    print(f"\nfinal answer routed to {out['model']}; total cost ${out['cost_usd']:.6f}\n")
    print(out["table"])
