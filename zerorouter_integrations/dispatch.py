"""Dispatch: call the chosen model through LiteLLM, retry, and fall back down the decision's ranking.

:class:`Dispatcher` owns retries: LiteLLM is called with ``num_retries=0`` (and the OpenAI SDK with
``max_retries=0``), and every failure is classified once (:func:`classify_error`):

* retryable (timeout, 429, 5xx, connection refused / reset): retried on the same model up to
  ``RetryPolicy.max_retries`` times with exponential backoff, then the next model in ``order``;
* not retryable (400 bad request, authentication, permission, not found, context window
  exceeded, content policy): straight to the next model.

When every model failed, :class:`~zerorouter_integrations.errors.AllModelsFailedError` lists each
attempt. Streams fall back transparently before their first content delta; after it a failure
raises :class:`~zerorouter_integrations.errors.StreamInterruptedError` with the partial text, the
model and the cause.

Cost comes from the endpoint's custom prices when it has them, otherwise from LiteLLM's price map
(``_hidden_params["response_cost"]`` or :func:`litellm.completion_cost`); an unknown price gives
``cost_usd=0.0`` with ``cost_known=False``, never an exception.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from zerorouter_integrations._aio import sleep
from zerorouter_integrations._env import import_litellm
from zerorouter_integrations.classify import classify
from zerorouter_integrations.dispatch_errors import classify_error, error_message
from zerorouter_integrations.dispatch_stream import StreamState, tool_call_dict
from zerorouter_integrations.dispatch_types import (
    Attempt,
    DispatchResult,
    ModelEndpoint,
    RetryPolicy,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    Usage,
)
from zerorouter_integrations.errors import (
    AllModelsFailedError,
    ConfigurationError,
    NoAdmissibleModelError,
    StreamInterruptedError,
    TransientError,
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
    "tool_call_dict",
]

logger = logging.getLogger(__name__)

#: A ``Retry-After`` longer than this sends the call to the next model instead of a retry.
MAX_RETRY_WAIT_S = 1.0

_perf = time.perf_counter


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
                base["api_key"] = ep.secret_api_key()
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

    def _failed(
        self, name: str, exc: BaseException, latency: float, attempts: list[Attempt], retry: int = 0
    ) -> Attempt:
        err = classify(exc, name)
        kind = {ConfigurationError: "configuration", TransientError: "transient"}.get(type(err), "rejected")
        att = Attempt(
            name,
            err.error_type,
            error_message(exc),
            err.status_code,
            latency,
            kind == "transient" and (err.retry_after_s or 0.0) <= MAX_RETRY_WAIT_S,
            kind=kind,
            retry=retry,
            retry_after_s=err.retry_after_s,
        )
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

    def _stream_result(self, st: StreamState, attempts: list[Attempt]) -> DispatchResult:
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
                    att = self._failed(name, exc, _perf() - t0, attempts, i)
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
                    att = self._failed(name, exc, _perf() - t0, attempts, i)
                    if att.retryable and i < self.retry.max_retries:
                        await sleep(self._backoff(i))
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
        delta; a failure after it raises :class:`StreamInterruptedError` (partial text, model, cause).
        """
        names = self._order(order)
        completion = _ll().completion
        attempts: list[Attempt] = []
        for name in names:
            kw = self._kwargs(name, messages, params, stream=True)
            for i in range(self.retry.max_retries + 1):
                st = StreamState(name, _perf())
                try:
                    for chunk in completion(**kw):
                        delta = st.feed(chunk)
                        if delta is not None:
                            st.yielded = True
                            yield delta
                except Exception as exc:
                    att = self._failed(name, exc, _perf() - st.t0, attempts, i)
                    if st.yielded:
                        raise StreamInterruptedError("".join(st.parts), name, exc) from exc
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
                st = StreamState(name, _perf())
                try:
                    async for chunk in await acompletion(**kw):
                        delta = st.feed(chunk)
                        if delta is not None:
                            st.yielded = True
                            yield delta
                except Exception as exc:
                    att = self._failed(name, exc, _perf() - st.t0, attempts, i)
                    if st.yielded:
                        raise StreamInterruptedError("".join(st.parts), name, exc) from exc
                    if att.retryable and i < self.retry.max_retries:
                        await sleep(self._backoff(i))
                        continue
                    break
                yield StreamEnd(self._succeeded(self._stream_result(st, attempts)))
                return
        raise AllModelsFailedError(attempts)
