"""Pure conversions between LlamaIndex chat types and the router's OpenAI-format dicts.

Nothing here calls a model or mutates its inputs:

* :func:`to_openai_messages`: ``ChatMessage`` list → OpenAI message dicts (text, images, the
  assistant's tool calls from ``additional_kwargs["tool_calls"]`` or ``ToolCallBlock``\\ s, tool
  results with their ``tool_call_id``). Routing metadata we put on messages is never sent back.
* :func:`response_metadata` / :func:`chat_response` / :func:`completion_response`: a
  ``RoutedResponse`` → LlamaIndex responses carrying the chosen model, usage, cost, latency and the
  routing decision.
* :class:`StreamAccumulator`: routed stream chunks → cumulative ``ChatResponse`` deltas, the last
  one carrying usage and cost.
* :func:`parse_tool_arguments`: tolerant JSON argument parsing (complete, partial, or garbage).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    ImageBlock,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)

from zerorouter_integrations.errors import CallerError

__all__ = [
    "METADATA_KEYS",
    "StreamAccumulator",
    "chat_response",
    "chat_to_completion",
    "completion_response",
    "parse_tool_arguments",
    "prompt_messages",
    "response_metadata",
    "to_openai_messages",
    "tool_calls_of",
    "usage_dict",
]

#: Keys this adapter writes into ``ChatMessage.additional_kwargs``; never sent to a model.
METADATA_KEYS = ("model", "usage", "cost_usd", "request_id")

_ROLE_MAP = {
    MessageRole.CHATBOT.value: "assistant",
    MessageRole.MODEL.value: "assistant",
    MessageRole.DEVELOPER.value: "system",
}


# --------------------------------------------------------------------------------------------
# LlamaIndex → OpenAI
# --------------------------------------------------------------------------------------------


def _tool_call_dict(tc: Any) -> dict[str, Any] | None:
    """One tool call (OpenAI dict, an SDK/pydantic object, or a ToolCallBlock) as an OpenAI dict."""
    if isinstance(tc, ToolCallBlock):
        args = tc.tool_kwargs if isinstance(tc.tool_kwargs, str) else json.dumps(tc.tool_kwargs)
        return {
            "id": tc.tool_call_id or "",
            "type": "function",
            "function": {"name": tc.tool_name, "arguments": args},
        }
    if hasattr(tc, "model_dump") and not isinstance(tc, Mapping):
        tc = tc.model_dump()
    if not isinstance(tc, Mapping):
        return None
    fn = tc.get("function") or {}
    if hasattr(fn, "model_dump") and not isinstance(fn, Mapping):
        fn = fn.model_dump()
    args = fn.get("arguments", "")
    if not isinstance(args, str):
        args = json.dumps(args)
    return {
        "id": tc.get("id") or "",
        "type": tc.get("type") or "function",
        "function": {"name": fn.get("name") or "", "arguments": args},
    }


def _content(message: ChatMessage) -> str | list[dict[str, Any]] | None:
    parts: list[dict[str, Any]] = []
    only_text = True
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            only_text = False
            url = str(block.url) if block.url is not None else block.inline_url()
            image: dict[str, Any] = {"url": url}
            if block.detail:
                image["detail"] = block.detail
            parts.append({"type": "image_url", "image_url": image})
        # tool calls, thinking and cache-point blocks are not message content
    if not parts:
        return None
    if only_text:
        return "\n".join(p["text"] for p in parts)
    return parts


def prompt_messages(prompt: str) -> list[ChatMessage]:
    """A completion prompt as one user message; a prompt that is not a string is a ``CallerError``
    (LlamaIndex would coerce it to an empty message)."""
    if not isinstance(prompt, str):
        raise CallerError(f"prompt must be a string, got {type(prompt).__name__} {prompt!r:.80}", "prompt")
    return [ChatMessage(role=MessageRole.USER, content=prompt)]


def to_openai_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Convert LlamaIndex messages to OpenAI-format dicts (a new list; the inputs are untouched).

    Parameters
    ----------
    messages : sequence of ChatMessage

    Returns
    -------
    list of dict
        ``{"role", "content"}`` plus ``tool_calls`` on assistant messages that called tools and
        ``tool_call_id`` (and ``name`` when known) on tool results.
    """
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, ChatMessage):
            raise TypeError(f"message {i} is a {type(m).__name__}; expected a llama_index ChatMessage")
        role = m.role.value if isinstance(m.role, MessageRole) else str(m.role)
        role = _ROLE_MAP.get(role, role)
        d: dict[str, Any] = {"role": role, "content": _content(m)}
        extra = m.additional_kwargs or {}
        if role == "assistant":
            raw_calls: Iterable[Any] = extra.get("tool_calls") or [
                b for b in m.blocks if isinstance(b, ToolCallBlock)
            ]
            calls = [c for c in (_tool_call_dict(tc) for tc in raw_calls) if c is not None]
            if calls:
                d["tool_calls"] = calls
        elif role in ("tool", "function"):
            call_id = extra.get("tool_call_id")
            if call_id is not None:
                d["tool_call_id"] = str(call_id)
            if extra.get("name"):
                d["name"] = str(extra["name"])
            if d["content"] is None:
                d["content"] = ""
            if role == "function" and call_id is not None:
                d["role"] = "tool"
        if d["content"] is None and "tool_calls" not in d:
            d["content"] = ""
        out.append(d)
    return out


# --------------------------------------------------------------------------------------------
# Tool-call arguments
# --------------------------------------------------------------------------------------------


def parse_tool_arguments(arguments: Any) -> dict[str, Any]:
    """Arguments of a tool call as a dict, whatever the model sent.

    A dict is returned as is; a JSON string is parsed; a truncated JSON string (a stream cut
    mid-way) is completed with LlamaIndex's ``parse_partial_json``; a JSON value that is not an
    object, an empty string or garbage gives ``{}``.
    """
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if arguments is None:
        return {}
    if not isinstance(arguments, str):
        return {}
    text = arguments.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        value = _parse_truncated(text)
    return dict(value) if isinstance(value, Mapping) else {}


def _parse_truncated(text: str) -> Any:
    """Best effort on a JSON object cut short: keep the members that are complete."""
    from llama_index.core.llms.utils import parse_partial_json

    while text:
        try:
            value = parse_partial_json(text)
        except (ValueError, TypeError):
            cut = text.rfind(",")
            if cut <= 0:
                return {}
            text = text[:cut]  # drop the member being written and retry
            continue
        if isinstance(value, dict) and value and text.rstrip().endswith(":"):
            value.pop(next(reversed(value)))  # `"key":` with no value yet is not a null
        return value
    return {}


def tool_calls_of(message: ChatMessage) -> list[dict[str, Any]]:
    """The OpenAI-format tool calls of an assistant message (``additional_kwargs`` first, else blocks)."""
    raw = (message.additional_kwargs or {}).get("tool_calls") or [
        b for b in message.blocks if isinstance(b, ToolCallBlock)
    ]
    return [c for c in (_tool_call_dict(tc) for tc in raw) if c is not None]


# --------------------------------------------------------------------------------------------
# Router → LlamaIndex
# --------------------------------------------------------------------------------------------


def usage_dict(usage: Any) -> dict[str, int]:
    """Token counts of a ``dispatch.Usage`` with the OpenAI aliases LlamaIndex consumers look for."""
    if usage is None:
        base: dict[str, Any] = {}
    elif is_dataclass(usage) and not isinstance(usage, type):
        base = asdict(usage)
    elif isinstance(usage, Mapping):
        base = dict(usage)
    else:
        base = {
            k: getattr(usage, k, 0)
            for k in (
                "input_tokens",
                "output_tokens",
                "total_tokens",
                "cache_read_tokens",
                "reasoning_tokens",
            )
        }
    inp = int(base.get("input_tokens") or 0)
    out = int(base.get("output_tokens") or 0)
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": int(base.get("total_tokens") or 0) or inp + out,
        "cache_read_tokens": int(base.get("cache_read_tokens") or 0),
        "reasoning_tokens": int(base.get("reasoning_tokens") or 0),
        "prompt_tokens": inp,
        "completion_tokens": out,
    }


def response_metadata(resp: Any) -> dict[str, Any]:
    """What a routed call tells the caller: model, usage, cost, latency, TTFT, decision, request id."""
    decision = getattr(resp, "decision", None)
    attempts = getattr(resp, "attempts", None) or []
    return {
        "model": resp.model,
        "usage": usage_dict(resp.usage),
        "cost_usd": float(resp.cost_usd),
        "latency_s": float(resp.latency_s),
        "ttft_s": None if resp.ttft_s is None else float(resp.ttft_s),
        "routing_decision": decision.to_dict() if decision is not None else None,
        "request_id": resp.request_id,
        "finish_reason": resp.finish_reason,
        "failed_attempts": [
            asdict(a) if is_dataclass(a) and not isinstance(a, type) else a for a in attempts
        ],
    }


def _raw(resp: Any) -> dict[str, Any]:
    raw = resp.to_dict()
    raw["usage"] = usage_dict(resp.usage)  # with the prompt/completion aliases
    return raw


def _assistant_message(
    content: str | None, tool_calls: list[dict[str, Any]], extra: Mapping[str, Any]
) -> ChatMessage:
    blocks: list[Any] = []
    if content or not tool_calls:
        blocks.append(TextBlock(text=content or ""))
    for tc in tool_calls:
        fn = tc.get("function") or {}
        blocks.append(
            ToolCallBlock(
                tool_call_id=tc.get("id") or None,
                tool_name=fn.get("name") or "",
                tool_kwargs=fn.get("arguments") or "",
            )
        )
    kwargs = dict(extra)
    if tool_calls:
        kwargs["tool_calls"] = [dict(tc, function=dict(tc.get("function") or {})) for tc in tool_calls]
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=kwargs)


def _message_extra(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: meta[k] for k in METADATA_KEYS if k in meta}


def chat_response(resp: Any) -> ChatResponse:
    """A ``ChatResponse`` from a ``RoutedResponse`` (raw = ``resp.to_dict()``, metadata in additional_kwargs)."""
    meta = response_metadata(resp)
    message = _assistant_message(resp.content, list(resp.tool_calls or []), _message_extra(meta))
    return ChatResponse(message=message, raw=_raw(resp), additional_kwargs=meta)


def chat_to_completion(response: ChatResponse) -> CompletionResponse:
    """Completion view of a chat response, without mutating it."""
    kwargs = {**(response.message.additional_kwargs or {}), **(response.additional_kwargs or {})}
    return CompletionResponse(
        text=response.message.content or "",
        additional_kwargs=kwargs,
        raw=response.raw,
        delta=response.delta,
        logprobs=response.logprobs,
    )


def completion_response(resp: Any) -> CompletionResponse:
    """A ``CompletionResponse`` from a ``RoutedResponse``."""
    return chat_to_completion(chat_response(resp))


class StreamAccumulator:
    """Turn routed stream chunks into cumulative ``ChatResponse`` objects.

    :meth:`feed` returns ``None`` for a chunk that carries nothing for the caller (a usage-only or
    keep-alive chunk); the final chunk gives a response whose message is the whole answer, whose
    ``delta`` is ``""`` and whose ``raw`` / ``additional_kwargs`` carry usage, cost and the decision.
    """

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.model: str | None = None

    def _merge_tool_delta(self, pos: int, d: Mapping[str, Any]) -> None:
        idx = d.get("index")
        idx = pos if idx is None else int(idx)
        acc = self.tools.get(idx)
        if acc is None:
            acc = self.tools[idx] = {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        if d.get("id") and not acc["id"]:
            acc["id"] = d["id"]
        fn = d.get("function") or {}
        if fn.get("name") and not acc["function"]["name"]:
            acc["function"]["name"] = fn["name"]
        if fn.get("arguments"):
            acc["function"]["arguments"] += fn["arguments"]

    def _tool_calls(self) -> list[dict[str, Any]]:
        return [dict(self.tools[i], function=dict(self.tools[i]["function"])) for i in sorted(self.tools)]

    def feed(self, chunk: Any) -> ChatResponse | None:
        if getattr(chunk, "final", False):
            resp = chunk.response
            if resp is None:  # pragma: no cover - the router always attaches it
                return None
            meta = response_metadata(resp)
            content = resp.content if resp.content is not None else "".join(self.text)
            calls = list(resp.tool_calls or []) or self._tool_calls()
            message = _assistant_message(content, calls, _message_extra(meta))
            return ChatResponse(message=message, delta="", raw=_raw(resp), additional_kwargs=meta)
        text = getattr(chunk, "content", "") or ""
        deltas = list(getattr(chunk, "tool_call_deltas", None) or [])
        if not text and not deltas:
            return None
        if chunk.model:
            self.model = chunk.model
        if text:
            self.text.append(text)
        for pos, d in enumerate(deltas):
            if isinstance(d, Mapping):
                self._merge_tool_delta(pos, d)
        message = _assistant_message("".join(self.text), self._tool_calls(), {"model": self.model})
        return ChatResponse(
            message=message,
            delta=text,
            raw=getattr(chunk, "raw", None),
            additional_kwargs={"model": self.model},
        )
