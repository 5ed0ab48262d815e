"""Closest matches for a mistyped or partial model name (difflib, no dependencies).

Used by :class:`~zerorouter_integrations.errors.UnknownModelError` and the catalog: an unknown name
is answered with the few known names it most resembles, not with the first names alphabetically.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["bare_name", "closest_matches"]


def bare_name(name: str) -> str:
    """``name`` without a LiteLLM provider prefix (``"openai/gpt-4o"`` → ``"gpt-4o"``), lower-cased."""
    return name.rsplit("/", 1)[-1].strip().lower()


def closest_matches(name: str, known: Iterable[str], n: int = 5, cutoff: float = 0.5) -> list[str]:
    """Up to ``n`` names of ``known`` that ``name`` most resembles, best first.

    A known name that starts with ``name`` (without its provider prefix) ranks first, so an undated
    name finds its dated versions (``gpt-4o-mini`` → ``gpt-4o-mini-2024-07-18``); the rest are ranked by
    difflib's similarity ratio on lower-cased names, full and without provider prefixes, and kept
    when it is at least ``cutoff``.
    """
    full, bare = name.strip().lower(), bare_name(name)
    scored: list[tuple[float, str]] = []
    for k in dict.fromkeys(known):
        kl, kb = k.lower(), bare_name(k)
        ratio = max(
            difflib.SequenceMatcher(None, full, kl).ratio(),
            difflib.SequenceMatcher(None, bare, kb).ratio() if bare and kb else 0.0,
        )
        if bare and (kb.startswith(bare) or kl.startswith(full)):
            ratio += 1.0
        if ratio >= cutoff:
            scored.append((ratio, k))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [k for _, k in scored[:n]]
