"""Reading LiteLLM responses: tool calls as plain dicts, and a stream's chunks assembled into deltas,
the final content, tool calls, usage and time to first token (:class:`StreamState`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from zerorouter_integrations.dispatch_types import StreamDelta

__all__ = ["StreamState", "tool_call_dict", "tool_delta_dict"]

_perf = time.perf_counter


def tool_call_dict(tc: Any) -> dict:
    """A LiteLLM / OpenAI tool call (object or dict) as a plain OpenAI ``{"id", "type", "function"}`` dict."""
    if isinstance(tc, Mapping):
        fn = tc.get("function") or {}
        return {
            "id": tc.get("id"),
            "type": tc.get("type") or "function",
            "function": {"name": fn.get("name"), "arguments": fn.get("arguments") or ""},
        }
    fn = tc.function
    return {
        "id": tc.id,
        "type": getattr(tc, "type", None) or "function",
        "function": {"name": fn.name, "arguments": fn.arguments or ""},
    }


def tool_delta_dict(tc: Any, pos: int) -> dict:
    if isinstance(tc, Mapping):
        fn = tc.get("function") or {}
        idx = tc.get("index")
        return {
            "index": pos if idx is None else idx,
            "id": tc.get("id"),
            "type": tc.get("type"),
            "function": {"name": fn.get("name"), "arguments": fn.get("arguments")},
        }
    fn = getattr(tc, "function", None)
    idx = getattr(tc, "index", None)
    return {
        "index": pos if idx is None else idx,
        "id": getattr(tc, "id", None),
        "type": getattr(tc, "type", None),
        "function": {"name": getattr(fn, "name", None), "arguments": getattr(fn, "arguments", None)},
    }


class StreamState:
    """Accumulates one stream: content, tool calls merged by index, finish reason, usage, TTFT."""

    __slots__ = (
        "created",
        "finish_reason",
        "id",
        "model",
        "parts",
        "resp_model",
        "t0",
        "tools",
        "ttft",
        "usage",
        "yielded",
    )

    def __init__(self, model: str, t0: float):
        self.model = model
        self.t0 = t0
        self.ttft: float | None = None
        self.parts: list[str] = []
        self.tools: dict[int, dict] = {}
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.yielded = False
        self.id: str | None = None
        self.created: int | None = None
        self.resp_model: str | None = None

    def feed(self, chunk: Any) -> StreamDelta | None:
        if self.id is None:
            self.id = getattr(chunk, "id", None)
            self.created = getattr(chunk, "created", None)
            self.resp_model = getattr(chunk, "model", None)
        u = getattr(chunk, "usage", None)
        if u is not None:
            self.usage = u
        choices = getattr(chunk, "choices", None)
        if not choices:
            return None
        ch = choices[0]
        if ch.finish_reason:
            self.finish_reason = ch.finish_reason
        delta = ch.delta
        if delta is None:
            return None
        text = getattr(delta, "content", None)
        tcs = getattr(delta, "tool_calls", None)
        if not text and not tcs:
            return None
        if self.ttft is None:
            self.ttft = _perf() - self.t0
        tool_deltas: list[dict] = []
        if text:
            self.parts.append(text)
        if tcs:
            for pos, tc in enumerate(tcs):
                d = tool_delta_dict(tc, pos)
                tool_deltas.append(d)
                acc = self.tools.get(d["index"])
                if acc is None:
                    acc = self.tools[d["index"]] = {
                        "id": d["id"] or "",
                        "type": "function",
                        "function": {"name": "", "arguments": ""},
                    }
                elif d["id"] and not acc["id"]:
                    acc["id"] = d["id"]
                fn = d["function"]
                if fn["name"]:
                    acc["function"]["name"] = acc["function"]["name"] or fn["name"]
                if fn["arguments"]:
                    acc["function"]["arguments"] += fn["arguments"]
        return StreamDelta(self.model, text or "", tool_deltas, chunk)

    def tool_calls(self) -> list[dict]:
        return [self.tools[i] for i in sorted(self.tools)]
