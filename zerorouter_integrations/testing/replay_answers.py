"""What the replay server answers: message text, JSON-schema values, tool calls, deterministic text.

:func:`build_answer` picks the answer of one request in the order the replay module's docstring
gives (scripted, the model's reply, a tool call, a JSON object, recorded, deterministic).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.testing.replay_tables import RecordedAnswers, prompt_key
from zerorouter_integrations.testing.replay_types import ModelBehaviour, ScriptedReply

__all__ = ["Answer", "build_answer", "deterministic_reply", "message_chars", "truncate_answer"]

_WORDS = (
    "answer",
    "result",
    "model",
    "value",
    "because",
    "therefore",
    "the",
    "a",
    "is",
    "of",
    "clear",
    "simple",
    "first",
    "second",
    "option",
    "reason",
    "given",
    "so",
    "we",
    "find",
    "this",
    "that",
    "short",
    "final",
    "check",
    "step",
    "number",
    "text",
    "replay",
    "output",
)


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return str(content)


def message_chars(messages: Sequence[dict]) -> int:
    """Characters of the messages' text and tool calls (the prompt-token count is a quarter of it)."""
    total = 0
    for m in messages:
        if isinstance(m, dict):
            total += len(_text_of(m.get("content")))
            for tc in m.get("tool_calls") or ():
                fn = (tc or {}).get("function") or {}
                total += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
    return total


def _last_user_text(messages: Sequence[dict]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""


def _prompt_texts(messages: Sequence[dict]) -> list[str]:
    """Candidate texts to match a recorded prompt: the last user message, then the whole prompt."""
    last = _last_user_text(messages)
    whole = "\n".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
    out = [last] if last.strip() else []
    if whole.strip() and whole.strip() != last.strip():
        out.append(whole)
    return out


def _digest(*parts: str) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.digest()


def deterministic_reply(model: str, prompt: str) -> str:
    """A reply that depends only on (model, prompt)."""
    d = _digest(model, prompt)
    n = 8 + d[0] % 17
    words = [_WORDS[d[1 + i % 31] * (i + 1) % len(_WORDS)] for i in range(n)]
    return f"{model} says: " + " ".join(words) + "."


_NUM_RE = re.compile(r"-?\d+(?:\.\d+)?")


class _SchemaFiller:
    """Build a deterministic value that validates against a (simple) JSON schema.

    Integers and numbers take, in order, the numbers written in the user's message (so
    "magic_function(3)" gives ``{"input": 3}``); strings take ``enum[0]``, a ``default``, or a
    short text naming the field.
    """

    def __init__(self, root: Mapping[str, Any], prompt: str):
        self.root = root
        self.numbers = [float(x) for x in _NUM_RE.findall(prompt)]

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while isinstance(schema, Mapping) and "$ref" in schema and seen < 20:
            ref = str(schema["$ref"])
            node: Any = self.root
            if ref.startswith("#/"):
                for part in ref[2:].split("/"):
                    node = node.get(part, {}) if isinstance(node, Mapping) else {}
            else:
                node = {}
            schema = node
            seen += 1
        return schema if isinstance(schema, Mapping) else {}

    def value(self, schema: Any, name: str = "value", depth: int = 0) -> Any:
        schema = self._resolve(schema) if isinstance(schema, Mapping) else {}
        if depth > 8:
            return None
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                non_null = [o for o in options if self._resolve(o).get("type") != "null"]
                if key == "allOf":
                    merged: dict[str, Any] = {}
                    for o in options:
                        merged.update(self._resolve(o))
                    return self.value(merged, name, depth + 1)
                return self.value(non_null[0] if non_null else options[0], name, depth + 1)
        typ = schema.get("type")
        if isinstance(typ, list):
            typ = next((t for t in typ if t != "null"), "null")
        if typ is None:
            typ = "object" if "properties" in schema else "string"
        if typ == "object":
            props = schema.get("properties") or {}
            return {k: self.value(v, k, depth + 1) for k, v in props.items()}
        if typ == "array":
            n = max(1, int(schema.get("minItems", 1)))
            return [self.value(schema.get("items") or {}, name, depth + 1) for _ in range(n)]
        if typ == "integer":
            if self.numbers:
                return int(self.numbers.pop(0))
            return int(schema.get("minimum", 1))
        if typ == "number":
            if self.numbers:
                return self.numbers.pop(0)
            return float(schema.get("minimum", 1.5))
        if typ == "boolean":
            return True
        if typ == "null":
            return None
        return f"{name} {hashlib.blake2b(name.encode(), digest_size=2).hexdigest()}"


def _tool_schema(tool: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    fn = tool.get("function", tool) if isinstance(tool, Mapping) else {}
    return str(fn.get("name", "tool")), fn.get("parameters") or {"type": "object", "properties": {}}


@dataclass
class Answer:
    """One answer: text and/or tool calls, where it came from (``RecordedRequest.source``), finish reason."""

    content: str | None
    tool_calls: list[dict]
    source: str
    finish_reason: str = "stop"


def _call_id(model: str, name: str, args: str, i: int) -> str:
    return "call_" + hashlib.blake2b(f"{model}|{name}|{args}|{i}".encode(), digest_size=8).hexdigest()


def _as_answer(value: Any, model: str, source: str) -> Answer | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Answer(value, [], source)
    if isinstance(value, Mapping):
        raw_calls = list(value.get("tool_calls") or [])
        if value.get("tool_call"):
            raw_calls.append(value["tool_call"])
        calls = []
        for i, tc in enumerate(raw_calls):
            fn = tc.get("function", tc)
            args = fn.get("arguments", {})
            args_s = args if isinstance(args, str) else json.dumps(args)
            name = str(fn["name"])
            calls.append(
                {
                    "id": tc.get("id") or _call_id(model, name, args_s, i),
                    "type": "function",
                    "function": {"name": name, "arguments": args_s},
                }
            )
        content = value.get("content")
        return Answer(
            content, calls, source, value.get("finish_reason") or ("tool_calls" if calls else "stop")
        )
    raise SchemaError(
        f"scripted reply {value!r}; expected a str, a dict with 'content' / 'tool_calls' / "
        "'tool_call', or a callable returning one of these"
    )


def build_answer(
    model: str,
    body: dict,
    messages: list,
    b: ModelBehaviour,
    *,
    scripted: Sequence[tuple[re.Pattern, ScriptedReply]] = (),
    responses: Mapping[bytes, str | Mapping[str, str]] | None = None,
    tables: RecordedAnswers | None = None,
) -> Answer:
    """What ``model`` answers to a chat request ``body`` (the order of the replay module's docstring).

    ``scripted``: (regex, reply) pairs; ``responses``: :func:`prompt_key` → answer (or → {model:
    answer}); ``tables``: the recorded answers of routing tables.
    """
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    after_tool = last.get("role") in ("tool", "function")
    user_text = _last_user_text(messages)
    for pattern, reply in scripted:
        if pattern.search(user_text):
            value = reply(body) if callable(reply) else reply
            if (
                not callable(reply)
                and after_tool
                and isinstance(value, Mapping)
                and (value.get("tool_calls") or value.get("tool_call"))
            ):
                continue
            ans = _as_answer(value, model, "scripted")
            if ans is not None:
                return ans
    if b.reply is not None:
        ans = _as_answer(b.reply(body) if callable(b.reply) else b.reply, model, "reply")
        if ans is not None:
            return ans
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if tools and choice != "none" and not after_tool:
        tool = tools[0]
        if isinstance(choice, dict):
            wanted = (choice.get("function") or {}).get("name") or choice.get("name")
            tool = next((t for t in tools if _tool_schema(t)[0] == wanted), tool)
        name, schema = _tool_schema(tool)
        args = json.dumps(_SchemaFiller(schema, user_text).value(schema, name))
        return Answer(
            None,
            [
                {
                    "id": _call_id(model, name, args, 0),
                    "type": "function",
                    "function": {"name": name, "arguments": args},
                }
            ],
            "tool",
            "tool_calls",
        )
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in ("json_schema", "json_object"):
        if rf["type"] == "json_schema":
            js = rf.get("json_schema") or {}
            schema = js.get("schema") or {"type": "object", "properties": {}}
            value = _SchemaFiller(schema, user_text).value(schema, js.get("name") or "value")
        else:
            value = {"answer": deterministic_reply(model, user_text)}
        return Answer(json.dumps(value), [], "json")
    if after_tool:
        result = _text_of(last.get("content"))
        return Answer(f"The tool returned: {result}", [], "tool_result")
    texts = _prompt_texts(messages)
    if responses:
        for text in texts:
            hit = responses.get(prompt_key(text))
            if isinstance(hit, Mapping):
                hit = hit.get(model)
            if hit is not None:
                return Answer(str(hit), [], "responses")
    if tables is not None:
        hit = tables.lookup(model, texts)
        if hit is not None:
            return Answer(hit, [], "recorded")
    return Answer(deterministic_reply(model, texts[0] if texts else ""), [], "deterministic")


def truncate_answer(answer: Answer, body: dict) -> None:
    """Cut a text answer at the request's ``stop`` strings and ``max_tokens`` (4 characters a token)."""
    if answer.content is None or answer.tool_calls:
        return
    stop = body.get("stop")
    if stop:
        for s in [stop] if isinstance(stop, str) else list(stop):
            i = answer.content.find(s) if s else -1
            if i >= 0:
                answer.content = answer.content[:i]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and limit > 0 and len(answer.content) > 4 * limit:
        answer.content = answer.content[: 4 * limit]
        answer.finish_reason = "length"
