"""Batch routing throughput: ``route-batch`` rows/s, local engine vs Ray Data on 2 cores, and peak memory.

Prompts are drawn (with replacement, each given a distinct id and a numbered suffix so no two texts
are equal) from the shared tables' prompts, written to a Parquet file, and routed with the shipped
default by :func:`zerorouter_integrations.batch.route_parquet`:

* ``local``: one process, the encoder on all cores, batches streamed from and to Parquet;
* ``ray``: a local Ray instance with ``num_cpus=2`` and 2 actors (one encoder thread each).

Each engine routes the ``--rows`` file once; a row of the table is printed as the written row count
passes 1k, 10k, 25k, 50k, 100k (and the end). ``rows/s (overall)`` is rows over wall time (router,
encoder and Ray start-up included: that is what a run costs); ``rows/s (since previous)`` is the
steady rate between two checkpoints. ``peak RSS so far`` is the largest resident memory of the process
tree (driver, raylet and workers for Ray), sampled every 0.2 s from ``/proc``. Memory is *flat* when
that peak stops growing with the rows written.

    python benchmarks/batch.py [--rows 100000] [--batch-size 1024]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zerorouter_integrations.batch import route_parquet  # noqa: E402
from zerorouter_integrations.data import find_data_dir  # noqa: E402
from zerorouter_integrations.tables import load_table  # noqa: E402


def _tree_rss_mb(root: int) -> float:
    """Resident memory (MiB) of ``root`` and all its descendants, from /proc."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                parent[int(d)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/statm") as fh:
                rss[int(d)] = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    keep, total = {root}, 0
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in keep and pid not in keep:
                keep.add(pid)
                changed = True
    for pid in keep:
        total += rss.get(pid, 0)
    return total / 2**20


class PeakMemory:
    """Samples the process tree's RSS in a thread; ``peak`` in MiB."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self._stop = interval, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        self.peak = max(self.peak, _tree_rss_mb(os.getpid()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss_mb(os.getpid()))


def make_input(n: int, folder: Path, data: str | None) -> Path:
    import numpy as np
    import pandas as pd

    texts = []
    for name in ("routerbench_subset", "zeroeval", "llmrouter_ulab"):
        texts += load_table(find_data_dir(data, table=name)).texts()
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(texts), n)
    df = pd.DataFrame(
        {
            "prompt_id": [f"q{i}" for i in range(n)],
            "prompt": [f"{texts[j]}\n(#{i})" for i, j in enumerate(pick)],
        }
    )
    path = folder / f"prompts-{n}.parquet"
    df.to_parquet(path)
    return path


CHECKPOINTS = (1_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000)


class Progress:
    """Rows written over time (``route_parquet``'s ``on_rows``) and the peak RSS when each checkpoint was passed."""

    def __init__(self, engine: str, total: int, mem: PeakMemory):
        self.engine, self.t0, self.mem = engine, time.perf_counter(), mem
        self.pending = [c for c in CHECKPOINTS if c < total] + [total]
        self.prev = (0, 0.0)

    def __call__(self, n: int) -> None:
        if self.pending and n >= self.pending[0]:
            while self.pending and n >= self.pending[0]:
                self.pending.pop(0)
            self.mem.sample()
            secs = time.perf_counter() - self.t0
            rate = (n - self.prev[0]) / max(secs - self.prev[1], 1e-9)
            print(
                f"| {self.engine} | {n:,} | {secs:,.0f} | {n / secs:,.0f} | {rate:,.0f} | {self.mem.peak:,.0f} |",
                flush=True,
            )
            self.prev = (n, secs)


def run(engine: str, path: Path, out: Path, batch_size: int, total: int) -> None:
    with PeakMemory() as mem:
        progress = Progress(engine, total, mem)
        if engine == "ray":
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
            try:
                route_parquet(path, out, engine="ray", batch_size=batch_size, concurrency=2, on_rows=progress)
            finally:
                ray.shutdown()
        else:
            route_parquet(
                path, out, engine="local", batch_size=batch_size, show_progress=False, on_rows=progress
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--data")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = make_input(args.rows, folder, args.data)
        print(
            "| engine | rows written | elapsed (s) | rows/s (overall) | rows/s (since previous) | peak RSS so far (MiB) |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for engine in args.engines.split(","):
            run(engine, path, folder / f"out-{engine}.parquet", args.batch_size, args.rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
