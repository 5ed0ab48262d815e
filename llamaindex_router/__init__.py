"""LlamaIndex adapter of zerorouter: an LLM, an embedding model and an instrumentation handler.

* :class:`ZeroRouterLLM` (``llamaindex_router.llm``): a ``FunctionCallingLLM`` that routes each
  call through the core ``ZeroRouter`` and reports the routed model, usage, cost and decision.
* :class:`MiniLMEmbedding` (``llamaindex_router.embedding``): the bundled MiniLM as a ``BaseEmbedding``.
* :class:`RoutingStatsHandler` (``llamaindex_router.instrumentation``): per-model calls, tokens,
  cost and latency from LlamaIndex's instrumentation events.

Modules (the adapter translates and calls ``ZeroRouter``; it holds no routing logic):

* ``llm``: ``ZeroRouterLLM``, the ``FunctionCallingLLM`` (metadata, chat / complete bodies, tools)
* ``options``: per-call routing options and policies -> ``ZeroRouter.complete`` keyword arguments
* ``_convert``: LlamaIndex messages <-> OpenAI dicts, responses, stream accumulation
* ``embedding``: the bundled MiniLM as a ``BaseEmbedding``
* ``instrumentation``: ``RoutingStatsHandler`` and ``attach`` / ``detach``

Exports are loaded on first access (PEP 562), so ``import llamaindex_router`` is instant; the
first use of a class imports ``llama_index.core`` (most of the cost) and the adapter module, while
the heavy parts of the core (numpy models, LiteLLM, sentence-transformers) load on first call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import zerorouter_integrations  # noqa: F401  (its import applies the offline settings before litellm / HF)
from zerorouter_integrations.extras import need

# Every submodule import runs this first: without the framework the error names the extra to install.
need("llamaindex", "the LlamaIndex adapter (llamaindex_router)")

if TYPE_CHECKING:  # pragma: no cover
    from llamaindex_router.embedding import MiniLMEmbedding
    from llamaindex_router.instrumentation import ModelStats, RoutingStatsHandler, attach, detach
    from llamaindex_router.llm import ZeroRouterLLM

__all__ = ["MiniLMEmbedding", "ModelStats", "RoutingStatsHandler", "ZeroRouterLLM", "attach", "detach"]

_EXPORTS = {
    "ZeroRouterLLM": "llamaindex_router.llm",
    "MiniLMEmbedding": "llamaindex_router.embedding",
    "RoutingStatsHandler": "llamaindex_router.instrumentation",
    "ModelStats": "llamaindex_router.instrumentation",
    "attach": "llamaindex_router.instrumentation",
    "detach": "llamaindex_router.instrumentation",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llamaindex_router' has no attribute {name!r}; it exports {__all__}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
