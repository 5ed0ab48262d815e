"""``ZeroRouterChat``: a LangChain chat model whose every call is routed by a core :class:`ZeroRouter`.

The adapter has no routing logic of its own. Each call:

1. converts the LangChain messages to OpenAI dicts (:mod:`langchain_router._messages`);
2. gathers the routing options: per-call kwargs, then ``config["configurable"]``, then
   ``config["metadata"]``, then the model's own defaults (``allowed_models``, ``quality_target`` /
   ``budget_usd_per_1k`` → a calibrated ``Policy``, ``session_id``; the session defaults to the run's
   ``thread_id`` / ``conversation_id``);
3. calls :meth:`ZeroRouter.complete` / ``acomplete`` / ``stream`` / ``astream`` (decision, LiteLLM
   dispatch with fallback, feedback);
4. returns an ``AIMessage`` whose ``response_metadata["model_name"]`` is the model that answered,
   with its cost, latency and the routing decision, and whose ``usage_metadata`` holds the tokens.

A per-call ``model="<pool name>"`` (or a pool name given as ``model`` at init) bypasses routing.

Examples
--------
>>> from langchain_router import ZeroRouterChat
>>> llm = ZeroRouterChat(router=router, quality_target=0.9)          # doctest: +SKIP
>>> msg = llm.invoke("What is 2 + 2?")                                # doctest: +SKIP
>>> msg.response_metadata["model_name"], msg.response_metadata["response_cost"]  # doctest: +SKIP
('mistralai/mistral-7b-chat', 2.1e-06)
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough, ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils import secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from langchain_router._messages import (
    messages_to_dicts,
    normalize_tool_choice,
    tool_call_chunks_from_deltas,
    tool_calls_from_openai,
    usage_to_metadata,
)
from zerorouter_integrations.errors import (
    AllModelsFailedError,
    InfeasibleError,
    NoAdmissibleModelError,
    SchemaError,
    UnknownModelError,
    ZeroRouterError,
)

__all__ = ["ROUTING_OPTION_KEYS", "ZeroRouterChat", "routing_options_from_config"]

#: The name under which routing happens; any other ``model`` value names a pool model (bypass).
ROUTED = "zerorouter"

#: Routing options read from call kwargs, ``config["configurable"]`` and ``config["metadata"]``.
ROUTING_OPTION_KEYS = (
    "allowed_models",
    "denied_models",
    "session_id",
    "quality_target",
    "budget_usd_per_1k",
    "reference_model",
    "latency_sla_s",
    "policy",
    "request_id",
    "cascade",
)
#: LangChain / LangGraph run ids that make a good default session id (escalate-only stickiness).
_THREAD_KEYS = ("thread_id", "conversation_id")
#: Private kwarg carrying the thread id found in the config down to ``_generate`` / ``_stream``.
_THREAD_KW = "zerorouter_thread_id"
#: Call kwargs that must never reach LiteLLM (they would override the router's endpoints / retries).
_NOT_FORWARDED = (
    "api_key",
    "max_retries",
    "stream",
    "stream_options",
    "ls_structured_output_format",
    "structured_output_format",
    "streaming",
)


def routing_options_from_config(config: RunnableConfig | None) -> dict[str, Any]:
    """Routing options found in a ``RunnableConfig`` (``configurable`` wins over ``metadata``).

    Returns the keys of :data:`ROUTING_OPTION_KEYS` that are set, plus ``"zerorouter_thread_id"``
    when the config carries a ``thread_id`` or ``conversation_id``.
    """
    cfg = ensure_config(config)
    sources = [cfg.get("configurable") or {}, cfg.get("metadata") or {}]
    out: dict[str, Any] = {}
    for key in ROUTING_OPTION_KEYS:
        for src in sources:
            if src.get(key) is not None:
                out[key] = src[key]
                break
    for src in sources:
        for key in _THREAD_KEYS:
            if src.get(key) is not None and _THREAD_KW not in out:
                out[_THREAD_KW] = str(src[key])
    return out


def _as_name_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(v) for v in value]
    raise ValueError(f"{what}={value!r}; expected a list of pool model names or a comma-separated string")


def _with_hint(exc: ZeroRouterError, hint: str) -> ZeroRouterError:
    """A copy of ``exc`` (same class, same attributes) whose message ends with what to do."""
    cls = type(exc)
    new = cls.__new__(cls)
    new.__dict__.update(exc.__dict__)
    Exception.__init__(new, f"{exc}\nWhat to do: {hint}")
    return new


def _hint_for(exc: ZeroRouterError) -> str | None:
    if isinstance(exc, UnknownModelError):
        return (
            "give model= one of the router's pool names (or leave it unset / 'zerorouter' to route), "
            "and name only pool models in allowed_models / denied_models / reference_model"
        )
    if isinstance(exc, NoAdmissibleModelError):
        return (
            "widen allowed_models or drop denied_models, drop the tools / response_format / input types "
            "the pool cannot serve, raise latency_sla_s, or use a new session_id (sessions only escalate)"
        )
    if isinstance(exc, AllModelsFailedError):
        return (
            "check each failing endpoint's api_base and api_key (ZeroRouterChat(api_key=...) fills "
            "endpoints that have none when the adapter builds the router), or raise timeout / max_retries"
        )
    if isinstance(exc, InfeasibleError):
        best = getattr(exc, "best_value", None)
        at_least = f" (at least {best:.6g})" if isinstance(best, (int, float)) else ""
        return (
            f"raise budget_usd_per_1k{at_least}, lower quality_target, or widen allowed_models "
            "so that the target can be met"
        )
    if isinstance(exc, SchemaError):
        return "pass router=ZeroRouter(...), or endpoints={name: ModelEndpoint(...)} for the pool models"
    return None


class ZeroRouterChat(BaseChatModel):
    """LangChain chat model that routes each call to the cheapest pool model likely to answer well.

    Give either a ready ``router`` or what to build one from (``artifact_path``, ``models``,
    ``endpoints``; the router is then built lazily on the first call, so construction is cheap).

    Parameters
    ----------
    router : ZeroRouter, optional
        The core router. Not serialized.
    artifact_path : str, optional
        Artifact file to build the router from; default: the artifact shipped with the package.
    models : list of str, optional
        Restrict the pool to these models (when the adapter builds the router).
    endpoints : dict, optional
        Pool name → ``ModelEndpoint``, its ``to_dict()`` form, or a LiteLLM model string.
    model : str, default="zerorouter"
        ``"zerorouter"`` routes; a pool model name pins every call to that model. Alias ``model_name``.
    temperature, max_tokens, timeout, stop : optional
        Standard parameters, sent to whichever model answers.
    max_retries : int, optional
        Retries per model for retryable errors (used when the adapter builds the router).
    api_key : SecretStr, optional
        Key for endpoints that have none (when the adapter builds the router); env ``ZEROROUTER_API_KEY``.
    allowed_models, denied_models : list of str, optional
        Default restriction of the candidates.
    quality_target : float, optional
        Keep this fraction in (0, 1] of the reference model's predicted quality, as cheaply as possible.
    reference_model : str, optional
        The model ``quality_target`` is measured against (default: the router's reference).
    budget_usd_per_1k : float, optional
        Spend about this many USD per 1,000 calls (instead of ``quality_target``).
    latency_sla_s : float, optional
        Remove models whose p95 latency estimate exceeds this.
    cascade : bool or CascadePolicy, default=False
        Cascade mode: ask two cheap models at once, accept their answer when the check passes
        (agreement, predicted success, logprobs), else escalate. Usage and cost sum every stage and
        ``routing_decision["stages"]`` lists them; streams buffer the first stage.
    session_id : str, optional
        Conversation id for escalate-only stickiness; default: the run's ``thread_id`` /
        ``conversation_id`` from the config.
    model_kwargs : dict, optional
        Extra LiteLLM parameters sent with every call.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    router: Any = Field(default=None, exclude=True)
    """The core ``ZeroRouter`` (excluded from serialization)."""
    artifact_path: str | None = None
    """Artifact to build the router from when ``router`` is not given (default: the shipped one)."""
    models: list[str] | None = None
    """Pool restriction used when the adapter builds the router."""
    endpoints: dict[str, Any] | None = None
    """Pool name → ``ModelEndpoint`` / its dict / a LiteLLM model string (when building the router)."""
    model: str = Field(default=ROUTED, alias="model_name")
    """``"zerorouter"`` to route; a pool model name pins every call to it."""
    temperature: float | None = None
    """Sampling temperature sent to the chosen model."""
    max_tokens: int | None = None
    """Maximum output tokens."""
    timeout: float | None = None
    """Per-call timeout in seconds (LiteLLM ``timeout``)."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Default stop sequences."""
    max_retries: int | None = None
    """Retries per model for retryable errors (when the adapter builds the router)."""
    api_key: SecretStr | None = Field(default_factory=secret_from_env("ZEROROUTER_API_KEY", default=None))
    """Key given to endpoints that have none (when the adapter builds the router)."""
    allowed_models: list[str] | None = None
    """Default candidates; others are never chosen."""
    denied_models: list[str] | None = None
    """Default exclusions."""
    quality_target: float | None = None
    """Fraction in (0, 1] of the reference model's predicted quality to keep."""
    reference_model: str | None = None
    """Model that ``quality_target`` is a fraction of."""
    budget_usd_per_1k: float | None = None
    """Average spend in USD per 1,000 calls (alternative to ``quality_target``)."""
    latency_sla_s: float | None = None
    """p95 latency bound in seconds."""
    cascade: Any = False
    """Cascade mode (``True`` or a ``CascadePolicy``), per instance; also settable per call."""
    session_id: str | None = None
    """Default conversation id for escalate-only stickiness."""
    streaming: bool = False
    """Whether ``invoke`` streams internally (callbacks then see tokens)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra LiteLLM parameters sent with every call."""

    _router: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _policies: dict[Any, Any] = PrivateAttr(default_factory=dict)

    # ------------------------------------------------------------------ validation
    @model_validator(mode="before")
    @classmethod
    def _drop_nones_and_check(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        # None means "not given": keeps model_fields_set truthful (langchain-litellm does the same).
        values = {k: v for k, v in values.items() if v is not None or k in ("router",)}
        return values

    @model_validator(mode="after")
    def _validate(self) -> ZeroRouterChat:
        if self.router is not None and (self.artifact_path or self.models or self.endpoints):
            raise ValueError(
                "give either router= or artifact_path= / models= / endpoints= to build one, not both"
            )
        if self.quality_target is not None and self.budget_usd_per_1k is not None:
            raise ValueError(
                f"quality_target={self.quality_target} and budget_usd_per_1k={self.budget_usd_per_1k}: "
                "give one of them, not both"
            )
        _check_policy_values(self.quality_target, self.budget_usd_per_1k)
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature={self.temperature}; expected a value in [0, 2]")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens={self.max_tokens}; expected an integer >= 1")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout={self.timeout}; expected seconds > 0")
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError(f"max_retries={self.max_retries}; expected an integer >= 0")
        if isinstance(self.stop, list) and not self.stop:
            self.stop = None
        return self

    # ------------------------------------------------------------------ identity
    @property
    def _llm_type(self) -> str:
        return "zerorouter-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "artifact_path": self.artifact_path,
            "models": self.models,
            "allowed_models": self.allowed_models,
            "denied_models": self.denied_models,
            "quality_target": self.quality_target,
            "reference_model": self.reference_model,
            "budget_usd_per_1k": self.budget_usd_per_1k,
            "latency_sla_s": self.latency_sla_s,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            **self.model_kwargs,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """LangSmith params: provider ``zerorouter``; the model is the pinned one when known.

        Tracing metadata is computed before the call, when the routed model is not known yet, so
        ``ls_model_name`` is the per-call ``model=`` override, else the model's ``model``
        (``"zerorouter"`` when routing). The model that answered is in
        ``response_metadata["model_name"]``.
        """
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "zerorouter"
        override = kwargs.get("model")
        params["ls_model_name"] = override if isinstance(override, str) and override else self.model
        if not stop and self.stop:
            params["ls_stop"] = list(self.stop)
        return params

    # ------------------------------------------------------------------ the router
    def get_router(self) -> Any:
        """The core ``ZeroRouter`` (built on first use when none was given)."""
        if self.router is not None:
            return self.router
        if self._router is None:
            with self._lock:
                if self._router is None:
                    self._router = self._build_router()
        return self._router

    def _build_router(self) -> Any:
        from zerorouter_integrations.dispatch import ModelEndpoint, RetryPolicy
        from zerorouter_integrations.router import ZeroRouter

        endpoints = None
        if self.endpoints is not None:
            endpoints = {name: _as_endpoint(name, ep, ModelEndpoint) for name, ep in self.endpoints.items()}
        retry = RetryPolicy(
            max_retries=1 if self.max_retries is None else int(self.max_retries),
            timeout_s=self.timeout if self.timeout is not None else 60.0,
        )
        kwargs = dict(
            models=self.models,
            endpoints=endpoints,
            reference_model=self.reference_model,
            retry=retry,
            latency_sla_s=self.latency_sla_s,
        )
        try:
            router = (
                ZeroRouter.load(self.artifact_path, **kwargs)
                if self.artifact_path
                else ZeroRouter.default(**kwargs)
            )
        except ZeroRouterError as exc:
            hint = _hint_for(exc)
            raise (_with_hint(exc, hint) if hint else exc) from exc
        if self.api_key is not None:
            key = self.api_key.get_secret_value()
            for name, ep in list(router.endpoints.items()):
                if getattr(ep, "api_key", None) is None and getattr(ep, "api_key_env", None) is None:
                    router.endpoints[name] = dataclasses.replace(ep, api_key=key)
        return router

    def _policy(self, router: Any, quality_target: Any, budget: Any, reference: Any) -> Any:
        """A calibrated ``Policy`` for these options (fitted once per router and options, then cached)."""
        if quality_target is None and budget is None:
            return None
        if quality_target is not None and budget is not None:
            raise ValueError(
                f"quality_target={quality_target} and budget_usd_per_1k={budget}: give one, not both"
            )
        quality_target = None if quality_target is None else float(quality_target)
        budget = None if budget is None else float(budget)
        _check_policy_values(quality_target, budget)
        key = (id(router), quality_target, budget, reference)
        cached = self._policies.get(key)
        if cached is not None:
            return cached
        from zerorouter_integrations.policy import Policy

        if budget is not None:
            policy = Policy.for_budget(budget)
        else:
            ref = reference or getattr(router, "reference_model", None) or router._reference()
            policy = Policy.for_quality_target(quality_target, reference=ref)
        fitted = router.with_policy(policy).policy
        with self._lock:
            self._policies[key] = fitted
        return fitted

    # ------------------------------------------------------------------ request building
    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any, kwargs: dict[str, Any]
    ) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
        kwargs = dict(kwargs)
        meta = dict(getattr(run_manager, "metadata", None) or {})
        opts: dict[str, Any] = {}
        for key in ROUTING_OPTION_KEYS:
            if key in kwargs:
                opts[key] = kwargs.pop(key)
            elif meta.get(key) is not None and key != "policy":
                opts[key] = meta[key]
        thread = kwargs.pop(_THREAD_KW, None) or next(
            (str(meta[k]) for k in _THREAD_KEYS if meta.get(k) is not None), None
        )
        forced = kwargs.pop("model", None)
        alias = kwargs.pop("model_name", None)
        forced = forced or alias
        if forced in (None, ROUTED):
            forced = self.model if self.model != ROUTED else None
        for key in _NOT_FORWARDED:
            kwargs.pop(key, None)

        router = self.get_router()
        params: dict[str, Any] = dict(self.model_kwargs)
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.timeout is not None:
            params["timeout"] = self.timeout
        stop_ = stop if stop is not None else self.stop
        if stop_:
            params["stop"] = list(stop_)
        params.update(kwargs)
        params = {k: v for k, v in params.items() if v is not None}

        if forced is not None:
            params["model"] = forced
        else:
            allowed = _as_name_list(opts.get("allowed_models", self.allowed_models), "allowed_models")
            denied = _as_name_list(opts.get("denied_models", self.denied_models), "denied_models")
            if allowed is not None:
                params["allowed_models"] = allowed
            if denied is not None:
                params["denied_models"] = denied
            policy = opts.get("policy")
            if policy is None:
                policy = self._policy(
                    router,
                    opts.get("quality_target", self.quality_target),
                    opts.get("budget_usd_per_1k", self.budget_usd_per_1k),
                    opts.get("reference_model", self.reference_model),
                )
            if policy is not None:
                params["policy"] = policy
            sla = opts.get("latency_sla_s", self.latency_sla_s)
            if sla is not None:
                params["latency_sla_s"] = float(sla)
        session = opts.get("session_id") or self.session_id or thread
        if session is not None:
            params["session_id"] = str(session)
        if opts.get("request_id") is not None:
            params["request_id"] = str(opts["request_id"])
        cascade = opts.get("cascade", self.cascade)
        if cascade and forced is None:
            params["cascade"] = cascade
        return router, messages_to_dicts(messages), params

    # ------------------------------------------------------------------ results
    @staticmethod
    def _response_metadata(resp: Any) -> dict[str, Any]:
        try:
            decision = resp.decision.to_dict()
        except Exception:
            decision = None
        meta: dict[str, Any] = {
            "model_name": resp.model,
            "model_provider": "zerorouter",
            "response_cost": float(resp.cost_usd),
            "latency_s": resp.latency_s,
            "ttft_s": resp.ttft_s,
            "finish_reason": resp.finish_reason,
            "routing_decision": decision,
            "request_id": resp.request_id,
        }
        if resp.attempts:
            meta["failed_attempts"] = [
                dataclasses.asdict(a) if dataclasses.is_dataclass(a) else str(a) for a in resp.attempts
            ]
        raw_id = getattr(resp.response, "id", None)
        if raw_id:
            meta["id"] = raw_id
        return meta

    def _chat_result(self, resp: Any) -> ChatResult:
        calls, invalid = tool_calls_from_openai(resp.tool_calls)
        meta = self._response_metadata(resp)
        usage = usage_to_metadata(resp.usage)
        message = AIMessage(
            content=resp.content or "",
            tool_calls=calls,
            invalid_tool_calls=invalid,
            usage_metadata=usage,
            response_metadata=meta,
            id=meta.get("id"),
        )
        gen = ChatGeneration(message=message, generation_info={"finish_reason": resp.finish_reason})
        llm_output = {
            "model_name": resp.model,
            "token_usage": dict(usage),
            "response_cost": meta["response_cost"],
        }
        return ChatResult(generations=[gen], llm_output=llm_output)

    def _delta_chunk(self, rc: Any) -> ChatGenerationChunk:
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=rc.content or "", tool_call_chunks=tool_call_chunks_from_deltas(rc.tool_call_deltas)
            )
        )

    def _final_chunk(self, resp: Any) -> ChatGenerationChunk:
        """The stream's last chunk: no text, the usage (only here) and all the metadata."""
        meta = self._response_metadata(resp)
        meta.pop("id", None)
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=usage_to_metadata(resp.usage),
                response_metadata=meta,
                chunk_position="last",
            ),
            generation_info={"finish_reason": resp.finish_reason},
        )

    def _combine_llm_outputs(self, llm_outputs: list[dict | None]) -> dict:
        total: dict[str, int] = {}
        cost = 0.0
        models: list[str] = []
        for out in llm_outputs:
            if not out:
                continue
            for k, v in (out.get("token_usage") or {}).items():
                if isinstance(v, int):
                    total[k] = total.get(k, 0) + v
            cost += float(out.get("response_cost") or 0.0)
            if out.get("model_name"):
                models.append(out["model_name"])
        return {"token_usage": total, "response_cost": cost, "model_names": models}

    # ------------------------------------------------------------------ config → kwargs
    def _with_config(self, config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        found = routing_options_from_config(config)
        return {**found, **kwargs} if found else kwargs

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """As ``BaseChatModel.invoke``; routing options may also come from ``config``."""
        return super().invoke(input, config, stop=stop, **self._with_config(config, kwargs))

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Async twin of :meth:`invoke`."""
        return await super().ainvoke(input, config, stop=stop, **self._with_config(config, kwargs))

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """As ``BaseChatModel.stream``; the last chunk carries the usage and the routing metadata."""
        yield from super().stream(input, config, stop=stop, **self._with_config(config, kwargs))

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async twin of :meth:`stream`."""
        async for chunk in super().astream(input, config, stop=stop, **self._with_config(config, kwargs)):
            yield chunk

    # ------------------------------------------------------------------ the four bodies
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            router, msgs, params = self._prepare(messages, stop, run_manager, kwargs)
            resp = router.complete(msgs, **params)
        except ZeroRouterError as exc:
            raise _translated(exc) from exc
        return self._chat_result(resp)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            # building the router / calibrating a policy can take a while: keep it off the event loop
            router, msgs, params = await asyncio.to_thread(self._prepare, messages, stop, run_manager, kwargs)
            resp = await router.acomplete(msgs, **params)
        except ZeroRouterError as exc:
            raise _translated(exc) from exc
        return self._chat_result(resp)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        try:
            router, msgs, params = self._prepare(messages, stop, run_manager, kwargs)
            for rc in router.stream(msgs, **params):
                yield self._final_chunk(rc.response) if rc.final else self._delta_chunk(rc)
        except ZeroRouterError as exc:
            raise _translated(exc) from exc

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        try:
            router, msgs, params = await asyncio.to_thread(self._prepare, messages, stop, run_manager, kwargs)
            async for rc in router.astream(msgs, **params):
                yield self._final_chunk(rc.response) if rc.final else self._delta_chunk(rc)
        except ZeroRouterError as exc:
            raise _translated(exc) from exc

    # ------------------------------------------------------------------ tools and structured output
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (converted to OpenAI format); the router only picks models that can call tools.

        ``tool_choice``: ``"any"`` / ``True`` → ``"required"``; a tool name →
        ``{"type": "function", "function": {"name": ...}}``; ``"auto"`` / ``"none"`` / ``"required"``
        / a dict as is.
        """
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        names = [t["function"]["name"] for t in formatted if "function" in t]
        choice = normalize_tool_choice(tool_choice, names)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict | BaseModel]:
        """A runnable that returns output matching ``schema``.

        Parameters
        ----------
        schema : pydantic class, TypedDict, JSON schema dict or OpenAI tool dict
        method : {"function_calling", "json_schema", "json_mode"}, default="function_calling"
            ``function_calling`` forces a tool call; ``json_schema`` sends ``response_format``
            ``json_schema``; ``json_mode`` sends ``{"type": "json_object"}`` (the prompt must ask for
            the keys). The router only picks models that support the method.
        include_raw : bool, default=False
            Return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}`` (the raw message keeps
            the routing metadata).
        strict : bool, optional
            Sent as the tool's / schema's ``strict`` flag.
        """
        if kwargs:
            raise ValueError(
                f"unsupported argument(s) {sorted(kwargs)}; expected method, include_raw, strict"
            )
        if schema is None and method != "json_mode":
            raise ValueError(f"schema is required for method={method!r}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        fmt_kwargs = {"method": method, "strict": strict}
        if method == "function_calling":
            tool_name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools(
                [schema],
                tool_choice=tool_name,
                strict=strict,
                ls_structured_output_format={"kwargs": fmt_kwargs, "schema": schema},
            )
            parser: Runnable = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
            )
        elif method == "json_schema":
            fn = convert_to_openai_tool(schema, strict=strict)["function"]
            json_schema: dict[str, Any] = {"name": fn["name"], "schema": fn.get("parameters") or {}}
            if fn.get("description"):
                json_schema["description"] = fn["description"]
            if strict is not None:
                json_schema["strict"] = strict
            llm = self.bind(
                response_format={"type": "json_schema", "json_schema": json_schema},
                ls_structured_output_format={"kwargs": fmt_kwargs, "schema": schema},
            )
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
        elif method == "json_mode":
            llm = self.bind(
                response_format={"type": "json_object"},
                ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
            )
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
        else:
            raise ValueError(f"method={method!r}; expected 'function_calling', 'json_schema' or 'json_mode'")
        if not include_raw:
            return llm | parser
        parser_assign = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
        with_fallback = parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
        return RunnableMap(raw=llm) | with_fallback


def _translated(exc: ZeroRouterError) -> ZeroRouterError:
    hint = _hint_for(exc)
    return _with_hint(exc, hint) if hint else exc


def _check_policy_values(quality_target: float | None, budget: float | None) -> None:
    if quality_target is not None and not (0.0 < float(quality_target) <= 1.0):
        raise ValueError(
            f"quality_target={quality_target}; expected a fraction in (0, 1] of the reference "
            "model's predicted quality"
        )
    if budget is not None and not (float(budget) > 0.0 and math.isfinite(float(budget))):
        raise ValueError(f"budget_usd_per_1k={budget}; expected USD per 1,000 calls > 0")


def _as_endpoint(name: str, ep: Any, endpoint_cls: type) -> Any:
    if isinstance(ep, endpoint_cls):
        return ep
    if isinstance(ep, str):
        return endpoint_cls(name=name, litellm_model=ep)
    if isinstance(ep, Mapping):
        return endpoint_cls.from_dict({"name": name, **ep})
    raise TypeError(
        f"endpoints[{name!r}] is {type(ep).__name__}; expected a ModelEndpoint, its dict or a "
        "LiteLLM model string"
    )
