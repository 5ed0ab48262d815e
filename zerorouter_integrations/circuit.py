"""Model health as a circuit breaker, shared through the profile store.

Per model (state in :class:`~zerorouter_integrations.stores.base.ObservedStats`, so every replica
on one store sees it):

* **closed**: routable. A *call* that fails with a transient error (429, 5xx, timeout, connection)
  counts once, however many retries it took; ``failures_to_open`` failed calls in a row open it.
* **open**: skipped until ``cooldown_until`` (``cooldown_s`` after the failure that opened it, or
  longer when the provider sent ``Retry-After``).
* **half-open**: the cooldown is over but no success has been seen since; the model is admitted to
  one probe call at a time in this process (other requests skip it while the probe is in flight).
  A failed probe opens the circuit again, any success closes it.

Configuration errors (missing credentials, unknown provider, 404 model) mark a model
*misconfigured* in this process for ``misconfigured_s``: it is named in decisions' ``removed`` with
what to set. Rejections of one request (context length, content filter, other 400s) and caller
errors never touch health.

A cooldown never empties the pool: when every admissible model is open, the one whose cooldown ends
first is tried, and the decision says so in ``notes``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zerorouter_integrations.errors import ConfigurationError, ProviderError, TransientError

__all__ = ["CircuitBreaker", "CircuitPolicy", "circuit_state"]


@dataclass(frozen=True)
class CircuitPolicy:
    """When a model's circuit opens and for how long.

    Parameters
    ----------
    failures_to_open : int, default=3
        Failed calls in a row (of a transient kind) that open the circuit; ``0`` never opens it.
    cooldown_s : float, default=30.0
        How long an open circuit skips the model before a probe.
    misconfigured_s : float, default=60.0
        How long a configuration error keeps a model out in this process (then it is tried again,
        so fixing an environment variable is picked up).
    """

    failures_to_open: int = 3
    cooldown_s: float = 30.0
    misconfigured_s: float = 60.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.failures_to_open, bool)
            or not isinstance(self.failures_to_open, int)
            or self.failures_to_open < 0
        ):
            raise ValueError(f"failures_to_open={self.failures_to_open!r}; expected an integer >= 0")
        for name in ("cooldown_s", "misconfigured_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValueError(f"{name}={v!r}; expected a number of seconds >= 0")


def circuit_state(stats: Any, now: float, failures_to_open: int) -> str:
    """``"closed"``, ``"open"`` or ``"half_open"`` for a model's :class:`ObservedStats` (``None``: closed)."""
    if stats is None or (failures_to_open <= 0 and stats.cooldown_until <= now):
        return "closed"
    if stats.cooldown_until > now:
        return "open"
    if stats.cooldown_until > 0 and stats.consecutive_errors >= failures_to_open:
        return "half_open"
    return "closed"


class CircuitBreaker:
    """The router's side of the circuits: records outcomes in the store and filters candidates.

    Parameters
    ----------
    policy : CircuitPolicy
    alpha : float
        EWMA weight passed to the store with each outcome.

    The store is passed to each call (the router's store may be replaced).
    """

    def __init__(self, policy: CircuitPolicy | None = None, *, alpha: float = 0.2):
        self.policy = policy or CircuitPolicy()
        self.alpha = alpha
        self._lock = threading.Lock()
        self._probes: dict[str, float] = {}  # model -> when this process's probe claim lapses
        self._misconfigured: dict[str, tuple[float, str]] = {}  # model -> (until, what to set)

    # ------------------------------------------------------------------ copies
    def __getstate__(self) -> dict[str, Any]:
        return {"policy": self.policy, "alpha": self.alpha}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["policy"], alpha=state["alpha"])  # type: ignore[misc]

    # ------------------------------------------------------------------ outcomes
    def failed(
        self, store: Any, model: str, error: ProviderError, *, first_try: bool, hint: str | None = None
    ) -> None:
        """Record one failed attempt. Only the first try of a call counts (retries count once)."""
        with self._lock:
            self._probes.pop(model, None)
        if isinstance(error, ConfigurationError):
            with self._lock:
                self._misconfigured[model] = (
                    time.time() + self.policy.misconfigured_s,
                    f"misconfigured ({error.error_type}): {hint or error}",
                )
            return
        if not isinstance(error, TransientError) or not first_try:
            return
        store.record_error(
            model,
            error_type=error.error_type,
            cooldown_after=self.policy.failures_to_open,
            cooldown_s=self.policy.cooldown_s,
            alpha=self.alpha,
            retry_after_s=error.retry_after_s or None,
        )

    def failed_attempt(self, store: Any, model: str, attempt: Any, hint: Any = None) -> None:
        """:meth:`failed` for a dispatch ``Attempt``: a call's first failed try of a transient kind counts
        (retries count once), configuration errors mark the model (``hint(model, error)`` says what to
        set), rejections of one request are ignored."""
        from zerorouter_integrations.classify import kind_of

        err = kind_of(attempt.error_type)(
            attempt.message,
            model=model,
            status_code=attempt.status_code,
            error_type=attempt.error_type,
            retry_after_s=getattr(attempt, "retry_after_s", None),
        )
        self.failed(
            store,
            model,
            err,
            first_try=getattr(attempt, "retry", 0) == 0,
            hint=hint(model, err) if hint is not None else None,
        )

    def succeeded(self, model: str) -> None:
        """Forget this process's probe claim and misconfiguration mark (the store closes the circuit
        when the call is recorded)."""
        with self._lock:
            self._probes.pop(model, None)
            self._misconfigured.pop(model, None)

    # ------------------------------------------------------------------ decisions
    def admit(
        self, candidates: Sequence[str], stats: Mapping[str, Any], now: float | None = None
    ) -> tuple[list[str], dict[str, str], list[str]]:
        """Split ``candidates`` into ``(admitted, removed → reason, notes)``.

        Never returns an empty ``admitted`` when ``candidates`` is not empty and only circuits removed
        them: the model whose cooldown ends first is admitted and a note says so.
        """
        now = time.time() if now is None else now
        n = self.policy.failures_to_open
        admitted: list[str] = []
        removed: dict[str, str] = {}
        notes: list[str] = []
        opened: list[tuple[float, str]] = []
        misconfigured: list[str] = []
        with self._lock:
            for m in candidates:
                mis = self._misconfigured.get(m)
                if mis is not None:
                    if mis[0] > now:
                        removed[m] = mis[1]
                        misconfigured.append(m)
                        continue
                    del self._misconfigured[m]
                st = stats.get(m)
                state = circuit_state(st, now, n)
                if state == "open" and st is not None:
                    removed[m] = (
                        f"circuit open for {st.cooldown_until - now:.1f} s after {st.consecutive_errors} "
                        f"failed call(s) in a row ({st.last_error})"
                    )
                    opened.append((st.cooldown_until, m))
                    continue
                if state == "half_open":
                    claim = self._probes.get(m, 0.0)
                    if claim > now:
                        removed[m] = "circuit half-open: a probe call is in flight"
                        opened.append((claim, m))
                        continue
                    self._probes[m] = now + max(self.policy.cooldown_s, 1.0)
                admitted.append(m)
        if not admitted and misconfigured and not opened:  # a fixed key is picked up at once
            admitted = [m for m in candidates if m in misconfigured]
            for m in admitted:
                removed.pop(m, None)
            notes.append("every admissible model was marked misconfigured; trying them again")
        if not admitted and opened:
            _, first = min(opened)
            admitted.append(first)
            notes.append(
                f"every admissible model's circuit is open; trying {first!r}, whose cooldown ends first "
                f"({removed.pop(first)})"
            )
        return admitted, removed, notes

    def health(self, model: str, stats: Any, now: float | None = None) -> dict[str, Any]:
        """One model's health for ``ZeroRouter.health()``: ``state`` (``closed`` / ``open`` /
        ``half_open`` / ``misconfigured``), seconds left open, counts, consecutive failures, last error."""
        now = time.time() if now is None else now
        state = circuit_state(stats, now, self.policy.failures_to_open)
        mis = self.misconfigured().get(model)
        out: dict[str, Any] = {"state": "misconfigured" if mis else state}
        if mis:
            out["why"] = mis
        if stats is None:
            return {**out, "n_calls": 0, "n_errors": 0, "consecutive_errors": 0, "last_error": None}
        return {
            **out,
            "open_s_left": max(0.0, stats.cooldown_until - now),
            "n_calls": stats.n_calls,
            "n_errors": stats.n_errors,
            "consecutive_errors": stats.consecutive_errors,
            "error_rate": stats.error_rate,
            "last_error": stats.last_error,
        }

    def misconfigured(self) -> dict[str, str]:
        """Models this process marked misconfigured → what to set."""
        now = time.time()
        with self._lock:
            return {m: why for m, (until, why) in self._misconfigured.items() if until > now}
