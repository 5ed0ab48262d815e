"""Gateway overhead: ``zerorouter serve`` against calling the replay server directly.

Starts the replay server (in this process) and one ``zerorouter serve`` process (one uvicorn worker)
over a 3-model LiteLLM config on it, then sends the same chat requests (distinct prompts) both ways
from N concurrent clients (httpx, async), and prints p50 / p99 latency, their ratios, and requests/s.

    python benchmarks/serve.py [--requests 160] [--concurrency 1,8,32] [--provider-latency-ms 0]

``--provider-latency-ms`` adds a fixed latency to every replayed answer (0: the worst case for the
ratio, the gateway's own cost stands alone).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zerorouter_integrations.testing import ModelBehaviour, ReplayServer  # noqa: E402

MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-05-13", "gpt-3.5-turbo-0125")
TOPICS = ("arithmetic", "a proof", "a poem", "history", "SQL", "physics", "a translation", "biology")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prompt(i: int) -> str:
    return (
        f"Question {i}: tell me something short about {TOPICS[i % len(TOPICS)]} (variant {i * 7919 % 1000})."
    )


async def run(url: str, model_of, n: int, concurrency: int, offset: int) -> tuple[np.ndarray, float]:
    lat: list[float] = []
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def worker() -> None:
            for i in counter:
                body = {
                    "model": model_of(i),
                    "messages": [{"role": "user", "content": prompt(offset + i)}],
                    "max_tokens": 64,
                }
                t0 = time.perf_counter()
                r = await client.post(url, json=body, headers={"Authorization": "Bearer sk-bench"})
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {r.status_code}: {r.text[:300]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return np.asarray(lat), n / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=160, help="requests per concurrency level and path")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--provider-latency-ms", type=float, default=0.0)
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    behaviour = ModelBehaviour(latency_s=args.provider_latency_ms / 1000)
    with ReplayServer({m: behaviour for m in MODELS}) as replay, tempfile.TemporaryDirectory() as tmp:
        cfg = {
            "model_list": [
                {
                    "model_name": m,
                    "litellm_params": {"model": f"openai/{m}", "api_base": replay.base_url, "api_key": "k"},
                }
                for m in MODELS
            ]
        }
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zerorouter_integrations.cli",
                "serve",
                "--config",
                str(path),
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        root = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(root + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("zerorouter serve did not start")
                time.sleep(0.2)
            gateway = root + "/v1/chat/completions"
            direct = replay.base_url + "/chat/completions"
            asyncio.run(run(gateway, lambda i: "zerorouter", 16, 4, 10**6))  # warm both paths
            asyncio.run(run(direct, lambda i: MODELS[i % 3], 16, 4, 10**6))
            print(
                f"provider latency {args.provider_latency_ms:g} ms, {args.requests} requests per cell, "
                f"{os.cpu_count()} CPU(s), one gateway process\n"
            )
            head = "| clients | direct p50 ms | gateway p50 ms | p50 ratio | direct p99 ms | gateway p99 ms | p99 ratio | direct req/s | gateway req/s |"
            print(head)
            print("|" + "---|" * 9)
            for k, c in enumerate(levels):
                d_lat, d_rps = asyncio.run(run(direct, lambda i: MODELS[i % 3], args.requests, c, k * 10**5))
                g_lat, g_rps = asyncio.run(run(gateway, lambda i: "zerorouter", args.requests, c, k * 10**5))
                d50, d99 = np.percentile(d_lat, [50, 99]) * 1000
                g50, g99 = np.percentile(g_lat, [50, 99]) * 1000
                print(
                    f"| {c} | {d50:.1f} | {g50:.1f} | {g50 / d50:.1f}× | {d99:.1f} | {g99:.1f} | {g99 / d99:.1f}× "
                    f"| {d_rps:.0f} | {g_rps:.0f} |"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
