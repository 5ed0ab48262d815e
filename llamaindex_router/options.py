"""Routing options of a LlamaIndex call and how they become :meth:`ZeroRouter.complete`'s keyword arguments.

Per-call options (``mode``, ``quality_target``, ``budget_usd_per_1k`` / ``budget``,
``reference_model``, ``policy``, ``allowed_models``, ...) override the ``ZeroRouterLLM``'s fields;
everything else is passed to LiteLLM.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "DROP_KEYS",
    "MIN_COST_LAM",
    "MODES",
    "POLICY_KEYS",
    "ROUTE_KEYS",
    "call_kwargs",
    "policy_for_options",
]

#: Routing options the core router takes as keyword arguments (passed through unchanged).
ROUTE_KEYS = ("denied_models", "session_id", "latency_sla_s", "request_id", "model", "policy", "cascade")
#: Per-call options this adapter turns into a ``Policy``.
POLICY_KEYS = ("mode", "quality_target", "budget_usd_per_1k", "budget", "reference_model")
MODES = ("default", "max_quality", "min_cost")
#: ``Policy(lam=…)`` used by ``mode="min_cost"``: cost dominates any quality difference.
MIN_COST_LAM = 1e9
#: LlamaIndex-internal keyword arguments that must not reach LiteLLM.
DROP_KEYS = ("formatted", "verbose", "tool_required", "allow_parallel_tool_calls", "strict")


def policy_for_options(
    router: Any,
    cache: dict[Any, Any],
    mode: str | None,
    quality_target: float | None,
    budget: float | None,
    reference: str | None,
) -> Any:
    """A ``Policy`` for these options calibrated on ``router``'s prompts (kept in ``cache``), or None
    for the router's own.

    ``mode`` is ``"max_quality"``, ``"min_cost"``, ``"default"`` or None; ``quality_target`` a
    fraction in (0, 1] of ``reference``'s (default: the router's reference) predicted quality;
    ``budget`` USD per 1,000 calls. Raises ``ValueError`` for a bad or contradictory value.
    """
    if mode not in (None, *MODES):
        raise ValueError(f"mode={mode!r}; expected one of {MODES}")
    if quality_target is not None and budget is not None:
        raise ValueError(
            f"give quality_target ({quality_target!r}) or budget_usd_per_1k ({budget!r}), not both"
        )
    if mode in ("max_quality", "min_cost") and (quality_target is not None or budget is not None):
        raise ValueError(f"mode={mode!r} cannot be combined with quality_target or budget_usd_per_1k")
    if mode in ("max_quality", "min_cost"):
        key: Any = (mode,)
    elif quality_target is not None:
        key = ("quality", float(quality_target), reference)
    elif budget is not None:
        key = ("budget", float(budget))
    else:
        return None
    policy = cache.get(key)
    if policy is None:
        from zerorouter_integrations.policy import Policy

        if key[0] == "max_quality":
            p = Policy(lam=0.0)
        elif key[0] == "min_cost":
            p = Policy(lam=MIN_COST_LAM)
        elif key[0] == "quality":
            if not 0.0 < key[1] <= 1.0:
                raise ValueError(
                    f"quality_target={key[1]!r}; expected a fraction in (0, 1] of the "
                    "reference model's predicted quality"
                )
            ref = reference or router.effective_reference_model
            p = Policy.for_quality_target(key[1], reference=ref)
        else:
            if key[1] <= 0:
                raise ValueError(f"budget_usd_per_1k={key[1]!r}; expected > 0")
            p = Policy.for_budget(key[1])
        policy = router.with_policy(p).policy  # calibrated once on the router's calibration prompts
        cache[key] = policy
    return policy


def call_kwargs(llm: Any, kwargs: dict[str, Any], policy_for: Callable[..., Any]) -> dict[str, Any]:
    """Split LlamaIndex kwargs into the router's: LiteLLM params + routing options (+ a Policy).

    ``llm`` is the ``ZeroRouterLLM`` (its fields are the defaults); ``policy_for(mode, quality_target,
    budget, reference_model)`` returns a calibrated policy or None.
    """
    kw = dict(kwargs)
    for k in DROP_KEYS:
        kw.pop(k, None)
    opts = {k: kw.pop(k) for k in POLICY_KEYS if k in kw}
    budget = opts.get("budget_usd_per_1k", opts.get("budget"))
    out: dict[str, Any] = {}
    for k, v in (
        ("temperature", llm.temperature),
        ("max_tokens", llm.max_tokens),
        ("timeout", llm.timeout),
    ):
        if v is not None:
            out[k] = v
    out.update(llm.additional_kwargs)
    route = {k: kw.pop(k) for k in ROUTE_KEYS if k in kw}
    allowed = kw.pop("allowed_models", None)
    out.update(kw)
    if route.get("policy") is None:
        route.pop("policy", None)
        per_call = any(opts.get(k) is not None for k in ("mode", "quality_target")) or budget is not None
        if per_call:
            policy = policy_for(
                opts.get("mode"),
                opts.get("quality_target"),
                budget,
                opts.get("reference_model") or llm.reference_model,
            )
        else:
            policy = policy_for(None, llm.quality_target, llm.budget_usd_per_1k, llm.reference_model)
        if policy is not None:
            route["policy"] = policy
    if llm.allowed_models is not None and allowed is not None:
        base = set(llm.allowed_models)
        allowed = [m for m in allowed if m in base]
    elif allowed is None and llm.allowed_models is not None:
        allowed = list(llm.allowed_models)
    if allowed is not None:
        route["allowed_models"] = list(allowed)
    if llm.session_id is not None:
        route.setdefault("session_id", llm.session_id)
    if not out.get("tools"):
        out.pop("tools", None)
        out.pop("tool_choice", None)
        out.pop("parallel_tool_calls", None)
    out.update(route)
    return out
