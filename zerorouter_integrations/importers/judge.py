"""Scores from a judge model run over logged answers through LiteLLM (sample-limited, cached).

:func:`judge_calls` asks ``judge_model`` to grade up to ``max_calls`` logged (prompt, answer) pairs
(a seeded sample when there are more) on a 1–10 scale and maps the grade ``g`` to ``(g − 1) / 9``.
Grades are cached in a SQLite file keyed by (judge model, prompt, answer), so a re-run only pays for
new answers. Calls without an answer, failed judge calls and replies without a grade are counted in
the returned report with the call's source line.
"""

from __future__ import annotations

import hashlib
import random
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zerorouter_integrations.importers.base import ImportReport, LoggedCall

__all__ = ["JUDGE_PROMPT", "judge_calls", "parse_grade"]

JUDGE_PROMPT = (
    "You grade answers of an AI assistant. Read the user's request and the answer, then rate how well "
    "the answer fulfils the request on a scale from 1 (useless or wrong) to 10 (excellent and correct). "
    "Reply with the number only.\n\n[REQUEST]\n{prompt}\n\n[ANSWER]\n{answer}\n\n[GRADE 1-10]"
)
_GRADE = re.compile(r"(?<![\d.])(10|[1-9])(?:\s*/\s*10)?(?![\d.])")


def parse_grade(text: str | None) -> float | None:
    """The first grade 1–10 in a judge's reply mapped to [0, 1]; ``None`` when there is none."""
    if not text:
        return None
    m = _GRADE.search(text)
    return None if m is None else (int(m.group(1)) - 1) / 9.0


class _Cache:
    def __init__(self, path: str | Path | None):
        self.db = sqlite3.connect(str(path) if path else ":memory:")
        self.db.execute("CREATE TABLE IF NOT EXISTS grades (key TEXT PRIMARY KEY, score REAL)")

    @staticmethod
    def key(model: str, prompt: str, answer: str) -> str:
        h = hashlib.sha256()
        for part in (model, prompt, answer):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()

    def get(self, key: str) -> float | None:
        row = self.db.execute("SELECT score FROM grades WHERE key = ?", (key,)).fetchone()
        return None if row is None else float(row[0])

    def put(self, key: str, score: float) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO grades VALUES (?, ?)", (key, score))


def judge_calls(
    calls: Sequence[LoggedCall],
    judge_model: str,
    *,
    max_calls: int = 200,
    cache: str | Path | None = None,
    seed: int = 0,
    api_base: str | None = None,
    api_key: str | None = None,
    prompt_template: str = JUDGE_PROMPT,
    timeout_s: float = 60.0,
    **completion_kwargs: Any,
) -> tuple[dict[str, float], ImportReport]:
    """``{call id: score}`` from ``judge_model`` (a LiteLLM model string) over a sample of the calls.

    ``cache`` is a SQLite file (default: in memory, i.e. no reuse across runs); cached grades do not
    count toward ``max_calls`` paid calls.
    """
    if max_calls < 0:
        raise ValueError(f"max_calls must be ≥ 0, got {max_calls!r}")
    from zerorouter_integrations._env import import_litellm

    litellm = import_litellm()
    report = ImportReport()
    store = _Cache(cache)
    usable = []
    for c in calls:
        report.n_records += 1
        if c.response:
            usable.append(c)
        else:
            file, _, line = c.source.rpartition(":")
            report.skip(
                file or c.source,
                int(line) if line.isdigit() else 0,
                f"call {c.call_id}: no logged answer to judge",
            )
    scores: dict[str, float] = {}
    todo = []
    for c in usable:
        cached = store.get(_Cache.key(judge_model, c.prompt, c.response or ""))
        if cached is not None:
            scores[c.call_id] = cached
        else:
            todo.append(c)
    if len(todo) > max_calls:
        todo = random.Random(seed).sample(todo, max_calls)
    for c in todo:
        file, _, line = c.source.rpartition(":")
        where = (file or c.source, int(line) if line.isdigit() else 0)
        try:
            resp = litellm.completion(
                model=judge_model,
                messages=[
                    {"role": "user", "content": prompt_template.format(prompt=c.prompt, answer=c.response)}
                ],
                api_base=api_base,
                api_key=api_key,
                temperature=0,
                max_tokens=8,
                timeout=timeout_s,
                **completion_kwargs,
            )
        except Exception as exc:  # one failed judge call must not stop the others
            report.skip(*where, f"judge call failed: {type(exc).__name__}: {str(exc)[:100]}")
            continue
        score = parse_grade(resp.choices[0].message.content)
        if score is None:
            report.skip(*where, f"judge reply {resp.choices[0].message.content!r:.60} holds no grade 1-10")
            continue
        store.put(_Cache.key(judge_model, c.prompt, c.response or ""), score)
        scores[c.call_id] = score
    return scores, report
