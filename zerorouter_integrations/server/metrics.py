"""What one gateway process has served: Prometheus text for ``/metrics``, JSON for the dashboard.

Both views are rendered from the same :class:`GatewayMetrics` counters, so the dashboard's totals are
the ``/metrics`` totals. Each replica counts its own traffic (Prometheus sums replicas).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["LATENCY_BUCKETS", "GatewayMetrics"]

#: Upper bounds (seconds) of the latency histogram buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class GatewayMetrics:
    """Counters of one gateway process (thread-safe).

    Parameters
    ----------
    keep_decisions : int, default=50
        How many recent decisions the dashboard lists.
    keep_latencies : int, default=2000
        Recent latencies kept per model for the dashboard's p50 / p95.
    """

    def __init__(self, keep_decisions: int = 50, keep_latencies: int = 2000):
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests: dict[tuple[str, int], int] = {}  # (virtual model, status) -> count
        self.routed: dict[str, int] = {}
        self.cost: dict[str, float] = {}
        self.saving_usd = 0.0
        self.reference_cost_usd = 0.0
        self.fallbacks = 0
        self.errors: dict[str, int] = {}
        self.hist: dict[str, list[int]] = {}
        self.lat_sum: dict[str, float] = {}
        self.lat_recent: dict[str, deque] = {}
        self.feedback_n = 0
        self.feedback_sum = 0.0
        self.feedback_by_model: dict[str, list[float]] = {}
        self.decisions: deque = deque(maxlen=keep_decisions)
        self.saving_series: list[tuple[float, float, float]] = []  # (t, cumulative saving, cumulative cost)
        self._keep_latencies = keep_latencies

    # ---------------------------------------------------------------- recording
    def request(self, virtual_model: str, status: int) -> None:
        """Count one finished HTTP request to the chat endpoint."""
        with self._lock:
            key = (virtual_model, int(status))
            self.requests[key] = self.requests.get(key, 0) + 1

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def routed_call(self, response: Any, saving: float, virtual_model: str) -> None:
        """Count a served call: model share, cost, saving, latency, fallbacks and the decision."""
        m = response.model
        lat = float(response.latency_s)
        with self._lock:
            self.routed[m] = self.routed.get(m, 0) + 1
            self.cost[m] = self.cost.get(m, 0.0) + float(response.cost_usd)
            self.saving_usd += saving
            self.reference_cost_usd += saving + float(response.cost_usd)
            if any(a.model != m for a in response.attempts):  # another model failed first
                self.fallbacks += 1
            h = self.hist.setdefault(m, [0] * (len(LATENCY_BUCKETS) + 1))
            h[int(np.searchsorted(LATENCY_BUCKETS, lat))] += 1
            self.lat_sum[m] = self.lat_sum.get(m, 0.0) + lat
            self.lat_recent.setdefault(m, deque(maxlen=self._keep_latencies)).append(lat)
            self.saving_series.append((time.time(), self.saving_usd, sum(self.cost.values())))
            if len(self.saving_series) > 2000:  # keep the curve's shape, not every point
                self.saving_series = self.saving_series[::2]
            d = response.decision
            self.decisions.appendleft(
                {
                    "time": time.time(),
                    "request_id": response.request_id,
                    "virtual_model": virtual_model,
                    "model": m,
                    "cost_usd": float(response.cost_usd),
                    "saving_usd": saving,
                    "latency_s": lat,
                    "fallbacks": [a.model for a in response.attempts],
                    "explanation": explain(d),
                }
            )

    def feedback(self, model: str, score: float) -> None:
        with self._lock:
            self.feedback_n += 1
            self.feedback_sum += score
            self.feedback_by_model.setdefault(model, []).append(score)

    # ---------------------------------------------------------------- views
    def totals(self) -> dict[str, Any]:
        with self._lock:
            n_req = sum(self.requests.values())
            n_ok = sum(v for (_, s), v in self.requests.items() if s < 400)
            return {
                "requests": n_req,
                "succeeded": n_ok,
                "failed": n_req - n_ok,
                "routed": sum(self.routed.values()),
                "cost_usd": sum(self.cost.values()),
                "saving_usd": self.saving_usd,
                "reference_cost_usd": self.reference_cost_usd,
                "fallbacks": self.fallbacks,
                "errors": sum(self.errors.values()),
                "feedback": self.feedback_n,
            }

    def dashboard(self) -> dict[str, Any]:
        """Everything the dashboard draws (one JSON object)."""
        totals = self.totals()
        with self._lock:
            n = max(1, totals["routed"])
            models = []
            for m in sorted(self.routed, key=lambda k: -self.routed[k]):
                lats = np.asarray(self.lat_recent.get(m, ()), dtype=float)
                fb = self.feedback_by_model.get(m, [])
                models.append(
                    {
                        "model": m,
                        "calls": self.routed[m],
                        "share": self.routed[m] / n,
                        "cost_usd": self.cost.get(m, 0.0),
                        "p50_s": float(np.percentile(lats, 50)) if len(lats) else None,
                        "p95_s": float(np.percentile(lats, 95)) if len(lats) else None,
                        "feedback_n": len(fb),
                        "feedback_mean": float(np.mean(fb)) if fb else None,
                    }
                )
            req = max(1, totals["requests"])
            return {
                "totals": totals,
                "error_rate": totals["failed"] / req,
                "fallback_rate": self.fallbacks / n,
                "feedback_mean": self.feedback_sum / self.feedback_n if self.feedback_n else None,
                "models": models,
                "errors": dict(self.errors),
                "saving_series": [
                    {"t": t, "saving_usd": s, "cost_usd": c} for t, s, c in self.saving_series[-500:]
                ],
                "decisions": list(self.decisions),
                "uptime_s": time.time() - self.started,
            }

    def prometheus(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        out: list[str] = []

        def family(name: str, kind: str, help_: str, rows: Sequence[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{name}{labels} {value!r}" for labels, value in rows)

        with self._lock:
            family(
                "zerorouter_requests_total",
                "counter",
                "Chat completion requests by virtual model and HTTP status.",
                [
                    (f'{{virtual_model="{_esc(vm)}",status="{s}"}}', float(v))
                    for (vm, s), v in sorted(self.requests.items())
                ],
            )
            family(
                "zerorouter_routed_total",
                "counter",
                "Calls answered, by the model that answered.",
                [(f'{{model="{_esc(m)}"}}', float(v)) for m, v in sorted(self.routed.items())],
            )
            family(
                "zerorouter_cost_usd_total",
                "counter",
                "Cost of the answered calls in USD, by model.",
                [(f'{{model="{_esc(m)}"}}', v) for m, v in sorted(self.cost.items())],
            )
            family(
                "zerorouter_saving_usd_total",
                "counter",
                "Reference-model cost minus cost, USD.",
                [("", self.saving_usd)],
            )
            family(
                "zerorouter_reference_cost_usd_total",
                "counter",
                "What the reference model would have cost for the same tokens, USD.",
                [("", self.reference_cost_usd)],
            )
            family(
                "zerorouter_fallbacks_total",
                "counter",
                "Calls answered by a model after another one failed.",
                [("", float(self.fallbacks))],
            )
            family(
                "zerorouter_errors_total",
                "counter",
                "Failed requests by error type.",
                [(f'{{type="{_esc(k)}"}}', float(v)) for k, v in sorted(self.errors.items())],
            )
            family(
                "zerorouter_feedback_total",
                "counter",
                "Quality feedback received.",
                [("", float(self.feedback_n))],
            )
            family(
                "zerorouter_feedback_score_sum",
                "counter",
                "Sum of the feedback scores.",
                [("", self.feedback_sum)],
            )
            out.append("# HELP zerorouter_latency_seconds Latency of answered calls, by model.")
            out.append("# TYPE zerorouter_latency_seconds histogram")
            for m in sorted(self.hist):
                cum = 0
                for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.hist[m]):
                    cum += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.append(
                        f'zerorouter_latency_seconds_bucket{{model="{_esc(m)}",le="{le}"}} {float(cum)!r}'
                    )
                out.append(f'zerorouter_latency_seconds_sum{{model="{_esc(m)}"}} {self.lat_sum[m]!r}')
                out.append(f'zerorouter_latency_seconds_count{{model="{_esc(m)}"}} {float(cum)!r}')
        return "\n".join(out) + "\n"


def explain(decision: Any) -> str:
    """One line saying why the decision chose its model."""
    if decision is None:
        return ""
    policy = getattr(decision, "policy", {}) or {}
    if policy.get("mode") == "forced":
        return f"{decision.chosen}: asked for by name (routing bypassed)"
    cands = getattr(decision, "candidates", []) or []
    chosen = next((c for c in cands if c.model == decision.chosen), None)
    parts = [f"{decision.chosen} of {len(cands)} candidate(s)"]
    if chosen is not None and chosen.predicted_quality is not None:
        q = chosen.predicted_quality
        parts.append(f"predicted quality {q:.2f}" if q == q else "predicted quality n/a")
    ref_q = getattr(decision, "reference_quality", None)
    if ref_q is not None and decision.reference_model:
        parts.append(f"vs {decision.reference_model} {ref_q:.2f}")
    frac = getattr(decision, "expected_saving_fraction", None)
    if frac is not None:
        parts.append(f"expected saving {frac:.0%}")
    removed = getattr(decision, "removed", {}) or {}
    if removed:
        parts.append("removed: " + ", ".join(f"{m} ({r})" for m, r in list(removed.items())[:4]))
    if getattr(decision, "stages", None):
        parts.append(f"cascade: {len(decision.stages)} stage(s)")
    return "; ".join(parts)
