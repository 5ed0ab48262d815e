"""LiteLLM logs: the ``StandardLoggingPayload`` as JSON lines, and spend-log rows.

LiteLLM hands every callback ``kwargs["standard_logging_object"]`` (documented at
docs.litellm.ai "StandardLoggingPayload Specification"); loggers that write it out (a custom
callback, the S3/GCS bucket loggers) produce one JSON object per call with ``id``, ``trace_id``,
``status``, ``model``, ``messages``, ``response``, ``response_cost``, ``prompt_tokens``,
``completion_tokens``, ``startTime``/``endTime`` (epoch seconds) and ``completionStartTime``.

The proxy's spend logs (``LiteLLM_SpendLogs`` rows, e.g. exported as JSON lines) carry the same call
as ``request_id``, ``spend``, ``model``, ``messages``, ``response``, token counts and ISO
``startTime``/``endTime``. Both shapes are read by :func:`read_litellm_logs`.

Failed calls (``status == "failure"``) are skipped with LiteLLM's ``error_str`` as the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zerorouter_integrations.features import messages_to_text
from zerorouter_integrations.importers.base import (
    NO_PROMPT_TEXT,
    ImportReport,
    LoggedCall,
    epoch_seconds,
    error_reason,
    int_or_none,
    latency_between,
    number_or_none,
    optional_id,
    parse_json_text,
    read_json_lines,
    resolve_model,
)

__all__ = ["call_from_litellm", "read_litellm_logs"]


def response_text(response: Any) -> str | None:
    """The answer text of an OpenAI-shaped chat response (dict), or ``None``."""
    response = parse_json_text(response, containers_only=True)
    if isinstance(response, str):
        return response or None
    if not isinstance(response, Mapping):
        return None
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        msg = choices[0].get("message") or {}
        content = msg.get("content") if isinstance(msg, Mapping) else None
        if content is None:
            content = choices[0].get("text")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        return content if isinstance(content, str) and content else None
    return None


def call_from_litellm(
    record: Any, *, model_map: Mapping[str, str] | None = None
) -> tuple[LoggedCall | None, str | None]:
    """One :class:`LoggedCall` from a standard logging payload or a spend-log row, or ``(None, reason)``."""
    if not isinstance(record, Mapping):
        return None, f"expected a JSON object, got {type(record).__name__}"
    status = record.get("status")
    if status not in (None, "success"):
        err = record.get("error_str") or (record.get("metadata") or {}).get("error_information") or ""
        return None, error_reason(f"status {status!r}", err)
    call_id = record.get("id") or record.get("request_id") or record.get("litellm_call_id")
    if not call_id:
        return None, "no 'id' or 'request_id'"
    model = record.get("model")
    if not isinstance(model, str) or not model:
        return None, f"no 'model' (got {model!r})"
    messages = parse_json_text(record.get("messages"), containers_only=True)
    if isinstance(messages, Mapping) and "messages" in messages:  # some loggers wrap the request
        messages = messages["messages"]
    if isinstance(messages, list) and messages and all(isinstance(m, Mapping) for m in messages):
        prompt = messages_to_text([dict(m) for m in messages])
        msgs: list[dict[str, Any]] | None = [dict(m) for m in messages]
    elif isinstance(messages, str) and messages and not messages.startswith("redacted"):
        prompt, msgs = messages, None
    else:
        return None, "no prompt: 'messages' is missing, empty or redacted"
    if not prompt.strip():
        return None, NO_PROMPT_TEXT
    start, end = epoch_seconds(record.get("startTime")), epoch_seconds(record.get("endTime"))
    cost = number_or_none(record.get("response_cost", record.get("spend")))
    call = LoggedCall(
        call_id=str(call_id),
        prompt=prompt,
        model=resolve_model(model, model_map),
        messages=msgs,
        response=response_text(record.get("response")),
        cost_usd=cost,
        latency_s=latency_between(start, end),
        input_tokens=int_or_none(record.get("prompt_tokens")),
        output_tokens=int_or_none(record.get("completion_tokens")),
        trace_id=optional_id(record.get("trace_id")),
    )
    return call, None


def read_litellm_logs(
    paths: str | Path | Sequence[str | Path], *, model_map: Mapping[str, str] | None = None
) -> ImportReport:
    """Read LiteLLM standard-logging JSON lines (or spend-log rows) from one or more files."""
    return read_json_lines(paths, lambda record: call_from_litellm(record, model_map=model_map))
