"""How pool models are reached: the endpoint forms every entry point accepts, and ``ZEROROUTER_API_BASE``.

:func:`as_endpoint` turns each accepted form into a
:class:`~zerorouter_integrations.dispatch.ModelEndpoint`: a ``ModelEndpoint``, its dict (``to_dict()``
keys, e.g. ``{"litellm_model": "openai/x", "api_base": ...}``; ``model`` is accepted for
``litellm_model`` as in LiteLLM's ``litellm_params``) or a LiteLLM model string. ``ZeroRouter``,
``ZeroRouterChat`` and ``ZeroRouterLLM`` all go through it.

When the environment variable ``ZEROROUTER_API_BASE`` holds a URL (e.g. a LiteLLM proxy, a company
gateway, or the local replay server ``zerorouter serve-replay``), a router built without
``endpoints=`` sends every pool model there as ``openai/<pool name>``, with the key from
``ZEROROUTER_API_KEY`` (read at call time; a placeholder when unset, for servers without auth).
Prices stay the profiles' list prices. Explicit ``endpoints=`` always win over the setting.

The README's snippets and the ``examples/`` read the server URL this way, so they run unchanged
against any OpenAI-compatible server::

    ZEROROUTER_API_BASE=http://127.0.0.1:8011/v1 python examples/langchain_lcel_chain.py
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "API_BASE_ENV",
    "API_KEY_ENV",
    "PLACEHOLDER_KEY",
    "api_base_from_env",
    "as_endpoint",
    "gateway_endpoints",
    "server_endpoint",
]

#: Environment variable naming the OpenAI-compatible base URL that serves every pool model.
API_BASE_ENV = "ZEROROUTER_API_BASE"
#: Environment variable holding that server's API key (read at call time).
API_KEY_ENV = "ZEROROUTER_API_KEY"
#: Sent when ``ZEROROUTER_API_KEY`` is unset: OpenAI-compatible clients refuse to send no key at all.
PLACEHOLDER_KEY = "no-key"


def as_endpoint(name: str, endpoint: Any) -> Any:
    """``endpoint`` as a :class:`~zerorouter_integrations.dispatch.ModelEndpoint` named ``name``.

    Raises
    ------
    TypeError
        For any other type, naming it and the accepted forms.
    SchemaError
        For a dict with unknown keys or without a model string.
    """
    from zerorouter_integrations.dispatch import ModelEndpoint

    if isinstance(endpoint, ModelEndpoint):
        return endpoint
    if isinstance(endpoint, str):
        return ModelEndpoint(name=name, litellm_model=endpoint)
    if isinstance(endpoint, Mapping):
        d = dict(endpoint)
        if "model" in d and "litellm_model" not in d:
            d["litellm_model"] = d.pop("model")
        return ModelEndpoint.from_dict({"name": name, **d})
    raise TypeError(
        f"endpoints[{name!r}] is {type(endpoint).__name__}; expected a ModelEndpoint, its dict "
        "(e.g. {'litellm_model': 'openai/gpt-4o-mini', 'api_base': ...}) or a LiteLLM model string"
    )


def api_base_from_env() -> str | None:
    """The URL in ``ZEROROUTER_API_BASE``, or None when unset or empty.

    Raises
    ------
    ValueError
        When the value is not an ``http://`` or ``https://`` URL.
    """
    value = os.environ.get(API_BASE_ENV, "").strip()
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError(
            f"{API_BASE_ENV}={value!r}; expected an OpenAI-compatible base URL such as "
            "'http://127.0.0.1:4000/v1' (or unset it)"
        )
    return value.rstrip("/")


def server_endpoint(
    name: str,
    api_base: str,
    *,
    litellm_model: str | None = None,
    api_key_env: str | None = None,
    input_cost_per_token: float | None = None,
    output_cost_per_token: float | None = None,
) -> Any:
    """A :class:`~zerorouter_integrations.dispatch.ModelEndpoint` for ``name`` on an OpenAI-compatible server.

    The model is called as ``litellm_model`` (default ``openai/<name>``); the key comes from
    ``api_key_env`` (default ``ZEROROUTER_API_KEY``) at call time, else a placeholder is sent.
    """
    from zerorouter_integrations.dispatch import ModelEndpoint

    return ModelEndpoint(
        name=name,
        litellm_model=litellm_model or f"openai/{name}",
        api_base=api_base,
        api_key_env=api_key_env or API_KEY_ENV,
        input_cost_per_token=input_cost_per_token,
        output_cost_per_token=output_cost_per_token,
        extra={"api_key": PLACEHOLDER_KEY},  # the key from api_key_env, when set, wins at call time
    )


def gateway_endpoints(api_base: str, names: Iterable[str], profiles: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`server_endpoint` for each name, priced with its profile's list prices (when known)."""
    out = {}
    for name in names:
        p = profiles.get(name)
        out[name] = server_endpoint(
            name,
            api_base,
            input_cost_per_token=getattr(p, "input_usd_per_token", None),
            output_cost_per_token=getattr(p, "output_usd_per_token", None),
        )
    return out
