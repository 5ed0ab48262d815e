"""Importers: your own traffic (LiteLLM, LangSmith, OpenTelemetry GenAI logs) into the routing-table schema.

Each format lives in its own module and returns an :class:`ImportReport` of :class:`LoggedCall`
objects plus every skipped or partial record with its file and line:

* :mod:`.litellm_logs`: LiteLLM's ``StandardLoggingPayload`` JSON lines and proxy spend-log rows;
* :mod:`.langsmith`: LangSmith run exports (JSON lines);
* :mod:`.otel`: OTLP/JSON spans following the GenAI semantic conventions.

Scores come from :mod:`.feedback` (a feedback file, or the store's ``record_quality`` observations)
or from :mod:`.judge` (a judge model through LiteLLM). :func:`read_logs` picks the reader per file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.importers.base import (
    ImportIssue,
    ImportReport,
    LoggedCall,
    as_paths,
    calls_to_frame,
    calls_to_table,
)

__all__ = [
    "FORMATS",
    "ImportIssue",
    "ImportReport",
    "LoggedCall",
    "calls_to_frame",
    "calls_to_table",
    "detect_format",
    "read_logs",
]

#: Log formats :func:`read_logs` understands.
FORMATS = ("litellm", "langsmith", "otlp")


def detect_format(path: str | Path) -> str:
    """``"litellm"``, ``"langsmith"`` or ``"otlp"`` from the first record of a log file."""
    f = Path(path)
    if not f.is_file():
        raise SchemaError(f"{f}: log file not found")
    with f.open("r", encoding="utf-8", errors="replace") as fh:
        head = fh.read(1 << 16)
    first = next((ln for ln in head.splitlines() if ln.strip()), "")
    if '"resourceSpans"' in head[:4096]:
        return "otlp"
    try:
        rec = json.loads(first)
    except json.JSONDecodeError:
        raise SchemaError(
            f"{f}: the first line is not JSON; expected JSON lines (LiteLLM, LangSmith) or OTLP/JSON"
        ) from None
    if isinstance(rec, dict):
        if "run_type" in rec or "dotted_order" in rec:
            return "langsmith"
        if {"response_cost", "call_type", "spend", "standard_logging_object"} & set(rec):
            return "litellm"
    raise SchemaError(
        f"{f}: cannot tell the log format from its first record (keys {sorted(rec)[:8] if isinstance(rec, dict) else type(rec).__name__}); "
        f"pass format= one of {list(FORMATS)}"
    )


def read_logs(
    paths: str | Path | Sequence[str | Path],
    *,
    format: str = "auto",
    model_map: Mapping[str, str] | None = None,
    prices: Mapping[str, tuple[float | None, float | None]] | None = None,
) -> ImportReport:
    """Read log files of any supported format (``format="auto"`` detects it per file)."""
    from zerorouter_integrations.importers.langsmith import read_langsmith_runs
    from zerorouter_integrations.importers.litellm_logs import read_litellm_logs
    from zerorouter_integrations.importers.otel import read_otlp_spans

    if format != "auto" and format not in FORMATS:
        raise ValueError(f"format must be 'auto' or one of {list(FORMATS)}, got {format!r}")
    report = ImportReport()
    for path in as_paths(paths):
        kind = detect_format(path) if format == "auto" else format
        if kind == "litellm":
            report.extend(read_litellm_logs(path, model_map=model_map))
        elif kind == "langsmith":
            report.extend(read_langsmith_runs(path, model_map=model_map))
        else:
            report.extend(read_otlp_spans(path, model_map=model_map, prices=prices))
    return report
