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

__all__ = [
    "TEXT_FEATURES",
    "PromptFeaturizer",
    "focus_question",
    "messages_to_text",
    "request_reading",
    "split_question",
    "split_turn",
    "text_features",
]

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


def _content_text(msg: dict[str, Any]) -> str:
    """The text parts of one message (OpenAI string or list content; image parts skipped)."""
    if not isinstance(msg, dict):
        raise TypeError(f"each message must be a dict with 'role' and 'content', got {type(msg).__name__}")
    content = msg.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") in (None, "text")
        )
    return ""


def split_turn(messages: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """``(current turn, context)``: the texts being answered now and the texts around them.

    The current turn is the last user message and, when the request continues an agent step, the
    tool (or function) results of that step (after the newest assistant message), newest first. The
    context is everything else, newest first: the system prompt, the earlier turns and earlier
    steps' tool results (assistant messages that only call tools carry no text and drop out).
    """
    texts = [(str(m.get("role", "")) if isinstance(m, dict) else "", _content_text(m)) for m in messages]
    last_user = max((i for i, (role, _t) in enumerate(texts) if role == "user"), default=None)
    if last_user is not None:
        step = max((i for i, (role, _t) in enumerate(texts) if role == "assistant"), default=-1)
        start = max(last_user, step) + 1  # the results that answer the newest assistant tool call
        results = [i for i in range(start, len(texts)) if texts[i][0] in ("tool", "function") and texts[i][1]]
        turn = [texts[last_user][1]] + [texts[i][1] for i in results[::-1]]
        in_turn = {last_user, *results}
        context = [t for i, (_role, t) in enumerate(texts) if i not in in_turn and t][::-1]
    else:  # no user message (a system-only or tool-only request): the newest text is the turn
        nonempty = [t for _role, t in texts if t]
        turn, context = nonempty[-1:], nonempty[-2::-1]
    return [t for t in turn if t], context


#: A turn longer than this many characters (about the encoder's 64-token window) that holds retrieved
#: context is read for its question (:func:`split_question`).
FOCUS_CHARS = 400
_QUESTION_MARK = re.compile(
    r"^[ \t#*]*(?:user |the )?(?:question|query|request|task|instruction)s?[ \t*]*[:：]", re.I | re.M
)
_CONTEXT_WORDS = r"(?:context|contexts|documents?|sources?|search results|passages|excerpts)"
_CONTEXT_MARK = re.compile(
    rf"^[ \t#*]*(?:retrieved |relevant |the )?{_CONTEXT_WORDS}[ \t*]*[:：]"  # "Context: …"
    rf"|^[^\n]*\b{_CONTEXT_WORDS}[ \t*]*[:：][ \t]*$"  # "… the following context:" ending a line
    r"|^[ \t]*context information\b"  # LlamaIndex's question-answering template
    r"|<(?:context|documents?|sources?|search_results)\b",
    re.I | re.M,
)
_CONTEXT_CLOSE = re.compile(r"</(?:context|documents?|sources?|search_results)>", re.I)
_ANSWER_MARK = re.compile(r"^[ \t#*]*(?:helpful )?answer[ \t*]*[:：]?\s*\Z", re.I | re.M)


def split_question(text: str) -> tuple[str, str] | None:
    """``(question, rest)`` of a turn that holds retrieved context and a question, else ``None``.

    When ``text`` is longer than :data:`FOCUS_CHARS` and marks retrieved context (a ``Context:`` /
    ``Documents:`` / ``Sources:`` line, a line ending in "… the following context:", LlamaIndex's
    "Context information is below", or a ``<context>`` / ``<documents>`` tag), the question is the
    last ``Question:`` (``Query:``, ``Task:``, …) segment without its label, up to the next context
    mark (the last label that is not a markdown heading, when there is one); or, when the context
    opens the text, what follows its closing tag or the last paragraph.
    ``rest`` is everything else (the instructions, the documents, a trailing bare ``Answer:`` cue).
    Text without such marks (every prompt of the shared routing tables) gives ``None``.
    """
    if len(text) <= FOCUS_CHARS:
        return None
    contexts = list(_CONTEXT_MARK.finditer(text))
    if not contexts:
        return None
    questions = list(_QUESTION_MARK.finditer(text))
    if questions:
        # a template's own label is plain ("Question:"); a markdown heading ("## Question:") is more
        # likely part of the question or of a document, so the last plain label wins
        plain = [m for m in questions if not m.group(0).lstrip().startswith("#")]
        q = (plain or questions)[-1]
        ends = [m.start() for m in contexts if m.start() > q.start()]
        end = min(ends) if ends else len(text)
        segment = text[q.end() : end].strip()  # the question without its label
        question = _ANSWER_MARK.sub("", segment).rstrip()
        cue = segment[len(question) :].strip()  # a bare "Answer:" cue after it stays last
        rest = "\n\n".join(p for p in (text[: q.start()].strip(), text[end:].strip(), cue) if p)
        return (question, rest) if question else None
    if contexts[0].start() > FOCUS_CHARS // 4:
        return None  # the context does not open the text: the request comes first already
    closes = list(_CONTEXT_CLOSE.finditer(text))
    if closes and 0 < len(text[closes[-1].end() :].strip()) <= FOCUS_CHARS:  # "<context>…</context> ask"
        return text[closes[-1].end() :].strip(), text[: closes[-1].end()]
    body = _ANSWER_MARK.sub("", text.rstrip()).rstrip()
    cue = text.rstrip()[len(body) :]
    paras = re.split(r"\n\s*\n", body)
    if len(paras) < 2 or len(paras[-1]) > FOCUS_CHARS or _CONTEXT_MARK.search(paras[-1]):
        return None
    return paras[-1].strip(), "\n\n".join(paras[:-1]) + cue


def focus_question(text: str) -> str:
    """A turn that holds retrieved context and a question, question first (else ``text`` as it is).

    The encoder reads only the opening tokens, so a RAG prompt that puts its documents before the
    question ("Context: … Question: …") would be routed on the documents. :func:`split_question`
    finds the question; it opens the result, the rest follows, so nothing but the question's label
    is dropped. Text without retrieval marks (every prompt of the shared tables) is unchanged.
    """
    got = split_question(text)
    if got is None:
        return text
    question, rest = got
    return f"{question}\n\n{rest}" if rest else question


def request_reading(
    messages: Sequence[dict[str, Any]] | str,
    *,
    current_turn: bool = True,
    focus: bool = True,
    tool_results: bool = True,
) -> str:
    """What the encoder reads of a request: the turn being answered, whole, its question first.

    A string or a single user message without retrieved context is read as it is (the form the
    routing tables hold, so those prompts are routed exactly as they were fit). In a conversation
    the reading is the current turn (:func:`split_turn`: the last user message, then the tool
    results of the current agent step); when the user message holds retrieved documents and a
    question (:func:`split_question`), the question stands for it. So neither a system prompt, nor
    earlier turns, nor retrieved documents push the question out of the encoder's 64-token window or
    into the cheap text features (which were learned on bare questions: a document's length says
    nothing about the question's difficulty); context counts in the token and cost estimate and the
    capability constraints instead. The switches turn each handling off (for the ablation in
    ``benchmarks/traffic_features.py``): ``current_turn=False`` reads the whole conversation
    oldest-first (what a plain join does); ``focus=False`` reads a long turn as it is;
    ``tool_results=False`` leaves the current step's tool results out.
    """
    if isinstance(messages, str):
        got = split_question(messages) if focus else None
        return messages if got is None else got[0]
    if not current_turn:
        return "\n".join(t for t in (_content_text(m) for m in messages) if t)
    turn, _context = split_turn(messages)
    if not turn:
        return ""
    has_user = any(isinstance(m, dict) and m.get("role") == "user" for m in messages)
    got = split_question(turn[0]) if focus and has_user else None
    head = [turn[0] if got is None else got[0]]
    rest = turn[1:] if has_user else []
    return "\n".join(head + (rest if tool_results else []))


def messages_to_text(messages: Sequence[dict[str, Any]] | str, *, max_chars: int = 8000) -> str:
    """The text a router should read from a chat request: the turn being answered first.

    A single user message is returned as it is (the form the routing tables hold). In a
    conversation, the current turn (:func:`split_turn`: the last user message, then the tool
    results of the current agent step) comes first and whole, so the encoder, which reads only the
    opening tokens, always reads the question being answered; the context (system prompt, earlier
    turns, newest first) follows, so the cheap text features still see it. Image parts are
    skipped; list-valued OpenAI content parts are supported. The result is cut to ``max_chars``,
    keeping the current turn.
    """
    if isinstance(messages, str):
        return messages[-max_chars:]
    turn, context = split_turn(messages)
    head = "\n".join(turn)
    if not context:
        return head[-max_chars:]
    room = max_chars - len(head) - 2
    if room <= 0:
        return head[-max_chars:]
    return f"{head}\n\n{chr(10).join(context)[:room]}"


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
        """Feature vector of one prompt text."""
        emb = self._encoder().encode_one(text)[None, :]
        return self.transform([text], emb)[0]

    def transform_request(self, messages: Sequence[dict[str, Any]] | str) -> np.ndarray:
        """Feature vector of one chat request: the turn being answered, read on its own.

        A string or a single user message is read as it is (like a table's prompt). In a conversation
        the features are those of the current turn (:func:`request_reading`: the last user message,
        question first when it holds retrieved context, and the tool results of the current agent
        step), so a later turn is routed on what it asks, not on the conversation's opening.
        """
        return self.transform_one(request_reading(messages))
