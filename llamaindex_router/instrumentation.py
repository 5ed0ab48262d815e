"""Per-model statistics of routed LlamaIndex calls, from LlamaIndex's instrumentation dispatcher.

:class:`RoutingStatsHandler` listens for ``LLMChatEndEvent`` / ``LLMCompletionEndEvent`` (one per
``chat``/``complete`` call, streams included: the last streamed response carries usage and cost)
and aggregates, per routed model: calls, tokens, cost, latency, time to first token, and the
failed attempts that preceded a success (or, for streams, an ``AllModelsFailedError``)::

    from llamaindex_router import RoutingStatsHandler
    with RoutingStatsHandler().attach() as stats:
        query_engine.query("…")
    print(stats.table())           # or stats.summary() as a dict

Responses that did not come from :class:`~llamaindex_router.ZeroRouterLLM` (no routing metadata)
are counted in ``summary()["ignored"]`` only.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent

__all__ = ["ModelStats", "RoutingStatsHandler", "attach", "detach"]


@dataclass
class ModelStats:
    """What one routed model did (sums; means are derived in :meth:`RoutingStatsHandler.summary`)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    ttft_s: float = 0.0
    ttft_calls: int = 0
    errors: int = 0


class RoutingStatsHandler(BaseEventHandler):
    """Aggregate routed calls per model (thread-safe; attach with :meth:`attach`)."""

    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _stats: dict[str, ModelStats] = PrivateAttr(default_factory=dict)
    _ignored: int = PrivateAttr(default=0)
    _attached_to: Any = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "RoutingStatsHandler"

    # ------------------------------------------------------------------ events
    def handle(self, event: Any, **kwargs: Any) -> None:
        """Record an LLM end event (or the failed attempts of an ``AllModelsFailedError``)."""
        if isinstance(event, (LLMChatEndEvent, LLMCompletionEndEvent)):
            if event.response is not None:
                self.record(event.response)
        elif isinstance(event, ExceptionEvent):
            attempts = getattr(event.exception, "attempts", None)
            if attempts:
                self._record_attempts(attempts)

    def record(self, response: Any) -> bool:
        """Add one ``ChatResponse`` / ``CompletionResponse``; False when it carries no routing metadata."""
        meta = getattr(response, "additional_kwargs", None) or {}
        model = meta.get("model")
        if model is None or "routing_decision" not in meta:
            with self._lock:
                self._ignored += 1
            return False
        usage = meta.get("usage") or {}
        with self._lock:
            st = self._stats.setdefault(str(model), ModelStats())
            st.calls += 1
            st.input_tokens += int(usage.get("input_tokens") or 0)
            st.output_tokens += int(usage.get("output_tokens") or 0)
            st.cost_usd += float(meta.get("cost_usd") or 0.0)
            st.latency_s += float(meta.get("latency_s") or 0.0)
            if meta.get("ttft_s") is not None:
                st.ttft_s += float(meta["ttft_s"])
                st.ttft_calls += 1
        self._record_attempts(meta.get("failed_attempts") or [])
        return True

    def _record_attempts(self, attempts: Any) -> None:
        with self._lock:
            for a in attempts:
                name = a.get("model") if isinstance(a, dict) else getattr(a, "model", None)
                if name is not None:
                    self._stats.setdefault(str(name), ModelStats()).errors += 1

    # ------------------------------------------------------------------ results
    def summary(self) -> dict[str, Any]:
        """``{"models": {name: {calls, input_tokens, output_tokens, cost_usd, mean_latency_s,
        mean_ttft_s, errors, share}}, "total": {...}, "ignored": n}``."""
        with self._lock:
            stats = {m: ModelStats(**asdict(s)) for m, s in self._stats.items()}
            ignored = self._ignored
        total_calls = sum(s.calls for s in stats.values())
        models = {}
        for m, s in sorted(stats.items(), key=lambda kv: (-kv[1].calls, kv[0])):
            models[m] = {
                "calls": s.calls,
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "cost_usd": s.cost_usd,
                "mean_latency_s": s.latency_s / s.calls if s.calls else None,
                "mean_ttft_s": s.ttft_s / s.ttft_calls if s.ttft_calls else None,
                "errors": s.errors,
                "share": s.calls / total_calls if total_calls else 0.0,
            }
        total = {
            "calls": total_calls,
            "input_tokens": sum(s.input_tokens for s in stats.values()),
            "output_tokens": sum(s.output_tokens for s in stats.values()),
            "cost_usd": sum(s.cost_usd for s in stats.values()),
            "mean_latency_s": (sum(s.latency_s for s in stats.values()) / total_calls)
            if total_calls
            else None,
            "errors": sum(s.errors for s in stats.values()),
        }
        return {"models": models, "total": total, "ignored": ignored}

    def table(self) -> str:
        """The summary as a fixed-width text table."""
        s = self.summary()
        head = f"{'model':<36} {'calls':>5} {'in tok':>8} {'out tok':>8} {'cost USD':>10} {'mean s':>7} {'errors':>6}"
        lines = [head, "-" * len(head)]

        def row(name: str, d: dict[str, Any]) -> str:
            lat = d["mean_latency_s"]
            return (
                f"{name[:36]:<36} {d['calls']:>5} {d['input_tokens']:>8} {d['output_tokens']:>8} "
                f"{d['cost_usd']:>10.6f} {'-' if lat is None else f'{lat:.3f}':>7} {d['errors']:>6}"
            )

        lines += [row(m, d) for m, d in s["models"].items()]
        lines += ["-" * len(head), row("total", s["total"])]
        return "\n".join(lines)

    def reset(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self._stats.clear()
            self._ignored = 0

    # ------------------------------------------------------------------ wiring
    def attach(self, dispatcher: Any = None) -> RoutingStatsHandler:
        """Register on ``dispatcher`` (default: LlamaIndex's root dispatcher); returns ``self``.

        Also usable as a context manager: ``with RoutingStatsHandler().attach() as h: …``.
        """
        d = dispatcher if dispatcher is not None else get_dispatcher()
        if self._attached_to is not None and self._attached_to is not d:
            self.detach()
        if not any(h is self for h in d.event_handlers):
            d.add_event_handler(self)
        self._attached_to = d
        return self

    def detach(self) -> None:
        """Unregister from the dispatcher it was attached to (no-op when not attached)."""
        d = self._attached_to
        if d is not None:
            d.event_handlers = [h for h in d.event_handlers if h is not self]
        self._attached_to = None

    def __enter__(self) -> RoutingStatsHandler:
        if self._attached_to is None:
            self.attach()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()


def attach(handler: RoutingStatsHandler | None = None, dispatcher: Any = None) -> RoutingStatsHandler:
    """Attach ``handler`` (a new :class:`RoutingStatsHandler` when None) and return it."""
    return (handler or RoutingStatsHandler()).attach(dispatcher)


def detach(handler: RoutingStatsHandler) -> None:
    """Detach a handler attached with :func:`attach`."""
    handler.detach()
