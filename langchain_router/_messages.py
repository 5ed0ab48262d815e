"""Pure conversions between LangChain messages and the OpenAI chat format the core speaks.

Nothing here calls a model or holds state: LangChain messages → OpenAI dicts (for
:meth:`ZeroRouter.complete`), and the router's answer (content, OpenAI tool calls, usage) → LangChain
``AIMessage`` / ``AIMessageChunk`` parts. Multimodal content lists are translated block by block:
OpenAI blocks pass through, LangChain standard blocks (``{"type": "image", "url" | "base64", ...}``)
and Anthropic-style ``{"type": "image", "source": {...}}`` become OpenAI ``image_url`` / ``input_audio``
/ ``file`` parts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call

__all__ = [
    "content_to_openai",
    "dict_to_message",
    "message_to_dict",
    "messages_to_dicts",
    "normalize_tool_choice",
    "tool_call_chunks_from_deltas",
    "tool_calls_from_openai",
    "usage_to_metadata",
]

#: Content blocks that never go to the API as content (tool calls travel in ``tool_calls``).
_DROPPED_ASSISTANT_BLOCKS = frozenset(
    {
        "tool_use",
        "tool_call",
        "tool_call_chunk",
        "function_call",
        "server_tool_call",
        "server_tool_result",
        "reasoning",
        "thinking",
        "redacted_thinking",
        "invalid_tool_call",
    }
)


# --------------------------------------------------------------------------------------------
# content blocks
# --------------------------------------------------------------------------------------------


def _data_url(mime: str | None, data: str) -> str:
    return data if data.startswith("data:") else f"data:{mime or 'application/octet-stream'};base64,{data}"


def _extras(block: Any) -> Mapping[str, Any]:
    extras = block.get("extras")
    return extras if isinstance(extras, Mapping) else {}


def _block_to_openai(block: Any) -> dict[str, Any] | None:
    """One content block → one OpenAI user-content part (None: drop it)."""
    if isinstance(block, str):
        return {"type": "text", "text": block}
    if not isinstance(block, Mapping):
        return {"type": "text", "text": str(block)}
    typ = block.get("type")
    if typ == "text":
        return {"type": "text", "text": str(block.get("text", ""))}
    if typ == "image_url":
        iu = block.get("image_url")
        return {"type": "image_url", "image_url": {"url": iu} if isinstance(iu, str) else dict(iu or {})}
    if typ in ("input_audio", "file") and isinstance(block.get(typ), Mapping):
        return {"type": typ, typ: dict(block[typ])}  # already OpenAI format
    src = block.get("source")
    if isinstance(src, Mapping):  # Anthropic-style {"type": "image"|"document", "source": {...}}
        if src.get("type") == "base64":
            src_url = _data_url(src.get("media_type"), str(src.get("data", "")))
        else:
            src_url = str(src.get("url", ""))
        if typ == "image":
            return {"type": "image_url", "image_url": {"url": src_url}}
        return {"type": "file", "file": {"file_data": src_url}}
    # LangChain standard blocks (v1: "base64"/"url"/"file_id"; v0: "source_type" + "data"/"url").
    b64 = block.get("base64")
    if b64 is None and block.get("source_type") == "base64":
        b64 = block.get("data")
    url = block.get("url")
    mime = block.get("mime_type")
    if typ == "image":
        if url is None and b64 is not None:
            url = _data_url(mime, str(b64))
        if url is not None:
            part: dict[str, Any] = {"type": "image_url", "image_url": {"url": str(url)}}
            extras = _extras(block)
            detail = extras.get("detail")
            if detail:
                part["image_url"]["detail"] = detail
            return part
    if typ == "audio" and b64 is not None:
        fmt = (mime or "audio/wav").split("/")[-1]
        return {"type": "input_audio", "input_audio": {"data": str(b64), "format": fmt}}
    if typ == "file":
        f: dict[str, Any] = {}
        if b64 is not None:
            f["file_data"] = _data_url(mime, str(b64))
        elif block.get("file_id") or (block.get("source_type") == "id" and block.get("id")):
            f["file_id"] = block.get("file_id") or block.get("id")
        elif url is not None:
            f["file_data"] = str(url)
        extras = _extras(block)
        name = block.get("filename") or extras.get("filename")
        if name:
            f["filename"] = name
        if f:
            return {"type": "file", "file": f}
    if typ == "text-plain" and isinstance(block.get("text"), str):
        return {"type": "text", "text": block["text"]}
    if typ in _DROPPED_ASSISTANT_BLOCKS:
        return None
    return dict(block)  # unknown: pass through, the provider decides


def _text_of_blocks(blocks: Sequence[Any]) -> str:
    parts = []
    for b in blocks:
        if isinstance(b, str):
            parts.append(b)
        elif isinstance(b, Mapping) and b.get("type") == "text" and isinstance(b.get("text"), str):
            parts.append(b["text"])
    return "".join(parts)


def content_to_openai(content: Any, role: str) -> str | list[dict[str, Any]]:
    """LangChain message content → OpenAI message content for ``role``.

    Strings stay strings. For ``assistant``, ``system`` and ``developer`` only text counts (joined);
    for ``tool`` a list of only text parts is joined into a string. ``user`` lists become OpenAI
    parts (text, ``image_url``, ``input_audio``, ``file``); a list of only text parts stays a list.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, (list, tuple)):
        return str(content)
    if role in ("assistant", "system", "developer"):
        return _text_of_blocks(content)
    parts = [p for p in (_block_to_openai(b) for b in content) if p is not None]
    if role in ("tool", "function"):
        if all(p.get("type") == "text" for p in parts):
            return "".join(p["text"] for p in parts)
        return parts
    return parts


# --------------------------------------------------------------------------------------------
# messages → OpenAI dicts
# --------------------------------------------------------------------------------------------


def _tool_call_to_openai(tc: Mapping[str, Any]) -> dict[str, Any]:
    args = tc.get("args")
    return {
        "id": tc.get("id"),
        "type": "function",
        "function": {
            "name": tc.get("name"),
            "arguments": args
            if isinstance(args, str)
            else json.dumps(args if args is not None else {}, ensure_ascii=False),
        },
    }


def message_to_dict(message: BaseMessage) -> dict[str, Any]:
    """One LangChain message → one OpenAI chat message dict.

    Handles ``SystemMessage`` (role ``system``, or ``developer`` when
    ``additional_kwargs["__openai_role__"] == "developer"``), ``HumanMessage``, ``AIMessage`` (tool calls
    and invalid tool calls become ``tool_calls``), ``ToolMessage``, ``FunctionMessage`` and
    ``ChatMessage``. ``name`` is kept when set.

    Raises
    ------
    TypeError
        ``message`` is not a LangChain message.
    """
    if isinstance(message, AIMessage):
        calls = [_tool_call_to_openai(tc) for tc in message.tool_calls]
        calls += [
            {
                "id": tc.get("id"),
                "type": "function",
                "function": {"name": tc.get("name"), "arguments": tc.get("args") or ""},
            }
            for tc in message.invalid_tool_calls
        ]
        if not calls and message.additional_kwargs.get("tool_calls"):
            calls = [dict(tc) for tc in message.additional_kwargs["tool_calls"]]
        text = content_to_openai(message.content, "assistant")
        d: dict[str, Any] = {"role": "assistant", "content": text if (text or not calls) else None}
        if calls:
            d["tool_calls"] = calls
        elif message.additional_kwargs.get("function_call"):
            d["function_call"] = dict(message.additional_kwargs["function_call"])
    elif isinstance(message, HumanMessage):
        d = {"role": "user", "content": content_to_openai(message.content, "user")}
    elif isinstance(message, SystemMessage):
        role = "developer" if message.additional_kwargs.get("__openai_role__") == "developer" else "system"
        d = {"role": role, "content": content_to_openai(message.content, role)}
    elif isinstance(message, ToolMessage):
        d = {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": content_to_openai(message.content, "tool"),
        }
    elif isinstance(message, FunctionMessage):
        d = {
            "role": "function",
            "name": message.name,
            "content": content_to_openai(message.content, "function"),
        }
    elif isinstance(message, ChatMessage):
        d = {"role": message.role, "content": content_to_openai(message.content, message.role)}
    elif isinstance(message, BaseMessage):
        role = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}.get(
            message.type, "user"
        )
        d = {"role": role, "content": content_to_openai(message.content, role)}
    else:
        raise TypeError(f"expected a LangChain BaseMessage, got {type(message).__name__}: {message!r:.80}")
    name = getattr(message, "name", None)
    if name and d["role"] in ("user", "assistant", "system", "developer") and "name" not in d:
        d["name"] = name
    return d


def messages_to_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """:func:`message_to_dict` over a list."""
    return [message_to_dict(m) for m in messages]


# --------------------------------------------------------------------------------------------
# OpenAI → LangChain
# --------------------------------------------------------------------------------------------


def tool_calls_from_openai(raw: Sequence[Mapping[str, Any]] | None) -> tuple[list[Any], list[Any]]:
    """OpenAI tool calls → (``tool_calls``, ``invalid_tool_calls``) of an ``AIMessage``.

    Arguments that are not valid JSON go to ``invalid_tool_calls`` with the parse error.
    """
    calls, invalid = [], []
    for tc in raw or ():
        tc = dict(tc)
        fn = dict(tc.get("function") or {})
        if fn.get("arguments") in (None, ""):
            fn["arguments"] = "{}"
        tc["function"] = fn
        try:
            parsed = parse_tool_call(tc, return_id=True)
        except Exception as exc:
            invalid.append(make_invalid_tool_call(tc, str(exc)))
            continue
        if parsed is not None:
            calls.append(parsed)
    return calls, invalid


def dict_to_message(d: Mapping[str, Any]) -> BaseMessage:
    """One OpenAI chat message dict → the matching LangChain message (inverse of :func:`message_to_dict`)."""
    if not isinstance(d, Mapping) or "role" not in d:
        raise ValueError(f"expected an OpenAI message dict with a 'role', got {d!r:.80}")
    role = d["role"]
    content = d.get("content")
    content = "" if content is None else content
    name = d.get("name")
    if role == "assistant":
        calls, invalid = tool_calls_from_openai(d.get("tool_calls"))
        fn_call: dict[str, Any] = (
            {"function_call": dict(d["function_call"])} if d.get("function_call") else {}
        )
        return AIMessage(
            content=content,
            tool_calls=calls,
            invalid_tool_calls=invalid,
            name=name,
            additional_kwargs=fn_call,
        )
    if role == "user":
        return HumanMessage(content=content, name=name)
    if role in ("system", "developer"):
        role_kw: dict[str, Any] = {"__openai_role__": "developer"} if role == "developer" else {}
        return SystemMessage(content=content, name=name, additional_kwargs=role_kw)
    if role == "tool":
        return ToolMessage(content=content, tool_call_id=str(d.get("tool_call_id") or ""), name=name)
    if role == "function":
        return FunctionMessage(content=content, name=str(name or ""))
    return ChatMessage(content=content, role=str(role))


def tool_call_chunks_from_deltas(deltas: Sequence[Mapping[str, Any]] | None) -> list[ToolCallChunk]:
    """Streamed OpenAI tool-call deltas (``index``, ``id``, ``function.name``/``arguments``) → chunks."""
    out = []
    for d in deltas or ():
        fn = d.get("function") or {}
        out.append(
            tool_call_chunk(
                name=fn.get("name") or None,
                args=fn.get("arguments") or None,
                id=d.get("id") or None,
                index=d.get("index"),
            )
        )
    return out


def usage_to_metadata(usage: Any) -> UsageMetadata:
    """The core's ``Usage`` (or a dict with the same keys) → LangChain ``UsageMetadata``.

    ``input_token_details.cache_read`` and ``output_token_details.reasoning`` are set only when > 0.
    """
    get = usage.get if isinstance(usage, Mapping) else (lambda k, _d=0: getattr(usage, k, _d))
    inp = int(get("input_tokens", 0) or 0)
    out = int(get("output_tokens", 0) or 0)
    total = int(get("total_tokens", 0) or 0) or inp + out
    meta = UsageMetadata(input_tokens=inp, output_tokens=out, total_tokens=total)
    cache = int(get("cache_read_tokens", 0) or 0)
    reasoning = int(get("reasoning_tokens", 0) or 0)
    if cache:
        meta["input_token_details"] = InputTokenDetails(cache_read=cache)
    if reasoning:
        meta["output_token_details"] = OutputTokenDetails(reasoning=reasoning)
    return meta


# --------------------------------------------------------------------------------------------
# tool_choice
# --------------------------------------------------------------------------------------------


def normalize_tool_choice(tool_choice: Any, tool_names: Sequence[str]) -> str | dict[str, Any] | None:
    """LangChain ``tool_choice`` → OpenAI ``tool_choice``.

    ``None`` → None (not sent); ``"auto"`` / ``"none"`` / ``"required"`` unchanged; ``"any"`` or
    ``True`` → ``"required"``; ``False`` → ``"none"``; a tool name →
    ``{"type": "function", "function": {"name": ...}}``; a dict passes through.

    Raises
    ------
    ValueError
        A name that is none of the bound tools.
    """
    if tool_choice is None:
        return None
    if tool_choice is True or tool_choice == "any":
        return "required"
    if tool_choice is False:
        return "none"
    if isinstance(tool_choice, str):
        if tool_choice in ("auto", "none", "required"):
            return tool_choice
        if tool_choice not in tool_names:
            raise ValueError(
                f"tool_choice={tool_choice!r} names no bound tool; expected 'auto', 'none', 'any', "
                f"'required', True, or one of {list(tool_names)}"
            )
        return {"type": "function", "function": {"name": tool_choice}}
    if isinstance(tool_choice, Mapping):
        return dict(tool_choice)
    raise ValueError(
        f"tool_choice={tool_choice!r}; expected None, a bool, 'auto', 'none', 'any', 'required', a tool "
        "name or an OpenAI tool_choice dict"
    )
