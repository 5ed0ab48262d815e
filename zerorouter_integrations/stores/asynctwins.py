"""The async twins of :class:`~.base.ProfileStore`'s methods: each runs the sync one in a worker thread
(a backend may override any of them with a native async version)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from zerorouter_integrations._aio import to_thread

__all__ = ["AsyncTwinsMixin"]

#: Same default as ``stores.base.DEFAULT_REQUEST_TTL_S`` / ``DEFAULT_SESSION_TTL_S``.
_REQUEST_TTL_S = 7 * 86400.0
_SESSION_TTL_S = 86400.0


class AsyncTwinsMixin:
    """``a<name>`` for every public method of a profile store."""

    if TYPE_CHECKING:  # the store's own methods and hooks (this is a mixin of ProfileStore)

        def __getattr__(self, name: str) -> Any: ...

    async def arecord_call(self, model: str, **kwargs: Any) -> Any:
        """Async twin of :meth:`record_call`."""
        return await to_thread(self.record_call, model, **kwargs)

    async def arecord_error(self, model: str, **kwargs: Any) -> Any:
        """Async twin of :meth:`record_error`."""
        return await to_thread(self.record_error, model, **kwargs)

    async def aget_stats(self, model: str) -> Any:
        """Async twin of :meth:`get_stats`."""
        return await to_thread(self.get_stats, model)

    async def aall_stats(self) -> dict[str, Any]:
        """Async twin of :meth:`all_stats`."""
        return await to_thread(self.all_stats)

    async def aput_request(
        self, request_id: str, payload: Mapping[str, Any], ttl_s: float | None = _REQUEST_TTL_S
    ) -> None:
        """Async twin of :meth:`put_request`."""
        await to_thread(self.put_request, request_id, payload, ttl_s)

    async def aget_request(self, request_id: str) -> dict[str, Any] | None:
        """Async twin of :meth:`get_request`."""
        return await to_thread(self.get_request, request_id)

    async def aappend_quality(
        self,
        model: str,
        features: Sequence[float],
        score: float,
        request_id: str | None = None,
    ) -> int:
        """Async twin of :meth:`append_quality`."""
        return await to_thread(self.append_quality, model, features, score, request_id)

    async def aquality_observations(self, model: str) -> list[tuple[list[float], float]]:
        """Async twin of :meth:`quality_observations`."""
        return await to_thread(self.quality_observations, model)

    async def aget_session(self, session_id: str) -> dict[str, Any] | None:
        """Async twin of :meth:`get_session`."""
        return await to_thread(self.get_session, session_id)

    async def aset_session(
        self, session_id: str, payload: Mapping[str, Any], ttl_s: float | None = _SESSION_TTL_S
    ) -> None:
        """Async twin of :meth:`set_session`."""
        await to_thread(self.set_session, session_id, payload, ttl_s)

    async def areset(self) -> None:
        """Async twin of :meth:`reset`."""
        await to_thread(self.reset)

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await to_thread(self.close)
