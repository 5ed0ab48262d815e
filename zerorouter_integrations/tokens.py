"""Offline token counting for a pool of models (used by the adapters' ``get_num_tokens`` and friends).

A request may go to any model of the pool, so a count is the **largest** count over the pool's
tokenizer families: trimming a conversation to N tokens by this count keeps it under N for every
candidate. The families, all read from files installed with the package's dependencies (nothing is
downloaded):

* ``o200k_base`` (tiktoken) for GPT-4o, GPT-4.1, GPT-5, o-series and ``chatgpt-4o`` models;
* ``cl100k_base`` (tiktoken) for the other OpenAI models **and as the documented estimate for every
  model whose tokenizer is not bundled** (Llama, Mistral, Gemini, ...; their counts are usually within
  about ±20 % of it);
* Claude's tokenizer (the ``anthropic_tokenizer.json`` that LiteLLM ships) for Claude models.

The tiktoken files are the ones LiteLLM ships. When tiktoken or the files are missing, a family
falls back to ``ceil(characters / 4)`` (the estimate the shared data sets use).

Messages (OpenAI-style dicts) are counted like OpenAI's cookbook does: 3 tokens per message, the
role, the content (text parts; 85 tokens per image part), tool calls' names and arguments, plus 3
tokens that prime the reply.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TokenCounter", "tokenizer_family"]

_TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_O200K_MARKERS = ("gpt-4o", "gpt-4.1", "gpt-5", "chatgpt-4o", "o1", "o3", "o4")
_ENV_LOCK = threading.Lock()
PER_MESSAGE = 3
REPLY_PRIMING = 3
IMAGE_TOKENS = 85


def tokenizer_family(name: str) -> str:
    """``"o200k_base"``, ``"cl100k_base"`` or ``"claude"`` for a pool name or LiteLLM model string."""
    s = name.lower().rsplit("/", 1)[-1]
    if "claude" in s:
        return "claude"
    if any(s.startswith(m) or f"-{m}" in s for m in _O200K_MARKERS):
        return "o200k_base"
    return "cl100k_base"


def _litellm_tokenizers() -> Path | None:
    """LiteLLM's bundled tokenizer folder, found without importing LiteLLM."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return folder if folder.is_dir() else None


@functools.cache
def _encoder(family: str) -> Any:
    """An object with ``encode(text) -> list[int]``, or None (then the character estimate is used)."""
    folder = _litellm_tokenizers()
    if folder is None:
        return None
    if family == "claude":
        path = folder / "anthropic_tokenizer.json"
        if not path.is_file():
            return None
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        return _HFEncoder(tok)
    try:
        import tiktoken
    except ImportError:
        return None
    key = hashlib.sha1(_TIKTOKEN_URL.format(family).encode()).hexdigest()
    if not (folder / key).is_file():
        return None  # tiktoken would download it: use the estimate instead
    with _ENV_LOCK:  # tiktoken reads its cache folder from the environment, once per encoding
        old = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
        try:
            return tiktoken.get_encoding(family)
        finally:
            if old is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = old


class _HFEncoder:
    def __init__(self, tok: Any):
        self._tok = tok

    def encode(self, text: str, **_: Any) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)


def _estimate_ids(text: str) -> list[int]:
    return [0] * math.ceil(len(text) / 4)


class TokenCounter:
    """Count tokens as the pool's most demanding tokenizer does (see the module docstring).

    Parameters
    ----------
    models : iterable of str
        Pool names and/or LiteLLM model strings; empty means ``cl100k_base`` only.

    Examples
    --------
    >>> TokenCounter(["gpt-4o-mini", "claude-3-5-haiku-20241022"]).count("hello world") >= 2
    True
    """

    def __init__(self, models: Iterable[str] = ()):
        self.models = list(models)
        self.families = sorted({tokenizer_family(m) for m in self.models}) or ["cl100k_base"]

    def __repr__(self) -> str:
        return f"TokenCounter(families={self.families})"

    def __reduce__(self) -> tuple[Any, tuple]:
        return (TokenCounter, (self.models,))

    def encode(self, text: str) -> list[int]:
        """The token ids of the family that gives ``text`` the most tokens (zeros for the estimate)."""
        best: list[int] = []
        for fam in self.families:
            enc = _encoder(fam)
            ids = list(enc.encode(text, disallowed_special=())) if enc is not None else _estimate_ids(text)
            if len(ids) > len(best):
                best = ids
        return best

    def count(self, text: str) -> int:
        """Tokens in ``text`` (the largest count over the pool's families)."""
        return len(self.encode(text)) if text else 0

    def count_messages(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
    ) -> int:
        """Tokens of an OpenAI-style message list (and tool schemas), reply priming included."""
        parts: list[str] = []
        images = 0
        for m in messages:
            parts.append(str(m.get("role") or ""))
            content = m.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, Sequence):
                for block in content:
                    if isinstance(block, Mapping) and block.get("type") in ("image_url", "image"):
                        images += 1
                    elif isinstance(block, Mapping):
                        parts.append(str(block.get("text") or ""))
                    else:
                        parts.append(str(block))
            for tc in m.get("tool_calls") or ():
                fn = tc.get("function", tc) if isinstance(tc, Mapping) else {}
                args = fn.get("arguments", "")
                parts.append(str(fn.get("name") or ""))
                parts.append(args if isinstance(args, str) else json.dumps(args))
            if m.get("name"):
                parts.append(str(m["name"]))
        if tools:
            parts.append(json.dumps(list(tools), sort_keys=True))
        return (
            sum(self.count(p) for p in parts if p)
            + PER_MESSAGE * len(messages)
            + IMAGE_TOKENS * images
            + REPLY_PRIMING
        )
