"""Encoder speed: ms per routed prompt, batch throughput, cold load, and agreement between backends.

For each backend × ``max_seq_length`` this prints

* single-query latency (``encode_one`` with the cache off, p50 / p99 / min over real prompts of
  mixed length after warm-up),
* batch throughput (``encode`` of all prompts, batch 32, prompts/s, best of ``--repeat``),
* cosine agreement with the torch backend at the same length (min / mean over the prompts),
* what truncation costs: the share of prompts longer than the limit, and the mean cosine of the
  embedding to the same backend's 256-token embedding,
* one forward pass by input length (synthetic 16…256-token inputs): the cleanest view of cost per
  token, free of the prompt-length mix.

Each configuration runs alone in a fresh process (so no other backend's thread pool competes
with it); the whole sweep runs ``--rounds`` times in alternating order and each figure is the best
round's, which damps the noise of a shared machine. Then come the cold start of each backend in a
fresh interpreter (import + load + first embedding, the ONNX export already cached), the one-time
ONNX export, and optionally (``--quality N``) a k-NN routing-quality proxy per ``max_seq_length``.

Usage::

    python benchmarks/encoder_speed.py                  # ~200 prompts, lengths 64 128 256
    python benchmarks/encoder_speed.py --threads 1 2    # also compare thread counts
    python benchmarks/encoder_speed.py --int8           # + dynamic int8 ONNX (needs `pip install onnx`)
    python benchmarks/encoder_speed.py --quality-only --quality 500   # routing-quality proxy only

Prompts come from ``../shared/data`` (``$ZEROROUTER_DATA`` overrides): zeroeval and
routerbench_subset full prompts (few-shot, 100-1000 tokens) and their bare questions (10-200 tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import zerorouter_integrations  # noqa: F401  (offline settings first)
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.encoder import QueryEncoder, default_cache_dir, default_model_path

DATA = find_data_dir()


def load_prompts(n: int, seed: int = 0) -> list[str]:
    """Return ``n`` real prompts: a quarter from each of four sources of different lengths."""
    import pandas as pd

    sources = [
        pd.read_parquet(DATA / "zeroeval" / "prompts.parquet")["prompt"],
        pd.read_parquet(DATA / "zeroeval" / "prompt_extras.parquet")["question"],
        pd.read_parquet(DATA / "routerbench_subset" / "prompts.parquet")["prompt"],
        pd.read_parquet(DATA / "routerbench_subset" / "prompt_extras.parquet")["question_only"],
    ]
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for i, col in enumerate(sources):
        col = col.dropna().astype(str)
        take = n // len(sources) + (1 if i < n % len(sources) else 0)
        out += [col.iloc[j] for j in rng.choice(len(col), size=take, replace=False)]
    return out


def rowwise_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)).clip(min=1e-12)


def make_int8(encoder: QueryEncoder, variant: str) -> QueryEncoder:
    """Swap an ONNX encoder's session for a dynamically int8-quantized copy (experiment only)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from zerorouter_integrations.encoder_model import ort_session
    from zerorouter_integrations.encoder_onnx import OnnxBackend

    # A private backend object: loaded backends are shared between equal encoders.
    impl = OnnxBackend(
        encoder._model_spec(), encoder.max_seq_length, encoder.num_threads, default_cache_dir()
    )
    attention = [
        f"/model/encoder/layer.{i}/attention/self/{m}" for i in range(64) for m in ("MatMul", "MatMul_1")
    ]
    ffn_out = [f"/model/encoder/layer.{i}/output/dense/MatMul" for i in range(64)]
    exclude = attention + (ffn_out if variant == "int8-safe" else [])
    dst = Path(tempfile.mkdtemp(prefix="zr-int8-")) / "model.onnx"
    import logging

    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
    try:
        quantize_dynamic(
            str(impl.model_file),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=exclude,
        )
    finally:
        logging.getLogger().setLevel(root_level)
    impl.session = ort_session(dst, encoder.num_threads or len(os.sched_getaffinity(0)))
    encoder._impl = impl
    return encoder


def knn_quality(lengths: list[int], n_per_dataset: int, k: int = 20) -> None:
    """Print how well k-NN over the embeddings predicts per-model correctness, per max_seq_length.

    A routing-quality proxy for the truncation choice: for each dataset, sample prompts, embed them
    at each length, predict each model's score on a prompt as the mean score of its k nearest other
    prompts (leave-one-out, cosine), and report the mean ROC-AUC over models. "task only" predicts
    with the model's mean score on the prompt's task (what the embedding must beat: it only ranks
    tasks against each other).
    """
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    cache = default_cache_dir() / "embeddings"
    print(
        f"\nRouting-quality proxy: leave-one-out {k}-NN prediction of per-model correctness "
        f"(mean ROC-AUC over models; {n_per_dataset} prompts per dataset; embeddings cached in {cache})"
    )
    print(f"{'dataset':20s} " + " ".join(f"{'L=' + str(L):>8s}" for L in lengths) + f" {'task only':>10s}")
    for dataset in ("zeroeval", "routerbench_subset"):
        prompts = pd.read_parquet(DATA / dataset / "prompts.parquet")
        prompts = prompts.sample(n=min(n_per_dataset, len(prompts)), random_state=0)
        outcomes = pd.read_parquet(DATA / dataset / "outcomes.parquet")
        scores = outcomes.pivot_table(index="prompt_id", columns="model", values="score").reindex(
            prompts["prompt_id"]
        )
        y = scores.to_numpy(dtype=float)  # (n, models), NaN where unscored
        tasks = prompts["task"].to_numpy()

        def mean_auc(pred: np.ndarray, y: np.ndarray = y) -> float:
            aucs = []
            for m in range(y.shape[1]):
                ok = ~np.isnan(y[:, m]) & ~np.isnan(pred[:, m])
                labels = y[ok, m] >= 0.5
                if labels.any() and not labels.all():
                    aucs.append(roc_auc_score(labels, pred[ok, m]))
            return float(np.mean(aucs))

        cells = []
        for length in lengths:
            enc = QueryEncoder(max_seq_length=length, cache_dir=cache)
            emb = enc.encode(prompts["prompt"].tolist())
            sim = emb @ emb.T
            np.fill_diagonal(sim, -np.inf)
            nn = np.argpartition(-sim, k, axis=1)[:, :k]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbours
                pred = np.nanmean(y[nn], axis=1)
            cells.append(mean_auc(pred))
        task_pred = np.empty_like(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for task in np.unique(tasks):  # constant within a task: no within-task ordering
                rows = tasks == task
                task_pred[rows] = np.nanmean(y[rows], axis=0)
        print(f"{dataset:20s} " + " ".join(f"{c:8.4f}" for c in cells) + f" {mean_auc(task_pred):10.4f}")


def cold_load(backend: str, threads: int | None, repeat: int = 2) -> float:
    """Seconds from a fresh interpreter's first import to the first embedding (best of ``repeat``)."""
    code = (
        "import time; t0 = time.perf_counter()\n"
        "from zerorouter_integrations.encoder import QueryEncoder\n"
        f"enc = QueryEncoder(backend={backend!r}, num_threads={threads!r})\n"
        "enc.encode_one('How many primes are below 100?')\n"
        "print(time.perf_counter() - t0)\n"
    )
    times = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def export_time() -> float:
    """Seconds for the one-time ONNX export in a fresh interpreter and an empty cache dir."""
    code = (
        "import time; t0 = time.perf_counter()\n"
        "from zerorouter_integrations.encoder import QueryEncoder\n"
        "enc = QueryEncoder(backend='onnx'); enc.encode_one('x')\n"
        "print(time.perf_counter() - t0)\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ZEROROUTER_CACHE_DIR": tmp}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
    return float(out.stdout.strip().splitlines()[-1])


def measure(variant: str, length: int, threads: int, n: int, repeat: int, out_npz: str) -> dict:
    """One configuration, alone in this process (no other backend's thread pool in the way)."""
    prompts = load_prompts(n)
    enc = QueryEncoder(
        backend="torch" if variant == "torch" else "onnx",
        max_seq_length=length,
        cache_size=0,
        num_threads=threads or None,
        show_progress=False,
    )
    if variant.startswith("int8"):
        enc = make_int8(enc, variant)
    enc.warmup()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        batch = enc.encode(prompts)
        best = min(best, time.perf_counter() - t0)
    for p in prompts[:10]:  # warm the single-query path
        enc.encode_one(p)
    lat, single = [], []
    for p in prompts:
        t0 = time.perf_counter()
        single.append(enc.encode_one(p))
        lat.append((time.perf_counter() - t0) * 1000)
    np.savez(out_npz, batch=batch, single=np.vstack(single))
    return {
        "p50": statistics.median(lat),
        "p99": float(np.percentile(lat, 99)),
        "min": min(lat),
        "rate": len(prompts) / best,
    }


def measure_by_length(variant: str, threads: int, reps: int = 25) -> dict:
    """Median ms of one forward pass for synthetic inputs of 16…256 tokens (no truncation effects)."""
    enc = QueryEncoder(
        backend="torch" if variant == "torch" else "onnx",
        max_seq_length=256,
        cache_size=0,
        num_threads=threads or None,
        show_progress=False,
    )
    if variant.startswith("int8"):
        enc = make_int8(enc, variant)
    enc.warmup()
    words = ("the quick brown fox jumps over the lazy dog " * 40).split()
    out = {}
    for n_tokens in (16, 32, 64, 128, 256):
        text = " ".join(words[: n_tokens - 2])  # one token per word, plus [CLS] and [SEP]
        for _ in range(3):
            enc.encode_one(text)
        lat = []
        for _ in range(reps):
            t0 = time.perf_counter()
            enc.encode_one(text)
            lat.append((time.perf_counter() - t0) * 1000)
        out[str(n_tokens)] = statistics.median(lat)
    return out


def run_measure(*spec: object) -> dict:
    """Run :func:`measure` (or ``"by-length"``, :func:`measure_by_length`) in a fresh process."""
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of prompts (default 200)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    parser.add_argument("--threads", type=int, nargs="+", default=[0], help="0 = all cores (default)")
    parser.add_argument("--repeat", type=int, default=2, help="batch runs per config (best kept)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="sweeps over all configs; each figure is the best round's (noisy hosts)",
    )
    parser.add_argument("--int8", action="store_true", help="add dynamic int8 ONNX rows (needs onnx)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-load and export timings")
    parser.add_argument(
        "--quality",
        type=int,
        default=0,
        metavar="N",
        help="also run the k-NN routing-quality proxy on N prompts per dataset",
    )
    parser.add_argument("--quality-only", action="store_true", help="only the quality proxy")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(measure_by_length(*spec[1:]) if spec[0] == "by-length" else measure(*spec)))
        return
    if args.quality_only:
        knn_quality(sorted(args.lengths), args.quality or 600)
        return
    prompts = load_prompts(args.n)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(default_model_path()) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    n_tokens = np.array([len(e.ids) for e in tokenizer.encode_batch(prompts)])
    cores = len(os.sched_getaffinity(0))
    print(
        f"{len(prompts)} prompts; tokens p10/p50/p90/max = "
        f"{np.percentile(n_tokens, 10):.0f}/{np.median(n_tokens):.0f}/{np.percentile(n_tokens, 90):.0f}/"
        f"{n_tokens.max()}; cores available: {cores}; load average {os.getloadavg()[0]:.1f}; "
        f"ONNX cache: {default_cache_dir()}"
    )
    QueryEncoder(backend="onnx").warmup()  # export once before the workers start

    variants = list(args.backends) + (["int8", "int8-safe"] if args.int8 else [])
    configs = [(v, L, t) for t in args.threads for L in sorted(args.lengths) for v in variants]
    results: dict[tuple, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for v, L, t in configs if rnd % 2 == 0 else configs[::-1]:
                npz = os.path.join(tmp, f"{v}-{L}-{t}.npz")
                r = run_measure(v, L, t, args.n, args.repeat, npz if rnd == 0 else npz + ".x.npz")
                old = results.get((v, L, t))
                results[(v, L, t)] = (
                    r
                    if old is None
                    else {
                        "p50": min(old["p50"], r["p50"]),
                        "p99": min(old["p99"], r["p99"]),
                        "min": min(old["min"], r["min"]),
                        "rate": max(old["rate"], r["rate"]),
                    }
                )
                print(
                    f"  round {rnd + 1}/{args.rounds}: {v} L={L} threads={t or cores}: p50 {r['p50']:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
        emb = {key: np.load(os.path.join(tmp, f"{key[0]}-{key[1]}-{key[2]}.npz")) for key in results}

    header = (
        f"{'backend':10s} {'thr':>3s} {'max_len':>7s} {'trunc%':>6s} {'p50 ms':>7s} {'p99 ms':>7s} "
        f"{'min ms':>6s} {'batch32/s':>9s} {'cos vs torch min/mean':>22s} {'cos vs L256':>11s}"
    )
    print(f"\nSingle query (encode_one, cache off; best of {args.rounds} rounds) and batch throughput")
    print(header)
    print("-" * len(header))
    for (v, L, t), r in results.items():
        base = ("torch", L, t) if ("torch", L, t) in emb else (v, L, t)
        cos = np.concatenate(
            [
                rowwise_cos(emb[(v, L, t)]["batch"], emb[base]["batch"]),
                rowwise_cos(emb[(v, L, t)]["single"], emb[base]["batch"]),
            ]
        )
        ref = emb.get((v, 256, t))
        trunc_cos = (
            rowwise_cos(emb[(v, L, t)]["batch"], ref["batch"]).mean() if ref is not None else float("nan")
        )
        print(
            f"{v:10s} {t or cores:3d} {L:7d} {100 * float((n_tokens > L).mean()):6.1f} {r['p50']:7.2f} "
            f"{r['p99']:7.2f} {r['min']:6.2f} {r['rate']:9.1f} {cos.min():11.5f}/{cos.mean():.5f} "
            f"{trunc_cos:11.4f}"
        )

    print("\nOne forward pass by input length (median ms of 25; synthetic text, max_seq_length=256)")
    print(
        f"{'backend':10s} {'thr':>3s} " + " ".join(f"{str(n) + ' tok':>8s}" for n in (16, 32, 64, 128, 256))
    )
    for t in args.threads:
        for v in variants:
            best: dict[str, float] = {}
            for _ in range(args.rounds):
                r = run_measure("by-length", v, t)
                best = {k: min(best.get(k, float("inf")), x) for k, x in r.items()}
            print(
                f"{v:10s} {t or cores:3d} "
                + " ".join(f"{best[k]:8.2f}" for k in ("16", "32", "64", "128", "256"))
            )

    enc = QueryEncoder(backend="onnx" if "onnx" in variants else "torch", max_seq_length=128)
    enc.encode_one(prompts[0])
    t0 = time.perf_counter()
    for _ in range(1000):
        enc.encode_one(prompts[0])
    print(f"\nLRU cache hit (encode_one, repeated prompt): {(time.perf_counter() - t0) * 1000:.1f} µs")

    if not args.no_cold:
        print("\nCold start in a fresh interpreter (import + load + first embedding; export cached)")
        for backend in args.backends:
            for threads in args.threads:
                secs = cold_load(backend, threads or None)
                print(f"  {backend:6s} threads={threads or 'all':>3}: {secs:6.2f} s")
        print(f"  one-time ONNX export (fresh interpreter, empty cache): {export_time():.1f} s")
    if args.quality:
        knn_quality(sorted(args.lengths), args.quality)


if __name__ == "__main__":
    main()
