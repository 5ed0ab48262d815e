"""Which profile of an artifact a model name means: LiteLLM model strings, aliases, dated names.

Minimal on purpose: exact names (case-insensitive, with or without provider prefixes), a profile's
``litellm_model``, and a unique dated / ``-latest`` / ``-preview`` variant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["closest_profile_names", "resolve_profile_name"]

_DATED = re.compile(r"^-(\d{4}-?\d{2}-?\d{2}|\d{4}|\d{2}-\d{2}(-\d{2})?|latest|preview)$")


def _variants(name: str) -> list[str]:
    out = [name]
    while "/" in name:  # provider prefixes: openai/gpt-4o, together_ai/meta-llama/...
        name = name.split("/", 1)[1]
        out.append(name)
    return out


def resolve_profile_name(candidates: Sequence[str], profiles: Mapping[str, Any]) -> str | None:
    """The profile a LiteLLM model string or alias names, or ``None``.

    Tried in order for each candidate: a profile name (case-insensitive, with or without provider
    prefixes), a profile's ``litellm_model``, and a unique dated / ``-latest`` / ``-preview`` profile
    name of it (``gpt-4o-mini`` → ``gpt-4o-mini-2024-07-18``).
    """
    lower = {n.lower(): n for n in profiles}
    by_litellm: dict[str, str] = {}
    for n, p in profiles.items():
        lm = getattr(p, "litellm_model", None)
        if lm:
            for v in _variants(lm.lower()):
                by_litellm.setdefault(v, n)
    for cand in candidates:
        for v in _variants(cand.lower()):
            if v in lower:
                return lower[v]
        for v in _variants(cand.lower()):
            if v in by_litellm:
                return by_litellm[v]
        for v in _variants(cand.lower()):
            dated = [n for low, n in lower.items() if low.startswith(v) and _DATED.match(low[len(v) :])]
            if len(dated) == 1:
                return dated[0]
    return None


def closest_profile_names(name: str, profiles: Mapping[str, Any], n: int = 5) -> list[str]:
    import difflib

    return difflib.get_close_matches(name, list(profiles), n=n, cutoff=0.3) or sorted(profiles)[:n]
