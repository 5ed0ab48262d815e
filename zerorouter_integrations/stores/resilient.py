"""Store faults never cost an answer: the outbox and this process's local view of a store.

:class:`ResilientMixin` gives :class:`~.base.ProfileStore` its fault handling: a write that the
backend cannot take (one of :meth:`ResilientMixin.fault_types`) is queued in an
:class:`~.outbox.Outbox` and applied to a :class:`LocalView` (last known stats plus this process's
queued events, its own recent requests and sessions), which answers reads until the backend is back.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from zerorouter_integrations.errors import StoreUnavailableError
from zerorouter_integrations.feedback import apply_call, apply_error
from zerorouter_integrations.stores.outbox import Outbox

__all__ = ["LocalView", "ResilientMixin"]


_VIEW_LOCK = threading.Lock()


class LocalView:
    """This process's view of a store: last known stats, its own recent requests and sessions."""

    MAX_KEYS = 4096

    def __init__(self, outbox: Outbox, new_stats: Any):
        self.outbox = outbox
        self.new_stats = new_stats
        self.known: dict[str, Any] = {}  # model -> ObservedStats
        self.keyed: OrderedDict[tuple[str, str], tuple[dict[str, Any], float | None]] = OrderedDict()
        self.lock = threading.Lock()

    def lookup(self, kind: str, key: str) -> dict[str, Any] | None:
        with self.lock:
            hit = self.keyed.get((kind, key))
        if hit is None or (hit[1] is not None and hit[1] <= time.time()):
            return None
        return dict(hit[0])

    def remember(self, op: str, args: tuple, kwargs: dict, result: Any) -> Any:
        """Apply a write to the local view; returns what the write returns (computed locally if queued)."""
        if op in ("record_call", "record_error"):
            model = args[0]
            if result is None:
                fn = apply_call if op == "record_call" else apply_error
                result = fn(self.known.get(model) or self.new_stats(model), **kwargs)
            self.known[model] = result
        elif op in ("put_request", "set_session"):
            key, payload, ttl_s = args
            with self.lock:
                self.keyed[("request" if op == "put_request" else "session", key)] = (
                    payload,
                    None if ttl_s is None else time.time() + ttl_s,
                )
                while len(self.keyed) > self.MAX_KEYS:
                    self.keyed.popitem(last=False)
        return result


class ResilientMixin:
    """Fault handling of a profile store (see the module docstring); the backend hooks are the store's."""

    if TYPE_CHECKING:  # the store's own methods and hooks (this is a mixin of ProfileStore)

        def __getattr__(self, name: str) -> Any: ...

    def fault_types(self) -> tuple[type[BaseException], ...]:
        """Exceptions of this backend that mean "unreachable right now" (the write is queued)."""
        return (OSError,)

    def _view(self) -> LocalView:
        view = self.__dict__.get("_local_view")
        if view is None:
            with _VIEW_LOCK:
                view = self.__dict__.get("_local_view")
                if view is None:
                    view = LocalView(
                        Outbox(self._apply_queued, self.fault_types(), repr(self)), self._new_stats
                    )
                    self.__dict__["_local_view"] = view
        return view

    def _apply_queued(self, op: str, args: tuple, kwargs: dict) -> Any:
        return getattr(self, "_" + op)(*args, **kwargs)

    def _write_or_queue(self, op: str, args: tuple, kwargs: dict) -> Any:
        view = self._view()
        ob = view.outbox
        if not ob.pending and not ob.recently_failed():
            try:
                result = self._apply_queued(op, args, kwargs)
            except ob.faults as exc:
                ob.fault(exc)
            else:
                ob.ok()
                view.remember(op, args, kwargs, result)
                return result
        ob.put(op, args, kwargs)
        return view.remember(op, args, kwargs, None)

    def health(self) -> dict[str, Any]:
        """The store's state: ``backend``, ``ok``, ``queued``, ``dropped``, ``written_late``, ``outages``,
        ``last_error``, ``outage_since``."""
        return {"backend": repr(self), **self._view().outbox.health()}

    def flush(self, timeout_s: float = 5.0) -> int:
        """Write the queued observations, waiting up to ``timeout_s``; returns how many are left."""
        view = self.__dict__.get("_local_view")
        return 0 if view is None else view.outbox.flush(timeout_s)

    def _flush_for_close(self, timeout_s: float = 5.0) -> None:
        """Flush, then count what could not be written as dropped (called by each backend's close)."""
        view = self.__dict__.get("_local_view")
        if view is not None and view.outbox.pending and view.outbox.flush(timeout_s):
            view.outbox.abandon()

    def _read_stats(self, model: str) -> Any:
        view = self._view()
        try:
            st = self._get_stats(model)
        except view.outbox.faults as exc:
            view.outbox.fault(exc)
            return view.known.get(model)
        return view.known.get(model, st) if view.outbox.pending else st

    def _read_keyed(self, kind: str, key: str) -> dict[str, Any] | None:
        view = self._view()
        ob = view.outbox
        local = view.lookup(kind, key)
        if not ob.recently_failed():
            try:
                found = self._get_request(key) if kind == "request" else self._get_session(key)
            except ob.faults as exc:
                ob.fault(exc)
            else:
                return found if found is not None or not ob.pending else local
        if local is not None or kind == "session":
            return local
        raise StoreUnavailableError(
            f"profile store {self!r} is unavailable ({ob.last_error}) and {kind} {key!r} was not made by "
            "this process; retry when the store is back"
        )
