"""Error classification of a dispatch: which LiteLLM / OpenAI / transport failures are retried
(timeout, 429, 5xx, connection) and which go straight to the next model (bad request, auth, not found,
context window, content policy). See :func:`classify_error`."""

from __future__ import annotations

from typing import Any

from zerorouter_integrations._env import import_litellm

__all__ = ["classify_error", "error_message"]


_EXC: dict[str, tuple[type, ...]] = {}


def _exc_classes() -> dict[str, tuple[type, ...]]:
    if _EXC:
        return _EXC
    litellm = import_litellm()  # imports asyncio, httpx and openai anyway
    import asyncio

    import httpx
    import openai

    def cls(*names: str, mod: Any = litellm) -> tuple[type, ...]:
        return tuple(c for n in names if isinstance(c := getattr(mod, n, None), type))

    _EXC.update(
        context=cls("ContextWindowExceededError"),
        policy=cls("ContentPolicyViolationError"),
        timeout=cls("Timeout")
        + cls("APITimeoutError", mod=openai)
        + (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException),
        rate=cls("RateLimitError") + cls("RateLimitError", mod=openai),
        auth=cls("AuthenticationError") + cls("AuthenticationError", mod=openai),
        perm=cls("PermissionDeniedError") + cls("PermissionDeniedError", mod=openai),
        notfound=cls("NotFoundError") + cls("NotFoundError", mod=openai),
        bad=cls("BadRequestError") + cls("BadRequestError", mod=openai),
        unproc=cls("UnprocessableEntityError") + cls("UnprocessableEntityError", mod=openai),
        conn=cls("APIConnectionError")
        + cls("APIConnectionError", mod=openai)
        + (ConnectionError, httpx.TransportError),
        server=cls("InternalServerError", "ServiceUnavailableError", "BadGatewayError")
        + cls("InternalServerError", mod=openai),
    )
    return _EXC


def classify_error(exc: BaseException) -> tuple[str, int | None, bool]:
    """Classify a LiteLLM / OpenAI / transport exception.

    Returns
    -------
    (error_type, status_code, retryable)
        See :class:`Attempt` for the error types.
    """
    E = _exc_classes()
    status = getattr(exc, "status_code", None)
    try:
        status = int(status) if status is not None else None
    except (TypeError, ValueError):
        status = None
    msg = str(exc).lower()
    if isinstance(exc, E["context"]):
        return "context_window_exceeded", status or 400, False
    if isinstance(exc, E["policy"]):
        return "content_policy", status or 400, False
    if isinstance(exc, E["timeout"]):
        return "timeout", status, True
    if isinstance(exc, E["rate"]) or status == 429:
        return "rate_limit", 429, True
    if isinstance(exc, E["auth"]) or status == 401:
        return "authentication", status or 401, False
    if isinstance(exc, E["perm"]) or status == 403:
        return "permission_denied", status or 403, False
    if isinstance(exc, E["notfound"]) or status == 404:
        return "not_found", status or 404, False
    if isinstance(exc, E["unproc"]) or status == 422:
        return "unprocessable", status or 422, False
    if isinstance(exc, E["bad"]) or status == 400:
        return "bad_request", status or 400, False
    if status in (408, 409):
        return ("timeout" if status == 408 else "server_error"), status, True
    if (
        isinstance(exc, E["conn"])
        or "connection error" in msg
        or "connection reset" in msg
        or "connection refused" in msg
    ):
        return "connection_error", status, True
    if isinstance(exc, E["server"]) or (status is not None and status >= 500):
        return "server_error", status, True
    return "error", status, False


def error_message(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` of an exception, cut to ``limit`` characters."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"
