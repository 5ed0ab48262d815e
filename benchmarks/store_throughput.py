"""Feedback-write throughput of the profile stores: ``record_call`` per second.

Runs every store with 1 thread and with 4 threads writing the same model (the worst case: every
write contends for the same row / key) and prints a table. Redis: the server given by
``--redis-url``, or a throwaway ``redis-server`` started here (skipped if none is installed).

    python benchmarks/store_throughput.py [--calls 3000] [--threads 1,4] [--redis-url redis://...]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from zerorouter_integrations.stores import MemoryStore, ProfileStore, RedisStore, SQLiteStore
from zerorouter_integrations.testing.redis_server import RedisServer

__all__ = ["main", "measure"]


def measure(store: ProfileStore, n_threads: int, calls_per_thread: int) -> float:
    """Return ``record_call``s per second with ``n_threads`` threads writing one model."""
    store.reset()
    barrier = threading.Barrier(n_threads + 1)
    errors: list[BaseException] = []

    def work() -> None:
        barrier.wait()
        try:
            for i in range(calls_per_thread):
                store.record_call(
                    "bench-model",
                    latency_s=0.5 + (i % 7) * 0.1,
                    ttft_s=0.1,
                    input_tokens=300,
                    output_tokens=120,
                    cost_usd=2e-4,
                )
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    stats = store.get_stats("bench-model")
    total = n_threads * calls_per_thread
    if stats is None or stats.n_calls != total:
        raise AssertionError(f"{store!r} lost updates: n_calls={stats and stats.n_calls}, want {total}")
    return total / elapsed


@contextmanager
def _redis_server() -> Iterator[str | None]:
    if shutil.which("redis-server") is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as d, RedisServer(d, persist=False) as server:
        yield server.url


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3000, help="record_call per thread (default 3000)")
    ap.add_argument("--threads", default="1,4", help="thread counts, comma-separated (default 1,4)")
    ap.add_argument("--redis-url", default=None, help="use this Redis server instead of starting one")
    args = ap.parse_args(argv)
    thread_counts = [int(x) for x in args.threads.split(",")]

    with (
        tempfile.TemporaryDirectory() as tmp,
        _redis_server() if args.redis_url is None else _given(args.redis_url) as redis_url,
    ):
        backends: list[tuple[str, Callable[[], ProfileStore]]] = [
            ("memory (in-process)", MemoryStore),
            ("sqlite (WAL file)", lambda: SQLiteStore(os.path.join(tmp, "bench.db"))),
        ]
        if redis_url is not None:
            backends.append(
                (
                    f"redis (Lua, {'given' if args.redis_url else 'local'})",
                    lambda: RedisStore(redis_url, prefix=f"bench-{uuid.uuid4().hex[:8]}:"),
                )
            )
        rows = []
        for name, make in backends:
            store = make()
            try:
                store.record_call("warmup", latency_s=1.0)
                rates = [measure(store, n, args.calls) for n in thread_counts]
            finally:
                store.reset()
                store.close()
            rows.append((name, rates))

    print(
        f"record_call throughput ({args.calls} calls per thread, one shared model; "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs)"
    )
    header = (
        f"{'store':<24}"
        + "".join(f"{f'{n} thread' + ('s' if n > 1 else '') + ' /s':>16}" for n in thread_counts)
        + f"{'us/call (1 thr)':>18}"
    )
    print(header)
    print("-" * len(header))
    for name, rates in rows:
        print(f"{name:<24}" + "".join(f"{r:>16,.0f}" for r in rates) + f"{1e6 / rates[0]:>18.1f}")
    if redis_url is None:
        print("(redis skipped: no redis-server on PATH and no --redis-url)", file=sys.stderr)


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
