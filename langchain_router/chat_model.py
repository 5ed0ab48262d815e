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
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.utils import secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator

from langchain_router._messages import messages_to_dicts, normalize_tool_choice
from langchain_router.building import build_router, calibrated_policy
from langchain_router.hints import translated
from langchain_router.options import (
    ROUTED,
    ROUTING_OPTION_KEYS,
    call_params,
    check_policy_values,
    routing_options_from_config,
)
from langchain_router.results import chat_result, combine_llm_outputs, delta_chunk, final_chunk
from langchain_router.structured import structured_output
from langchain_router.sturdy import SturdyChat
from zerorouter_integrations.errors import ZeroRouterError

__all__ = ["ROUTING_OPTION_KEYS", "ZeroRouterChat", "routing_options_from_config"]


class ZeroRouterChat(SturdyChat, BaseChatModel):
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
    litellm_config : str, dict or list, optional
        A LiteLLM proxy ``config.yaml`` path, its parsed dict, or a Router ``model_list``: the pool
        (see ``ZeroRouter.from_litellm_config``). Not with ``endpoints`` / ``models``.
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
    litellm_config: Any = Field(default=None, exclude=True)
    """A LiteLLM config (path, dict or ``model_list``) to build the router's pool from."""
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
    stream_usage: bool = True
    """Whether a stream ends with a chunk carrying ``usage_metadata`` (as in ``ChatOpenAI``); a
    per-call ``stream_usage=`` wins. Never sent to the provider (the router always counts usage)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra LiteLLM parameters sent with every call."""

    _router: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _policies: dict[Any, Any] = PrivateAttr(default_factory=dict)
    _counter: Any = PrivateAttr(default=None)

    # ------------------------------------------------------------------ secrets and copies
    @field_validator("endpoints", mode="after")
    @classmethod
    def _endpoints_hold_secrets(cls, value: Any) -> Any:
        """Endpoint dicts become ``ModelEndpoint`` objects at once, so an ``api_key`` in one is a
        ``SecretStr`` in every repr, dump and serialization of this model."""
        if value is None:
            return None
        from zerorouter_integrations.endpoints import as_endpoint

        return {name: as_endpoint(name, ep) for name, ep in value.items()}

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
        if self.router is not None and (
            self.artifact_path or self.models or self.endpoints or self.litellm_config is not None
        ):
            raise ValueError(
                "give either router= or artifact_path= / models= / endpoints= / litellm_config= "
                "to build one, not both"
            )
        if self.litellm_config is not None and (self.models or self.endpoints):
            raise ValueError("litellm_config= is the pool: give it without models= / endpoints=")
        if self.quality_target is not None and self.budget_usd_per_1k is not None:
            raise ValueError(
                f"quality_target={self.quality_target} and budget_usd_per_1k={self.budget_usd_per_1k}: "
                "give one of them, not both"
            )
        check_policy_values(self.quality_target, self.budget_usd_per_1k)
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
        return build_router(self)

    def _policy(self, router: Any, quality_target: Any, budget: Any, reference: Any) -> Any:
        """A calibrated ``Policy`` for these options (fitted once per router and options, then cached)."""
        if quality_target is None and budget is None:
            return None
        quality_target = None if quality_target is None else float(quality_target)
        budget = None if budget is None else float(budget)
        key = (id(router), quality_target, budget, reference)
        cached = self._policies.get(key)
        if cached is not None:
            return cached
        fitted = calibrated_policy(router, quality_target, budget, reference)
        with self._lock:
            self._policies[key] = fitted
        return fitted

    # ------------------------------------------------------------------ request building
    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any, kwargs: dict[str, Any]
    ) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
        router = self.get_router()
        params = call_params(self, stop, run_manager, kwargs, lambda q, b, r: self._policy(router, q, b, r))
        return router, messages_to_dicts(messages), params

    def _stream_usage(self, kwargs: dict[str, Any]) -> bool:
        given = kwargs.pop("stream_usage", None)
        return self.stream_usage if given is None else bool(given)

    # ------------------------------------------------------------------ token counting (offline)
    def _token_counter(self) -> Any:
        from zerorouter_integrations.tokens import TokenCounter

        router = self.get_router()
        pool = list(self.allowed_models or router.models)
        names = pool + [router.endpoints[m].litellm_model for m in pool if m in router.endpoints]
        cached = self._counter
        if cached is None or cached[0] != names:
            cached = self._counter = (names, TokenCounter(names))
        return cached[1]

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` by the pool's most demanding tokenizer, offline
        (:class:`~zerorouter_integrations.tokens.TokenCounter`: trimming to N tokens fits every candidate)."""
        return self._token_counter().encode(text)

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text`` (the largest count over the pool's tokenizers; see :meth:`get_token_ids`)."""
        return self._token_counter().count(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Tokens of a chat as the provider counts it (per-message overhead, tool schemas, reply priming);
        what ``trim_messages(token_counter=llm)`` uses."""
        schemas = [convert_to_openai_tool(t) for t in tools] if tools else None
        return self._token_counter().count_messages(messages_to_dicts(messages), schemas)

    # ------------------------------------------------------------------ results
    def _combine_llm_outputs(self, llm_outputs: list[dict | None]) -> dict:
        return combine_llm_outputs(llm_outputs)

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
            raise translated(exc) from exc
        return chat_result(resp)

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
            raise translated(exc) from exc
        return chat_result(resp)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        usage = self._stream_usage(kwargs)
        try:
            router, msgs, params = self._prepare(messages, stop, run_manager, kwargs)
            for rc in router.stream(msgs, **params):
                yield final_chunk(rc.response, with_usage=usage) if rc.final else delta_chunk(rc)
        except ZeroRouterError as exc:
            raise translated(exc) from exc

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        usage = self._stream_usage(kwargs)
        try:
            router, msgs, params = await asyncio.to_thread(self._prepare, messages, stop, run_manager, kwargs)
            async for rc in router.astream(msgs, **params):
                yield final_chunk(rc.response, with_usage=usage) if rc.final else delta_chunk(rc)
        except ZeroRouterError as exc:
            raise translated(exc) from exc

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
        return structured_output(self, schema, method=method, include_raw=include_raw, strict=strict)
