"""LangSmith run exports (JSON lines of runs, as ``langsmith.schemas.Run`` serializes them).

A run (docs.langchain.com "Run (span) data format") has ``id``, ``trace_id``, ``run_type``,
``status``, ``error``, ``start_time``/``end_time``, ``inputs``, ``outputs``, ``extra`` (with
``metadata.ls_model_name`` and ``invocation_params``), ``prompt_tokens``, ``completion_tokens`` and
``total_cost``. Only ``run_type == "llm"`` runs are calls; chain, tool and retriever runs of the same
trace are skipped and counted.

Inputs are read in the shapes LangSmith stores: LangChain chat models log
``{"messages": [[message, ...]]}`` (serialized ``HumanMessage``/… objects or ``{"type", "content"}``
dicts), the OpenAI wrapper and ``@traceable`` log ``{"messages": [{"role", "content"}, ...]}``, and
completion LLMs ``{"prompts": [text]}``. Outputs: ``{"generations": [[{"text", "message"}]],
"llm_output": {...}}`` or an OpenAI chat response.
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
    read_json_lines,
    resolve_model,
)
from zerorouter_integrations.importers.litellm_logs import response_text

__all__ = ["call_from_langsmith", "read_langsmith_runs"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}
_CLASS_ROLES = {
    "HumanMessage": "user",
    "AIMessage": "assistant",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "ChatMessage": "user",
}


def _message(obj: Any) -> dict[str, Any] | None:
    """An OpenAI-style message from a LangChain message in any of its serialized forms."""
    if not isinstance(obj, Mapping):
        return None
    if obj.get("lc") == 1 and isinstance(obj.get("kwargs"), Mapping):
        ids = obj.get("id") or []
        role = _CLASS_ROLES.get(str(ids[-1]) if ids else "", None)
        kw = obj["kwargs"]
        return {"role": role or _ROLES.get(str(kw.get("type")), "user"), "content": kw.get("content", "")}
    if "role" in obj:
        return {"role": str(obj["role"]), "content": obj.get("content", "")}
    if "type" in obj and "content" in obj:
        return {"role": _ROLES.get(str(obj["type"]), "user"), "content": obj["content"]}
    return None


def _input_messages(inputs: Any) -> list[dict[str, Any]] | str | None:
    if not isinstance(inputs, Mapping):
        return None
    msgs = inputs.get("messages")
    if isinstance(msgs, list) and msgs and isinstance(msgs[0], list):  # chat models: a batch of lists
        msgs = msgs[0]
    if isinstance(msgs, list) and msgs:
        out = [_message(m) for m in msgs]
        return [m for m in out if m is not None] or None
    prompts = inputs.get("prompts")
    if isinstance(prompts, list) and prompts and isinstance(prompts[0], str):
        return prompts[0]
    for key in ("prompt", "input", "question"):
        if isinstance(inputs.get(key), str) and inputs[key]:
            return inputs[key]
    return None


def _output_text(outputs: Any) -> str | None:
    if not isinstance(outputs, Mapping):
        return None
    gens = outputs.get("generations")
    if isinstance(gens, list) and gens:
        first = gens[0][0] if isinstance(gens[0], list) and gens[0] else gens[0]
        if isinstance(first, Mapping) and first.get("lc") == 1:  # a dumpd()-serialized generation
            first = first.get("kwargs") or {}
        if isinstance(first, Mapping):
            if isinstance(first.get("text"), str) and first["text"]:
                return first["text"]
            msg = _message(first.get("message"))
            if msg and isinstance(msg.get("content"), str) and msg["content"]:
                return msg["content"]
    text = response_text(outputs)
    if text:
        return text
    for key in ("output", "content", "text"):
        if isinstance(outputs.get(key), str) and outputs[key]:
            return outputs[key]
    return None


def _usage(run: Mapping[str, Any]) -> tuple[int | None, int | None]:
    pin, pout = int_or_none(run.get("prompt_tokens")), int_or_none(run.get("completion_tokens"))
    if pin is not None or pout is not None:
        return pin, pout
    outputs = run.get("outputs") or {}
    usage = (outputs.get("llm_output") or {}).get("token_usage") or outputs.get("usage") or {}
    if not isinstance(usage, Mapping):
        return None, None
    return (
        int_or_none(usage.get("prompt_tokens", usage.get("input_tokens"))),
        int_or_none(usage.get("completion_tokens", usage.get("output_tokens"))),
    )


def _model(run: Mapping[str, Any]) -> str | None:
    extra = run.get("extra") or {}
    meta = extra.get("metadata") or {}
    params = extra.get("invocation_params") or {}
    outputs = run.get("outputs") or {}
    for value in (
        meta.get("ls_model_name"),
        params.get("model"),
        params.get("model_name"),
        (outputs.get("llm_output") or {}).get("model_name") if isinstance(outputs, Mapping) else None,
        outputs.get("model") if isinstance(outputs, Mapping) else None,
    ):
        if isinstance(value, str) and value:
            return value
    return None


def call_from_langsmith(
    run: Any, *, model_map: Mapping[str, str] | None = None
) -> tuple[LoggedCall | None, str | None]:
    """One :class:`LoggedCall` from a LangSmith run, or ``(None, reason)``."""
    if not isinstance(run, Mapping):
        return None, f"expected a JSON object (a run), got {type(run).__name__}"
    if run.get("run_type") != "llm":
        return None, f"run_type {run.get('run_type')!r} is not an LLM call"
    if run.get("error") or run.get("status") == "error":
        return None, error_reason("status error", run.get("error") or "")
    if not run.get("id"):
        return None, "no 'id'"
    model = _model(run)
    if model is None:
        return None, "no model: neither extra.metadata.ls_model_name nor invocation_params.model"
    msgs = _input_messages(run.get("inputs"))
    if msgs is None:
        return None, "no prompt: inputs hold no 'messages' or 'prompts'"
    prompt = messages_to_text(msgs)
    if not prompt.strip():
        return None, NO_PROMPT_TEXT
    start, end = epoch_seconds(run.get("start_time")), epoch_seconds(run.get("end_time"))
    pin, pout = _usage(run)
    call = LoggedCall(
        call_id=str(run["id"]),
        prompt=prompt,
        model=resolve_model(model, model_map),
        messages=msgs if isinstance(msgs, list) else None,
        response=_output_text(run.get("outputs")),
        cost_usd=number_or_none(run.get("total_cost")),
        latency_s=latency_between(start, end),
        input_tokens=pin,
        output_tokens=pout,
        trace_id=optional_id(run.get("trace_id")),
    )
    return call, None


def read_langsmith_runs(
    paths: str | Path | Sequence[str | Path], *, model_map: Mapping[str, str] | None = None
) -> ImportReport:
    """Read LangSmith runs (one JSON object per line) from one or more files."""
    return read_json_lines(paths, lambda record: call_from_langsmith(record, model_map=model_map))
