"""The data of a dispatch: how to call a model (:class:`ModelEndpoint`), how to retry
(:class:`RetryPolicy`), and what a call gives back (:class:`Usage`, :class:`Attempt`,
:class:`DispatchResult`, the stream events :class:`StreamDelta` / :class:`StreamEnd`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from zerorouter_integrations.errors import SchemaError

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = [
    "Attempt",
    "DispatchResult",
    "ModelEndpoint",
    "RetryPolicy",
    "StreamDelta",
    "StreamEnd",
    "StreamEvent",
    "Usage",
]


def _secret_str() -> type[SecretStr]:
    """pydantic's ``SecretStr``, imported when a key is given (pydantic costs ~50 ms to import, and
    deciding never needs it)."""
    from pydantic import SecretStr

    return SecretStr


@dataclass(frozen=True)
class ModelEndpoint:
    """How to call one pool model through LiteLLM.

    Parameters
    ----------
    name : str
        Pool name used by the router, e.g. ``"gpt-4o-mini"``.
    litellm_model : str
        LiteLLM model string, e.g. ``"openai/gpt-4o-mini"``.
    api_base : str or None
        Passed to LiteLLM when set.
    api_key : SecretStr, str or None
        Passed to LiteLLM when set. Kept as a :class:`pydantic.SecretStr` (a plain string is wrapped):
        it never shows in ``repr``, :meth:`to_dict`, logs or decisions; pickling keeps it so that a copy
        can still call the model.
    api_key_env : str or None
        Name of an environment variable read at call time (used when ``api_key`` is None).
    input_cost_per_token, output_cost_per_token : float or None
        Custom prices in USD; when either is set they override LiteLLM's price map.
    extra : mapping
        Further keyword arguments for ``litellm.completion`` (per-call params win).
    """

    name: str
    litellm_model: str
    api_base: str | None = None
    api_key: SecretStr | str | None = None  # a str is wrapped in a SecretStr by __post_init__
    api_key_env: str | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ModelEndpoint.name={self.name!r}; expected a non-empty string")
        if not isinstance(self.litellm_model, str) or not self.litellm_model:
            raise ValueError(
                f"ModelEndpoint.litellm_model={self.litellm_model!r} for {self.name!r}; expected a "
                "LiteLLM model string such as 'openai/gpt-4o-mini'"
            )
        if self.api_key is None:
            pass
        elif isinstance(self.api_key, str):
            object.__setattr__(self, "api_key", _secret_str()(self.api_key))
        elif not isinstance(self.api_key, _secret_str()):
            raise ValueError(
                f"ModelEndpoint.api_key for {self.name!r} is a {type(self.api_key).__name__}; expected a "
                "str, a pydantic SecretStr or None"
            )
        for attr in ("input_cost_per_token", "output_cost_per_token"):
            v = getattr(self, attr)
            if v is not None and not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(
                    f"ModelEndpoint.{attr}={v!r} for {self.name!r}; expected a price >= 0 or None"
                )

    def pick(self) -> ModelEndpoint:
        """The deployment one call goes to: this endpoint (a balanced endpoint draws one of several)."""
        return self

    @property
    def has_custom_prices(self) -> bool:
        """Whether the endpoint's own prices are used instead of LiteLLM's map."""
        return self.input_cost_per_token is not None or self.output_cost_per_token is not None

    def with_default_key(self, key: SecretStr | str | None) -> ModelEndpoint:
        """This endpoint with ``api_key=key`` when it has neither a key nor a key variable (else itself)."""
        if key is None or self.api_key is not None or self.api_key_env is not None:
            return self
        return dataclasses.replace(self, api_key=key)

    def secret_api_key(self) -> str | None:
        """The API key in clear, for the one place that sends it (LiteLLM's ``api_key``)."""
        key = self.api_key
        return key if key is None or isinstance(key, str) else key.get_secret_value()

    def to_dict(self) -> dict:
        """A JSON-ready dict (``from_dict`` inverts it) without the API key: it becomes ``None``.

        Persist credentials with ``api_key_env`` (the name of an environment variable) instead.
        """
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["api_key"] = None
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelEndpoint:
        """Build from :meth:`to_dict` output; unknown keys raise :class:`SchemaError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SchemaError(f"unknown ModelEndpoint key(s) {unknown}; expected some of {sorted(known)}")
        missing = [k for k in ("name", "litellm_model") if k not in d]
        if missing:
            raise SchemaError(f"ModelEndpoint dict lacks {missing}; got keys {sorted(d)}")
        kw = dict(d)
        kw["extra"] = dict(kw.get("extra") or {})
        return cls(**kw)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries per model for retryable errors, and the per-call timeout.

    Parameters
    ----------
    max_retries : int, default=1
        Extra tries on the same model after a retryable error (timeout, 429, 5xx, connection).
    backoff_s : float, default=0.1
        Sleep before retry ``i`` (0-based) is ``backoff_s * 2**i``.
    timeout_s : float or None, default=60.0
        Passed as ``timeout`` unless the call gives its own.
    """

    max_retries: int = 1
    backoff_s: float = 0.1
    timeout_s: float | None = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"RetryPolicy.max_retries={self.max_retries!r}; expected an integer >= 0")
        if self.backoff_s < 0:
            raise ValueError(f"RetryPolicy.backoff_s={self.backoff_s!r}; expected >= 0")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"RetryPolicy.timeout_s={self.timeout_s!r}; expected > 0 or None")


@dataclass
class Usage:
    """Token counts of one call (``cache_read_tokens`` ⊂ input, ``reasoning_tokens`` ⊂ output)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_litellm(cls, u: Any) -> Usage:
        """From a LiteLLM / OpenAI ``usage`` object or dict (missing fields are 0)."""
        if u is None:
            return cls()
        get = u.get if isinstance(u, Mapping) else lambda k, _d=None: getattr(u, k, _d)
        inp = int(get("prompt_tokens", 0) or 0)
        out = int(get("completion_tokens", 0) or 0)
        total = int(get("total_tokens", 0) or 0) or inp + out
        cached = reasoning = 0
        ptd = get("prompt_tokens_details", None)
        if ptd is not None:
            cached = int(
                (ptd.get("cached_tokens") if isinstance(ptd, Mapping) else getattr(ptd, "cached_tokens", 0))
                or 0
            )
        ctd = get("completion_tokens_details", None)
        if ctd is not None:
            reasoning = int(
                (
                    ctd.get("reasoning_tokens")
                    if isinstance(ctd, Mapping)
                    else getattr(ctd, "reasoning_tokens", 0)
                )
                or 0
            )
        return cls(inp, out, total, cached, reasoning)


@dataclass
class Attempt:
    """One failed try: which model, what kind of error, its message and HTTP status, how long it took.

    ``error_type`` is one of ``"timeout"``, ``"rate_limit"``, ``"server_error"``,
    ``"connection_error"``, ``"bad_request"``, ``"context_window_exceeded"``, ``"content_policy"``,
    ``"authentication"``, ``"permission_denied"``, ``"not_found"``, ``"unprocessable"``,
    ``"error"`` (anything else), plus ``"missing_credentials"`` and ``"unknown_provider"``.

    ``kind`` is the error's class (:mod:`zerorouter_integrations.classify`): ``"transient"``
    (retried, counted by the circuit breaker), ``"configuration"`` or ``"rejected"``; ``retry`` is
    0 for the first try of a call on this model and ``i`` for its ``i``-th retry.
    """

    model: str
    error_type: str
    message: str
    status_code: int | None
    latency_s: float
    retryable: bool = False
    kind: str = "rejected"
    retry: int = 0
    retry_after_s: float | None = None


@dataclass
class DispatchResult:
    """A successful call: who served it, what it said, what it cost, and the failed tries before it."""

    model: str
    response: Any
    content: str | None
    tool_calls: list[dict]
    finish_reason: str | None
    usage: Usage
    cost_usd: float
    latency_s: float
    ttft_s: float | None
    attempts: list[Attempt]
    cost_known: bool = True


@dataclass
class StreamDelta:
    """A piece of a stream: new text and/or tool-call deltas (OpenAI format, with ``index``)."""

    model: str
    content_delta: str
    tool_call_deltas: list[dict]
    raw: Any


@dataclass
class StreamEnd:
    """Last event of a stream: the assembled result."""

    result: DispatchResult


StreamEvent = StreamDelta | StreamEnd
