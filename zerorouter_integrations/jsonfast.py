"""Fast JSON reading for the start-up path: orjson when it is installed, else the standard library.

The shipped artifact is 2.6 MB of JSON, mostly floats, and LiteLLM's price map 3.5 MB; the standard
library parses the artifact in ~70 ms, orjson (a base dependency) in ~15 ms, to the same Python
objects (floats are correctly rounded by both). :func:`loads_finite` accepts strict JSON only:
``NaN`` / ``Infinity`` raise ``ValueError`` in both paths (orjson refuses them; the fallback is told
to), so callers can report where a non-finite number is with the standard parser's hooks.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads_finite"]


def _refuse(name: str) -> float:
    raise ValueError(f"non-finite number {name} in JSON")


def loads_finite(raw: bytes | str) -> Any:
    """``json.loads(raw)`` for JSON without ``NaN`` / ``Infinity`` (those, and malformed JSON, raise
    ``ValueError``); orjson when importable."""
    try:
        import orjson
    except ImportError:
        return json.loads(raw, parse_constant=_refuse)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson also refuses integers beyond 64 bits, which JSON allows: the standard parser decides
        return json.loads(raw, parse_constant=_refuse)
