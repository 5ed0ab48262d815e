"""Routing options of a LangChain call and how they become :meth:`ZeroRouter.complete`'s parameters.

Options come from the call's kwargs, then ``config["configurable"]``, then ``config["metadata"]``,
then the chat model's own defaults; the session defaults to the run's ``thread_id`` /
``conversation_id``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig, ensure_config

__all__ = [
    "NOT_FORWARDED",
    "ROUTED",
    "ROUTING_OPTION_KEYS",
    "THREAD_KEYS",
    "THREAD_KW",
    "as_name_list",
    "call_params",
    "check_policy_values",
    "routing_options_from_config",
]

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
THREAD_KEYS = ("thread_id", "conversation_id")
#: Internal kwarg carrying the thread id found in the config down to ``_generate`` / ``_stream``.
THREAD_KW = "zerorouter_thread_id"
#: Call kwargs that must never reach LiteLLM (they would override the router's endpoints / retries, or
#: are LangChain's own, like ``stream_usage``); no ``ls_*`` key (LangSmith's) reaches it either.
NOT_FORWARDED = (
    "api_key",
    "max_retries",
    "stream",
    "stream_options",
    "ls_structured_output_format",
    "structured_output_format",
    "streaming",
    "stream_usage",
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
        for key in THREAD_KEYS:
            if src.get(key) is not None and THREAD_KW not in out:
                out[THREAD_KW] = str(src[key])
    return out


def as_name_list(value: Any, what: str) -> list[str] | None:
    """``value`` (a list or a comma-separated string of pool names) as a list; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(v) for v in value]
    raise ValueError(f"{what}={value!r}; expected a list of pool model names or a comma-separated string")


def check_policy_values(quality_target: float | None, budget: float | None) -> None:
    """Raise ``ValueError`` for a quality target outside (0, 1] or a budget that is not > 0."""
    if quality_target is not None and not (0.0 < float(quality_target) <= 1.0):
        raise ValueError(
            f"quality_target={quality_target}; expected a fraction in (0, 1] of the reference "
            "model's predicted quality"
        )
    if budget is not None and not (float(budget) > 0.0 and math.isfinite(float(budget))):
        raise ValueError(f"budget_usd_per_1k={budget}; expected USD per 1,000 calls > 0")


def call_params(
    chat: Any,
    stop: list[str] | None,
    run_manager: Any,
    kwargs: dict[str, Any],
    policy_for: Callable[[Any, Any, Any], Any],
) -> dict[str, Any]:
    """The keyword arguments of ``ZeroRouter.complete`` for one call of the chat model ``chat``.

    ``kwargs`` are the call's; ``run_manager``'s metadata supplies options the call did not give;
    ``policy_for(quality_target, budget_usd_per_1k, reference_model)`` returns a calibrated policy
    (or None for the router's own).
    """
    kwargs = dict(kwargs)
    meta = dict(getattr(run_manager, "metadata", None) or {})
    opts: dict[str, Any] = {}
    for key in ROUTING_OPTION_KEYS:
        if key in kwargs:
            opts[key] = kwargs.pop(key)
        elif meta.get(key) is not None and key != "policy":
            opts[key] = meta[key]
    thread = kwargs.pop(THREAD_KW, None) or next(
        (str(meta[k]) for k in THREAD_KEYS if meta.get(k) is not None), None
    )
    forced = kwargs.pop("model", None)
    alias = kwargs.pop("model_name", None)
    forced = forced or alias
    if forced in (None, ROUTED):
        forced = chat.model if chat.model != ROUTED else None
    for key in NOT_FORWARDED:
        kwargs.pop(key, None)
    for key in [k for k in kwargs if k.startswith("ls_")]:  # LangSmith tracing keys, never the provider's
        kwargs.pop(key)

    params: dict[str, Any] = dict(chat.model_kwargs)
    if chat.temperature is not None:
        params["temperature"] = chat.temperature
    if chat.max_tokens is not None:
        params["max_tokens"] = chat.max_tokens
    if chat.timeout is not None:
        params["timeout"] = chat.timeout
    stop_ = stop if stop is not None else chat.stop
    if stop_:
        params["stop"] = list(stop_)
    params.update(kwargs)
    params = {k: v for k, v in params.items() if v is not None}

    if forced is not None:
        params["model"] = forced
    else:
        allowed = as_name_list(opts.get("allowed_models", chat.allowed_models), "allowed_models")
        denied = as_name_list(opts.get("denied_models", chat.denied_models), "denied_models")
        if allowed is not None:
            params["allowed_models"] = allowed
        if denied is not None:
            params["denied_models"] = denied
        policy = opts.get("policy")
        if policy is None:
            policy = policy_for(
                opts.get("quality_target", chat.quality_target),
                opts.get("budget_usd_per_1k", chat.budget_usd_per_1k),
                opts.get("reference_model", chat.reference_model),
            )
        if policy is not None:
            params["policy"] = policy
        sla = opts.get("latency_sla_s", chat.latency_sla_s)
        if sla is not None:
            params["latency_sla_s"] = float(sla)
    session = opts.get("session_id") or chat.session_id or thread
    if session is not None:
        params["session_id"] = str(session)
    if opts.get("request_id") is not None:
        params["request_id"] = str(opts["request_id"])
    cascade = opts.get("cascade", chat.cascade)
    if cascade and forced is None:
        params["cascade"] = cascade
    return params
