"""What the profile stores share: :class:`ObservedStats` and the :class:`ProfileStore` interface.

A profile store keeps four kinds of state that must outlive one process and be shared by several:

* per-model **observed statistics** (:class:`ObservedStats`), updated by feedback after every call
  and every error with one atomic read-modify-write (the math is in
  :mod:`zerorouter_integrations.feedback`, shared by every backend);
* **requests**: the routing record of a request, kept for a while so that a late quality score can be
  attached to it (expire after ``ttl_s``);
* **quality observations**: ``(features, score)`` pairs per model for online profile updates;
* **sessions**: conversation stickiness (expire after ``ttl_s``).

Backends: :class:`~zerorouter_integrations.stores.memory.MemoryStore` (one process),
:class:`~zerorouter_integrations.stores.sqlite.SQLiteStore` (one file, many threads and processes),
:class:`~zerorouter_integrations.stores.redis.RedisStore` (many hosts).

The public methods of :class:`ProfileStore` check their arguments once, here, and call the
backend's protected hooks; every method has an async twin ``a<name>`` that runs the sync one in a
worker thread unless the backend overrides it.

Store faults never cost an answer: when the backend is unreachable (one of its
:meth:`ProfileStore.fault_types`), a write goes to the store's :class:`~.outbox.Outbox` (bounded,
retried in the background, flushed on :meth:`ProfileStore.close`) and is applied to a local view, so
reads keep answering with the last known state (plus this process's queued events) until the backend
is back. :meth:`ProfileStore.health` reports the outbox.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zerorouter_integrations.errors import SchemaError, StoreUnavailableError
from zerorouter_integrations.feedback import check_call_args, check_error_args
from zerorouter_integrations.stores.asynctwins import AsyncTwinsMixin
from zerorouter_integrations.stores.resilient import ResilientMixin

__all__ = ["DEFAULT_REQUEST_TTL_S", "DEFAULT_SESSION_TTL_S", "ObservedStats", "ProfileStore"]

DEFAULT_REQUEST_TTL_S: float = 7 * 86400.0
"""Requests are kept a week by default, long enough for delayed quality labels."""

DEFAULT_SESSION_TTL_S: float = 86400.0
"""Sessions (conversation stickiness) are kept a day by default."""


@dataclass
class ObservedStats:
    """What feedback has observed about one model.

    Parameters
    ----------
    model : str
        Pool name of the model.
    n_calls : int, default=0
        Successful calls recorded (exact count).
    n_errors : int, default=0
        Failed calls recorded (exact count).
    ewma_latency_s : float or None, default=None
        EWMA of the total wall time of a successful call, in seconds.
    ewma_ttft_s : float or None, default=None
        EWMA of the time to first token, over the calls that reported one.
    ewma_tokens_per_s : float or None, default=None
        EWMA of output tokens per second: ``output_tokens / (latency_s - ttft_s)`` when a
        time to first token is known and smaller than the latency, else
        ``output_tokens / latency_s``; calls with no output tokens do not update it.
    ewma_cost_usd : float or None, default=None
        EWMA of the cost of one call, in USD, over the calls whose cost was known.
    ewma_cost_per_output_token : float or None, default=None
        EWMA of ``cost_usd / output_tokens`` over the calls with a known cost and output tokens.
    ewma_output_tokens : float or None, default=None
        EWMA of the output tokens of one call.
    error_rate : float, default=0.0
        EWMA of 1 for each error and 0 for each success.
    consecutive_errors : int, default=0
        Errors since the last success.
    cooldown_until : float, default=0.0
        Unix time until which the router should skip the model.
    last_error : str or None, default=None
        Type of the most recent error (e.g. ``"RateLimitError"``).
    """

    model: str
    n_calls: int = 0
    n_errors: int = 0
    ewma_latency_s: float | None = None
    ewma_ttft_s: float | None = None
    ewma_tokens_per_s: float | None = None
    ewma_cost_usd: float | None = None
    ewma_cost_per_output_token: float | None = None
    ewma_output_tokens: float | None = None
    error_rate: float = 0.0
    consecutive_errors: int = 0
    cooldown_until: float = 0.0
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready ``dict``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ObservedStats:
        """Build from :meth:`to_dict` output; unknown keys are ignored, ``model`` is required.

        Raises
        ------
        SchemaError
            If ``d`` is not a mapping or has no ``model``.
        """
        if not isinstance(d, Mapping) or "model" not in d:
            raise SchemaError(f"ObservedStats.from_dict expected a mapping with a 'model' key, got {d!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _check_model(model: str) -> str:
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty str, got {model!r}")
    return model


def _check_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    return value


def _check_ttl(ttl_s: float | None) -> float | None:
    if ttl_s is None:
        return None
    if not isinstance(ttl_s, (int, float)) or not ttl_s > 0 or ttl_s == float("inf"):
        raise ValueError(f"ttl_s must be a finite number of seconds > 0 (or None), got {ttl_s!r}")
    return float(ttl_s)


def _check_payload(name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, Mapping):
        raise ValueError(f"{name} must be a dict (JSON object), got {type(payload).__name__}")
    return dict(payload)


def _check_quality(features: Sequence[float], score: float) -> tuple[list[float], float]:
    try:
        feats = [float(x) for x in features]
    except (TypeError, ValueError):
        raise ValueError(f"features must be a sequence of numbers, got {features!r}") from None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
        raise ValueError(f"score must be a number, got {score!r}")
    return feats, float(score)


class ProfileStore(ResilientMixin, AsyncTwinsMixin, ABC):
    """Shared, persistent state of a router: observed stats, requests, quality, sessions.

    Subclasses implement the protected hooks (``_record_call``, ``_record_error``, ``_get_stats``,
    ...); the public methods validate arguments and fill the clock. Every public method has an
    async twin named ``a<method>``.

    Notes
    -----
    ``record_call`` and ``record_error`` accept a keyword ``now`` (unix time) so that a replay or
    a test can fix the clock; by default it is :func:`time.time`.
    """

    # ---------------------------------------------------------------- feedback
    def record_call(
        self,
        model: str,
        *,
        latency_s: float,
        ttft_s: float | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float | None = None,
        alpha: float = 0.1,
        now: float | None = None,
    ) -> ObservedStats:
        """Record one successful call of ``model`` atomically; return the updated stats.

        Parameters
        ----------
        model : str
            Pool name of the model that served the call.
        latency_s : float
            Total wall time of the call, seconds (>= 0).
        ttft_s : float or None, default=None
            Time to first token, seconds, when known.
        input_tokens, output_tokens : int, default=0
            Token counts of the call (>= 0).
        cost_usd : float or None, default=None
            Cost of the call in USD, when known (>= 0).
        alpha : float, default=0.1
            EWMA weight of the new observation, in ``(0, 1]``.
        now : float or None, default=None
            Unix time of the observation; :func:`time.time` when ``None``.

        Returns
        -------
        ObservedStats
            The stats after the update.
        """
        args = check_call_args(
            latency_s=latency_s,
            ttft_s=ttft_s,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd,
            alpha=alpha,
        )
        return self._write_or_queue("record_call", (_check_model(model),), {"now": _now(now), **args})

    def record_error(
        self,
        model: str,
        *,
        error_type: str,
        cooldown_after: int = 3,
        cooldown_s: float = 30.0,
        alpha: float = 0.1,
        now: float | None = None,
        retry_after_s: float | None = None,
    ) -> ObservedStats:
        """Record one failed call of ``model`` atomically; return the updated stats.

        When the consecutive errors reach ``cooldown_after``, ``cooldown_until`` becomes
        ``now + cooldown_s`` (never earlier than it already was).

        Parameters
        ----------
        model : str
            Pool name of the model that failed.
        error_type : str
            Short type of the error, e.g. ``"Timeout"`` or ``"RateLimitError"``.
        cooldown_after : int, default=3
            Consecutive errors that put the model in cooldown; ``0`` never does.
        cooldown_s : float, default=30.0
            Length of the cooldown, seconds (>= 0).
        alpha : float, default=0.1
            EWMA weight of the new observation, in ``(0, 1]``.
        now : float or None, default=None
            Unix time of the observation; :func:`time.time` when ``None``.
        retry_after_s : float or None, default=None
            The provider's ``Retry-After``: ``cooldown_until`` becomes at least ``now + retry_after_s``.

        Returns
        -------
        ObservedStats
            The stats after the update.
        """
        args = check_error_args(
            error_type=error_type,
            cooldown_after=cooldown_after,
            cooldown_s=cooldown_s,
            alpha=alpha,
            retry_after_s=retry_after_s,
        )
        return self._write_or_queue("record_error", (_check_model(model),), {"now": _now(now), **args})

    def get_stats(self, model: str) -> ObservedStats | None:
        """Return the stats of ``model``, or ``None`` if nothing was recorded for it.

        While the backend is unavailable: the last known stats (with this process's queued events).
        """
        model = _check_model(model)
        return self.all_stats().get(model) if self._view().outbox.in_outage else self._read_stats(model)

    def all_stats(self) -> dict[str, ObservedStats]:
        """Return the stats of every model recorded so far, by model name.

        While the backend is unavailable: the last known stats (with this process's queued events).
        """
        view = self._view()
        ob = view.outbox
        if not ob.recently_failed():
            try:
                out = self._all_stats()
            except ob.faults as exc:
                ob.fault(exc)
            else:
                if not ob.pending:
                    view.known = dict(out)
                    return out
                queued = {a[0] for op, a, _ in ob.pending_items() if op in ("record_call", "record_error")}
                return {**out, **{m: view.known[m] for m in queued if m in view.known}}
        return dict(view.known)

    # ---------------------------------------------------------------- requests
    def put_request(
        self, request_id: str, payload: Mapping[str, Any], ttl_s: float | None = DEFAULT_REQUEST_TTL_S
    ) -> None:
        """Store the JSON-serializable ``payload`` of a request for ``ttl_s`` seconds.

        ``ttl_s=None`` keeps it until :meth:`reset`. Storing an existing id replaces it.
        """
        self._write_or_queue(
            "put_request",
            (_check_id("request_id", request_id), _check_payload("payload", payload), _check_ttl(ttl_s)),
            {},
        )

    def get_request(self, request_id: str) -> dict[str, Any] | None:
        """Return the payload stored for ``request_id``, or ``None`` if absent or expired.

        Raises :class:`StoreUnavailableError` when the backend is unavailable and this process does
        not hold the request itself.
        """
        return self._read_keyed("request", _check_id("request_id", request_id))

    # ---------------------------------------------------------------- quality
    def append_quality(
        self,
        model: str,
        features: Sequence[float],
        score: float,
        request_id: str | None = None,
    ) -> int:
        """Append one quality observation of ``model``.

        Parameters
        ----------
        model : str
            Pool name of the model that answered.
        features : sequence of float
            Prompt features (e.g. latent coordinates) the score was observed at.
        score : float
            Observed quality, usually in ``[0, 1]``.
        request_id : str or None, default=None
            Request the observation belongs to, if any.

        Returns
        -------
        int
            Number of observations stored for ``model`` after this one.
        """
        feats, s = _check_quality(features, score)
        if request_id is not None:
            _check_id("request_id", request_id)
        out = self._write_or_queue(
            "append_quality", (_check_model(model), feats, s, request_id, time.time()), {}
        )
        return 0 if out is None else int(out)

    def quality_observations(self, model: str) -> list[tuple[list[float], float]]:
        """Return the ``(features, score)`` observations of ``model``, oldest first.

        Raises :class:`StoreUnavailableError` while the backend is unavailable.
        """
        model = _check_model(model)
        ob = self._view().outbox
        try:
            return self._quality_observations(model)
        except ob.faults as exc:
            ob.fault(exc)
            raise StoreUnavailableError(
                f"profile store {self!r} is unavailable ({ob.last_error}); quality observations cannot be read"
            ) from exc

    # ---------------------------------------------------------------- sessions
    def get_session(self, session_id: str) -> dict[str, Any] | None:
        """Return the payload of ``session_id``, or ``None`` if absent or expired (or unknown while
        the backend is unavailable)."""
        return self._read_keyed("session", _check_id("session_id", session_id))

    def set_session(
        self, session_id: str, payload: Mapping[str, Any], ttl_s: float | None = DEFAULT_SESSION_TTL_S
    ) -> None:
        """Store the JSON-serializable ``payload`` of a session for ``ttl_s`` seconds."""
        self._write_or_queue(
            "set_session",
            (_check_id("session_id", session_id), _check_payload("payload", payload), _check_ttl(ttl_s)),
            {},
        )

    def _new_stats(self, model: str) -> ObservedStats:
        return ObservedStats(model)

    # ---------------------------------------------------------------- lifecycle
    @abstractmethod
    def reset(self) -> None:
        """Delete everything this store holds (stats, requests, quality, sessions)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> ProfileStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- backend hooks
    @abstractmethod
    def _record_call(
        self,
        model: str,
        *,
        latency_s: float,
        ttft_s: float | None,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float | None,
        alpha: float,
        now: float,
    ) -> ObservedStats:
        """Atomically apply :func:`~zerorouter_integrations.feedback.apply_call`."""

    @abstractmethod
    def _record_error(
        self,
        model: str,
        *,
        error_type: str,
        cooldown_after: int,
        cooldown_s: float,
        alpha: float,
        now: float,
        retry_after_s: float | None = None,
    ) -> ObservedStats:
        """Atomically apply :func:`~zerorouter_integrations.feedback.apply_error`."""

    @abstractmethod
    def _get_stats(self, model: str) -> ObservedStats | None: ...

    @abstractmethod
    def _all_stats(self) -> dict[str, ObservedStats]: ...

    @abstractmethod
    def _put_request(self, request_id: str, payload: dict[str, Any], ttl_s: float | None) -> None: ...

    @abstractmethod
    def _get_request(self, request_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def _append_quality(
        self, model: str, features: list[float], score: float, request_id: str | None, ts: float
    ) -> int: ...

    @abstractmethod
    def _quality_observations(self, model: str) -> list[tuple[list[float], float]]: ...

    @abstractmethod
    def _get_session(self, session_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def _set_session(self, session_id: str, payload: dict[str, Any], ttl_s: float | None) -> None: ...


def _now(now: float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, bool) or not isinstance(now, (int, float)) or now != now:
        raise ValueError(f"now must be a unix time in seconds (float) or None, got {now!r}")
    return float(now)
