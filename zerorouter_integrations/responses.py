"""What a routed call returns: :class:`RoutedResponse` (a completed call) and :class:`RoutedChunk` (a
streamed piece; the last one carries the response)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RoutedChunk", "RoutedResponse"]


@dataclass
class RoutedResponse:
    """A completed call: the answer plus where it went, what it cost and how long it took."""

    content: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    model: str
    decision: Any  # RoutingDecision
    usage: Any  # dispatch.Usage
    cost_usd: float
    latency_s: float
    ttft_s: float | None
    request_id: str
    attempts: list[Any] = field(default_factory=list)
    response: Any = None  # the raw LiteLLM ModelResponse

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "tool_calls": self.tool_calls,
            "finish_reason": self.finish_reason,
            "model": self.model,
            "decision": self.decision.to_dict(),
            "usage": asdict(self.usage),
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "ttft_s": self.ttft_s,
            "request_id": self.request_id,
            "attempts": [asdict(a) for a in self.attempts],
        }


@dataclass
class RoutedChunk:
    """One streamed piece. The last chunk of a stream has ``final`` set and carries ``response``."""

    content: str = ""
    tool_call_deltas: list[Any] = field(default_factory=list)
    model: str | None = None
    final: bool = False
    response: RoutedResponse | None = None
    raw: Any = None
