"""Dispatch benchmarks: what zerorouter's dispatch layer adds on top of a bare LiteLLM call.

``bench_dispatch_overhead`` times ``Dispatcher.complete`` / ``Dispatcher.stream`` against a direct
``litellm.completion`` (same replay server, same kwargs, ``num_retries=0``), interleaved call by call
so that drift on the machine hits both sides alike, and prints median, p99 and their ratio.

Run: ``.venv/bin/python benchmarks/dispatch.py [--n 300]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import zerorouter_integrations  # noqa: F401  (sets the offline environment before litellm)
from zerorouter_integrations._env import import_litellm
from zerorouter_integrations.dispatch import Dispatcher, ModelEndpoint, RetryPolicy, StreamEnd
from zerorouter_integrations.testing import ReplayServer

__all__ = ["bench_dispatch_overhead", "main"]


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[k]


def _interleaved(a: Callable[[], object], b: Callable[[], object], n: int, warmup: int) -> tuple[list, list]:
    for _ in range(warmup):
        a()
        b()
    ta: list[float] = []
    tb: list[float] = []
    gc.collect()
    for i in range(n):
        # alternate which side goes first, so neither always gets a warm connection / cache
        first, second, t1, t2 = (a, b, ta, tb) if i % 2 == 0 else (b, a, tb, ta)
        t0 = time.perf_counter()
        first()
        t1.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        second()
        t2.append(time.perf_counter() - t0)
    return ta, tb


def bench_dispatch_overhead(n: int = 300, warmup: int = 20) -> list[dict]:
    """Time Dispatcher vs direct LiteLLM calls to a local replay server; return one row per mode.

    Each row: ``mode``, ``n``, ``direct_median_ms``, ``direct_p99_ms``, ``dispatch_median_ms``,
    ``dispatch_p99_ms``, ``ratio_median`` (dispatch / direct), ``ratio_p99``, ``added_median_ms``.
    """
    litellm = import_litellm()
    rows = []
    with ReplayServer(["bench"]) as server:
        ep = ModelEndpoint(
            "bench",
            "openai/bench",
            api_base=server.base_url,
            api_key="sk-test",
            input_cost_per_token=1e-6,
            output_cost_per_token=2e-6,
        )
        dispatcher = Dispatcher({"bench": ep}, retry=RetryPolicy(max_retries=1, timeout_s=30.0))
        messages = [{"role": "user", "content": "Benchmark prompt: say something short."}]
        direct_kw = dict(
            model=ep.litellm_model,
            api_base=ep.api_base,
            api_key=ep.api_key,
            messages=messages,
            num_retries=0,
            max_retries=0,
            timeout=30.0,
        )

        def direct() -> None:
            litellm.completion(**direct_kw)

        def routed() -> None:
            dispatcher.complete(["bench"], messages)

        def direct_stream() -> None:
            for _ in litellm.completion(**direct_kw, stream=True, stream_options={"include_usage": True}):
                pass

        def routed_stream() -> None:
            for event in dispatcher.stream(["bench"], messages):
                if isinstance(event, StreamEnd):
                    break

        for mode, a, b in (("complete", direct, routed), ("stream", direct_stream, routed_stream)):
            t_direct, t_routed = _interleaved(a, b, n, warmup)
            d_med, r_med = statistics.median(t_direct), statistics.median(t_routed)
            d_p99, r_p99 = _pct(t_direct, 0.99), _pct(t_routed, 0.99)
            rows.append(
                {
                    "mode": mode,
                    "n": n,
                    "direct_median_ms": d_med * 1e3,
                    "direct_p99_ms": d_p99 * 1e3,
                    "dispatch_median_ms": r_med * 1e3,
                    "dispatch_p99_ms": r_p99 * 1e3,
                    "ratio_median": r_med / d_med,
                    "ratio_p99": r_p99 / d_p99,
                    "added_median_ms": (r_med - d_med) * 1e3,
                }
            )
    return rows


def _print_overhead(rows: list[dict]) -> None:
    head = (
        "mode",
        "n",
        "litellm med ms",
        "litellm p99 ms",
        "dispatch med ms",
        "dispatch p99 ms",
        "ratio med",
        "ratio p99",
        "added med ms",
    )
    body = [
        (
            r["mode"],
            str(r["n"]),
            f"{r['direct_median_ms']:.2f}",
            f"{r['direct_p99_ms']:.2f}",
            f"{r['dispatch_median_ms']:.2f}",
            f"{r['dispatch_p99_ms']:.2f}",
            f"{r['ratio_median']:.3f}",
            f"{r['ratio_p99']:.3f}",
            f"{r['added_median_ms']:+.3f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    print("Dispatch overhead: Dispatcher vs direct litellm.completion, local replay server, interleaved")
    print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for b in body:
        print("  ".join(c.rjust(w) for c, w in zip(b, widths)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300, help="timed calls per side and mode (default 300)")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls per side first (default 20)")
    args = p.parse_args(argv)
    _print_overhead(bench_dispatch_overhead(n=args.n, warmup=args.warmup))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
