"""In-process profile store: dicts behind one lock (``open_store(":memory:")``).

For tests, notebooks and single-process services. Nothing survives the process, and the store
cannot be shared with a subprocess (pickling it is refused rather than silently copying it).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

from zerorouter_integrations.feedback import apply_call, apply_error
from zerorouter_integrations.stores.base import ObservedStats, ProfileStore

__all__ = ["MemoryStore"]


class MemoryStore(ProfileStore):
    """Profile store held in this process's memory, safe across threads.

    Examples
    --------
    >>> store = MemoryStore()
    >>> store.record_call("m", latency_s=2.0, output_tokens=10).n_calls
    1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[str, ObservedStats] = {}
        self._requests: dict[str, tuple[str, float | None]] = {}
        self._sessions: dict[str, tuple[str, float | None]] = {}
        self._quality: dict[str, list[tuple[list[float], float, str | None, float]]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __getstate__(self) -> dict[str, Any]:
        """A pickle or deep copy is a *copy* of the contents (changes are not shared); use
        SQLiteStore(path) or RedisStore(url) to share one store between processes."""
        with self._lock:
            return {
                "stats": dict(self._stats),
                "requests": dict(self._requests),
                "sessions": dict(self._sessions),
                "quality": {m: list(v) for m, v in self._quality.items()},
            }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self._stats.update(state["stats"])
        self._requests.update(state["requests"])
        self._sessions.update(state["sessions"])
        self._quality.update(state["quality"])

    def fault_types(self) -> tuple[type[BaseException], ...]:
        """An in-process store is never unreachable."""
        return ()

    # ---------------------------------------------------------------- feedback
    def _record_call(self, model: str, **kwargs: Any) -> ObservedStats:
        with self._lock:
            new = apply_call(self._stats.get(model) or ObservedStats(model), **kwargs)
            self._stats[model] = new
            return copy.copy(new)

    def _record_error(self, model: str, **kwargs: Any) -> ObservedStats:
        with self._lock:
            new = apply_error(self._stats.get(model) or ObservedStats(model), **kwargs)
            self._stats[model] = new
            return copy.copy(new)

    def _get_stats(self, model: str) -> ObservedStats | None:
        with self._lock:
            s = self._stats.get(model)
            return copy.copy(s) if s is not None else None

    def _all_stats(self) -> dict[str, ObservedStats]:
        with self._lock:
            return {m: copy.copy(s) for m, s in self._stats.items()}

    # ---------------------------------------------------------------- requests / sessions
    @staticmethod
    def _put(
        table: dict[str, tuple[str, float | None]], key: str, payload: dict, ttl_s: float | None
    ) -> None:
        # stored as JSON so that callers get the same copies and errors as with the other stores
        table[key] = (json.dumps(payload), None if ttl_s is None else time.time() + ttl_s)

    @staticmethod
    def _get(table: dict[str, tuple[str, float | None]], key: str) -> dict[str, Any] | None:
        item = table.get(key)
        if item is None:
            return None
        text, expires = item
        if expires is not None and expires <= time.time():
            del table[key]
            return None
        return json.loads(text)

    def _put_request(self, request_id: str, payload: dict[str, Any], ttl_s: float | None) -> None:
        with self._lock:
            self._put(self._requests, request_id, payload, ttl_s)

    def _get_request(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._get(self._requests, request_id)

    def _set_session(self, session_id: str, payload: dict[str, Any], ttl_s: float | None) -> None:
        with self._lock:
            self._put(self._sessions, session_id, payload, ttl_s)

    def _get_session(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._get(self._sessions, session_id)

    # ---------------------------------------------------------------- quality
    def _append_quality(
        self, model: str, features: list[float], score: float, request_id: str | None, ts: float
    ) -> int:
        with self._lock:
            obs = self._quality.setdefault(model, [])
            obs.append((list(features), score, request_id, ts))
            return len(obs)

    def _quality_observations(self, model: str) -> list[tuple[list[float], float]]:
        with self._lock:
            return [(list(f), s) for f, s, _, _ in self._quality.get(model, [])]

    # ---------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        """Delete everything this store holds."""
        with self._lock:
            self._stats.clear()
            self._requests.clear()
            self._sessions.clear()
            self._quality.clear()

    def close(self) -> None:
        """Nothing to release; the data stays readable until the object is dropped."""
