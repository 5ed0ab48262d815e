"""Usage, cost and latency per underlying model, for any run that uses :class:`ZeroRouterChat`.

``langchain_core.callbacks.get_usage_metadata_callback()`` already keys token usage by
``response_metadata["model_name"]``, which :class:`ZeroRouterChat` sets to the model that answered, so
it reports per underlying model too. :class:`RoutingUsageCallbackHandler` adds what it lacks: the
number of calls, the USD cost (``response_metadata["response_cost"]``) and the latency.

>>> with get_routing_usage_callback() as cb:          # doctest: +SKIP
...     chain.invoke({"question": "..."})
>>> print(cb.summary())                                # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

__all__ = ["ModelUsage", "RoutingUsageCallbackHandler", "get_routing_usage_callback"]


@dataclass
class ModelUsage:
    """What one underlying model did: calls, tokens, USD cost and wall time."""

    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0

    @property
    def mean_latency_s(self) -> float | None:
        """Mean latency per call (None before the first call)."""
        return self.latency_s / self.calls if self.calls else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean_latency_s": self.mean_latency_s}


class RoutingUsageCallbackHandler(BaseCallbackHandler):
    """Aggregate calls, tokens, cost and latency per underlying model (thread-safe).

    Every chat generation whose ``response_metadata`` names a ``model_name`` counts: one call, its
    ``usage_metadata`` tokens, ``response_metadata["response_cost"]`` (0 when absent) and
    ``latency_s`` (0 when absent). Failed runs are counted in :attr:`errors`.
    """

    raise_error: bool = False

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._usage: dict[str, ModelUsage] = {}
        self.errors = 0

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for gen in generations:
                if not isinstance(gen, ChatGeneration) or not isinstance(gen.message, AIMessage):
                    continue
                msg = gen.message
                model = msg.response_metadata.get("model_name")
                if not model:
                    continue
                usage = msg.usage_metadata or {}
                meta = msg.response_metadata
                with self._lock:
                    mu = self._usage.setdefault(model, ModelUsage(model))
                    mu.calls += 1
                    mu.input_tokens += int(usage.get("input_tokens", 0) or 0)
                    mu.output_tokens += int(usage.get("output_tokens", 0) or 0)
                    mu.total_tokens += int(usage.get("total_tokens", 0) or 0)
                    mu.cost_usd += float(meta.get("response_cost") or 0.0)
                    mu.latency_s += float(meta.get("latency_s") or 0.0)

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        with self._lock:
            self.errors += 1

    # ------------------------------------------------------------------ reading
    @property
    def usage(self) -> dict[str, ModelUsage]:
        """A snapshot: model → :class:`ModelUsage` (copies)."""
        with self._lock:
            return {m: ModelUsage(**asdict(u)) for m, u in self._usage.items()}

    @property
    def total_cost_usd(self) -> float:
        with self._lock:
            return sum(u.cost_usd for u in self._usage.values())

    @property
    def total_calls(self) -> int:
        with self._lock:
            return sum(u.calls for u in self._usage.values())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """model → the :meth:`ModelUsage.to_dict` of its totals."""
        return {m: u.to_dict() for m, u in self.usage.items()}

    def reset(self) -> None:
        with self._lock:
            self._usage.clear()
            self.errors = 0

    def summary(self) -> str:
        """A plain-text table, one row per model (most expensive first) and a total row."""
        rows = sorted(self.usage.values(), key=lambda u: (-u.cost_usd, u.model))
        head = ("model", "calls", "input tok", "output tok", "cost USD", "mean latency s")
        body = [
            (
                u.model,
                str(u.calls),
                str(u.input_tokens),
                str(u.output_tokens),
                f"{u.cost_usd:.6f}",
                f"{u.mean_latency_s:.3f}" if u.mean_latency_s is not None else "-",
            )
            for u in rows
        ]
        calls = sum(u.calls for u in rows)
        lat = sum(u.latency_s for u in rows)
        body.append(
            (
                "TOTAL",
                str(calls),
                str(sum(u.input_tokens for u in rows)),
                str(sum(u.output_tokens for u in rows)),
                f"{sum(u.cost_usd for u in rows):.6f}",
                f"{lat / calls:.3f}" if calls else "-",
            )
        )
        widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]

        def line(r: tuple[str, ...]) -> str:
            cells = zip(r, widths, strict=True)
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

        sep = "  ".join("-" * w for w in widths)
        return "\n".join([line(head), sep, *(line(r) for r in body[:-1]), sep, line(body[-1])])

    def __repr__(self) -> str:
        return f"RoutingUsageCallbackHandler({self.to_dict()!r})"


@contextmanager
def get_routing_usage_callback(
    name: str = "zerorouter_routing_usage_callback",
) -> Iterator[RoutingUsageCallbackHandler]:
    """Collect routing usage for every LangChain run inside the ``with`` block.

    Like ``langchain_core.callbacks.get_usage_metadata_callback``: the handler is attached to all
    runs started in this context (threads and tasks that copy the context included).

    Yields
    ------
    RoutingUsageCallbackHandler
    """
    var: ContextVar[RoutingUsageCallbackHandler | None] = ContextVar(name, default=None)
    register_configure_hook(var, inheritable=True)
    cb = RoutingUsageCallbackHandler()
    token = var.set(cb)
    try:
        yield cb
    finally:
        var.reset(token)
