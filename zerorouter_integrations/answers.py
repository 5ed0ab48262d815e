"""Final-answer extraction and grading, without running code.

Used to grade live onboarding runs against an anchor's reference answer and, in cascades, to compare
two models' answers. Extractors are pluggable: any ``Callable[[str], str | None]``.

* :func:`extract_json_answer`: the ``"answer"`` field of a JSON object in the text (ZeroEval's format);
* :func:`extract_choice`: a multiple-choice letter (``A``–``E``, "Answer: C", "(b)", "The answer is D");
* :func:`extract_number`: the last number (thousands separators and ``$`` removed, ``\\boxed{}`` first);
* :func:`extract_final`: JSON answer → boxed → "answer is/Answer:" line → last line, normalized.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "ANSWER_KINDS",
    "Extractor",
    "answers_agree",
    "answers_match",
    "canonical_answer",
    "detect_answer_kind",
    "extract_answer",
    "extract_choice",
    "extract_final",
    "extract_json_answer",
    "extract_number",
    "extractor_for",
    "grade",
    "normalize_answer",
]

Extractor = Callable[[str], "str | None"]

_JSON_OBJ = re.compile(r"\{.*\}", re.S)
_ANSWER_FIELD = re.compile(r'"answer"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\n]+)', re.S)
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_CHOICE_PATTERNS = [
    re.compile(r"(?:answer|option|choice)\s*(?:is|:)?\s*[:\-]?\s*\(?([A-E])\)?(?![A-Za-z])", re.I),
    re.compile(r"^\s*\(?([A-E])\)?(?:[\s\.\):]|$)", re.M),
    re.compile(r"\(([A-E])\)"),
]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_ANSWER_LINE = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*(.+)", re.I)


def extract_json_answer(text: str) -> str | None:
    """The ``answer`` field of the (last) JSON object in ``text``, as a string."""
    if not text:
        return None
    m = _JSON_OBJ.search(text)
    if m:
        try:
            obj = json.loads(m.group(0))
            if isinstance(obj, dict) and "answer" in obj:
                return str(obj["answer"]).strip()
        except (json.JSONDecodeError, ValueError):
            pass
    m2 = list(_ANSWER_FIELD.finditer(text))
    if m2:
        raw = m2[-1].group(1).strip()
        if raw.startswith('"'):
            try:
                return str(json.loads(raw)).strip()
            except json.JSONDecodeError:
                return raw.strip('"').strip()
        return raw
    return None


def extract_choice(text: str) -> str | None:
    """A multiple-choice letter A–E, or ``None``."""
    if not text:
        return None
    inner = extract_json_answer(text)
    if inner:
        text = inner
    stripped = text.strip()
    if len(stripped) <= 3:
        m = re.fullmatch(r"\(?([A-Ea-e])[\)\.]?", stripped)
        if m:
            return m.group(1).upper()
    for pat in _CHOICE_PATTERNS:
        found = pat.findall(text)
        if found:
            return found[0].upper()
    return None


def extract_number(text: str) -> str | None:
    """The final number in ``text`` (boxed / JSON answer first), normalized (``"1,000.50"`` → ``"1000.5"``)."""
    if not text:
        return None
    for getter in (extract_json_answer, lambda t: (_BOXED.findall(t) or [None])[-1]):
        inner = getter(text)
        if inner:
            nums = _NUMBER.findall(inner.replace(",", "").replace("$", ""))
            if nums:
                return _canon_number(nums[-1])
    nums = _NUMBER.findall(text.replace(",", "").replace("$", ""))
    return _canon_number(nums[-1]) if nums else None


def _canon_number(s: str) -> str:
    try:
        if "/" in s:
            a, b = s.split("/")
            v = float(a) / float(b)
        else:
            v = float(s)
    except (ValueError, ZeroDivisionError):
        return s
    if math.isfinite(v) and v == int(v):
        return str(int(v))
    return f"{v:.6g}"


def normalize_answer(s: str | None) -> str | None:
    """Lower-case, strip LaTeX wrappers, punctuation at the ends and white space."""
    if s is None:
        return None
    s = str(s).strip()
    boxed = _BOXED.findall(s)
    if boxed:
        s = boxed[-1]
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("$", "")
    s = re.sub(r"\\text\{([^}]*)\}", r"\1", s)
    s = re.sub(r"\s+", " ", s).strip().strip(".").strip().lower()
    num = _NUMBER.fullmatch(s.replace(",", ""))
    if num:
        return _canon_number(num.group(0))
    return s


def extract_final(text: str) -> str | None:
    """Best-effort final answer of a free-form response, normalized."""
    if not text:
        return None
    for getter in (extract_json_answer, lambda t: (_BOXED.findall(t) or [None])[-1]):
        v = getter(text)
        if v:
            return normalize_answer(v)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        m = _ANSWER_LINE.search(ln)
        if m:
            return normalize_answer(m.group(1))
    return normalize_answer(lines[-1]) if lines else None


def answers_agree(a: str | None, b: str | None) -> bool:
    """Two extracted answers agree: both present and equal after normalization (numbers compared as numbers)."""
    if a is None or b is None:
        return False
    na, nb = normalize_answer(a), normalize_answer(b)
    if na == nb:
        return True
    if na is None or nb is None:
        return False
    try:
        return abs(float(na) - float(nb)) <= 1e-6 * max(1.0, abs(float(nb)))
    except (TypeError, ValueError):
        return False


def grade(response: str, reference: str | None, *, extractor: Extractor | None = None) -> float | None:
    """1.0 when the response's final answer matches the reference, else 0.0; ``None`` without a reference.

    The extractor is chosen from the reference's shape unless given: a letter A–E → choice, a number →
    number, else :func:`extract_final`.
    """
    if reference is None or str(reference).strip() == "":
        return None
    ref = str(reference).strip()
    if extractor is None:
        if re.fullmatch(r"\(?[A-Ea-e]\)?", ref):
            extractor = extract_choice
            ref = ref.strip("()").upper()
        elif _NUMBER.fullmatch(ref.replace(",", "").replace("$", "")):
            extractor = extract_number
        else:
            extractor = extract_final
    got = extractor(response or "")
    return 1.0 if answers_agree(got, ref) else 0.0


# ---------------------------------------------------------------- comparing two answers (cascades)

#: Answer kinds a cascade can compare, and the extractor of each.
ANSWER_KINDS: dict[str, Callable[[str], str | None]] = {
    "choice": extract_choice,
    "choice2": extract_choice,
    "number": extract_number,
    "json": lambda text: extract_json_answer(text) or extract_final(text),
    "short": extract_final,
}

_JSON_ANSWER = re.compile(
    r"[\"'`]answer[\"'`]\s*:|\banswer\b[^\n]{0,40}\bjson\b|\bjson\b[^\n]{0,80}\banswer\b", re.I
)
_CHOICE_LINE = re.compile(r"^\s*\(?[A-Ea-e][\).:]\s+\S", re.M)
_CHOICE_LETTER = re.compile(r"^\s*\(?([A-Ea-e])[\).:]\s+\S", re.M)
_CHOICE_ASK = re.compile(
    r"single (?:choice|letter)|letter of the correct|answer with (?:the |a )?(?:letter|option)|"
    r"\(?[A-E]\)?\s*(?:,|or)\s*\(?[B-E]\)?\s*(?:,|or)",
    re.I,
)
_CODE_ASK = re.compile(
    r"\bwrite (?:a |an |the )?(?:python |java |c\+\+ |js |javascript )?(?:function|program|"
    r"script|class|code|method|query)|```|\bdef \w+\(|\bimplement\b",
    re.I,
)
_SHORT_ASK = re.compile(
    r"final answer|\\boxed|answer (?:only|with (?:a|one|the)|in (?:one|a single))|"
    r"only (?:the|a) (?:number|answer|word|name)|single (?:word|number)|"
    r"how (?:many|much)|what is the value|calculate|compute|evaluate|solve",
    re.I,
)
_NUMERIC_ASK = re.compile(
    r"how (?:many|much)|what is the (?:sum|product|total|value|number)|calculate|compute", re.I
)


def detect_answer_kind(text: str) -> str | None:
    """Which extractor compares two answers to this prompt, or ``None`` when answers are not comparable.

    ``"json"`` when the prompt asks for a JSON ``answer`` field, ``"choice"`` for multiple-choice
    questions (``"choice2"`` when the last question has only two options: two wrong answers then
    always agree), ``None`` for code or open-ended requests, ``"number"`` for numeric questions, and
    ``"short"`` when the prompt asks for a short final answer. Decided from the prompt alone, before
    any model is called.
    """
    if not text:
        return None
    tail = text[-3000:]
    if _JSON_ANSWER.search(tail):
        return "json"
    if len(_CHOICE_LINE.findall(tail)) >= 2 or _CHOICE_ASK.search(tail):
        blocks = [b for b in re.split(r"\n\s*\n", tail) if _CHOICE_LINE.search(b)]
        letters = {x.upper() for x in _CHOICE_LETTER.findall(blocks[-1])} if blocks else set()
        return "choice2" if len(letters) == 2 else "choice"
    if _CODE_ASK.search(tail):
        return None
    if _NUMERIC_ASK.search(tail) and re.search(r"\d", tail):
        return "number"
    if _SHORT_ASK.search(tail):
        return "short"
    return None


def extractor_for(kind: str | None, extractor: Any = "auto") -> Callable[[str], str | None] | None:
    """The extractor of an answer kind (``extractor`` callable wins; ``None`` kind → no extractor)."""
    if callable(extractor):
        return extractor
    if kind is None:
        return None
    if kind not in ANSWER_KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; expected one of {sorted(ANSWER_KINDS)} or None")
    return ANSWER_KINDS[kind]


def canonical_answer(answer: Any) -> str | None:
    """A comparable form of an extracted answer: normalized (:func:`answers.normalize_answer`),
    white space removed, quotes unified; ``None`` for a missing or empty answer."""
    if answer is None or (isinstance(answer, float) and math.isnan(answer)):
        return None
    s = normalize_answer(str(answer))
    if s is None:
        return None
    s = re.sub(r"\s+", "", s).replace("'", '"')
    return s or None


def answers_match(a: str | None, b: str | None) -> bool:
    """Two canonical answers agree: both present and equal (numbers compared as numbers)."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return abs(fa - fb) <= 1e-6 * max(1.0, abs(fb))


def extract_answer(text: str | None, kind: str | None, extractor: Any = "auto") -> str | None:
    """The canonical answer in ``text`` for an answer kind (``None`` when there is none or it cannot be
    extracted; an extractor that raises counts as no answer)."""
    fn = extractor_for(kind, extractor)
    if fn is None or not text:
        return None
    try:
        return canonical_answer(fn(text))
    except Exception:
        return None
