"""What to do about a core error: the hint ``ZeroRouterChat`` appends to a routing error's message."""

from __future__ import annotations

from zerorouter_integrations.errors import (
    AllModelsFailedError,
    InfeasibleError,
    NoAdmissibleModelError,
    SchemaError,
    UnknownModelError,
    ZeroRouterError,
)

__all__ = ["hint_for", "translated", "with_hint"]


def with_hint(exc: ZeroRouterError, hint: str) -> ZeroRouterError:
    """A copy of ``exc`` (same class, same attributes) whose message ends with what to do."""
    cls = type(exc)
    new = cls.__new__(cls)
    new.__dict__.update(exc.__dict__)
    Exception.__init__(new, f"{exc}\nWhat to do: {hint}")
    return new


def hint_for(exc: ZeroRouterError) -> str | None:
    """The adapter-level advice for ``exc`` (in terms of ``ZeroRouterChat``'s fields), or None."""
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


def translated(exc: ZeroRouterError) -> ZeroRouterError:
    """``exc`` with its hint appended (``exc`` itself when there is no hint)."""
    hint = hint_for(exc)
    return with_hint(exc, hint) if hint else exc
