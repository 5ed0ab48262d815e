"""Soak test (issue 14): calls and streams over a faulty 4-model pool, 2 router processes on one store.

The fault mix: one model answers 30 % of requests with HTTP 500, one 30 % with 429 (``Retry-After: 1``),
one times out on 20 % (hangs past the client's timeout), and one is on a closed port. Two router
processes share one store; with Redis, the server is stopped mid-run and restarted 2 s later. The
same run without faults gives the baseline latency. Printed per store:

* user-visible errors while a model was up (goal 0), fallbacks (answers that needed another model);
* lost / double-counted observations: successes and counted failures each process saw, against what
  the store holds after both processes closed (goal 0 and 0);
* added latency p50 / p99 of the faulty run over the fault-free one.

Usage::

    python benchmarks/soak.py [--calls 2000] [--streams 200] [--stores redis,sqlite]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = ["gpt-3.5-turbo-1106", "claude-instant-v1", "mistralai/mixtral-8x7b-chat", "claude-v1"]
PROMPTS = [
    "What is {i} + {j}?",
    "Write one sentence about the number {i}.",
    "Translate 'item {i}' into German.",
    "Is {i} a prime number? Answer yes or no.",
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _behaviours(faulty: bool):
    from zerorouter_integrations.testing import ModelBehaviour

    if not faulty:
        return {m: ModelBehaviour() for m in MODELS[:3]}
    return {
        MODELS[0]: ModelBehaviour(fail_rate=0.3, fail_status=500),
        MODELS[1]: ModelBehaviour(fail_rate=0.3, fail_status=429, retry_after_s=1.0),
        MODELS[2]: ModelBehaviour(fail_rate=0.2, fail_mode="timeout", hang_s=3.0),
    }


def _worker(args: tuple) -> dict:
    """One router process: ``n_calls`` completions and ``n_streams`` streams; returns its counts."""
    base_url, closed_port, store_url, n_calls, n_streams, seed, faulty = args
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import logging

    logging.disable(logging.WARNING)
    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
    from zerorouter_integrations.dispatch import ModelEndpoint, RetryPolicy
    from zerorouter_integrations.router import ZeroRouter

    eps = {}
    for m in MODELS:
        url = base_url if (m != MODELS[3] or not faulty) else f"http://127.0.0.1:{closed_port}/v1"
        eps[m] = ModelEndpoint(
            m,
            f"openai/{m}",
            api_base=url,
            api_key="sk-soak",
            input_cost_per_token=1e-7,
            output_cost_per_token=2e-7,
        )
    router = ZeroRouter(
        RouterArtifact.load(DEFAULT_ARTIFACT),
        models=MODELS,
        endpoints=eps,
        store=store_url,
        retry=RetryPolicy(max_retries=1, backoff_s=0.02, timeout_s=1.0),
    )
    router.route("warm up")  # the encoder's first load is not part of any call's latency
    rng = np.random.default_rng(seed)
    out = {"answers": 0, "errors": 0, "fallbacks": 0, "counted_failures": 0, "latency": [], "error_types": {}}
    jobs = ["call"] * n_calls + ["stream"] * n_streams
    rng.shuffle(jobs)
    for k, job in enumerate(jobs):
        i, j = int(rng.integers(1000)), int(rng.integers(1000))
        prompt = PROMPTS[k % len(PROMPTS)].format(i=i, j=j)
        t0 = time.perf_counter()
        try:
            if job == "call":
                r = router.complete(prompt, max_tokens=32)
            else:
                r = next(c for c in router.stream(prompt, max_tokens=32) if c.final).response
        except Exception as exc:  # user-visible
            out["errors"] += 1
            name = type(exc).__name__
            out["error_types"][name] = out["error_types"].get(name, 0) + 1
            for a in getattr(exc, "attempts", []):
                out["counted_failures"] += a.kind == "transient" and a.retry == 0
            continue
        out["latency"].append(time.perf_counter() - t0)
        out["answers"] += 1
        out["fallbacks"] += any(a.model != r.model for a in r.attempts)
        out["counted_failures"] += sum(a.kind == "transient" and a.retry == 0 for a in r.attempts)
    out["health"] = router.health()["store"]
    router.close()
    out["after_close"] = router.store.health()
    return out


def _run(store: str, n_calls: int, n_streams: int, faulty: bool, workdir: Path) -> dict:
    from zerorouter_integrations.stores import open_store
    from zerorouter_integrations.testing import ReplayServer
    from zerorouter_integrations.testing.redis_server import RedisServer

    redis = None
    if store == "redis":
        redis = RedisServer(workdir / f"redis-{faulty}").start()
        store_url = redis.url
    else:
        store_url = str(workdir / f"soak-{faulty}.db")
    closed = _closed_port()
    restarted = {"at": None}
    with ReplayServer(_behaviours(faulty), seed=7) as srv:
        ctx = mp.get_context("spawn")
        half_c, half_s = n_calls // 2, n_streams // 2
        jobs = [(srv.base_url, closed, store_url, half_c, half_s, seed, faulty) for seed in (1, 2)]
        t_start = time.time()
        with ctx.Pool(2) as pool:
            pending = pool.map_async(_worker, jobs)
            if redis is not None and faulty:

                def bounce() -> None:  # stop Redis once the pool is well under way, restart 2 s later
                    while srv.request_count() < n_calls * 0.4 and not pending.ready():
                        time.sleep(0.2)
                    redis.stop()
                    restarted["at"] = time.time() - t_start
                    time.sleep(2.0)
                    redis.start()

                threading.Thread(target=bounce, daemon=True).start()
            results = pending.get()
        wall = time.time() - t_start
    st = open_store(store_url)
    stats = st.all_stats()
    st.close()
    if redis is not None:
        redis.stop()
    answers = sum(r["answers"] for r in results)
    counted = sum(r["counted_failures"] for r in results)
    n_calls_store = sum(s.n_calls for s in stats.values())
    n_errors_store = sum(s.n_errors for s in stats.values())
    lat = np.concatenate([r["latency"] for r in results]) if answers else np.array([np.nan])
    return {
        "answers": answers,
        "errors": sum(r["errors"] for r in results),
        "error_types": {
            k: sum(r["error_types"].get(k, 0) for r in results) for r in results for k in r["error_types"]
        },
        "fallbacks": sum(r["fallbacks"] for r in results),
        "lost": max(0, answers - n_calls_store) + max(0, counted - n_errors_store),
        "double": max(0, n_calls_store - answers) + max(0, n_errors_store - counted),
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "wall": wall,
        "queued_peak": max(r["health"]["queued"] + r["health"]["written_late"] for r in results),
        "dropped": sum(r["after_close"]["dropped"] for r in results),
        "restart_at": restarted["at"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--stores", default="redis,sqlite")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="zr-soak-") as tmp:
        for store in args.stores.split(","):
            base = _run(store, args.calls, args.streams, False, Path(tmp))
            faulty = _run(store, args.calls, args.streams, True, Path(tmp))
            rows.append((store, base, faulty))
    print(
        f"soak: {args.calls} calls + {args.streams} streams, 2 router processes per store, fault mix "
        "30% 500 / 30% 429 / 20% timeout / 1 closed port; Redis restarted once mid-run"
    )
    print()
    print(
        "| store | answers | user-visible errors (goal 0) | fallbacks | lost obs. | double-counted obs. | "
        "queued during outage | dropped | added p50 (ms) | added p99 (ms) | wall (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for store, base, f in rows:
        errs = f"{f['errors']}" + (
            f" ({', '.join(f'{k}: {v}' for k, v in f['error_types'].items())})" if f["errors"] else ""
        )
        print(
            f"| {store} | {f['answers']} | {errs} | {f['fallbacks']} | {f['lost']} | {f['double']} | "
            f"{f['queued_peak']} | {f['dropped']} | {1000 * (f['p50'] - base['p50']):.0f} | "
            f"{1000 * (f['p99'] - base['p99']):.0f} | {f['wall']:.0f} |"
        )
    print()
    print("| store | fault-free p50 (ms) | p99 (ms) | faulty p50 (ms) | p99 (ms) | baseline lost / double |")
    print("|---|---|---|---|---|---|")
    for store, base, f in rows:
        print(
            f"| {store} | {1000 * base['p50']:.0f} | {1000 * base['p99']:.0f} | {1000 * f['p50']:.0f} | "
            f"{1000 * f['p99']:.0f} | {base['lost']} / {base['double']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
