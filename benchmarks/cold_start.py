"""First ``route()`` in a fresh process (warm and cold disk) and the size of the install.

Usage (from the repository root)::

    python benchmarks/cold_start.py                       # time this interpreter's install
    python benchmarks/cold_start.py --venv /tmp/zr-base   # time another virtualenv's python, and its size
    python benchmarks/cold_start.py --build-venv /tmp/zr-base   # first make it: python -m venv + pip install -e .

Each run starts a new interpreter that imports the package, loads the shipped default
(``ZeroRouter.default()``) and makes one routing decision; it prints the time from launching the
interpreter to the decision (``total``, on the wall clock the two processes share), its parts, and
how long the process then takes to exit (freeing the ONNX session and the price map, not part of the
decision). The processes share a fresh zerorouter cache folder
(``ZEROROUTER_CACHE_DIR``), where the first one saves the optimized ONNX graph of the shipped encoder
(``encoder_onnx.optimized_session``). *first (empty cache)*: the cache is emptied before each run
(the first decision after installing). *warm*: the files are in the page cache (after one untimed
run). *cold*: before each run every file of the interpreter's ``site-packages``, of this repository's
packages, of the Python standard library and of the cache folder is evicted from the page cache with
``posix_fadvise(DONTNEED)`` (what a first start after boot reads from disk). The venv size is
``du`` of the virtualenv folder. The last column is the process's CPU time (user + sys, all its
threads, from interpreter start to exit): on a machine shared with other work the wall-clock columns
grow with the load, the CPU time much less. The README's install and cold-start figures come from
this table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("zerorouter_integrations", "langchain_router", "llamaindex_router")

CHILD = r"""
import time, sys
t0 = time.perf_counter()
from zerorouter_integrations.router import ZeroRouter
t1 = time.perf_counter()
router = ZeroRouter.default()
t2 = time.perf_counter()
decision = router.route("What is 17 * 23? Answer with a number.")
t3 = time.perf_counter()
decided_at = time.time()
import json
print(json.dumps({"import_s": t1 - t0, "default_s": t2 - t1, "route_s": t3 - t2, "chosen": decision.chosen,
                  "decided_at": decided_at,
                  "litellm": "litellm" in sys.modules, "torch": "torch" in sys.modules}))
"""


def _python(venv: Path | None) -> str:
    return str(venv / "bin" / "python") if venv else sys.executable


def _evict(paths: list[Path]) -> int:
    """Drop every regular file under ``paths`` from the page cache; return how many."""
    n = 0
    for root in paths:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                try:
                    fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    n += 1
                except OSError:
                    pass
                finally:
                    os.close(fd)
    return n


def _paths_of(python: str) -> list[Path]:
    out = subprocess.run(
        [
            python,
            "-c",
            "import json, sysconfig; print(json.dumps([sysconfig.get_paths()[k] for k in ('stdlib', 'purelib', 'platlib')]))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = {Path(p) for p in json.loads(out)} | {ROOT / p for p in PACKAGES}
    return sorted(p for p in paths if p.is_dir())


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _one_run(python: str, cache: Path) -> dict:
    # PYTHONDONTWRITEBYTECODE (set in some shells and CI images) would make every run compile this
    # checkout's modules from source again; an installed package has its bytecode, so it is unset.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, as an editable install would import it
    env["ZEROROUTER_CACHE_DIR"] = str(cache)  # where the optimized ONNX graph is kept
    c = _cpu_children()
    launched_at = time.time()
    t = time.perf_counter()
    out = subprocess.run([python, "-c", CHILD], capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t
    cpu = _cpu_children() - c
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    rec["total_s"] = rec["decided_at"] - launched_at  # the same clock in both processes
    rec["exit_s"] = wall - rec["total_s"]
    rec["cpu_s"] = cpu
    return rec


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                total += os.lstat(p).st_blocks * 512
    return total


def build_venv(path: Path) -> float:
    """``python -m venv PATH && PATH/bin/pip install -e <repo>`` (no extras); return seconds."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(path / "bin" / "pip"), "install", "-q", "-e", str(ROOT)], check=True)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, help="virtualenv whose python to time (default: this interpreter)")
    ap.add_argument("--build-venv", type=Path, help="create this virtualenv with pip install -e . first")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per condition (default 5)")
    args = ap.parse_args(argv)
    venv = args.venv
    if args.build_venv:
        secs = build_venv(args.build_venv)
        print(f"built {args.build_venv} with `pip install -e .` in {secs:.0f} s")
        venv = args.build_venv
    python = _python(venv)
    load_at_start = os.getloadavg()[0]
    paths = _paths_of(python)
    with tempfile.TemporaryDirectory(prefix="zr-cold-start-") as tmp:
        cache = Path(tmp) / "cache"
        _one_run(python, Path(tmp) / "untimed")  # untimed: bytecode compiled, files in the page cache
        rows: dict[str, list[dict]] = {"first (empty cache)": [], "warm": [], "cold": []}
        for _ in range(args.runs):
            shutil.rmtree(cache, ignore_errors=True)
            rows["first (empty cache)"].append(_one_run(python, cache))
        for _ in range(args.runs):
            rows["warm"].append(_one_run(python, cache))
        for _ in range(args.runs):
            _evict([*paths, cache])
            rows["cold"].append(_one_run(python, cache))
    first = rows["warm"][0]
    print(f"python: {python}  (litellm imported by route(): {first['litellm']}, torch: {first['torch']})")
    print(f"chosen: {first['chosen']}; {args.runs} fresh processes per row, median [min–max] seconds")
    print()
    print(
        "| disk | interpreter start → first decision | import | ZeroRouter.default() | first route() "
        "| then exit | CPU time of the process (user + sys) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for cond, recs in rows.items():

        def cell(key: str, recs: list[dict] = recs) -> str:
            vals = [r[key] for r in recs]
            return f"{statistics.median(vals):.2f} [{min(vals):.2f}–{max(vals):.2f}]"

        print(
            f"| {cond} | {cell('total_s')} | {cell('import_s')} | {cell('default_s')} | {cell('route_s')} "
            f"| {cell('exit_s')} | {cell('cpu_s')} |"
        )
    if venv is not None:
        torch = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True)
        print()
        print(
            f"virtualenv {venv}: {_du(venv) / 2**20:.0f} MiB; `import torch` there: "
            + ("works" if torch.returncode == 0 else "fails (" + torch.stderr.strip().splitlines()[-1] + ")")
        )
    print(
        f"(platform: {sysconfig.get_platform()}, {os.cpu_count()} CPUs, 1-min load average "
        f"{load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
