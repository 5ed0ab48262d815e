"""A core :class:`RoutedResponse` / :class:`RoutedChunk` as LangChain output: messages, chunks, metadata."""

from __future__ import annotations

import dataclasses
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_router._messages import tool_call_chunks_from_deltas, tool_calls_from_openai, usage_to_metadata

__all__ = ["chat_result", "combine_llm_outputs", "delta_chunk", "final_chunk", "response_metadata"]


def response_metadata(resp: Any) -> dict[str, Any]:
    """``response_metadata`` of the answer: the model that answered, cost, latency, the decision."""
    try:
        decision = resp.decision.to_dict()
    except Exception:
        decision = None
    meta: dict[str, Any] = {
        "model_name": resp.model,
        "model_provider": "zerorouter",
        "response_cost": float(resp.cost_usd),
        "latency_s": resp.latency_s,
        "ttft_s": resp.ttft_s,
        "finish_reason": resp.finish_reason,
        "routing_decision": decision,
        "request_id": resp.request_id,
    }
    if resp.attempts:
        meta["failed_attempts"] = [
            dataclasses.asdict(a) if dataclasses.is_dataclass(a) and not isinstance(a, type) else str(a)
            for a in resp.attempts
        ]
    raw_id = getattr(resp.response, "id", None)
    if raw_id:
        meta["id"] = raw_id
    return meta


def chat_result(resp: Any) -> ChatResult:
    """A ``ChatResult`` (one ``AIMessage`` with tool calls, usage and metadata) for a routed response."""
    calls, invalid = tool_calls_from_openai(resp.tool_calls)
    meta = response_metadata(resp)
    usage = usage_to_metadata(resp.usage)
    message = AIMessage(
        content=resp.content or "",
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage,
        response_metadata=meta,
        id=meta.get("id"),
    )
    gen = ChatGeneration(message=message, generation_info={"finish_reason": resp.finish_reason})
    llm_output = {
        "model_name": resp.model,
        "token_usage": dict(usage),
        "response_cost": meta["response_cost"],
    }
    return ChatResult(generations=[gen], llm_output=llm_output)


def delta_chunk(rc: Any) -> ChatGenerationChunk:
    """A stream chunk for one routed delta (text and tool-call pieces)."""
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content=rc.content or "", tool_call_chunks=tool_call_chunks_from_deltas(rc.tool_call_deltas)
        )
    )


def final_chunk(resp: Any, *, with_usage: bool = True) -> ChatGenerationChunk:
    """The stream's last chunk: no text, the usage (only here, unless ``with_usage`` is False) and all
    the metadata."""
    meta = response_metadata(resp)
    meta.pop("id", None)
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content="",
            usage_metadata=usage_to_metadata(resp.usage) if with_usage else None,
            response_metadata=meta,
            chunk_position="last",
        ),
        generation_info={"finish_reason": resp.finish_reason},
    )


def combine_llm_outputs(llm_outputs: list[dict | None]) -> dict:
    """Token usage and cost summed over a batch's ``llm_output`` dicts, with the models that answered."""
    total: dict[str, int] = {}
    cost = 0.0
    models: list[str] = []
    for out in llm_outputs:
        if not out:
            continue
        for k, v in (out.get("token_usage") or {}).items():
            if isinstance(v, int):
                total[k] = total.get(k, 0) + v
        cost += float(out.get("response_cost") or 0.0)
        if out.get("model_name"):
            models.append(out["model_name"])
    return {"token_usage": total, "response_cost": cost, "model_names": models}
