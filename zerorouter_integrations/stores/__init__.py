"""Profile stores: where observed stats, requests, quality observations and sessions live.

=====================  =========================================================================
:class:`MemoryStore`   one process (``open_store(":memory:")``)
:class:`SQLiteStore`   one file, many threads and processes of one host
:class:`RedisStore`    a Redis server, many hosts
=====================  =========================================================================

:func:`open_store` picks the backend from a URL or path.
"""

from __future__ import annotations

import os

from zerorouter_integrations.stores.base import ObservedStats, ProfileStore
from zerorouter_integrations.stores.memory import MemoryStore
from zerorouter_integrations.stores.redis import RedisStore
from zerorouter_integrations.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "ObservedStats", "ProfileStore", "RedisStore", "SQLiteStore", "open_store"]


def open_store(url_or_path: str | os.PathLike[str]) -> ProfileStore:
    """Open the profile store named by a URL or a file path.

    Parameters
    ----------
    url_or_path : str or os.PathLike
        * ``"redis://host:port/db"`` or ``"rediss://..."`` → :class:`RedisStore`;
        * ``"sqlite:///relative/file.db"`` or ``"sqlite:////absolute/file.db"`` → :class:`SQLiteStore`;
        * ``":memory:"``, ``"memory://"`` or ``"sqlite:///:memory:"`` → :class:`MemoryStore`;
        * any other string or path → :class:`SQLiteStore` on that file.

    Returns
    -------
    ProfileStore

    Raises
    ------
    ValueError
        For an empty string or a URL scheme that is not one of the above.

    Examples
    --------
    >>> open_store(":memory:")
    MemoryStore()
    """
    target = os.fspath(url_or_path)
    if not isinstance(target, str) or not target:
        raise ValueError(f"url_or_path must be a non-empty URL or path, got {url_or_path!r}")
    if target in (":memory:", "memory://", "sqlite://", "sqlite:///:memory:"):
        return MemoryStore()
    lowered = target.lower()
    if lowered.startswith(("redis://", "rediss://")):
        return RedisStore(target)
    if lowered.startswith("sqlite:///"):
        return SQLiteStore(target[len("sqlite:///") :])
    if "://" in target:
        scheme = target.split("://", 1)[0]
        raise ValueError(
            f"unsupported store URL scheme {scheme!r} in {target!r}; expected redis://, rediss://, "
            "sqlite:///path, a file path, or ':memory:'"
        )
    return SQLiteStore(target)
