"""The core router and policies behind a ``ZeroRouterChat``: built from its fields, calibrated per option."""

from __future__ import annotations

from typing import Any

from langchain_router.hints import translated
from langchain_router.options import check_policy_values
from zerorouter_integrations.errors import ZeroRouterError

__all__ = ["build_router", "calibrated_policy"]


def build_router(chat: Any) -> Any:
    """A ``ZeroRouter`` from the chat model's ``artifact_path`` / ``models`` / ``endpoints`` (or
    ``litellm_config``) / retry fields.

    ``api_key`` is given to every endpoint that has neither a key nor a key variable.
    """
    from zerorouter_integrations.dispatch import RetryPolicy
    from zerorouter_integrations.endpoints import as_endpoint
    from zerorouter_integrations.router import ZeroRouter

    endpoints = None
    if chat.endpoints is not None:
        endpoints = {name: as_endpoint(name, ep) for name, ep in chat.endpoints.items()}
    retry = RetryPolicy(
        max_retries=1 if chat.max_retries is None else int(chat.max_retries),
        timeout_s=chat.timeout if chat.timeout is not None else 60.0,
    )
    kwargs = dict(
        models=chat.models,
        endpoints=endpoints,
        reference_model=chat.reference_model,
        retry=retry,
        latency_sla_s=chat.latency_sla_s,
    )
    try:
        if chat.litellm_config is not None:  # the config is the pool
            del kwargs["models"], kwargs["endpoints"]
            if chat.artifact_path:
                kwargs["artifact"] = chat.artifact_path
            router = ZeroRouter.from_litellm_config(chat.litellm_config, **kwargs)
        else:
            router = (
                ZeroRouter.load(chat.artifact_path, **kwargs)
                if chat.artifact_path
                else ZeroRouter.default(**kwargs)
            )
    except ZeroRouterError as exc:
        raise translated(exc) from exc
    if chat.api_key is not None:
        for name, ep in list(router.endpoints.items()):
            router.endpoints[name] = ep.with_default_key(chat.api_key)
    return router


def calibrated_policy(router: Any, quality_target: float | None, budget: float | None, reference: Any) -> Any:
    """A ``Policy`` for a quality target or a budget, calibrated on ``router``'s prompts (None: neither)."""
    if quality_target is None and budget is None:
        return None
    if quality_target is not None and budget is not None:
        raise ValueError(
            f"quality_target={quality_target} and budget_usd_per_1k={budget}: give one, not both"
        )
    check_policy_values(quality_target, budget)
    from zerorouter_integrations.policy import Policy

    if budget is not None:
        policy = Policy.for_budget(budget)
    else:
        ref = reference or router.effective_reference_model
        policy = Policy.for_quality_target(float(quality_target or 0.0), reference=ref)
    return router.with_policy(policy).policy
