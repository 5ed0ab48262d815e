"""What every log importer returns: calls (:class:`LoggedCall`) and an account of what was skipped.

An importer reads one tool's log format and yields one :class:`LoggedCall` per LLM call: the prompt
(text, and the chat messages when logged), the model that answered, the answer, cost, latency and
tokens. A record that cannot become a call (not JSON, a failed call, no prompt, no model) is
*skipped*; a call that lacks an optional field (cost, tokens, latency, answer) is kept and marked
*partial*. Both are listed in :class:`ImportReport` with the file and line they came from, so nothing
is dropped silently.

The helpers here (:func:`read_json_lines`, :func:`epoch_seconds`, :func:`latency_between`,
:func:`parse_json_text`, :func:`error_reason`, :meth:`ImportReport.add_call`, …) are the parsing every
format module shares, so that all formats read numbers, times and bad records alike.

:func:`calls_to_table` turns scored calls into the routing-table schema of
:mod:`zerorouter_integrations.tables` (one prompt per call, one outcome per scored call).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zerorouter_integrations.extras import need

__all__ = [
    "NO_PROMPT_TEXT",
    "ImportIssue",
    "ImportReport",
    "LoggedCall",
    "as_paths",
    "calls_to_frame",
    "calls_to_table",
    "epoch_seconds",
    "error_reason",
    "int_or_none",
    "iter_json_lines",
    "latency_between",
    "number_or_none",
    "optional_id",
    "parse_json_text",
    "read_json_lines",
    "resolve_model",
]

#: Fields a call may lack and still be used; each missing one is reported as a "partial" issue.
OPTIONAL_FIELDS = ("cost_usd", "latency_s", "input_tokens", "output_tokens", "response")

#: The skip reason of a record whose prompt messages are there but hold no text (every format).
NO_PROMPT_TEXT = "no prompt: the messages hold no text"


@dataclass
class LoggedCall:
    """One logged LLM call, whatever tool wrote it.

    Attributes
    ----------
    call_id : str
        The tool's id of the call (LiteLLM ``id``, LangSmith run ``id``, OTel ``spanId``); feedback
        and judge scores are joined on it (and on ``trace_id``).
    prompt : str
        The text a router reads (see :func:`~zerorouter_integrations.features.messages_to_text`).
    model : str
        The model that answered, as logged (provider prefix removed by the importer's ``model_map``).
    messages : list of dict or None
        The chat messages, when the log holds them.
    response : str or None
        The answer text.
    cost_usd, latency_s : float or None
    input_tokens, output_tokens : int or None
    trace_id : str or None
    source : str
        ``"FILE:LINE"`` of the record.
    propensity : float or None
        The probability that the logging router's policy chose this model for this prompt (a mixed
        calibration picks one of two prices by a hash of the prompt: ``mix`` or ``1 − mix`` where the
        two prices choose differently, else 1), when the deployment logged it; what an
        inverse-propensity estimate of another policy's value needs.
    """

    call_id: str
    prompt: str
    model: str
    messages: list[dict[str, Any]] | None = None
    response: str | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    trace_id: str | None = None
    source: str = ""
    propensity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportIssue:
    """A record that was skipped (``kind="skipped"``) or kept without some field (``"partial"``)."""

    file: str
    line: int
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.reason}"


@dataclass
class ImportReport:
    """Calls read from one or more log files, with every skipped or partial record listed."""

    calls: list[LoggedCall] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)
    n_records: int = 0

    @property
    def skipped(self) -> list[ImportIssue]:
        return [i for i in self.issues if i.kind == "skipped"]

    @property
    def partial(self) -> list[ImportIssue]:
        return [i for i in self.issues if i.kind == "partial"]

    def extend(self, other: ImportReport) -> ImportReport:
        self.calls.extend(other.calls)
        self.issues.extend(other.issues)
        self.n_records += other.n_records
        return self

    def skip(self, file: str, line: int, reason: str) -> None:
        self.issues.append(ImportIssue(file, line, "skipped", reason))

    def skip_invalid_json(self, file: str, line: int, exc: json.JSONDecodeError) -> None:
        """Skip a line that is not JSON, naming the parser's message and column."""
        self.skip(file, line, f"not valid JSON: {exc.msg} at column {exc.colno}")

    def add_call(self, call: LoggedCall, file: str, line: int) -> None:
        """Keep ``call`` read from ``file:line`` (its ``source``), listing the optional fields it lacks."""
        call.source = f"{file}:{line}"
        self.calls.append(call)
        self.check_partial(call, file, line)

    def check_partial(self, call: LoggedCall, file: str, line: int) -> None:
        missing = [f for f in OPTIONAL_FIELDS if getattr(call, f) is None]
        if missing:
            self.issues.append(ImportIssue(file, line, "partial", "no " + ", ".join(missing)))

    def summary(self, max_lines: int = 10) -> str:
        """A few lines for people: counts, then the first issues with their file and line."""
        reasons = Counter(re.sub(r"^span \d+: ", "", i.reason).split(":")[0] for i in self.skipped)
        lines = [
            f"{self.n_records} records: {len(self.calls)} calls imported "
            f"({len(self.partial)} partial), {len(self.skipped)} skipped"
        ]
        lines += [f"  skipped {n}× {r}" for r, n in reasons.most_common()]
        lines += [f"  {i}" for i in self.issues[:max_lines]]
        if len(self.issues) > max_lines:
            lines.append(f"  … {len(self.issues) - max_lines} more issues")
        return "\n".join(lines)


def number_or_none(value: Any) -> float | None:
    """A finite float from a number or a numeric string; ``None`` for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def int_or_none(value: Any) -> int | None:
    """A non-negative int from an int, an integral string (exact, e.g. OTLP nanoseconds) or a float."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    x = number_or_none(value)
    return None if x is None or x < 0 else int(round(x))


def as_paths(paths: str | Path | Sequence[str | Path]) -> list[str | Path]:
    """One path, or a sequence of them, as a list (the ``paths`` argument every reader takes)."""
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def parse_json_text(value: Any, *, containers_only: bool = False) -> Any:
    """``value`` parsed when it is a JSON string, else ``value`` itself (also when the string is not JSON).

    With ``containers_only`` only strings that start like an object or an array (``{``, ``[``) are parsed.
    """
    if not isinstance(value, str) or (containers_only and value[:1] not in ("{", "[")):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def latency_between(start: float | None, end: float | None) -> float | None:
    """``end - start``, or ``None`` when either is missing or the end comes before the start."""
    return None if start is None or end is None or end < start else end - start


def optional_id(value: Any) -> str | None:
    """A logged id (e.g. a trace id) as a string; ``None`` when it is missing or empty."""
    return str(value) if value else None


def error_reason(label: str, message: Any) -> str:
    """The skip reason of a failed call: ``label``, then the logged error cut to 120 characters."""
    return f"{label}: {str(message)[:120]}"


def iter_json_lines(path: str | Path, report: ImportReport) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed JSON)`` of each non-blank line; lines that are not JSON are skipped."""
    f = Path(path)
    with f.open("r", encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            report.n_records += 1
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                report.skip_invalid_json(str(f), n, exc)


def epoch_seconds(value: Any) -> float | None:
    """Epoch seconds from a number (epoch milliseconds when above 1e11) or an ISO-8601 string (UTC if naive)."""
    x = number_or_none(value)
    if x is not None:
        return x / 1000.0 if x > 1e11 else x
    if isinstance(value, str) and value:
        try:
            t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)).timestamp()
    return None


def read_json_lines(
    paths: str | Path | Sequence[str | Path],
    parse: Callable[[Any], tuple[LoggedCall | None, str | None]],
) -> ImportReport:
    """Apply ``parse(record) -> (call, reason)`` to every JSON line of every file, recording issues."""
    report = ImportReport()
    for path in as_paths(paths):
        for line, record in iter_json_lines(path, report):
            call, reason = parse(record)
            if call is None:
                report.skip(str(path), line, reason or "unreadable")
                continue
            report.add_call(call, str(path), line)
    return report


def resolve_model(model: str, model_map: Mapping[str, str] | None) -> str:
    """The pool name of a logged model: ``model_map[model]``, else ``model_map`` of the name without its
    ``provider/`` prefix, else the name as logged."""
    if model_map:
        if model in model_map:
            return model_map[model]
        short = model.split("/", 1)[1] if "/" in model else model
        if short in model_map:
            return model_map[short]
    return model


def calls_to_frame(calls: Iterable[LoggedCall]) -> Any:
    """All calls as a pandas DataFrame (one row per call, the :class:`LoggedCall` fields as columns)."""
    need("tables", "calls_to_frame")
    import pandas as pd

    rows = [c.to_dict() for c in calls]
    cols = list(LoggedCall.__dataclass_fields__)
    return pd.DataFrame(rows, columns=cols)


def calls_to_table(
    calls: Sequence[LoggedCall],
    scores: Mapping[str, float],
    *,
    prices: Mapping[str, tuple[float | None, float | None]] | None = None,
    task: str = "logs",
    name: str = "logs",
) -> Any:
    """A :class:`~zerorouter_integrations.tables.RoutingTable` of the calls that have a score.

    ``scores`` maps a call id (or trace id) to a score in [0, 1]. Each scored call becomes a prompt
    (``prompt_id`` = call id) and one outcome of its model, with the logged cost and tokens.
    """
    import numpy as np

    need("tables", "a routing table from logged calls")
    import pandas as pd

    from zerorouter_integrations.tables import RoutingTable

    prompts, outcomes = [], []
    seen: set[str] = set()
    for c in calls:
        s = scores.get(c.call_id)
        if s is None and c.trace_id is not None:
            s = scores.get(c.trace_id)
        if s is None or c.call_id in seen:
            continue
        seen.add(c.call_id)
        prompts.append({"prompt_id": c.call_id, "task": task, "prompt": c.prompt, "reference": None})
        outcomes.append(
            {
                "prompt_id": c.call_id,
                "model": c.model,
                "score": float(s),
                "cost_usd": np.nan if c.cost_usd is None else float(c.cost_usd),
                "input_tokens": np.nan if c.input_tokens is None else float(c.input_tokens),
                "output_tokens": np.nan if c.output_tokens is None else float(c.output_tokens),
            }
        )
    if not outcomes:
        from zerorouter_integrations.errors import SchemaError

        raise SchemaError(
            f"none of the {len(calls)} calls has a score; give feedback, store observations or a judge"
        )
    o = pd.DataFrame(outcomes)
    names = sorted(o["model"].unique())
    prices = prices or {}
    m = pd.DataFrame(
        {
            "model": names,
            "input_usd_per_1m": [_per_1m(prices.get(n, (None, None))[0]) for n in names],
            "output_usd_per_1m": [_per_1m(prices.get(n, (None, None))[1]) for n in names],
        }
    )
    return RoutingTable.from_frames(pd.DataFrame(prompts), o, m, name=name)


def _per_1m(usd_per_token: float | None) -> float:
    return float("nan") if usd_per_token is None else float(usd_per_token) * 1e6
