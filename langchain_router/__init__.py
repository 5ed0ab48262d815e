"""LangChain adapter of zerorouter: a chat model, usage callbacks, embeddings and agent middleware.

``import langchain_router`` is cheap: every export is loaded on first access (PEP 562), and the
routing core (numpy, the encoder, LiteLLM) only on the first model call.

Modules (the adapter translates and calls ``ZeroRouter``; it holds no routing logic):

* ``chat_model``: ``ZeroRouterChat``, the ``BaseChatModel`` (fields, validation, the four call bodies)
* ``options``: routing options from kwargs / config / metadata -> ``ZeroRouter.complete`` parameters
* ``building``: the core router and calibrated policies built from the chat model's fields
* ``results``: routed responses and chunks as ``AIMessage`` / chunks with usage and metadata
* ``structured``: ``with_structured_output`` (tool calling, ``json_schema``, ``json_mode``)
* ``hints``: "what to do" hints appended to core errors
* ``_messages``: LangChain messages <-> OpenAI dicts, tool calls, usage
* ``callbacks``: per-model usage and cost callback handler
* ``embeddings``: the router's MiniLM as LangChain ``Embeddings``
* ``middleware``: agent middleware that routes each model call of a LangChain agent

>>> from langchain_router import ZeroRouterChat            # doctest: +SKIP
>>> llm = ZeroRouterChat(router=router, quality_target=0.9)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import zerorouter_integrations  # noqa: F401  (its import applies the offline settings before litellm / transformers)
from zerorouter_integrations.extras import need

# Every submodule import runs this first: without the framework the error names the extra to install.
need("langchain", "the LangChain adapter (langchain_router)")

if TYPE_CHECKING:  # pragma: no cover
    from langchain_router.callbacks import (
        ModelUsage,
        RoutingUsageCallbackHandler,
        get_routing_usage_callback,
    )
    from langchain_router.chat_model import ZeroRouterChat, routing_options_from_config
    from langchain_router.embeddings import ZeroRouterEmbeddings
    from langchain_router.middleware import ZeroRouterMiddleware

__all__ = [
    "ModelUsage",
    "RoutingUsageCallbackHandler",
    "ZeroRouterChat",
    "ZeroRouterEmbeddings",
    "ZeroRouterMiddleware",
    "get_routing_usage_callback",
    "routing_options_from_config",
]

_EXPORTS = {
    "ZeroRouterChat": "langchain_router.chat_model",
    "routing_options_from_config": "langchain_router.chat_model",
    "RoutingUsageCallbackHandler": "langchain_router.callbacks",
    "ModelUsage": "langchain_router.callbacks",
    "get_routing_usage_callback": "langchain_router.callbacks",
    "ZeroRouterEmbeddings": "langchain_router.embeddings",
    "ZeroRouterMiddleware": "langchain_router.middleware",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'langchain_router' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
