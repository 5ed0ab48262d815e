"""Agent middleware: route once per agent run, never de-escalate within a conversation.

An agent calls its model several times per run (tool call, tool result, answer ...). Routing each
step separately can hop between models mid-task; :class:`ZeroRouterMiddleware` instead

* routes the **first** model call of a run (with ``session_id`` = the run's ``thread_id``, so the
  core's session stickiness only ever escalates across the runs of one conversation), and
* pins every later model call of the same run to the model that answered first (``model=`` bypass).

The pinned model lives in a private, untracked state field, so a new run (even on the same
checkpointed thread) routes again. Needs ``langchain>=1.0`` (``create_agent``).

>>> from langchain.agents import create_agent                              # doctest: +SKIP
>>> agent = create_agent(ZeroRouterChat(router=router), tools=[search],
...                      middleware=[ZeroRouterMiddleware()])               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

try:
    from langchain.agents.middleware.types import (
        AgentMiddleware,
        AgentState,
        ModelRequest,
        ModelResponse,
        PrivateStateAttr,
    )
    from langgraph.channels.untracked_value import UntrackedValue
except ImportError as exc:  # pragma: no cover - exercised only without langchain installed
    raise ImportError(
        "langchain_router.middleware needs the `langchain` package (>= 1.0) for agent middleware; "
        "install it with `pip install 'langchain>=1.0'`"
    ) from exc
from langchain_core.messages import AIMessage
from typing_extensions import NotRequired

from langchain_router.chat_model import ZeroRouterChat
from langchain_router.options import ROUTED

__all__ = ["ZeroRouterAgentState", "ZeroRouterMiddleware"]

_STATE_KEY = "zerorouter_run_model"


class ZeroRouterAgentState(AgentState[Any]):
    """Agent state plus the model pinned for the current run (private, not checkpointed)."""

    # AgentState is a TypedDict; mypy does not analyse langchain (pyproject.toml), so it cannot tell
    zerorouter_run_model: NotRequired[Annotated[str | None, UntrackedValue, PrivateStateAttr]]  # type: ignore[valid-type]


def _thread_id() -> str | None:
    try:
        from langgraph.config import get_config

        cfg = get_config()
    except Exception:
        return None
    for src in (cfg.get("configurable") or {}, cfg.get("metadata") or {}):
        for key in ("thread_id", "conversation_id"):
            if src.get(key) is not None:
                return str(src[key])
    return None


class ZeroRouterMiddleware(AgentMiddleware[ZeroRouterAgentState, Any, Any]):
    """Route the first model call of each agent run and pin the rest of the run to that model.

    Parameters
    ----------
    model : ZeroRouterChat, optional
        The routed model to use for every model call of the agent; default: the agent's own model
        (calls of a model that is not a :class:`ZeroRouterChat` pass through untouched).
    pin_per_run : bool, default=True
        Pin later calls of a run to the first call's model. ``False`` routes every call, still
        escalate-only through the thread's session.
    session_from_thread : bool, default=True
        Use the run's ``thread_id`` (or ``conversation_id``) as the routing ``session_id``.
    """

    state_schema = ZeroRouterAgentState

    def __init__(
        self,
        model: ZeroRouterChat | None = None,
        *,
        pin_per_run: bool = True,
        session_from_thread: bool = True,
    ):
        super().__init__()
        if model is not None and not isinstance(model, ZeroRouterChat):
            raise TypeError(
                f"model is {type(model).__name__}; expected a ZeroRouterChat (or None to use the "
                "agent's model)"
            )
        self.model = model
        self.pin_per_run = pin_per_run
        self.session_from_thread = session_from_thread

    def _routed_request(self, request: ModelRequest) -> ModelRequest | None:
        llm = self.model or request.model
        if not isinstance(llm, ZeroRouterChat):
            return None
        settings = dict(request.model_settings or {})
        pinned = (request.state or {}).get(_STATE_KEY) if self.pin_per_run else None
        if pinned and settings.get("model") in (None, ROUTED):
            settings["model"] = pinned
        if self.session_from_thread and "session_id" not in settings:
            thread = _thread_id()
            if thread is not None:
                settings["session_id"] = thread
        return request.override(model=llm, model_settings=settings)

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> Any:
        routed = self._routed_request(request)
        return handler(routed if routed is not None else request)

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> Any:
        routed = self._routed_request(request)
        return await handler(routed if routed is not None else request)

    def after_model(self, state: ZeroRouterAgentState, runtime: Any) -> dict[str, Any] | None:
        """Remember the model that answered the run's first routed call."""
        if not self.pin_per_run or state.get(_STATE_KEY):
            return None
        for msg in reversed(state.get("messages") or []):
            if isinstance(msg, AIMessage):
                meta = msg.response_metadata or {}
                if meta.get("model_provider") == "zerorouter" and meta.get("model_name"):
                    return {_STATE_KEY: meta["model_name"]}
                return None
        return None

    async def aafter_model(self, state: ZeroRouterAgentState, runtime: Any) -> dict[str, Any] | None:
        """Async twin of :meth:`after_model`."""
        return self.after_model(state, runtime)
