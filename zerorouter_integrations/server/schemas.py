"""OpenAI wire format in and out: request checks, router keyword arguments, response bodies, errors.

Framework-free (plain dicts): :mod:`zerorouter_integrations.server.app` moves them over HTTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ChatRequest",
    "GatewayError",
    "chunk_body",
    "completion_body",
    "error_body",
    "parse_chat_request",
    "parse_json_body",
    "saving_usd",
    "usage_body",
]

#: Request fields passed on to the model (``max_completion_tokens`` becomes ``max_tokens``).
FORWARDED = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "parallel_tool_calls",
    "logit_bias",
    "logprobs",
    "top_logprobs",
)
#: Fields accepted and not forwarded (they describe the caller or the stream, not the model call).
IGNORED = ("model", "messages", "stream", "stream_options", "user", "metadata", "store", "n", "service_tier")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error"}


class GatewayError(Exception):
    """An error the gateway answers with OpenAI's error shape and ``status``."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, param: str | None = None, type_: str = ""
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.type = type_ or _TYPES.get(status) or ("rate_limit_error" if status == 429 else "api_error")


def error_body(err: GatewayError) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``, as OpenAI sends it."""
    return {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}


@dataclass
class ChatRequest:
    """A checked ``POST /v1/chat/completions`` body."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    stream: bool
    include_usage: bool


def _bad(message: str, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def parse_json_body(raw: bytes, expected: str) -> Any:
    """The JSON value of a request body; :class:`GatewayError` (400) for bytes that are not JSON or
    nest deeper than the parser's recursion limit (``expected`` says what the body should be)."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"the request body is not valid JSON ({exc}); expected {expected}") from None
    except RecursionError:
        raise _bad(f"the request body nests too deeply to parse; expected {expected}") from None


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Parse and check a chat-completions body; raises :class:`GatewayError` (400) naming the bad field."""
    body = parse_json_body(raw, "a chat completions object")
    if not isinstance(body, dict):
        raise _bad(f"the request body is a JSON {type(body).__name__}; expected an object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad(f"model={model!r}; expected a model name such as 'zerorouter'", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad(f"messages={messages!r:.80}; expected a non-empty list of messages", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _bad(f"messages[{i}]={m!r:.80}; expected an object with a 'role'", f"messages[{i}]")
    if body.get("n") not in (None, 1):
        raise _bad(f"n={body['n']!r}; the gateway returns one choice (n=1)", "n")
    params = {k: body[k] for k in FORWARDED if body.get(k) is not None}
    if body.get("max_completion_tokens") is not None:
        params.setdefault("max_tokens", body["max_completion_tokens"])
    for key in ("max_tokens", "top_logprobs", "seed"):
        v = params.get(key)
        if v is not None and (
            not isinstance(v, int) or isinstance(v, bool) or (key == "max_tokens" and v < 1)
        ):
            raise _bad(f"{key}={v!r}; expected a positive integer", key)
    t = params.get("temperature")
    if t is not None and (not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 <= t <= 2):
        raise _bad(f"temperature={t!r}; expected a number in [0, 2]", "temperature")
    stop = params.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise _bad(f"stop={stop!r}; expected a string or a list of strings", "stop")
    tools = params.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(x, dict) for x in tools)):
        raise _bad(f"tools={tools!r:.80}; expected a list of tool objects", "tools")
    rf = params.get("response_format")
    if rf is not None and not (
        isinstance(rf, dict) and rf.get("type") in ("text", "json_object", "json_schema")
    ):
        raise _bad(
            f"response_format={rf!r:.80}; expected type text, json_object or json_schema", "response_format"
        )
    if isinstance(rf, dict) and rf.get("type") == "text":
        params.pop("response_format")
    if not isinstance(body.get("stream", False), (bool, type(None))):
        raise _bad(f"stream={body['stream']!r:.80}; expected true or false", "stream")
    opts = body.get("stream_options") or {}
    return ChatRequest(
        model=model,
        messages=messages,
        params=params,
        stream=bool(body.get("stream")),
        include_usage=bool(opts.get("include_usage", True)) if isinstance(opts, Mapping) else True,
    )


# ---------------------------------------------------------------------------- responses
def saving_usd(router: Any, response: Any) -> float:
    """What the reference model would have cost for the same tokens, minus what this call cost.

    Uses the reference model's list prices; without them, its predicted cost from the decision.
    """
    decision = response.decision
    ref = getattr(decision, "reference_model", None)
    profile = router.predictor.profiles_.get(ref) if ref else None
    usage = response.usage
    if profile is not None and profile.input_usd_per_token is not None:
        ref_cost = usage.input_tokens * profile.input_usd_per_token + usage.output_tokens * (
            profile.output_usd_per_token or 0.0
        )
    elif getattr(decision, "reference_cost_usd", None) is not None:
        ref_cost = float(decision.reference_cost_usd)
    else:
        return 0.0
    return float(ref_cost - response.cost_usd)


def usage_body(usage: Any) -> dict[str, int]:
    return {
        "prompt_tokens": int(usage.input_tokens),
        "completion_tokens": int(usage.output_tokens),
        "total_tokens": int(usage.total_tokens or usage.input_tokens + usage.output_tokens),
    }


def _zr(response: Any, saving: float) -> dict[str, Any]:
    d = response.decision
    return {
        "request_id": response.request_id,
        "model": response.model,
        "cost_usd": response.cost_usd,
        "saving_usd": saving,
        "reference_model": getattr(d, "reference_model", None),
        "fallbacks": len(response.attempts),
        "decision": d.to_dict() if hasattr(d, "to_dict") else None,
    }


def completion_body(response: Any, saving: float) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object for a :class:`RoutedResponse` (plus a ``zerorouter`` field)."""
    message: dict[str, Any] = {"role": "assistant", "content": response.content}
    if response.tool_calls:
        message["tool_calls"] = response.tool_calls
    return {
        "id": f"chatcmpl-{response.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": response.finish_reason or ("tool_calls" if response.tool_calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage_body(response.usage),
        "zerorouter": _zr(response, saving),
    }


def chunk_body(
    request_id: str,
    model: str,
    *,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage: dict[str, int] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; with ``usage`` and no delta, the final usage chunk (no choices)."""
    out: dict[str, Any] = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": []
        if delta is None and finish_reason is None
        else [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason, "logprobs": None}],
    }
    if usage is not None:
        out["usage"] = usage
    if extra is not None:
        out["zerorouter"] = extra
    return out


def final_extra(response: Any, saving: float) -> dict[str, Any]:
    """The ``zerorouter`` field of the last chunk of a stream."""
    return _zr(response, saving)
