"""The query encoder's caches: an in-memory LRU with counters, and one SQLite file on disk shared
safely by processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["DISK_CACHE_FILENAME", "CacheInfo", "DiskCache", "MemoryCache"]

#: Bump when the on-disk embedding cache layout changes.
DISK_CACHE_FILENAME = "embeddings-v1.sqlite3"


class DiskCache:
    """Embeddings in one SQLite file, keyed by ``sha1(fingerprint \\0 text)``.

    Each write is one SQLite transaction (``INSERT OR IGNORE``), so a crash never leaves a partial
    vector, and concurrent writers in several processes serialize on SQLite's lock (WAL mode,
    generous busy timeout). Connections are per process: a forked child opens its own.
    """

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory).expanduser() / DISK_CACHE_FILENAME
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 60000")
            with contextlib.suppress(sqlite3.OperationalError):  # e.g. on a network filesystem
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                " key BLOB PRIMARY KEY, dim INTEGER NOT NULL, vector BLOB NOT NULL) WITHOUT ROWID"
            )
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @staticmethod
    def key(fingerprint: str, text: str) -> bytes:
        return hashlib.sha1(f"{fingerprint}\0{text}".encode("utf-8", "surrogatepass")).digest()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            conn = self._connection()
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks})", chunk
                ).fetchall()
                for key, row_dim, blob in rows:
                    if len(blob) == 4 * row_dim:  # the fingerprint in the key fixes the model
                        found[bytes(key)] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def put_many(self, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        if not items:
            return
        rows = [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items]
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR IGNORE INTO embeddings (key, dim, vector) VALUES (?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class CacheInfo(NamedTuple):
    """Cache counters of a :class:`QueryEncoder` (like ``functools.lru_cache``'s ``cache_info``)."""

    hits: int
    """Texts served from the in-memory LRU cache."""
    disk_hits: int
    """Texts served from the on-disk cache."""
    misses: int
    """Texts the model actually encoded."""
    maxsize: int
    """The LRU's capacity (``cache_size``)."""
    currsize: int
    """Texts in the LRU now."""


class MemoryCache:
    """Thread-safe LRU of text → embedding (``maxsize`` 0: disabled) with the encoder's counters."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = self.disk_hits = self.misses = 0

    def get(self, text: str) -> np.ndarray | None:
        """The cached vector of ``text`` (counted as a hit), or None."""
        if self.maxsize == 0:
            return None
        with self._lock:
            vec = self._data.get(text)
            if vec is not None:
                self._data.move_to_end(text)
                self.hits += 1
            return vec

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``texts`` (each counted as a hit)."""
        if self.maxsize == 0 or not self._data:
            return {}
        found = {}
        with self._lock:
            for text in texts:
                vec = self._data.get(text)
                if vec is not None:
                    self._data.move_to_end(text)
                    found[text] = vec
            self.hits += len(found)
        return found

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store vectors, evicting the least recently used beyond ``maxsize``."""
        if self.maxsize == 0:
            return
        with self._lock:
            for text, vec in items:
                self._data[text] = vec
                self._data.move_to_end(text)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def count(self, *, disk_hits: int = 0, misses: int = 0) -> None:
        """Add texts served from disk / encoded by the model to the counters."""
        with self._lock:
            self.disk_hits += disk_hits
            self.misses += misses

    def info(self) -> CacheInfo:
        """The counters and the LRU's size."""
        with self._lock:
            return CacheInfo(self.hits, self.disk_hits, self.misses, self.maxsize, len(self._data))

    def clear(self) -> None:
        """Empty the LRU and reset the counters."""
        with self._lock:
            self._data.clear()
            self.hits = self.disk_hits = self.misses = 0
