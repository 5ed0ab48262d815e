"""Latency estimates per (prompt, model), and the SLA mask built from them.

The estimate of one call is

    expected = ttft + output_tokens / tokens_per_s

where ``ttft`` (time to first token, seconds) and ``tokens_per_s`` (decode speed) are the observed
EWMAs of the model's profile (``ObservedStats.ewma_ttft_s`` / ``ewma_tokens_per_s``) when they
exist, else the configured prior (:class:`LatencyPrior`). ``output_tokens`` is the predicted output
length of the prompt; when none is given, the observed EWMA of output tokens, else the prior's.

The p95 is ``expected × p95_factor`` (default 2.0, a heavy-tailed service's typical ratio) unless an
observed p95 is supplied, which then wins.

All functions broadcast over numpy arrays, so one call fills an ``n_prompts × n_models`` matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "DEFAULT_P95_FACTOR",
    "LatencyPrior",
    "expected_latency_s",
    "latency_matrix",
    "latency_params",
    "p95_latency_s",
    "sla_mask",
]

DEFAULT_P95_FACTOR = 2.0


@dataclass(frozen=True)
class LatencyPrior:
    """Configured latency of a model before (or without) observations.

    Attributes
    ----------
    ttft_s : float, default=0.5
        Time to first token, seconds.
    tokens_per_s : float, default=60.0
        Output tokens per second after the first.
    output_tokens : float, default=256.0
        Typical output length when no prediction is given.
    p95_factor : float, default=2.0
        p95 / expected ratio when no observed p95 exists.
    """

    ttft_s: float = 0.5
    tokens_per_s: float = 60.0
    output_tokens: float = 256.0
    p95_factor: float = DEFAULT_P95_FACTOR


def expected_latency_s(ttft_s: Any, tokens_per_s: Any, output_tokens: Any) -> Any:
    """``ttft_s + output_tokens / tokens_per_s`` (seconds); broadcasts over arrays.

    Parameters
    ----------
    ttft_s : float or array
        Time to first token, seconds.
    tokens_per_s : float or array
        Decode speed, output tokens per second (> 0).
    output_tokens : float or array
        Expected output tokens.
    """
    tps = np.asarray(tokens_per_s, dtype=float)
    if np.any(tps <= 0):
        raise ValueError(f"tokens_per_s must be > 0; got {tokens_per_s}")
    out = np.asarray(ttft_s, dtype=float) + np.asarray(output_tokens, dtype=float) / tps
    return float(out) if out.ndim == 0 else out


def p95_latency_s(
    ttft_s: Any,
    tokens_per_s: Any,
    output_tokens: Any,
    *,
    factor: float = DEFAULT_P95_FACTOR,
    observed_p95_s: Any = None,
) -> Any:
    """p95 latency: the observed p95 where given (not NaN), else ``expected × factor``."""
    exp = np.asarray(expected_latency_s(ttft_s, tokens_per_s, output_tokens), dtype=float) * factor
    if observed_p95_s is not None:
        obs = np.asarray(observed_p95_s, dtype=float)
        exp = np.where(np.isnan(obs), exp, obs)
    return float(exp) if np.ndim(exp) == 0 else exp


def latency_params(stats: Any, prior: LatencyPrior = LatencyPrior()) -> tuple[float, float, float]:
    """``(ttft_s, tokens_per_s, output_tokens)`` for one model: observed EWMAs, else the prior.

    ``stats`` is an ``ObservedStats`` (or anything with ``ewma_ttft_s``, ``ewma_tokens_per_s``,
    ``ewma_output_tokens`` attributes), or None.
    """

    def pick(attr: str, default: float) -> float:
        v = getattr(stats, attr, None) if stats is not None else None
        return float(v) if v is not None and np.isfinite(v) and v > 0 else float(default)

    ttft = getattr(stats, "ewma_ttft_s", None) if stats is not None else None
    ttft = float(ttft) if ttft is not None and np.isfinite(ttft) and ttft >= 0 else float(prior.ttft_s)
    return (
        ttft,
        pick("ewma_tokens_per_s", prior.tokens_per_s),
        pick("ewma_output_tokens", prior.output_tokens),
    )


def latency_matrix(
    models: Sequence[str],
    stats: Mapping[str, Any] | None = None,
    priors: Mapping[str, LatencyPrior] | LatencyPrior = LatencyPrior(),
    output_tokens: Any = None,
    *,
    kind: Literal["expected", "p95"] = "expected",
    observed_p95_s: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Latency estimates, shape ``(n_prompts, n_models)`` (or ``(1, n_models)`` without prompts).

    Parameters
    ----------
    models : sequence of str
        Column order.
    stats : mapping of model → ObservedStats, optional
        Observed profile per model (missing → prior only).
    priors : LatencyPrior or mapping of model → LatencyPrior
        Configured prior, one for all or per model (missing → ``LatencyPrior()``).
    output_tokens : array-like, optional
        Predicted output tokens, shape ``(n_prompts, n_models)`` or ``(n_prompts, 1)``; None uses each
        model's observed/prior typical length.
    kind : {"expected", "p95"}
        Which estimate.
    observed_p95_s : mapping of model → float, optional
        Observed p95 per model; wins over ``expected × p95_factor`` when ``kind="p95"``.
    """
    stats = stats or {}
    cols = []
    for name in models:
        prior = priors.get(name, LatencyPrior()) if isinstance(priors, Mapping) else priors
        t_first, t_rate, t_typical = latency_params(stats.get(name), prior)
        cols.append((t_first, t_rate, t_typical, prior.p95_factor))
    ttft = np.array([c[0] for c in cols])[None, :]
    tps = np.array([c[1] for c in cols])[None, :]
    out_tok = (
        np.array([c[2] for c in cols])[None, :] if output_tokens is None else np.asarray(output_tokens, float)
    )
    if out_tok.ndim == 1:
        out_tok = out_tok[:, None]
    L = np.asarray(expected_latency_s(ttft, tps, out_tok), dtype=float)
    if kind == "p95":
        L = L * np.array([c[3] for c in cols])[None, :]
        if observed_p95_s:
            obs = np.array([observed_p95_s.get(m, np.nan) for m in models], dtype=float)[None, :]
            L = np.where(np.isnan(obs), L, np.broadcast_to(obs, L.shape))
    elif kind != "expected":
        raise ValueError(f"kind must be 'expected' or 'p95'; got {kind!r}")
    return np.atleast_2d(L)


def sla_mask(L: Any, max_latency_s: float | None, *, unknown: Literal["keep", "drop"] = "keep") -> np.ndarray:
    """Boolean mask of the options whose latency estimate meets an SLA (``L ≤ max_latency_s``).

    ``max_latency_s=None`` admits everything. NaN estimates are kept (``unknown="keep"``, unknown is
    not a reason to remove) or dropped.
    """
    arr = np.asarray(L, dtype=float)
    if max_latency_s is None:
        return np.ones(arr.shape, dtype=bool)
    ok = arr <= float(max_latency_s)
    if unknown == "keep":
        ok |= np.isnan(arr)
    elif unknown != "drop":
        raise ValueError(f"unknown must be 'keep' or 'drop'; got {unknown!r}")
    return ok
