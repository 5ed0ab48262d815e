"""The outbox: observations a profile store could not take right now, retried in the background.

When a backend is unreachable (a locked SQLite file, a stopped Redis), :class:`~.base.ProfileStore`
puts the write here instead of raising, so a paid answer is never lost to a store fault:

* bounded (``maxlen``): when full, the oldest pending write is dropped and counted;
* retried in order by one background thread with capped exponential backoff; while writes are
  pending, new ones queue behind them (the order of events is kept);
* flushed on :meth:`~.base.ProfileStore.close` (what is still pending after the timeout is counted
  as dropped);
* one warning per outage (when the first fault is seen), one info line when the store is back.

:meth:`Outbox.health` reports ``queued``, ``dropped`` and ``written_late``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_OUTBOX_SIZE", "Outbox"]

logger = logging.getLogger("zerorouter_integrations.stores")

DEFAULT_OUTBOX_SIZE = 10_000
"""Pending writes kept per store before the oldest are dropped."""


class Outbox:
    """Pending writes of one store and the thread that retries them.

    Parameters
    ----------
    apply : callable(op, args, kwargs)
        Performs one write against the backend; raises one of ``faults`` while it is unreachable.
    faults : tuple of exception types
        What counts as "unreachable right now" (anything else is a bug and is logged, then dropped).
    name : str
        How the store is named in log lines.
    maxlen : int
    """

    def __init__(
        self,
        apply: Callable[[str, tuple, dict], Any],
        faults: tuple[type[BaseException], ...],
        name: str,
        *,
        maxlen: int = DEFAULT_OUTBOX_SIZE,
        retry_s: float = 0.05,
        max_retry_s: float = 2.0,
    ):
        self._apply = apply
        self.faults = faults
        self.name = name
        self.maxlen = int(maxlen)
        self.retry_s = float(retry_s)
        self.max_retry_s = float(max_retry_s)
        self._items: deque[tuple[str, tuple, dict]] = deque()
        self._lock = threading.Lock()
        # One writer at a time: the retry thread and a flush() on close() must not both write (and
        # both pop) the same oldest item.
        self._drain_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.dropped = 0
        self.written_late = 0
        self.outage_since: float | None = None
        self.last_error: str | None = None
        self.last_attempt = 0.0
        self.outages = 0

    # ------------------------------------------------------------------ state
    @property
    def pending(self) -> int:
        return len(self._items)

    def pending_items(self) -> list[tuple[str, tuple, dict]]:
        """A copy of the pending writes ``(op, args, kwargs)``, oldest first."""
        with self._lock:
            return list(self._items)

    @property
    def in_outage(self) -> bool:
        return self.outage_since is not None

    def fault(self, exc: BaseException) -> None:
        """Note that the backend failed with ``exc`` (warns once per outage)."""
        self.last_attempt = time.monotonic()
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.outage_since is None:
            self.outage_since = time.time()
            self.outages += 1
            logger.warning(
                "profile store %s is unavailable (%s); observations are kept in memory (up to %d) "
                "and written when it is back; routing uses the last known state",
                self.name,
                self.last_error,
                self.maxlen,
            )

    def ok(self) -> None:
        """Note that the backend answered (ends an outage once nothing is pending)."""
        self.last_attempt = time.monotonic()
        if self.outage_since is not None and not self._items:
            logger.info(
                "profile store %s is back after %.1f s; %d queued observation(s) written, %d dropped",
                self.name,
                time.time() - self.outage_since,
                self.written_late,
                self.dropped,
            )
            self.outage_since = None

    def recently_failed(self, within_s: float = 0.5) -> bool:
        """Whether the backend failed less than ``within_s`` ago (reads then skip it)."""
        return self.in_outage and time.monotonic() - self.last_attempt < within_s

    # ------------------------------------------------------------------ queue
    def put(self, op: str, args: tuple, kwargs: dict) -> None:
        """Queue one write (dropping the oldest when full) and make sure the retry thread runs."""
        with self._lock:
            if len(self._items) >= self.maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append((op, args, kwargs))
            self._start()

    def _start(self) -> None:
        if os.getpid() != self._pid:  # forked: the parent's thread does not exist here
            self._pid, self._thread = os.getpid(), None
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name=f"zerorouter-outbox-{self.name}", daemon=True
            )
            self._thread.start()

    def _drain_once(self) -> bool:
        """Write the oldest pending item; False when the backend is still unreachable."""
        with self._drain_lock:
            with self._lock:
                if not self._items:
                    return True
                item = self._items[0]
            op, args, kwargs = item
            try:
                self._apply(op, args, kwargs)
            except self.faults as exc:
                self.fault(exc)
                return False
            except Exception:
                logger.exception("profile store %s rejected a queued %s; it is dropped", self.name, op)
                with self._lock:
                    self._remove_head(item, written=False)
                return True
            with self._lock:
                self._remove_head(item, written=True)
            return True

    def _remove_head(self, item: tuple[str, tuple, dict], *, written: bool) -> None:
        """Take ``item`` (just written or rejected) off the queue; caller holds ``_lock``.

        A full queue may have dropped it meanwhile (``put`` drops the oldest): then it was counted as
        dropped, which a successful write corrects."""
        if self._items and self._items[0] is item:
            self._items.popleft()
            if written:
                self.written_late += 1
            else:
                self.dropped += 1
        elif written:
            self.dropped -= 1
            self.written_late += 1

    def _run(self) -> None:
        delay = self.retry_s
        while True:
            with self._lock:
                if not self._items:
                    self._thread = None
                    break
            if self._drain_once():
                delay = self.retry_s
            else:
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(delay * 2, self.max_retry_s)
        self.ok()

    def flush(self, timeout_s: float = 5.0) -> int:
        """Write what is pending, waiting up to ``timeout_s``; returns how many are still pending."""
        deadline = time.monotonic() + timeout_s
        delay = self.retry_s
        while self._items and time.monotonic() < deadline:
            if self._drain_once():
                delay = self.retry_s
                continue
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, self.max_retry_s)
        if not self._items:
            self.ok()
        return len(self._items)

    def abandon(self) -> int:
        """Drop what is pending (counted in ``dropped``); returns how many were dropped."""
        with self._lock:
            n = len(self._items)
            self._items.clear()
            self.dropped += n
        if n:
            logger.warning(
                "profile store %s closed with %d unwritten observation(s); they are lost", self.name, n
            )
        return n

    def health(self) -> dict[str, Any]:
        """``ok``, ``queued``, ``dropped``, ``written_late``, ``outages``, ``last_error``, ``outage_since``."""
        return {
            "ok": not self.in_outage,
            "queued": len(self._items),
            "dropped": self.dropped,
            "written_late": self.written_late,
            "outages": self.outages,
            "last_error": self.last_error,
            "outage_since": self.outage_since,
        }
