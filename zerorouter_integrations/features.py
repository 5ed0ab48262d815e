"""Prompt features: the text → embedding (+ cheap text features) step of the routing pipeline.

The context-aware predictor of a latent space reads ``X = [embedding, text features]``. The text
features are signals a sentence embedding tends to miss and that cost nothing to compute: length,
line structure, code and math markers, multiple-choice format, and a few-shot layout. Each is
bounded and roughly unit-scaled so no standardization state is needed here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["TEXT_FEATURES", "PromptFeaturizer", "messages_to_text", "text_features"]

_CODE = re.compile(r"```|\bdef \w+\(|\breturn\b|\bclass \w+|;\s*$|\bimport \w+|==|\{\s*$|\bprint\(", re.M)
_MATH = re.compile(r"\$|\\frac|\\sqrt|\\cdot|\^\{|\\le|\\ge|\\pi|\d\s*[\+\-\*/×÷=]\s*\d")
_CHOICE = re.compile(r"^\s*\(?[A-Ea-e][\).:]\s+\S", re.M)
_SHOTS = re.compile(r"^(Answer|A|Output|Solution)\s*:", re.M | re.I)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

#: Names of the columns returned by :func:`text_features`, in order.
TEXT_FEATURES = (
    "log_chars",
    "log_lines",
    "digit_frac",
    "code_markers",
    "math_markers",
    "choice_lines",
    "shot_markers",
    "numbers",
    "question_marks",
    "upper_frac",
)


def _one(text: str) -> list[float]:
    n = len(text)
    if n == 0:
        return [0.0] * len(TEXT_FEATURES)
    digits = sum(ch.isdigit() for ch in text)
    upper = sum(ch.isupper() for ch in text)
    return [
        math.log1p(n) / 8.0,
        math.log1p(text.count("\n")) / 4.0,
        digits / n * 5.0,
        min(len(_CODE.findall(text)), 20) / 5.0,
        min(len(_MATH.findall(text)), 40) / 10.0,
        min(len(_CHOICE.findall(text)), 20) / 5.0,
        min(len(_SHOTS.findall(text)), 20) / 5.0,
        math.log1p(len(_NUMBER.findall(text))) / 4.0,
        min(text.count("?"), 10) / 5.0,
        upper / n * 5.0,
    ]


def text_features(texts: Sequence[str]) -> np.ndarray:
    """Cheap text features of each prompt, shape ``(n, len(TEXT_FEATURES))``."""
    return np.asarray([_one(t) for t in texts], dtype=np.float32).reshape(len(texts), len(TEXT_FEATURES))


def messages_to_text(messages: Sequence[dict[str, Any]] | str, *, max_chars: int = 8000) -> str:
    """The text a router should read from a chat request.

    All text parts of the conversation (system, user, assistant, tool), oldest first, with the last
    user turn repeated at the end so it always lies inside the encoder's window; image parts are
    skipped. List-valued OpenAI content parts are supported. The result is cut to ``max_chars`` from
    the end, keeping the most recent context.
    """
    if isinstance(messages, str):
        return messages[-max_chars:]
    parts: list[str] = []
    last_user = ""
    for msg in messages:
        if not isinstance(msg, dict):
            raise TypeError(
                f"each message must be a dict with 'role' and 'content', got {type(msg).__name__}"
            )
        content = msg.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "\n".join(
                str(p.get("text", ""))
                for p in content
                if isinstance(p, dict) and p.get("type") in (None, "text")
            )
        else:
            text = ""
        if text:
            parts.append(text)
            if msg.get("role") == "user":
                last_user = text
    joined = "\n".join(parts)
    if last_user and len(parts) > 1 and not joined.endswith(last_user):
        joined = f"{joined}\n{last_user}"
    return joined[-max_chars:]


class PromptFeaturizer:
    """Texts → feature matrix ``[embedding, text features]``.

    Parameters
    ----------
    encoder : QueryEncoder or None
        Encoder used when no precomputed embeddings are passed (lazy default: the bundled MiniLM).
    use_text_features : bool, default=True
    """

    def __init__(self, encoder: Any = None, *, use_text_features: bool = True):
        self.encoder = encoder
        self.use_text_features = use_text_features

    def _encoder(self) -> Any:
        if self.encoder is None:
            from zerorouter_integrations.encoder import QueryEncoder

            self.encoder = QueryEncoder()
        return self.encoder

    def transform(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Feature matrix for ``texts`` (embeddings computed unless given)."""
        if embeddings is None:
            embeddings = self._encoder().encode(list(texts))
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if len(embeddings) != len(texts):
            raise ValueError(f"got {len(embeddings)} embeddings for {len(texts)} texts")
        if not self.use_text_features:
            return embeddings
        return np.hstack([embeddings, text_features(texts).astype(np.float64)])

    def transform_one(self, text: str) -> np.ndarray:
        emb = self._encoder().encode_one(text)[None, :]
        return self.transform([text], emb)[0]
