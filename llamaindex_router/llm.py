"""``ZeroRouterLLM``: the zerorouter as a LlamaIndex ``FunctionCallingLLM``.

The adapter has no routing logic: each call is translated to OpenAI-format messages, handed to the
core :class:`~zerorouter_integrations.router.ZeroRouter` (which decides, dispatches through LiteLLM
and records feedback), and the answer comes back as a LlamaIndex response whose
``additional_kwargs`` say which model served it, its usage, cost, latency and the routing decision::

    from llamaindex_router import ZeroRouterLLM
    llm = ZeroRouterLLM(models=["gpt-4o", "gpt-4o-mini"], budget_usd_per_1k=0.5)
    r = llm.chat([ChatMessage(role="user", content="What is 2 + 2?")])
    r.additional_kwargs["model"], r.additional_kwargs["cost_usd"]

Per-call routing options are keyword arguments of ``chat`` / ``complete`` / their stream and async
twins: ``mode`` (``"max_quality"`` or ``"min_cost"``), ``quality_target``, ``budget_usd_per_1k``
(alias ``budget``), ``reference_model``, ``policy``, ``allowed_models``, ``denied_models``,
``session_id``, ``latency_sla_s``, ``request_id`` and ``model="<pool name>"`` (bypasses routing).
Everything else is passed to LiteLLM.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr
from llama_index.core.constants import DEFAULT_NUM_OUTPUTS
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from llamaindex_router._convert import (
    StreamAccumulator,
    chat_response,
    chat_to_completion,
    parse_tool_arguments,
    prompt_messages,
    to_openai_messages,
    tool_calls_of,
)
from llamaindex_router.copies import CopiesLLM
from llamaindex_router.options import call_kwargs, policy_for_options

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["DEFAULT_CONTEXT_WINDOW", "ZeroRouterLLM"]

#: Context window reported when no model of the admissible pool has a known one.
DEFAULT_CONTEXT_WINDOW = 4096


class ZeroRouterLLM(CopiesLLM, FunctionCallingLLM):
    """Route every LlamaIndex LLM call to the cheapest model likely to answer it well.

    Parameters
    ----------
    router : ZeroRouter, optional
        A ready router. When omitted, one is built on first use from ``artifact_path`` (default:
        the shipped artifact) with ``models``, ``endpoints``, ``store`` and ``reference_model``.
    artifact_path : str or Path, optional
        Artifact file written by ``ZeroRouter.save`` / ``zerorouter fit``. Not with ``router``.
    models : list of str, optional
        Restrict the pool (only when the router is built here).
    endpoints : dict of str to ModelEndpoint, optional
        How to call each pool model (only when the router is built here).
    litellm_config : str, dict or list, optional
        A LiteLLM proxy ``config.yaml`` path, its parsed dict, or a Router ``model_list``: the pool
        (see ``ZeroRouter.from_litellm_config``). Not with ``models`` / ``endpoints``.
    store : ProfileStore or str, optional
        Feedback store of a router built here (``"sqlite:///path"``, ``"redis://…"``).
    api_key : str or SecretStr, optional
        Key for the built router's endpoints that have none (a ``SecretStr``: never shown).
    temperature : float, optional
        Sampling temperature in [0, 2] sent to every model; ``None`` leaves the provider default.
    max_tokens : int, optional
        Output token limit per call; also what :attr:`metadata` reports as ``num_output``.
    timeout : float, optional
        Seconds per LiteLLM call.
    allowed_models : list of str, optional
        Only these pool models may be chosen (narrowed further by a per-call ``allowed_models``).
    quality_target : float, optional
        Route to keep this fraction (in (0, 1]) of the reference model's predicted quality.
    reference_model : str, optional
        The model ``quality_target`` and the savings are measured against.
    budget_usd_per_1k : float, optional
        Route to spend about this many USD per 1,000 calls. Not with ``quality_target``.
    session_id : str, optional
        Default conversation id (escalate-only stickiness within a session).
    additional_kwargs : dict, optional
        Further LiteLLM parameters for every call (per-call keyword arguments win).
    **kwargs
        ``LLM`` fields: ``callback_manager``, ``system_prompt``, ``pydantic_program_mode``, …

    Notes
    -----
    Responses carry ``additional_kwargs = {"model", "usage", "cost_usd", "latency_s", "ttft_s",
    "routing_decision", "request_id", "finish_reason", "failed_attempts"}``; ``raw`` is the
    ``RoutedResponse.to_dict()``; the message's ``additional_kwargs`` repeat ``model``, ``usage``,
    ``cost_usd`` and ``request_id`` (and hold ``tool_calls``). Core errors propagate unchanged,
    e.g. ``AllModelsFailedError`` listing every attempt.
    """

    temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="Sampling temperature; None = provider default."
    )
    max_tokens: int | None = Field(default=None, gt=0, description="Output token limit per call.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds per LiteLLM call.")
    allowed_models: list[str] | None = Field(default=None, description="Pool models that may be chosen.")
    quality_target: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Fraction of the reference model's quality to keep."
    )
    reference_model: str | None = Field(default=None, description="Model quality targets refer to.")
    budget_usd_per_1k: float | None = Field(default=None, gt=0.0, description="Average USD per 1,000 calls.")
    session_id: str | None = Field(default=None, description="Default conversation id.")
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra LiteLLM parameters for every call."
    )

    _router: Any = PrivateAttr(default=None)
    _router_spec: dict[str, Any] = PrivateAttr(default_factory=dict)
    _lock: Any = PrivateAttr(default=None)
    _policies: dict[Any, Any] = PrivateAttr(default_factory=dict)
    _metadata_cache: Any = PrivateAttr(default=None)
    _counter_cache: Any = PrivateAttr(default=None)

    def __init__(
        self,
        router: Any = None,
        *,
        artifact_path: Any = None,
        models: Sequence[str] | None = None,
        endpoints: dict[str, Any] | None = None,
        litellm_config: Any = None,
        store: Any = None,
        api_key: Any = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        allowed_models: Sequence[str] | None = None,
        quality_target: float | None = None,
        reference_model: str | None = None,
        budget_usd_per_1k: float | None = None,
        session_id: str | None = None,
        additional_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if quality_target is not None and budget_usd_per_1k is not None:
            raise ValueError(
                f"give quality_target ({quality_target!r}) or budget_usd_per_1k "
                f"({budget_usd_per_1k!r}), not both"
            )
        api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        built_here = {
            "artifact_path": artifact_path,
            "models": models,
            "endpoints": endpoints,
            "litellm_config": litellm_config,
            "store": store,
            "api_key": api_key,
        }
        if litellm_config is not None and (models is not None or endpoints is not None):
            raise ValueError("litellm_config= is the pool: give it without models= / endpoints=")
        if router is not None:
            given = [k for k, v in built_here.items() if v is not None]
            if given:
                raise ValueError(
                    f"router= was given together with {', '.join(given)}; those configure a "
                    "router built by ZeroRouterLLM, pass them to ZeroRouter instead"
                )
            if not hasattr(router, "complete") or not hasattr(router, "stream"):
                raise TypeError(f"router={type(router).__name__!r}; expected a zerorouter ZeroRouter")
        super().__init__(
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
            allowed_models=list(allowed_models) if allowed_models is not None else None,
            quality_target=quality_target,
            reference_model=reference_model,
            budget_usd_per_1k=budget_usd_per_1k,
            session_id=session_id,
            additional_kwargs=dict(additional_kwargs or {}),
            **kwargs,
        )
        self._router = router
        self._router_spec = {k: v for k, v in built_here.items() if v is not None}
        self._lock = threading.Lock()
        self._policies = {}
        self._metadata_cache = None
        self._counter_cache = None

    @classmethod
    def class_name(cls) -> str:
        return "ZeroRouterLLM"

    # ------------------------------------------------------------------ router and metadata
    @property
    def router(self) -> Any:
        """The core ``ZeroRouter`` (built on first access when none was given)."""
        if self._router is None:
            with self._lock:
                if self._router is None:
                    from zerorouter_integrations.router import ZeroRouter

                    spec = dict(self._router_spec)
                    path = spec.pop("artifact_path", None)
                    key = spec.pop("api_key", None)
                    if self.reference_model is not None:
                        spec["reference_model"] = self.reference_model
                    config = spec.pop("litellm_config", None)
                    if config is not None:
                        router = ZeroRouter.from_litellm_config(config, artifact=path, **spec)
                    else:
                        router = (
                            ZeroRouter.load(path, **spec) if path is not None else ZeroRouter.default(**spec)
                        )
                    keyed = {n: ep.with_default_key(key) for n, ep in router.endpoints.items()}
                    router.endpoints.update(keyed)
                    self._router = router
        return self._router

    def _admissible_pool(self) -> list[str]:
        router = self.router
        endpoints = getattr(router, "endpoints", None) or {}
        pool = [m for m in router.models if not endpoints or m in endpoints]
        if self.allowed_models is not None:
            allowed = set(self.allowed_models)
            pool = [m for m in pool if m in allowed]
        return pool

    def _capabilities(self, name: str) -> Any:
        # The core caches these per model (LiteLLM's model map plus the profile's overrides).
        return self.router.capabilities(name)

    @property
    def metadata(self) -> LLMMetadata:
        """Context window = the smallest known one of the admissible pool (4096 if none is known);
        function calling iff every pool model supports tools."""
        pool = self._admissible_pool()
        key = (id(self.router), tuple(pool), self.max_tokens)
        cached = self._metadata_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        caps = [self._capabilities(m) for m in pool]
        windows = [c.context_window for c in caps if getattr(c, "context_window", None)]
        meta = LLMMetadata(
            context_window=int(min(windows)) if windows else DEFAULT_CONTEXT_WINDOW,
            num_output=self.max_tokens or DEFAULT_NUM_OUTPUTS,
            is_chat_model=True,
            is_function_calling_model=bool(caps) and all(getattr(c, "supports_tools", False) for c in caps),
            model_name="zerorouter",
        )
        self._metadata_cache = (key, meta)
        return meta

    # ------------------------------------------------------------------ token counting (offline)
    def _token_counter(self) -> Any:
        from zerorouter_integrations.tokens import TokenCounter

        pool = self._admissible_pool()
        endpoints = getattr(self.router, "endpoints", None) or {}
        names = pool + [endpoints[m].litellm_model for m in pool if m in endpoints]
        cached = self._counter_cache
        if cached is None or cached[0] != names:
            cached = (names, TokenCounter(names))
            self._counter_cache = cached
        return cached[1]

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` for the admissible pool: the largest count over its models' tokenizers.

        Offline (:class:`~zerorouter_integrations.tokens.TokenCounter`); trimming to N tokens by this
        count fits every model the router may pick.
        """
        return self._token_counter().count(text)

    def count_message_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens of a chat (per-message overhead and reply priming included), as :meth:`count_tokens`."""
        return self._token_counter().count_messages(to_openai_messages(messages))

    @property
    def tokenizer(self) -> Any:
        """``text -> token ids`` for ``Settings.tokenizer`` or ``ChatMemoryBuffer(tokenizer_fn=...)``."""
        return self._token_counter().encode

    # ------------------------------------------------------------------ request building
    def _policy(
        self, mode: str | None, quality_target: float | None, budget: float | None, reference: str | None
    ) -> Any:
        """A calibrated ``Policy`` for these options (cached), or None for the router's own."""
        return policy_for_options(self.router, self._policies, mode, quality_target, budget, reference)

    def _call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Split LlamaIndex kwargs into the router's: LiteLLM params + routing options (+ a Policy)."""
        return call_kwargs(self, kwargs, self._policy)

    # ------------------------------------------------------------------ chat bodies
    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        resp = self.router.complete(to_openai_messages(messages), **self._call_kwargs(kwargs))
        return chat_response(resp)

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        resp = await self.router.acomplete(to_openai_messages(messages), **self._call_kwargs(kwargs))
        return chat_response(resp)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        msgs = to_openai_messages(messages)
        params = self._call_kwargs(kwargs)
        router = self.router

        def gen() -> ChatResponseGen:
            acc = StreamAccumulator()
            for chunk in router.stream(msgs, **params):
                out = acc.feed(chunk)
                if out is not None:
                    yield out

        return gen()

    async def _astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        msgs = to_openai_messages(messages)
        params = self._call_kwargs(kwargs)
        router = self.router

        async def gen() -> ChatResponseAsyncGen:
            acc = StreamAccumulator()
            async for chunk in router.astream(msgs, **params):
                out = acc.feed(chunk)
                if out is not None:
                    yield out

        return gen()

    # ------------------------------------------------------------------ public API (decorated)
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Route and answer a conversation."""
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Route and stream; the last response carries usage, cost and the decision."""
        return self._stream_chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async twin of :meth:`chat`."""
        return await self._achat(messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """Async twin of :meth:`stream_chat`."""
        return await self._astream_chat(messages, **kwargs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Route and answer a prompt (sent as one user message)."""
        return chat_to_completion(self._chat(prompt_messages(prompt), **kwargs))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Streaming twin of :meth:`complete`."""
        chat_gen = self._stream_chat(prompt_messages(prompt), **kwargs)

        def gen() -> CompletionResponseGen:
            for r in chat_gen:
                yield chat_to_completion(r)

        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Async twin of :meth:`complete`."""
        return chat_to_completion(await self._achat(prompt_messages(prompt), **kwargs))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Async twin of :meth:`stream_complete`."""
        chat_gen = await self._astream_chat(prompt_messages(prompt), **kwargs)

        async def gen() -> CompletionResponseAsyncGen:
            async for r in chat_gen:
                yield chat_to_completion(r)

        return gen()

    # ------------------------------------------------------------------ function calling
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Build ``chat`` arguments: OpenAI tool specs, the tool choice, and a *new* message list
        (the caller's ``chat_history`` is never modified)."""
        specs = [t.metadata.to_openai_tool(skip_length_check=True) for t in tools]
        messages = list(chat_history or [])  # a copy: appending below must not touch the caller's list
        if user_msg is not None:
            messages.append(
                ChatMessage(role=MessageRole.USER, content=user_msg)
                if isinstance(user_msg, str)
                else user_msg
            )
        out: dict[str, Any] = {"messages": messages, **kwargs}
        if specs:
            out["tools"] = specs
            out["tool_choice"] = _resolve_tool_choice(tool_choice, tool_required)
        return out

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call when parallel calls are not allowed (on a copy)."""
        calls = tool_calls_of(response.message)
        if allow_parallel_tool_calls or len(calls) <= 1:
            return response
        from llama_index.core.base.llms.types import ToolCallBlock

        first = calls[0]
        message = response.message.model_copy(deep=True)
        message.additional_kwargs["tool_calls"] = [first]
        kept = False
        blocks = []
        for b in message.blocks:
            if isinstance(b, ToolCallBlock):
                if kept:
                    continue
                kept = True
            blocks.append(b)
        message.blocks = blocks
        return response.model_copy(update={"message": message})

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The tool calls of a response as ``ToolSelection``\\ s (arguments parsed tolerantly).

        Raises
        ------
        ValueError
            When the response has no tool call and ``error_on_no_tool_call`` is true.
        """
        calls = tool_calls_of(response.message)
        if not calls:
            if error_on_no_tool_call:
                model = (response.additional_kwargs or {}).get("model", "the routed model")
                raise ValueError(
                    f"expected at least one tool call from {model}, got none "
                    f"(answer: {(response.message.content or '')[:120]!r})"
                )
            return []
        return [
            ToolSelection(
                tool_id=tc.get("id") or "",
                tool_name=(tc.get("function") or {}).get("name") or "",
                tool_kwargs=parse_tool_arguments((tc.get("function") or {}).get("arguments")),
            )
            for tc in calls
        ]


def _resolve_tool_choice(tool_choice: str | dict[str, Any] | None, tool_required: bool) -> Any:
    """OpenAI ``tool_choice``: a tool name becomes ``{"type": "function", "function": {"name": …}}``."""
    if tool_choice is None:
        return "required" if tool_required else "auto"
    if isinstance(tool_choice, dict):
        return tool_choice
    if tool_choice in ("none", "auto", "required"):
        return tool_choice
    if tool_choice == "any":
        return "required"
    return {"type": "function", "function": {"name": str(tool_choice)}}
