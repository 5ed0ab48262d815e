"""OpenTelemetry GenAI spans in OTLP JSON (``ExportTraceServiceRequest``), one document or JSON lines.

The OTLP/JSON encoding nests spans as ``resourceSpans[].scopeSpans[].spans[]``; each span has
``traceId``, ``spanId``, ``name``, ``startTimeUnixNano``, ``endTimeUnixNano``, ``status`` and
``attributes`` as ``[{"key", "value": {"stringValue" | "intValue" | "doubleValue" | …}}]``. The
collector's file exporter writes one such request per line; SDK dumps are one document.

Spans are read by the GenAI semantic conventions (opentelemetry.io/docs/specs/semconv/gen-ai):
``gen_ai.operation.name`` (``chat``, ``text_completion``, ``generate_content``; other operations such
as ``embeddings`` or ``invoke_agent`` are skipped and counted), ``gen_ai.response.model`` /
``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens`` (and the older
``prompt_tokens`` / ``completion_tokens``), the prompt from ``gen_ai.input.messages`` (parts format),
the older ``gen_ai.prompt`` attribute or the ``gen_ai.*.message`` / ``gen_ai.content.prompt`` events,
and the answer from ``gen_ai.output.messages``, ``gen_ai.completion`` or the ``gen_ai.choice`` event.
The conventions define no cost attribute: cost comes from ``prices`` (USD per token, by model) when
given, else it is missing (a "partial" call).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from zerorouter_integrations.features import messages_to_text
from zerorouter_integrations.importers.base import (
    NO_PROMPT_TEXT,
    ImportReport,
    LoggedCall,
    as_paths,
    error_reason,
    int_or_none,
    latency_between,
    optional_id,
    parse_json_text,
    resolve_model,
)

__all__ = ["call_from_span", "read_otlp_spans"]

_INFERENCE = {"chat", "text_completion", "generate_content", "completion"}


def _value(v: Any) -> Any:
    if not isinstance(v, Mapping):
        return v
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:  # int64 is a JSON string in OTLP/JSON
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: _value(kv.get("value")) for kv in (v["kvlistValue"] or {}).get("values", [])}
    return None


def attributes(items: Any) -> dict[str, Any]:
    """OTLP ``[{"key", "value"}]`` attributes as a plain dict."""
    if not isinstance(items, list):
        return {}
    return {kv["key"]: _value(kv.get("value")) for kv in items if isinstance(kv, Mapping) and "key" in kv}


def _parts_text(message: Mapping[str, Any]) -> str:
    """Text of a semconv message (``parts``) or an OpenAI-style one (``content``)."""
    parts = message.get("parts")
    if isinstance(parts, list):
        return "\n".join(
            str(p.get("content", "")) for p in parts if isinstance(p, Mapping) and p.get("type") == "text"
        )
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _messages(attrs: Mapping[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    raw = parse_json_text(attrs.get("gen_ai.input.messages", attrs.get("gen_ai.prompt")))
    if isinstance(raw, list):
        msgs = [
            {"role": str(m.get("role", "user")), "content": _parts_text(m)}
            for m in raw
            if isinstance(m, Mapping)
        ]
        system = parse_json_text(attrs.get("gen_ai.system_instructions"))
        if isinstance(system, list):
            text = "\n".join(_parts_text({"parts": [p]}) for p in system if isinstance(p, Mapping))
            msgs.insert(0, {"role": "system", "content": text})
        return msgs or None
    if isinstance(raw, str) and raw:
        return [{"role": "user", "content": raw}]
    indexed = []
    i = 0
    while f"gen_ai.prompt.{i}.content" in attrs:  # OpenLLMetry's flattened form
        indexed.append(
            {
                "role": str(attrs.get(f"gen_ai.prompt.{i}.role", "user")),
                "content": str(attrs[f"gen_ai.prompt.{i}.content"]),
            }
        )
        i += 1
    if indexed:
        return indexed
    out = []
    for ev in events:
        name, ea = ev["name"], ev["attributes"]
        if name in (
            "gen_ai.system.message",
            "gen_ai.user.message",
            "gen_ai.assistant.message",
            "gen_ai.tool.message",
        ):
            content = parse_json_text(ea.get("content"))
            out.append(
                {
                    "role": name.split(".")[1],
                    "content": content if isinstance(content, str) else json.dumps(content),
                }
            )
        elif name == "gen_ai.content.prompt" and isinstance(ea.get("gen_ai.prompt"), str):
            out.append({"role": "user", "content": ea["gen_ai.prompt"]})
    return out or None


def _answer(attrs: Mapping[str, Any], events: list[dict[str, Any]]) -> str | None:
    raw = parse_json_text(attrs.get("gen_ai.output.messages", attrs.get("gen_ai.completion")))
    if isinstance(raw, list) and raw and isinstance(raw[0], Mapping):
        return _parts_text(raw[0]) or None
    if isinstance(raw, str) and raw:
        return raw
    if isinstance(attrs.get("gen_ai.completion.0.content"), str):
        return attrs["gen_ai.completion.0.content"]
    for ev in events:
        ea = ev["attributes"]
        if ev["name"] == "gen_ai.choice":
            msg = parse_json_text(ea.get("message"))
            if isinstance(msg, Mapping) and isinstance(msg.get("content"), str):
                return msg["content"]
        if ev["name"] == "gen_ai.content.completion" and isinstance(ea.get("gen_ai.completion"), str):
            return ea["gen_ai.completion"]
    return None


def _is_error(status: Any) -> bool:
    if not isinstance(status, Mapping):
        return False
    return status.get("code") in (2, "STATUS_CODE_ERROR", "ERROR")


def call_from_span(
    span: Any,
    *,
    model_map: Mapping[str, str] | None = None,
    prices: Mapping[str, tuple[float | None, float | None]] | None = None,
) -> tuple[LoggedCall | None, str | None]:
    """One :class:`LoggedCall` from an OTLP/JSON span, or ``(None, reason)``."""
    if not isinstance(span, Mapping):
        return None, f"expected a span object, got {type(span).__name__}"
    attrs = attributes(span.get("attributes"))
    op = attrs.get("gen_ai.operation.name")
    if op is None and not any(k.startswith("gen_ai.") for k in attrs):
        return None, f"span {span.get('name')!r} has no gen_ai.* attributes"
    if op is not None and op not in _INFERENCE:
        return None, f"gen_ai.operation.name {op!r} is not an inference call"
    if _is_error(span.get("status")):
        return None, error_reason("status error", (span.get("status") or {}).get("message", ""))
    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
    if not isinstance(model, str) or not model:
        return None, "no gen_ai.request.model / gen_ai.response.model"
    if not span.get("spanId"):
        return None, "no spanId"
    events = [
        {"name": str(e.get("name", "")), "attributes": attributes(e.get("attributes"))}
        for e in span.get("events") or []
        if isinstance(e, Mapping)
    ]
    msgs = _messages(attrs, events)
    if not msgs:
        return (
            None,
            "no prompt: no gen_ai.input.messages, gen_ai.prompt or message events (content capture off?)",
        )
    prompt = messages_to_text(msgs)
    if not prompt.strip():
        return None, NO_PROMPT_TEXT
    name = resolve_model(model, model_map)
    pin = int_or_none(attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens")))
    pout = int_or_none(attrs.get("gen_ai.usage.output_tokens", attrs.get("gen_ai.usage.completion_tokens")))
    cost = None
    price = (prices or {}).get(name)
    if price and price[0] is not None and price[1] is not None and pin is not None and pout is not None:
        cost = pin * price[0] + pout * price[1]
    nanos = latency_between(
        int_or_none(span.get("startTimeUnixNano")), int_or_none(span.get("endTimeUnixNano"))
    )
    call = LoggedCall(
        call_id=str(span["spanId"]),
        prompt=prompt,
        model=name,
        messages=msgs,
        response=_answer(attrs, events),
        cost_usd=cost,
        latency_s=None if nanos is None else nanos / 1e9,
        input_tokens=pin,
        output_tokens=pout,
        trace_id=optional_id(span.get("traceId")),
    )
    return call, None


def _documents(path: Path, report: ImportReport) -> Iterator[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        yield 1, json.loads(text)
        return
    except json.JSONDecodeError:
        pass
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            report.n_records += 1
            report.skip_invalid_json(str(path), n, exc)


def _spans(doc: Any) -> Iterator[Any]:
    if not isinstance(doc, Mapping):
        yield doc
        return
    for rs in doc.get("resourceSpans") or []:
        for ss in (rs or {}).get("scopeSpans") or (rs or {}).get("instrumentationLibrarySpans") or []:
            yield from (ss or {}).get("spans") or []


def read_otlp_spans(
    paths: str | Path | Sequence[str | Path],
    *,
    model_map: Mapping[str, str] | None = None,
    prices: Mapping[str, tuple[float | None, float | None]] | None = None,
) -> ImportReport:
    """Read GenAI spans from OTLP/JSON files (one request per file, or one per line).

    Issues name the line of the request and the span's position in it (``span 3``).
    """
    report = ImportReport()
    for path in as_paths(paths):
        f = Path(path)
        for line, doc in _documents(f, report):
            if not isinstance(doc, Mapping) or "resourceSpans" not in doc:
                report.n_records += 1
                report.skip(str(f), line, "not an OTLP ExportTraceServiceRequest (no 'resourceSpans')")
                continue
            for i, span in enumerate(_spans(doc)):
                report.n_records += 1
                call, reason = call_from_span(span, model_map=model_map, prices=prices)
                if call is None:
                    report.skip(str(f), line, f"span {i}: {reason}")
                    continue
                report.add_call(call, str(f), line)
    return report
