"""The onboarding anchor set shipped with the package, and how an answer to each anchor is graded.

``artifacts/onboarding_anchors.json.gz`` is built by ``scripts/build_anchor_set.py`` from the shared
tables: 245 prompts over math, multiple choice, commonsense, code and open-ended instructions, each
with the grader that scores an answer in [0, 1]:

* ``number`` / ``exact`` / ``choice``: the final answer against the reference
  (:func:`zerorouter_integrations.answers.grade`);
* ``literal``: a predicted Python value (CRUXEval output prediction) compared as a value;
* ``code``: the answer's code run with the item's tests in a separate interpreter (a timeout, an empty
  temporary folder, ``python -I``). This runs model-written code on your machine; it is not a sandbox:
  pass ``run_code=False`` (CLI ``--no-code``) to leave the code items out;
* ``judge``: open-ended, graded by a judge model against a reference answer
  (:mod:`zerorouter_integrations.judge`); :func:`grade_anchor` returns None for them.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from zerorouter_integrations.answers import extract_choice, extract_json_answer, extract_number, grade

__all__ = ["ANCHOR_SET", "GRADERS", "Anchor", "extract_code", "grade_anchor", "load_anchor_set", "run_tests"]

#: The shipped anchor set.
ANCHOR_SET = Path(__file__).resolve().parent / "artifacts" / "onboarding_anchors.json.gz"
#: Grader names an anchor may carry.
GRADERS = ("number", "exact", "choice", "literal", "code", "judge")

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)
_BEGIN = re.compile(r"\[BEGIN\](.*?)(?:\[DONE\]|\[Done\]|\[done\]|$)", re.S)


@dataclass(frozen=True)
class Anchor:
    """One anchor prompt and what grades an answer to it."""

    id: str
    table: str
    task: str
    domain: str
    grader: str
    prompt: str
    reference: str | None = None
    tests: str | None = None
    code_prefix: str | None = None


def load_anchor_set(path: str | Path = ANCHOR_SET) -> list[Anchor]:
    """The anchors in ``path`` (default: the shipped set), in file order.

    Raises
    ------
    ValueError
        When an item lacks a field or names an unknown grader.
    """
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        payload = json.load(fh)
    out = []
    for i, item in enumerate(payload.get("items", [])):
        if item.get("grader") not in GRADERS:
            raise ValueError(f"{path}: item {i} has grader {item.get('grader')!r}; expected one of {GRADERS}")
        try:
            out.append(Anchor(**item))
        except TypeError as exc:
            raise ValueError(f"{path}: item {i} ({item.get('id')!r}) does not fit Anchor: {exc}") from exc
    return out


def extract_code(response: str) -> str:
    """The code of an answer: inside ``[BEGIN] … [DONE]``, else the fenced blocks, else the whole text."""
    text = response or ""
    m = _BEGIN.search(text)
    if m:
        inner = m.group(1)
        fenced = _FENCE.findall(inner)
        return (fenced[0] if fenced else inner).strip("\n")
    fenced = _FENCE.findall(text)
    if fenced:
        return "\n".join(fenced).strip("\n")
    return text.strip("\n")


def run_tests(program: str, tests: str, *, timeout_s: float = 10.0) -> bool:
    """Whether ``program`` followed by ``tests`` exits 0 in a fresh ``python -I`` within the timeout."""
    with tempfile.TemporaryDirectory(prefix="zerorouter-code-") as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", program + "\n\n" + tests],
                cwd=tmp,
                capture_output=True,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
    return proc.returncode == 0


def _program(anchor: Anchor, response: str) -> str:
    code = extract_code(response)
    if anchor.code_prefix is None:
        return code
    name = re.search(r"^def\s+(\w+)\s*\(", anchor.code_prefix, re.M)
    if name and re.search(rf"^\s*def\s+{re.escape(name.group(1))}\s*\(", code, re.M):
        return code  # the whole function was given back
    lines = code.splitlines()
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    body = "\n".join("    " + ln[indent:] if ln.strip() else "" for ln in lines) or "    pass"
    return anchor.code_prefix.rstrip("\n") + "\n" + body


def _literal(text: str | None) -> object:
    if text is None:
        return None
    try:
        return ("value", ast.literal_eval(text.strip()))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return ("text", text.strip().strip("'\""))


def grade_anchor(
    anchor: Anchor, response: str, *, run_code: bool = True, timeout_s: float = 10.0
) -> float | None:
    """Score ``response`` to ``anchor`` in [0, 1]; None when this grader cannot (judge, or code not run)."""
    if anchor.grader == "judge" or (anchor.grader == "code" and not run_code):
        return None
    if anchor.grader == "code":
        return 1.0 if run_tests(_program(anchor, response), anchor.tests or "", timeout_s=timeout_s) else 0.0
    if anchor.grader == "literal":
        got = extract_json_answer(response or "")
        if got is None:
            lines = [ln for ln in (response or "").strip().splitlines() if ln.strip()]
            got = lines[-1] if lines else None
        return 1.0 if got is not None and _literal(got) == _literal(anchor.reference) else 0.0
    extractor = {"number": extract_number, "choice": extract_choice}.get(anchor.grader)
    return grade(response or "", anchor.reference, extractor=extractor)
