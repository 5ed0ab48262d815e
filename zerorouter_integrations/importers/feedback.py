"""Scores for logged calls: a feedback file, or the store's ``record_quality`` observations.

A feedback file is JSON lines or CSV with one row per graded call: an id column (``call_id``,
``request_id``, ``run_id``, ``span_id``, ``trace_id`` or ``id``, first present wins: a LangSmith
feedback export has ``run_id`` next to its own ``id``) and a score (``score``, ``value`` or
``thumbs``): a number in [0, 1], ``true``/``false``, or ``up``/``down``/``👍``/``👎``. Rows without a
usable id or score are skipped and reported with their line number; when an id is graded twice the
later row wins (and it is reported).

:func:`store_observations` reads what :meth:`ZeroRouter.record_quality
<zerorouter_integrations.router.ZeroRouter.record_quality>` stored: ``(latent coordinates, score)`` per
model, usable directly to refine abilities (no prompt text needed).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerorouter_integrations.importers.base import (
    ImportIssue,
    ImportReport,
    as_paths,
    iter_json_lines,
    number_or_none,
)

__all__ = ["LatentObservation", "parse_score", "read_feedback", "store_observations"]

ID_KEYS = ("call_id", "request_id", "run_id", "span_id", "trace_id", "id")
SCORE_KEYS = ("score", "value", "thumbs")
_WORDS = {"up": 1.0, "down": 0.0, "good": 1.0, "bad": 0.0, "👍": 1.0, "👎": 0.0, "true": 1.0, "false": 0.0}


def parse_score(value: Any) -> float | None:
    """A score in [0, 1] from a number, a bool or a thumbs word; ``None`` when there is none."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str) and value.strip().lower() in _WORDS:
        return _WORDS[value.strip().lower()]
    x = number_or_none(value)
    return x if x is not None and 0.0 <= x <= 1.0 else None


def _rows(path: Path, report: ImportReport) -> Iterable[tuple[int, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                report.n_records += 1
                yield n, row
    else:
        yield from iter_json_lines(path, report)


def read_feedback(paths: str | Path | Sequence[str | Path]) -> tuple[dict[str, float], ImportReport]:
    """``{call id: score}`` from feedback files, and the report of skipped rows."""
    report = ImportReport()
    scores: dict[str, float] = {}
    for path in as_paths(paths):
        f = Path(path)
        for line, row in _rows(f, report):
            if not isinstance(row, Mapping):
                report.skip(
                    str(f), line, f"expected an object with an id and a score, got {type(row).__name__}"
                )
                continue
            key = next((str(row[k]) for k in ID_KEYS if row.get(k) not in (None, "")), None)
            if key is None:
                report.skip(str(f), line, f"no id: expected one of {list(ID_KEYS)}")
                continue
            raw = next((row[k] for k in SCORE_KEYS if row.get(k) not in (None, "")), None)
            score = parse_score(raw)
            if score is None:
                report.skip(str(f), line, f"score {raw!r} is not a number in [0, 1], a bool or up/down")
                continue
            if key in scores:
                report.issues.append(
                    ImportIssue(str(f), line, "partial", f"{key} graded again; this row wins")
                )
            scores[key] = score
    return scores, report


@dataclass
class LatentObservation:
    """One graded answer at known latent coordinates (what ``record_quality`` stores)."""

    model: str
    z: list[float]
    score: float


def store_observations(store: Any, models: Iterable[str]) -> list[LatentObservation]:
    """Every ``record_quality`` observation of ``models`` held by a profile store (oldest first)."""
    out = []
    for m in models:
        for z, s in store.quality_observations(m):
            out.append(LatentObservation(m, [float(v) for v in z], float(s)))
    return out
