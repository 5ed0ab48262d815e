"""Dispatch: call the chosen model through LiteLLM, retry, and fall back down the decision's ranking.

:class:`Dispatcher` owns retries: LiteLLM is called with ``num_retries=0`` (and the OpenAI SDK with
``max_retries=0``), and every failure is classified once (:func:`classify_error`):

* retryable (timeout, 429, 5xx, connection refused / reset): retried on the same model up to
  ``RetryPolicy.max_retries`` times with exponential backoff, then the next model in ``order``;
* not retryable (400 bad request, authentication, permission, not found, context window
  exceeded, content policy): straight to the next model.

When every model failed, :class:`~zerorouter_integrations.errors.AllModelsFailedError` lists each
attempt. Streams fall back only before their first delta was yielded; after that an error
propagates to the caller unchanged.

Cost comes from the endpoint's custom prices when it has them, otherwise from LiteLLM's price map
(``_hidden_params["response_cost"]`` or :func:`litellm.completion_cost`); an unknown price gives
``cost_usd=0.0`` with ``cost_known=False``, never an exception.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from zerorouter_integrations._env import import_litellm
from zerorouter_integrations.errors import (
    AllModelsFailedError,
    NoAdmissibleModelError,
    SchemaError,
    UnknownModelError,
)

__all__ = [
    "Attempt",
    "DispatchResult",
    "Dispatcher",
    "ModelEndpoint",
    "RetryPolicy",
    "StreamDelta",
    "StreamEnd",
    "StreamEvent",
    "Usage",
    "classify_error",
]

logger = logging.getLogger(__name__)

_perf = time.perf_counter


# --------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEndpoint:
    """How to call one pool model through LiteLLM.

    Parameters
    ----------
    name : str
        Pool name used by the router, e.g. ``"gpt-4o-mini"``.
    litellm_model : str
        LiteLLM model string, e.g. ``"openai/gpt-4o-mini"``.
    api_base, api_key : str or None
        Passed to LiteLLM when set.
    api_key_env : str or None
        Name of an environment variable read at call time (used when ``api_key`` is None).
    input_cost_per_token, output_cost_per_token : float or None
        Custom prices in USD; when either is set they override LiteLLM's price map.
    extra : mapping
        Further keyword arguments for ``litellm.completion`` (per-call params win).
    """

    name: str
    litellm_model: str
    api_base: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ModelEndpoint.name={self.name!r}; expected a non-empty string")
        if not isinstance(self.litellm_model, str) or not self.litellm_model:
            raise ValueError(
                f"ModelEndpoint.litellm_model={self.litellm_model!r} for {self.name!r}; expected a "
                "LiteLLM model string such as 'openai/gpt-4o-mini'"
            )
        for attr in ("input_cost_per_token", "output_cost_per_token"):
            v = getattr(self, attr)
            if v is not None and not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(
                    f"ModelEndpoint.{attr}={v!r} for {self.name!r}; expected a price >= 0 or None"
                )

    def pick(self) -> ModelEndpoint:
        """The deployment one call goes to: this endpoint (a balanced endpoint draws one of several)."""
        return self

    @property
    def has_custom_prices(self) -> bool:
        """Whether the endpoint's own prices are used instead of LiteLLM's map."""
        return self.input_cost_per_token is not None or self.output_cost_per_token is not None

    def to_dict(self) -> dict:
        """A JSON-ready dict (``from_dict`` inverts it)."""
        d = asdict(self)
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelEndpoint:
        """Build from :meth:`to_dict` output; unknown keys raise :class:`SchemaError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SchemaError(f"unknown ModelEndpoint key(s) {unknown}; expected some of {sorted(known)}")
        missing = [k for k in ("name", "litellm_model") if k not in d]
        if missing:
            raise SchemaError(f"ModelEndpoint dict lacks {missing}; got keys {sorted(d)}")
        kw = dict(d)
        kw["extra"] = dict(kw.get("extra") or {})
        return cls(**kw)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries per model for retryable errors, and the per-call timeout.

    Parameters
    ----------
    max_retries : int, default=1
        Extra tries on the same model after a retryable error (timeout, 429, 5xx, connection).
    backoff_s : float, default=0.1
        Sleep before retry ``i`` (0-based) is ``backoff_s * 2**i``.
    timeout_s : float or None, default=60.0
        Passed as ``timeout`` unless the call gives its own.
    """

    max_retries: int = 1
    backoff_s: float = 0.1
    timeout_s: float | None = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"RetryPolicy.max_retries={self.max_retries!r}; expected an integer >= 0")
        if self.backoff_s < 0:
            raise ValueError(f"RetryPolicy.backoff_s={self.backoff_s!r}; expected >= 0")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"RetryPolicy.timeout_s={self.timeout_s!r}; expected > 0 or None")


@dataclass
class Usage:
    """Token counts of one call (``cache_read_tokens`` ⊂ input, ``reasoning_tokens`` ⊂ output)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_litellm(cls, u: Any) -> Usage:
        """From a LiteLLM / OpenAI ``usage`` object or dict (missing fields are 0)."""
        if u is None:
            return cls()
        get = u.get if isinstance(u, Mapping) else lambda k, _d=None: getattr(u, k, _d)
        inp = int(get("prompt_tokens", 0) or 0)
        out = int(get("completion_tokens", 0) or 0)
        total = int(get("total_tokens", 0) or 0) or inp + out
        cached = reasoning = 0
        ptd = get("prompt_tokens_details", None)
        if ptd is not None:
            cached = int(
                (ptd.get("cached_tokens") if isinstance(ptd, Mapping) else getattr(ptd, "cached_tokens", 0))
                or 0
            )
        ctd = get("completion_tokens_details", None)
        if ctd is not None:
            reasoning = int(
                (
                    ctd.get("reasoning_tokens")
                    if isinstance(ctd, Mapping)
                    else getattr(ctd, "reasoning_tokens", 0)
                )
                or 0
            )
        return cls(inp, out, total, cached, reasoning)


@dataclass
class Attempt:
    """One failed try: which model, what kind of error, its message and HTTP status, how long it took.

    ``error_type`` is one of ``"timeout"``, ``"rate_limit"``, ``"server_error"``,
    ``"connection_error"``, ``"bad_request"``, ``"context_window_exceeded"``, ``"content_policy"``,
    ``"authentication"``, ``"permission_denied"``, ``"not_found"``, ``"unprocessable"``,
    ``"error"`` (anything else).
    """

    model: str
    error_type: str
    message: str
    status_code: int | None
    latency_s: float
    retryable: bool = False


@dataclass
class DispatchResult:
    """A successful call: who served it, what it said, what it cost, and the failed tries before it."""

    model: str
    response: Any
    content: str | None
    tool_calls: list[dict]
    finish_reason: str | None
    usage: Usage
    cost_usd: float
    latency_s: float
    ttft_s: float | None
    attempts: list[Attempt]
    cost_known: bool = True


@dataclass
class StreamDelta:
    """A piece of a stream: new text and/or tool-call deltas (OpenAI format, with ``index``)."""

    model: str
    content_delta: str
    tool_call_deltas: list[dict]
    raw: Any


@dataclass
class StreamEnd:
    """Last event of a stream: the assembled result."""

    result: DispatchResult


StreamEvent = StreamDelta | StreamEnd


# --------------------------------------------------------------------------------------------
# Error classification
# --------------------------------------------------------------------------------------------

_EXC: dict[str, tuple[type, ...]] = {}


def _exc_classes() -> dict[str, tuple[type, ...]]:
    if _EXC:
        return _EXC
    litellm = import_litellm()
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


def _message(exc: BaseException, limit: int = 500) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# Response helpers
# --------------------------------------------------------------------------------------------


def tool_call_dict(tc: Any) -> dict:
    """A LiteLLM / OpenAI tool call (object or dict) as a plain OpenAI ``{"id", "type", "function"}`` dict."""
    if isinstance(tc, Mapping):
        fn = tc.get("function") or {}
        return {
            "id": tc.get("id"),
            "type": tc.get("type") or "function",
            "function": {"name": fn.get("name"), "arguments": fn.get("arguments") or ""},
        }
    fn = tc.function
    return {
        "id": tc.id,
        "type": getattr(tc, "type", None) or "function",
        "function": {"name": fn.name, "arguments": fn.arguments or ""},
    }


def _tool_delta_dict(tc: Any, pos: int) -> dict:
    if isinstance(tc, Mapping):
        fn = tc.get("function") or {}
        idx = tc.get("index")
        return {
            "index": pos if idx is None else idx,
            "id": tc.get("id"),
            "type": tc.get("type"),
            "function": {"name": fn.get("name"), "arguments": fn.get("arguments")},
        }
    fn = getattr(tc, "function", None)
    idx = getattr(tc, "index", None)
    return {
        "index": pos if idx is None else idx,
        "id": getattr(tc, "id", None),
        "type": getattr(tc, "type", None),
        "function": {"name": getattr(fn, "name", None), "arguments": getattr(fn, "arguments", None)},
    }


class _StreamState:
    """Accumulates one stream: content, tool calls merged by index, finish reason, usage, TTFT."""

    __slots__ = (
        "created",
        "finish_reason",
        "id",
        "model",
        "parts",
        "resp_model",
        "t0",
        "tools",
        "ttft",
        "usage",
        "yielded",
    )

    def __init__(self, model: str, t0: float):
        self.model = model
        self.t0 = t0
        self.ttft: float | None = None
        self.parts: list[str] = []
        self.tools: dict[int, dict] = {}
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.yielded = False
        self.id: str | None = None
        self.created: int | None = None
        self.resp_model: str | None = None

    def feed(self, chunk: Any) -> StreamDelta | None:
        if self.id is None:
            self.id = getattr(chunk, "id", None)
            self.created = getattr(chunk, "created", None)
            self.resp_model = getattr(chunk, "model", None)
        u = getattr(chunk, "usage", None)
        if u is not None:
            self.usage = u
        choices = getattr(chunk, "choices", None)
        if not choices:
            return None
        ch = choices[0]
        if ch.finish_reason:
            self.finish_reason = ch.finish_reason
        delta = ch.delta
        if delta is None:
            return None
        text = getattr(delta, "content", None)
        tcs = getattr(delta, "tool_calls", None)
        if not text and not tcs:
            return None
        if self.ttft is None:
            self.ttft = _perf() - self.t0
        tool_deltas: list[dict] = []
        if text:
            self.parts.append(text)
        if tcs:
            for pos, tc in enumerate(tcs):
                d = _tool_delta_dict(tc, pos)
                tool_deltas.append(d)
                acc = self.tools.get(d["index"])
                if acc is None:
                    acc = self.tools[d["index"]] = {
                        "id": d["id"] or "",
                        "type": "function",
                        "function": {"name": "", "arguments": ""},
                    }
                elif d["id"] and not acc["id"]:
                    acc["id"] = d["id"]
                fn = d["function"]
                if fn["name"]:
                    acc["function"]["name"] = acc["function"]["name"] or fn["name"]
                if fn["arguments"]:
                    acc["function"]["arguments"] += fn["arguments"]
        return StreamDelta(self.model, text or "", tool_deltas, chunk)

    def tool_calls(self) -> list[dict]:
        return [self.tools[i] for i in sorted(self.tools)]


# --------------------------------------------------------------------------------------------
# Dispatcher
# --------------------------------------------------------------------------------------------

_litellm_mod: Any = None
_SKIP_MCP: bool = False


def _ll() -> Any:
    global _litellm_mod, _SKIP_MCP
    if _litellm_mod is None:
        litellm = import_litellm()
        # LiteLLM imports its MCP gateway (and the optional ``mcp`` package) on every call that has
        # ``tools``; without ``mcp`` installed that import fails. Skip the gateway when it cannot
        # work anyway and this LiteLLM knows the flag (function tools never need it).
        try:
            import importlib.util
            from pathlib import Path

            import litellm.main as _main

            _SKIP_MCP = importlib.util.find_spec("mcp") is None and "_skip_mcp_handler" in Path(
                _main.__file__
            ).read_text(encoding="utf-8")
        except Exception:
            _SKIP_MCP = False
        _litellm_mod = litellm
    return _litellm_mod


class Dispatcher:
    """Call models through LiteLLM in the decision's order, with retries and fallback.

    Parameters
    ----------
    endpoints : mapping of str to ModelEndpoint
        Pool name → how to call it.
    retry : RetryPolicy, default=RetryPolicy()
    on_success : callable(model, DispatchResult) or None
        Called once per successful call. Exceptions inside it are logged, never raised.
    on_error : callable(model, Attempt) or None
        Called for every failed attempt (retries included). Exceptions are logged, never raised.

    Examples
    --------
    >>> d = Dispatcher({"small": ModelEndpoint("small", "openai/small", api_base=url, api_key="sk-test")})
    >>> d.complete(["small"], [{"role": "user", "content": "hi"}]).content  # doctest: +SKIP
    """

    def __init__(
        self,
        endpoints: Mapping[str, ModelEndpoint],
        *,
        retry: RetryPolicy = RetryPolicy(),
        on_success: Callable[[str, DispatchResult], None] | None = None,
        on_error: Callable[[str, Attempt], None] | None = None,
    ):
        self.endpoints: dict[str, ModelEndpoint] = dict(endpoints)
        for key, ep in self.endpoints.items():
            if not isinstance(ep, ModelEndpoint):
                raise TypeError(f"endpoints[{key!r}] is {type(ep).__name__}; expected a ModelEndpoint")
        self.retry = retry
        self.on_success = on_success
        self.on_error = on_error
        self._base_kwargs: dict[str, tuple[ModelEndpoint, dict]] = {}
        self._unpriced: set[str] = set()

    # ---- shared pieces (sync and async)
    def _order(self, order: Sequence[str]) -> list[str]:
        if isinstance(order, str):
            order = [order]
        names = list(dict.fromkeys(order))
        if not names:
            raise NoAdmissibleModelError(
                f"dispatch got an empty order; expected at least one of {sorted(self.endpoints)}"
            )
        for n in names:
            if n not in self.endpoints:
                raise UnknownModelError(n, list(self.endpoints))
        return names

    def _kwargs(self, name: str, messages: list, params: dict, stream: bool) -> dict:
        ep = self.endpoints[name].pick()
        cached = self._base_kwargs.get(name)
        if cached is not None and cached[0] is ep:
            base = cached[1]
        else:
            base = {"model": ep.litellm_model, "num_retries": 0, "max_retries": 0}
            if ep.api_base is not None:
                base["api_base"] = ep.api_base
            if ep.api_key is not None:
                base["api_key"] = ep.api_key
            if self.retry.timeout_s is not None:
                base["timeout"] = self.retry.timeout_s
            base.update(ep.extra)
            self._base_kwargs[name] = (ep, base)
        kw = dict(base)
        if ep.api_key is None and ep.api_key_env:
            key = os.environ.get(ep.api_key_env)
            if key is not None:
                kw["api_key"] = key
        kw.update(params)
        kw["messages"] = messages
        if _SKIP_MCP and kw.get("tools"):
            kw["_skip_mcp_handler"] = True
        if stream:
            kw["stream"] = True
            so = kw.get("stream_options")
            kw["stream_options"] = {**so, "include_usage": True} if so else {"include_usage": True}
        else:
            kw.pop("stream", None)
            kw.pop("stream_options", None)
        return kw

    def _failed(self, name: str, exc: BaseException, latency: float, attempts: list[Attempt]) -> Attempt:
        etype, status, retryable = classify_error(exc)
        att = Attempt(name, etype, _message(exc), status, latency, retryable)
        attempts.append(att)
        if self.on_error is not None:
            try:
                self.on_error(name, att)
            except Exception:
                logger.exception("on_error callback raised for model %r", name)
        return att

    def _succeeded(self, result: DispatchResult) -> DispatchResult:
        if self.on_success is not None:
            try:
                self.on_success(result.model, result)
            except Exception:
                logger.exception("on_success callback raised for model %r", result.model)
        return result

    def _backoff(self, i: int) -> float:
        return self.retry.backoff_s * (2**i)

    def _cost(self, ep: ModelEndpoint, response: Any, usage: Usage, hidden_ok: bool) -> tuple[float, bool]:
        if ep.has_custom_prices:
            return (
                usage.input_tokens * (ep.input_cost_per_token or 0.0)
                + usage.output_tokens * (ep.output_cost_per_token or 0.0)
            ), True
        if hidden_ok:
            hidden = getattr(response, "_hidden_params", None) or {}
            if "response_cost" in hidden:
                c = hidden["response_cost"]
                return (float(c), True) if c is not None else (0.0, False)
        if ep.litellm_model in self._unpriced:
            return 0.0, False
        try:
            c = _ll().completion_cost(completion_response=response, model=ep.litellm_model)
            return float(c), True
        except Exception:
            self._unpriced.add(ep.litellm_model)
            return 0.0, False

    def _result(self, name: str, response: Any, latency: float, attempts: list[Attempt]) -> DispatchResult:
        choice = response.choices[0] if response.choices else None
        msg = getattr(choice, "message", None)
        tcs = getattr(msg, "tool_calls", None)
        usage = Usage.from_litellm(getattr(response, "usage", None))
        cost, known = self._cost(self.endpoints[name], response, usage, hidden_ok=True)
        return DispatchResult(
            model=name,
            response=response,
            content=getattr(msg, "content", None),
            tool_calls=[tool_call_dict(t) for t in tcs] if tcs else [],
            finish_reason=getattr(choice, "finish_reason", None),
            usage=usage,
            cost_usd=cost,
            latency_s=latency,
            ttft_s=latency,
            attempts=attempts,
            cost_known=known,
        )

    def _stream_result(self, st: _StreamState, attempts: list[Attempt]) -> DispatchResult:
        litellm = _ll()
        latency = _perf() - st.t0
        content = "".join(st.parts)
        tool_calls = st.tool_calls()
        usage = Usage.from_litellm(st.usage)
        message = litellm.Message(
            content=content if (content or not tool_calls) else None,
            role="assistant",
            tool_calls=tool_calls or None,
        )
        response = litellm.ModelResponse(
            id=st.id,
            created=st.created,
            model=st.resp_model,
            object="chat.completion",
            choices=[litellm.Choices(index=0, finish_reason=st.finish_reason or "stop", message=message)],
            usage=litellm.Usage(
                prompt_tokens=usage.input_tokens,
                completion_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
            ),
        )
        cost, known = self._cost(self.endpoints[st.model], response, usage, hidden_ok=False)
        return DispatchResult(
            model=st.model,
            response=response,
            content=message.content,
            tool_calls=tool_calls,
            finish_reason=st.finish_reason,
            usage=usage,
            cost_usd=cost,
            latency_s=latency,
            ttft_s=st.ttft,
            attempts=attempts,
            cost_known=known,
        )

    # ---- non-stream
    def complete(self, order: Sequence[str], messages: list[dict], **params: Any) -> DispatchResult:
        """Call the models in ``order`` until one answers.

        Parameters
        ----------
        order : sequence of str
            Pool names, best first (the decision's ranking).
        messages : list of dict
            OpenAI-format messages (passed as is, never copied).
        **params
            ``temperature``, ``max_tokens``, ``stop``, ``tools``, ``tool_choice``,
            ``response_format``, ``timeout``, ... passed through to ``litellm.completion``.

        Returns
        -------
        DispatchResult

        Raises
        ------
        AllModelsFailedError
            Every model failed; ``.attempts`` lists each try.
        UnknownModelError
            A name in ``order`` has no endpoint.
        """
        names = self._order(order)
        completion = _ll().completion
        attempts: list[Attempt] = []
        for name in names:
            kw = self._kwargs(name, messages, params, stream=False)
            for i in range(self.retry.max_retries + 1):
                t0 = _perf()
                try:
                    response = completion(**kw)
                except Exception as exc:
                    att = self._failed(name, exc, _perf() - t0, attempts)
                    if att.retryable and i < self.retry.max_retries:
                        time.sleep(self._backoff(i))
                        continue
                    break
                return self._succeeded(self._result(name, response, _perf() - t0, attempts))
        raise AllModelsFailedError(attempts)

    async def acomplete(self, order: Sequence[str], messages: list[dict], **params: Any) -> DispatchResult:
        """Async twin of :meth:`complete` (``litellm.acompletion``)."""
        names = self._order(order)
        acompletion = _ll().acompletion
        attempts: list[Attempt] = []
        for name in names:
            kw = self._kwargs(name, messages, params, stream=False)
            for i in range(self.retry.max_retries + 1):
                t0 = _perf()
                try:
                    response = await acompletion(**kw)
                except Exception as exc:
                    att = self._failed(name, exc, _perf() - t0, attempts)
                    if att.retryable and i < self.retry.max_retries:
                        await asyncio.sleep(self._backoff(i))
                        continue
                    break
                return self._succeeded(self._result(name, response, _perf() - t0, attempts))
        raise AllModelsFailedError(attempts)

    # ---- stream
    def stream(self, order: Sequence[str], messages: list[dict], **params: Any) -> Iterator[StreamEvent]:
        """Stream from the first model in ``order`` that starts answering.

        Yields :class:`StreamDelta` events (text and tool-call deltas), then one :class:`StreamEnd`
        with the assembled :class:`DispatchResult` (usage from the stream's last chunk, TTFT at
        the first content or tool delta). Falls back to the next model only before the first
        delta; an error after it propagates unchanged.
        """
        names = self._order(order)
        completion = _ll().completion
        attempts: list[Attempt] = []
        for name in names:
            kw = self._kwargs(name, messages, params, stream=True)
            for i in range(self.retry.max_retries + 1):
                st = _StreamState(name, _perf())
                try:
                    for chunk in completion(**kw):
                        delta = st.feed(chunk)
                        if delta is not None:
                            st.yielded = True
                            yield delta
                except Exception as exc:
                    att = self._failed(name, exc, _perf() - st.t0, attempts)
                    if st.yielded:
                        raise
                    if att.retryable and i < self.retry.max_retries:
                        time.sleep(self._backoff(i))
                        continue
                    break
                yield StreamEnd(self._succeeded(self._stream_result(st, attempts)))
                return
        raise AllModelsFailedError(attempts)

    async def astream(
        self, order: Sequence[str], messages: list[dict], **params: Any
    ) -> AsyncIterator[StreamEvent]:
        """Async twin of :meth:`stream`."""
        names = self._order(order)
        acompletion = _ll().acompletion
        attempts: list[Attempt] = []
        for name in names:
            kw = self._kwargs(name, messages, params, stream=True)
            for i in range(self.retry.max_retries + 1):
                st = _StreamState(name, _perf())
                try:
                    async for chunk in await acompletion(**kw):
                        delta = st.feed(chunk)
                        if delta is not None:
                            st.yielded = True
                            yield delta
                except Exception as exc:
                    att = self._failed(name, exc, _perf() - st.t0, attempts)
                    if st.yielded:
                        raise
                    if att.retryable and i < self.retry.max_retries:
                        await asyncio.sleep(self._backoff(i))
                        continue
                    break
                yield StreamEnd(self._succeeded(self._stream_result(st, attempts)))
                return
        raise AllModelsFailedError(attempts)
