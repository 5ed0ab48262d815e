"""Feedback math: how one observed call or error updates a model's :class:`ObservedStats`.

Pure functions, one definition for every store. The Redis store runs the same arithmetic in a Lua
script (:data:`zerorouter_integrations.stores.redis.RECORD_LUA`); keep the two in step, the test
suite checks that both backends give the same stats for the same events.

Rules
-----
* EWMA: ``new = alpha * x + (1 - alpha) * old``; the first observation sets ``new = x``.
* Counts (``n_calls``, ``n_errors``) are exact.
* ``error_rate`` is an EWMA of 1 per error and 0 per success, initialized by the first event.
* A success resets ``consecutive_errors`` and closes the circuit (``cooldown_until = 0``).
* Output speed: ``output_tokens / (latency_s - ttft_s)`` when ``ttft_s`` is known and smaller than
  ``latency_s``, else ``output_tokens / latency_s``; a call without output tokens (or with zero
  latency) does not update it.
* ``cooldown_after`` consecutive errors set ``cooldown_until = max(cooldown_until, now + cooldown_s)``;
  a provider's ``Retry-After`` sets ``cooldown_until = max(cooldown_until, now + retry_after_s)``.
  After the cooldown the model is half-open (``cooldown_until`` in the past, still at least
  ``cooldown_after`` consecutive errors): one failed probe opens it again, a success closes it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from zerorouter_integrations.stores.base import ObservedStats

__all__ = [
    "apply_call",
    "apply_error",
    "check_call_args",
    "check_error_args",
    "ewma",
    "in_cooldown",
    "tokens_per_s",
]


def ewma(prev: float | None, x: float, alpha: float) -> float:
    """Exponentially weighted moving average step; ``prev=None`` starts it at ``x``."""
    if prev is None:
        return float(x)
    return alpha * x + (1.0 - alpha) * prev


def tokens_per_s(latency_s: float, ttft_s: float | None, output_tokens: int) -> float | None:
    """Output speed of one call, or ``None`` when it cannot be measured (see the module rules)."""
    if output_tokens <= 0:
        return None
    if ttft_s is not None and latency_s > ttft_s:
        return output_tokens / (latency_s - ttft_s)
    if latency_s > 0:
        return output_tokens / latency_s
    return None


def apply_call(
    stats: ObservedStats,
    *,
    latency_s: float,
    ttft_s: float | None,
    input_tokens: int,
    output_tokens: int,
    cost_usd: float | None,
    alpha: float,
    now: float,
) -> ObservedStats:
    """Return ``stats`` updated by one successful call (``stats`` is not modified).

    Parameters
    ----------
    stats : ObservedStats
        Current stats (``ObservedStats(model)`` for a model never seen).
    latency_s : float
        Total wall time of the call, seconds.
    ttft_s : float or None
        Time to first token, seconds, when known.
    input_tokens : int
        Prompt tokens (accepted for symmetry; not part of the stats).
    output_tokens : int
        Completion tokens.
    cost_usd : float or None
        Cost of the call, when known.
    alpha : float
        EWMA weight of the new observation, in ``(0, 1]``.
    now : float
        Unix time of the observation (accepted for symmetry with :func:`apply_error`).

    Returns
    -------
    ObservedStats
        A new object with the updated fields.
    """
    del input_tokens, now  # not part of the observed stats
    first_event = stats.n_calls + stats.n_errors == 0
    changes: dict[str, Any] = {
        "n_calls": stats.n_calls + 1,
        "ewma_latency_s": ewma(stats.ewma_latency_s, latency_s, alpha),
        "ewma_output_tokens": ewma(stats.ewma_output_tokens, output_tokens, alpha),
        "error_rate": 0.0 if first_event else ewma(stats.error_rate, 0.0, alpha),
        "consecutive_errors": 0,
        "cooldown_until": 0.0,
    }
    if ttft_s is not None:
        changes["ewma_ttft_s"] = ewma(stats.ewma_ttft_s, ttft_s, alpha)
    tps = tokens_per_s(latency_s, ttft_s, output_tokens)
    if tps is not None:
        changes["ewma_tokens_per_s"] = ewma(stats.ewma_tokens_per_s, tps, alpha)
    if cost_usd is not None:
        changes["ewma_cost_usd"] = ewma(stats.ewma_cost_usd, cost_usd, alpha)
        if output_tokens > 0:
            changes["ewma_cost_per_output_token"] = ewma(
                stats.ewma_cost_per_output_token, cost_usd / output_tokens, alpha
            )
    return dataclasses.replace(stats, **changes)


def apply_error(
    stats: ObservedStats,
    *,
    error_type: str,
    cooldown_after: int,
    cooldown_s: float,
    alpha: float,
    now: float,
    retry_after_s: float | None = None,
) -> ObservedStats:
    """Return ``stats`` updated by one failed call (``stats`` is not modified).

    Parameters
    ----------
    stats : ObservedStats
        Current stats (``ObservedStats(model)`` for a model never seen).
    error_type : str
        Short type of the error; becomes ``last_error``.
    cooldown_after : int
        Consecutive errors that start a cooldown; ``0`` disables cooldowns.
    cooldown_s : float
        Length of a cooldown, seconds.
    alpha : float
        EWMA weight of the new observation, in ``(0, 1]``.
    now : float
        Unix time of the error.
    retry_after_s : float or None
        The provider's ``Retry-After``: the model is skipped at least that long.

    Returns
    -------
    ObservedStats
        A new object with the updated fields.
    """
    first_event = stats.n_calls + stats.n_errors == 0
    consecutive = stats.consecutive_errors + 1
    cooldown_until = stats.cooldown_until
    if cooldown_after > 0 and consecutive >= cooldown_after:
        cooldown_until = max(cooldown_until, now + cooldown_s)
    if retry_after_s:
        cooldown_until = max(cooldown_until, now + retry_after_s)
    return dataclasses.replace(
        stats,
        n_errors=stats.n_errors + 1,
        error_rate=1.0 if first_event else ewma(stats.error_rate, 1.0, alpha),
        consecutive_errors=consecutive,
        cooldown_until=cooldown_until,
        last_error=error_type,
    )


def in_cooldown(stats: ObservedStats | None, now: float) -> bool:
    """Whether the router should skip the model at unix time ``now``."""
    return stats is not None and stats.cooldown_until > now


# ------------------------------------------------------------------ argument checks
def _number(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        # accept integral floats (some providers report token counts as floats)
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def _alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
        raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}")
    return float(alpha)


def check_call_args(
    *,
    latency_s: Any,
    ttft_s: Any,
    input_tokens: Any,
    output_tokens: Any,
    cost_usd: Any,
    alpha: Any,
) -> dict[str, Any]:
    """Validate and normalize the arguments of a recorded call (raises ``ValueError``)."""
    return {
        "latency_s": _number("latency_s", latency_s),
        "ttft_s": _number("ttft_s", ttft_s, allow_none=True),
        "input_tokens": _count("input_tokens", input_tokens),
        "output_tokens": _count("output_tokens", output_tokens),
        "cost_usd": _number("cost_usd", cost_usd, allow_none=True),
        "alpha": _alpha(alpha),
    }


def check_error_args(
    *, error_type: Any, cooldown_after: Any, cooldown_s: Any, alpha: Any, retry_after_s: Any = None
) -> dict[str, Any]:
    """Validate and normalize the arguments of a recorded error (raises ``ValueError``)."""
    if not isinstance(error_type, str) or not error_type:
        raise ValueError(f"error_type must be a non-empty str, got {error_type!r}")
    out = {
        "error_type": error_type,
        "cooldown_after": _count("cooldown_after", cooldown_after),
        "cooldown_s": _number("cooldown_s", cooldown_s),
        "alpha": _alpha(alpha),
    }
    if retry_after_s is not None:
        out["retry_after_s"] = _number("retry_after_s", retry_after_s)
    return out
