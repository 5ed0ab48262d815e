"""Stable hashes: the same number for the same text in every process and on every machine.

Python's ``hash`` of a string changes with ``PYTHONHASHSEED``; a routing decision, a prompt split or
a cross-validation fold must not. Text is hashed as UTF-8, with lone surrogates (which UTF-8 cannot
hold and a JSON request may carry) as their own code units (``surrogatepass``), so every ``str`` has
a hash and a valid UTF-8 text hashes as its UTF-8 bytes.
"""

from __future__ import annotations

import hashlib

__all__ = ["stable_hash64", "stable_uniform"]


def stable_hash64(data: str | bytes) -> int:
    """BLAKE2b-64 of ``data`` (a text or bytes) as an unsigned integer."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def stable_uniform(data: str | bytes) -> float:
    """:func:`stable_hash64` scaled to a number in [0, 1)."""
    return stable_hash64(data) / 2.0**64
