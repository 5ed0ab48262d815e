"""Error classification: what one failed provider call means for the router.

:func:`classify` maps any exception raised while calling a model (LiteLLM, the OpenAI SDK, httpx,
the socket layer) to one of the documented :class:`~zerorouter_integrations.errors.ProviderError`
subclasses:

===========================  ==========================================================  ===============
class                        examples                                                    what happens
===========================  ==========================================================  ===============
``ConfigurationError``       401/403, missing credentials, unknown provider, 404 model   next model; the
                                                                                         model is marked
                                                                                         misconfigured
``RequestRejectedError``     context length, content filter, other 400/422, client-side  next model;
                             errors of the SDK about this request                         health untouched
``TransientError``           429, 5xx, 408/409, timeout, connection refused / reset      retry, next
                                                                                         model, counted
===========================  ==========================================================  ===============

LiteLLM's ``MidStreamFallbackError`` (and any wrapper with ``original_exception``) is classified by
the error it wraps. ``Retry-After`` (seconds or an HTTP date) is read from the response headers.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

from zerorouter_integrations.dispatch_errors import classify_error
from zerorouter_integrations.errors import (
    ConfigurationError,
    ProviderError,
    RequestRejectedError,
    TransientError,
)

__all__ = ["KINDS", "classify", "kind_of", "retry_after_s", "what_to_set"]

#: error_type → the class it belongs to.
KINDS: dict[str, type[ProviderError]] = {
    "timeout": TransientError,
    "rate_limit": TransientError,
    "server_error": TransientError,
    "connection_error": TransientError,
    "authentication": ConfigurationError,
    "permission_denied": ConfigurationError,
    "not_found": ConfigurationError,
    "missing_credentials": ConfigurationError,
    "unknown_provider": ConfigurationError,
    "bad_request": RequestRejectedError,
    "context_window_exceeded": RequestRejectedError,
    "content_policy": RequestRejectedError,
    "unprocessable": RequestRejectedError,
    "client_error": RequestRejectedError,
    "error": RequestRejectedError,
}

_CREDENTIAL_HINTS = (
    "missing credentials",
    "api_key client option must be set",
    "api key not found",
    "no api key",
    "api_key must be",
    "set the api_key",
    "missing api key",
    "invalid api key",
    "incorrect api key",
)
#: Errors raised in this process by the SDK about the request (LiteLLM reports them as HTTP 500).
_CLIENT_SIDE_HINTS = (
    "codec can't encode",
    "surrogates not allowed",
    "object is not iterable",
    "is not json serializable",
    "object has no attribute",
    "unexpected keyword argument",
    "object is not subscriptable",
    "object of type",
)
_PROVIDER_HINTS = (
    "llm provider not provided",
    "provider not provided",
    "unknown provider",
    "not supported provider",
)


def _unwrap(exc: BaseException) -> BaseException:
    seen = 0
    while seen < 5:
        inner = getattr(exc, "original_exception", None)
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc, seen = inner, seen + 1
    return exc


def _headers(exc: BaseException) -> Any:
    for attr in ("litellm_response_headers", "headers"):
        h = getattr(exc, attr, None)
        if h is not None and hasattr(h, "get"):
            return h
    resp = getattr(exc, "response", None)
    h = getattr(resp, "headers", None)
    return h if h is not None and hasattr(h, "get") else None


def retry_after_s(exc: BaseException) -> float | None:
    """The provider's ``Retry-After`` in seconds (``retry-after-ms`` too), or ``None``."""
    h = _headers(_unwrap(exc)) or _headers(exc)
    if h is None:
        return None
    try:
        ms = h.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
        value = h.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        try:
            when = email.utils.parsedate_to_datetime(str(value)).timestamp()
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when - time.time())


def kind_of(error_type: str) -> type[ProviderError]:
    """The class of a short error type (``"rate_limit"`` → :class:`TransientError`)."""
    return KINDS.get(error_type, RequestRejectedError)


def _error_type(exc: BaseException) -> tuple[str, int | None]:
    etype, status, _ = classify_error(exc)
    msg = str(exc).lower()
    if etype in ("error", "bad_request", "not_found") and any(h in msg for h in _PROVIDER_HINTS):
        return "unknown_provider", status
    if etype in ("error", "bad_request", "server_error") and any(h in msg for h in _CREDENTIAL_HINTS):
        return "missing_credentials", status
    if etype in ("error", "server_error", "bad_request") and any(h in msg for h in _CLIENT_SIDE_HINTS):
        return "client_error", status
    if etype == "error" and type(exc).__name__ in ("OpenAIError",) and "api_key" in msg:
        return "missing_credentials", status
    return etype, status


def classify(exc: BaseException, model: str | None = None) -> ProviderError:
    """The :class:`ProviderError` (a Configuration/RequestRejected/Transient error) that ``exc`` means.

    The returned error carries ``model``, ``status_code``, ``error_type``, ``retry_after_s`` and the
    original exception as ``cause`` (and ``__cause__``).
    """
    if isinstance(exc, ProviderError):
        return exc
    inner = _unwrap(exc)
    etype, status = _error_type(inner)
    if etype == "error" and inner is not exc:  # a wrapper whose wrapped error says nothing: try it
        etype, status = _error_type(exc)
    cls = kind_of(etype)
    text = f"{type(inner).__name__}: {inner}"
    if len(text) > 500:
        text = text[:499] + "…"
    err = cls(
        f"{model + ': ' if model else ''}{etype}: {text}",
        model=model,
        status_code=status,
        error_type=etype,
        retry_after_s=retry_after_s(exc),
        cause=inner,
    )
    err.__cause__ = inner
    return err


def what_to_set(err: ProviderError, litellm_model: str | None = None) -> str:
    """A short instruction for an operator to fix a :class:`ConfigurationError`."""
    where = f" for {litellm_model!r}" if litellm_model else ""
    if err.error_type == "unknown_provider":
        return f"check the LiteLLM model string{where}: it needs a provider prefix such as 'openai/'"
    if err.error_type == "not_found":
        return f"check the model name{where} and its api_base: the provider does not know it"
    return (
        f"set a valid API key{where}: ModelEndpoint(api_key=... or api_key_env=...) or the provider's "
        "environment variable"
    )
