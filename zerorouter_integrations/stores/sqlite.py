"""Profile store in one SQLite file, shared by the threads and processes of one host.

* WAL journal, so readers never wait for the writer; ``busy_timeout`` waits for other writers.
* One connection per thread (``threading.local``); a connection is closed when its thread ends,
  or by :meth:`SQLiteStore.close`.
* Every read-modify-write runs inside ``BEGIN IMMEDIATE``, which takes the file's write lock before
  reading, so concurrent processes cannot lose an update. Threads of one process first queue on an
  in-process lock (one per file), which is much cheaper than SQLite's sleeping busy handler.
* After ``fork`` the child opens its own connections; the store pickles as its path, so it can be
  handed to a ``spawn`` subprocess.

Tables: ``schema_version``, ``stats`` (model → JSON of :class:`ObservedStats`), ``requests`` and
``sessions`` (JSON payload, ``expires_at``), ``quality`` (model, features JSON, score, request_id, ts).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.feedback import apply_call, apply_error
from zerorouter_integrations.stores.base import ObservedStats, ProfileStore

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 1
"""Version of the table layout written by this module."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stats (
    model      TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    payload    TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS requests_expires_at ON requests (expires_at);
CREATE TABLE IF NOT EXISTS quality (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    model      TEXT NOT NULL,
    features   TEXT NOT NULL,
    score      REAL NOT NULL,
    request_id TEXT,
    ts         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS quality_model ON quality (model, id);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    payload    TEXT NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
"""

# One in-process write lock per database file, shared by every SQLiteStore on that file.
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()
# Connections inherited through fork: never closed in the child (they belong to the parent).
_INHERITED: list[Any] = []


def _write_lock_for(path: str) -> threading.Lock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(path, threading.Lock())


def _reset_locks_after_fork() -> None:
    global _WRITE_LOCKS_GUARD
    _WRITE_LOCKS_GUARD = threading.Lock()
    _WRITE_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_after_fork)


class _Connection:
    """Holds one thread's connection; closes it when the thread (and so this holder) goes away."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:  # pragma: no cover - already closed
            pass

    def __del__(self) -> None:
        self.close()


class SQLiteStore(ProfileStore):
    """Profile store in one SQLite file, safe across threads and processes.

    Parameters
    ----------
    path : str or os.PathLike
        Database file; created with its parent folder if missing. ``":memory:"`` is refused (each
        thread would get a private database): use :class:`MemoryStore` instead.
    timeout_s : float, default=30.0
        How long a writer waits for another process's write lock before ``sqlite3.OperationalError``.

    Examples
    --------
    >>> import tempfile, os
    >>> store = SQLiteStore(os.path.join(tempfile.mkdtemp(), "profiles.db"))
    >>> store.record_call("gpt-4o-mini", latency_s=1.5, output_tokens=30).ewma_tokens_per_s
    20.0
    >>> store.close()
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 30.0):
        path = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise ValueError(f"path must be a non-empty file path, got {path!r}")
        if path == ":memory:" or path.startswith("file:"):
            raise ValueError(
                f"SQLiteStore needs a file path, got {path!r}; use MemoryStore() or "
                "open_store(':memory:') for an in-process store"
            )
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s < 0:
            raise ValueError(f"timeout_s must be a number of seconds >= 0, got {timeout_s!r}")
        self.path = path
        self.timeout_s = float(timeout_s)
        self._abspath = os.path.realpath(path)
        parent = os.path.dirname(self._abspath)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._write_lock = _write_lock_for(self._abspath)
        self._local = threading.local()
        self._holders: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._holders_lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        try:
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, I/O: not the file's content
                raise
            self.close()
            raise SchemaError(
                f"{path}: not a SQLite database ({exc}); give SQLiteStore a new file or one it wrote"
            ) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    # ---------------------------------------------------------------- pickling: by path
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout_s": self.timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], timeout_s=state["timeout_s"])  # type: ignore[misc]

    # ---------------------------------------------------------------- connections
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._abspath, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")  # durable in WAL mode up to the last checkpoint
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new store to use the file again")
        if os.getpid() != self._pid:  # forked: the parent's connections must not be used here
            with self._holders_lock:
                _INHERITED.extend(self._holders)
                self._holders = weakref.WeakSet()
            self._local = threading.local()
            self._write_lock = _write_lock_for(self._abspath)
            self._pid = os.getpid()
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = _Connection(self._connect())
            self._local.holder = holder
            with self._holders_lock:
                self._holders.add(holder)
        return holder.conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Run the body in a ``BEGIN IMMEDIATE`` transaction (write lock held from the start)."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _init_schema(self) -> None:
        conn = self._conn()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network file system
            raise RuntimeError(f"could not switch {self.path!r} to WAL journal mode (got {mode!r})")
        with self._write() as c:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            row = c.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] if row else None
            if version is None:
                c.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif version > SCHEMA_VERSION:
                raise SchemaError(
                    f"{self.path!r} has store schema version {version}, newer than the "
                    f"{SCHEMA_VERSION} this version of zerorouter understands; upgrade zerorouter"
                )

    # ---------------------------------------------------------------- feedback
    @staticmethod
    def _load(conn: sqlite3.Connection, model: str) -> ObservedStats | None:
        row = conn.execute("SELECT data FROM stats WHERE model = ?", (model,)).fetchone()
        return ObservedStats.from_dict(json.loads(row[0])) if row else None

    @staticmethod
    def _save(conn: sqlite3.Connection, stats: ObservedStats, now: float) -> None:
        conn.execute(
            "INSERT INTO stats (model, data, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (model) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            (stats.model, json.dumps(stats.to_dict()), now),
        )

    def _record_call(self, model: str, **kwargs: Any) -> ObservedStats:
        with self._write() as c:
            new = apply_call(self._load(c, model) or ObservedStats(model), **kwargs)
            self._save(c, new, time.time())
        return new

    def _record_error(self, model: str, **kwargs: Any) -> ObservedStats:
        with self._write() as c:
            new = apply_error(self._load(c, model) or ObservedStats(model), **kwargs)
            self._save(c, new, time.time())
        return new

    def _get_stats(self, model: str) -> ObservedStats | None:
        return self._load(self._conn(), model)

    def _all_stats(self) -> dict[str, ObservedStats]:
        rows = self._conn().execute("SELECT model, data FROM stats ORDER BY model").fetchall()
        return {m: ObservedStats.from_dict(json.loads(d)) for m, d in rows}

    # ---------------------------------------------------------------- requests / sessions
    def _put_request(self, request_id: str, payload: dict[str, Any], ttl_s: float | None) -> None:
        text = json.dumps(payload)
        now = time.time()
        with self._write() as c:
            c.execute("DELETE FROM requests WHERE expires_at <= ?", (now,))
            c.execute(
                "INSERT OR REPLACE INTO requests (request_id, payload, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (request_id, text, now, None if ttl_s is None else now + ttl_s),
            )

    def _get_request(self, request_id: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute(
                "SELECT payload FROM requests WHERE request_id = ? "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (request_id, time.time()),
            )
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def _set_session(self, session_id: str, payload: dict[str, Any], ttl_s: float | None) -> None:
        text = json.dumps(payload)
        now = time.time()
        with self._write() as c:
            c.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            c.execute(
                "INSERT OR REPLACE INTO sessions (session_id, payload, updated_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (session_id, text, now, None if ttl_s is None else now + ttl_s),
            )

    def _get_session(self, session_id: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute(
                "SELECT payload FROM sessions WHERE session_id = ? "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (session_id, time.time()),
            )
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    # ---------------------------------------------------------------- quality
    def _append_quality(
        self, model: str, features: list[float], score: float, request_id: str | None, ts: float
    ) -> int:
        with self._write() as c:
            c.execute(
                "INSERT INTO quality (model, features, score, request_id, ts) VALUES (?, ?, ?, ?, ?)",
                (model, json.dumps(features), score, request_id, ts),
            )
            return c.execute("SELECT COUNT(*) FROM quality WHERE model = ?", (model,)).fetchone()[0]

    def _quality_observations(self, model: str) -> list[tuple[list[float], float]]:
        rows = (
            self._conn()
            .execute("SELECT features, score FROM quality WHERE model = ? ORDER BY id", (model,))
            .fetchall()
        )
        return [(json.loads(f), float(s)) for f, s in rows]

    # ---------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        """Delete every row of every table (the schema and the file stay)."""
        with self._write() as c:
            for table in ("stats", "requests", "quality", "sessions"):
                c.execute(f"DELETE FROM {table}")

    def fault_types(self) -> tuple[type[BaseException], ...]:
        """A locked, missing or unreadable file: ``sqlite3.OperationalError`` and ``OSError``."""
        return (sqlite3.OperationalError, OSError)

    def close(self) -> None:
        """Write queued observations (up to 5 s), then close every connection this store opened, in
        any thread; idempotent."""
        if not self._closed:
            self._flush_for_close()
        self._closed = True
        with self._holders_lock:
            holders = list(self._holders)
            self._holders = weakref.WeakSet()
        for holder in holders:
            holder.close()
        self._local = threading.local()
