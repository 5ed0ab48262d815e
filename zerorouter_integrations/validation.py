"""Request hygiene: check a caller's request before any model is called, and clean text for the encoder.

* :func:`check_messages` turns a string or a list of OpenAI-format messages into the list the router
  sends, or raises :class:`~zerorouter_integrations.errors.CallerError` naming the bad field
  (``messages[1].content[0].text``): a caller's malformed request is never charged to a model.
* :func:`check_params` checks that the LiteLLM parameters of a call can be sent as JSON.
* :func:`encoder_text` replaces lone surrogates and other code points a tokenizer cannot encode; it
  is applied to the text the encoder reads only, never to what is sent to the provider.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from zerorouter_integrations.errors import CallerError

__all__ = ["ROLES", "check_messages", "check_params", "check_sendable", "encoder_messages", "encoder_text"]

#: Message roles the router accepts (OpenAI chat format).
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

#: Content part types a candidate may accept (the capability filter decides which models can).
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})

#: Parameters that are not sent as JSON (LiteLLM reads them client-side).
_CLIENT_SIDE_PARAMS = frozenset({"timeout", "api_key", "api_base", "metadata"})


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _check_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise CallerError(f"{where} must be a string, got {type(value).__name__} {_short(value)}", where)
    return value


def _check_part(part: Any, where: str) -> bool:
    """Whether the part carries anything (text or media); raises on a malformed part."""
    if not isinstance(part, Mapping):
        raise CallerError(
            f"{where} must be a content part like {{'type': 'text', 'text': '…'}}, got {_short(part)}", where
        )
    kind = part.get("type", "text")
    if kind not in PART_TYPES:
        raise CallerError(
            f"{where}.type is {_short(kind)}; no candidate accepts it (expected one of {sorted(PART_TYPES)})",
            f"{where}.type",
        )
    if kind in ("text", "refusal"):
        key = "text" if kind == "text" else "refusal"
        return bool(_check_text(part.get(key), f"{where}.{key}"))
    if kind == "image_url":
        img = part.get("image_url")
        url = img.get("url") if isinstance(img, Mapping) else img
        if not isinstance(url, str) or not url:
            raise CallerError(
                f"{where}.image_url must be a URL string or {{'url': '…'}}, got {_short(img)}",
                f"{where}.image_url",
            )
    return True


def _check_tool_calls(calls: Any, where: str) -> int:
    if not isinstance(calls, (list, tuple)):
        raise CallerError(f"{where} must be a list of tool calls, got {_short(calls)}", where)
    for j, tc in enumerate(calls):
        at = f"{where}[{j}]"
        if not isinstance(tc, Mapping):
            raise CallerError(
                f"{at} must be {{'id', 'type': 'function', 'function': {{'name', 'arguments'}}}}, got {_short(tc)}",
                at,
            )
        if tc.get("id") is not None:
            _check_text(tc.get("id"), f"{at}.id")
        if tc.get("type", "function") != "function":
            raise CallerError(f"{at}.type must be 'function', got {_short(tc.get('type'))}", f"{at}.type")
        fn = tc.get("function")
        if not isinstance(fn, Mapping):
            raise CallerError(
                f"{at}.function must be {{'name', 'arguments'}}, got {_short(fn)}", f"{at}.function"
            )
        if not _check_text(fn.get("name"), f"{at}.function.name"):
            raise CallerError(f"{at}.function.name is empty", f"{at}.function.name")
        args = fn.get("arguments", "")
        if not isinstance(args, str):
            raise CallerError(
                f"{at}.function.arguments must be a JSON string, got {type(args).__name__} {_short(args)}",
                f"{at}.function.arguments",
            )
    return len(calls)


def check_messages(messages: Any) -> list[dict[str, Any]]:
    """The request as a list of message dicts, or :class:`CallerError` naming the bad field.

    A string is one user message. Each message needs a known ``role``; ``content`` is a string, a list
    of content parts, or ``None`` (assistant messages with ``tool_calls``); ``tool_calls`` follow the
    OpenAI format with string ``arguments``. A request with no text, no parts and no tool calls at all
    is an error; a system-only conversation is fine.
    """
    if isinstance(messages, str):
        if not messages:
            raise CallerError("the request is an empty string; send some text", "messages")
        return [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping):
        raise CallerError(
            f"messages must be a list of messages or a string, got one dict {_short(messages)}; wrap it in a list",
            "messages",
        )
    if not isinstance(messages, Sequence) or isinstance(messages, (bytes, bytearray)) or not messages:
        raise CallerError(
            f"messages must be a non-empty list of {{'role', 'content'}} dicts or a string, got {_short(messages)}",
            "messages",
        )
    out: list[dict[str, Any]] = []
    substance = 0
    for i, m in enumerate(messages):
        at = f"messages[{i}]"
        if not isinstance(m, Mapping):
            raise CallerError(f"{at} must be a dict with 'role' and 'content', got {_short(m)}", at)
        role = m.get("role")
        if role not in ROLES:
            raise CallerError(
                f"{at}.role is {_short(role)}; expected one of {sorted(ROLES)}",
                f"{at}.role",
            )
        content = m.get("content")
        if isinstance(content, str):
            substance += bool(content)
        elif isinstance(content, (list, tuple)):
            substance += sum(_check_part(p, f"{at}.content[{j}]") for j, p in enumerate(content))
        elif content is not None:
            raise CallerError(
                f"{at}.content must be a string, a list of content parts or None, got "
                f"{type(content).__name__} {_short(content)}",
                f"{at}.content",
            )
        if m.get("tool_calls") is not None:
            substance += _check_tool_calls(m.get("tool_calls"), f"{at}.tool_calls")
        if role == "tool":
            _check_text(m.get("tool_call_id"), f"{at}.tool_call_id")
        if m.get("name") is not None:
            _check_text(m.get("name"), f"{at}.name")
        out.append(m if isinstance(m, dict) else dict(m))
    if not substance:
        raise CallerError(
            "the request's messages have no text, no content parts and no tool calls; send at least one non-empty message",
            "messages",
        )
    return out


def check_params(params: Mapping[str, Any]) -> None:
    """Raise :class:`CallerError` when a LiteLLM parameter cannot be sent as JSON (names the parameter)."""
    for key, value in params.items():
        if value is None or key in _CLIENT_SIDE_PARAMS:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise CallerError(f"parameter {key}={value!r} is not a finite number", key)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise CallerError(
                f"parameter {key!r} cannot be sent as JSON ({exc}): {_short(value)}", key
            ) from None


def _unsendable(text: str) -> int | None:
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        return exc.start


def check_sendable(messages: Sequence[Mapping[str, Any]]) -> None:
    """Raise :class:`CallerError` when a text cannot be sent to a provider as UTF-8 (a lone surrogate).

    Routing reads such text (cleaned by :func:`encoder_text`); sending it would fail on every model.
    """
    for i, m in enumerate(messages):
        content = m.get("content")
        texts: list[tuple[str, Any]] = []
        if isinstance(content, str):
            texts.append((f"messages[{i}].content", content))
        elif isinstance(content, (list, tuple)):
            texts += [
                (f"messages[{i}].content[{j}].text", p.get("text"))
                for j, p in enumerate(content)
                if isinstance(p, Mapping)
            ]
        for j, tc in enumerate(m.get("tool_calls") or ()):
            fn = tc.get("function") if isinstance(tc, Mapping) else None
            if isinstance(fn, Mapping):
                texts.append((f"messages[{i}].tool_calls[{j}].function.arguments", fn.get("arguments")))
        for where, text in texts:
            pos = _unsendable(text) if isinstance(text, str) else None
            if pos is not None:
                raise CallerError(
                    f"{where} holds an invalid code point {text[pos]!r} at position {pos} (a lone surrogate); "
                    "it cannot be sent to a provider as UTF-8: fix the text (routing alone accepts it)",
                    where,
                )


def encoder_text(text: str) -> str:
    """``text`` with lone surrogates (and other code points UTF-8 cannot hold) replaced by U+FFFD.

    Only what the encoder reads is cleaned; the request sent to the provider is left as the caller
    gave it.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        # a surrogate *pair* split across two code units is joined again; a lone one becomes U+FFFD
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def encoder_messages(messages: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """``messages`` with every text cleaned by :func:`encoder_text` (the same list when nothing needs it).

    For the encoder only: what is sent to the provider is the caller's own list.
    """

    def clean(m: Mapping[str, Any]) -> bool:
        c = m.get("content")
        if isinstance(c, str):
            return _unsendable(c) is None
        if isinstance(c, (list, tuple)):
            return all(
                not (isinstance(p, Mapping) and isinstance(p.get("text"), str))
                or _unsendable(p["text"]) is None
                for p in c
            )
        return True

    if all(clean(m) for m in messages):
        return messages
    out = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            c = encoder_text(c)
        elif isinstance(c, (list, tuple)):
            c = [
                {**p, "text": encoder_text(p["text"])}
                if isinstance(p, Mapping) and isinstance(p.get("text"), str)
                else p
                for p in c
            ]
        out.append({**m, "content": c})
    return out
