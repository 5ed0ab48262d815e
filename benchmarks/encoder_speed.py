"""Encoder speed: ms per routed prompt, batch throughput, cold load, and agreement between backends.

For each backend × ``max_seq_length`` this prints

* single-query latency (``encode_one`` with the cache off, p50 / p99 over real prompts of mixed
  length after warm-up; the backends take turns on each prompt so machine noise hits them alike),
* batch throughput (``encode`` of all prompts, batch 32, prompts/s, best of ``--repeat``),
* cosine agreement with the torch backend at the same length (min / mean over the prompts),
* what truncation costs: the share of prompts longer than the limit, and the mean cosine of the
  embedding to the same backend's 256-token embedding,

then the cold start of each backend in a fresh interpreter (import + load + first embedding, the
ONNX export already cached) and the one-time ONNX export.

Usage::

    python benchmarks/encoder_speed.py                  # ~200 prompts, lengths 64 128 256
    python benchmarks/encoder_speed.py --threads 1 2    # also compare thread counts
    python benchmarks/encoder_speed.py --int8           # + dynamic int8 ONNX (needs `pip install onnx`)

Prompts come from /work/shared/data (``$ZEROROUTER_DATA`` overrides): zeroeval and
routerbench_subset full prompts (few-shot, 100-1000 tokens) and their bare questions (10-200 tokens).
"""

from __future__ import annotations

import argparse
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
from zerorouter_integrations.encoder import QueryEncoder, default_cache_dir, default_model_path

DATA = Path(os.environ.get("ZEROROUTER_DATA", "/work/shared/data"))


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

    from zerorouter_integrations.encoder import _OnnxBackend, _ort_session

    # A private backend object: loaded backends are shared between equal encoders.
    impl = _OnnxBackend(encoder._model_spec(), encoder.max_seq_length, encoder.num_threads, default_cache_dir())
    attention = [f"/model/encoder/layer.{i}/attention/self/{m}" for i in range(64) for m in ("MatMul", "MatMul_1")]
    ffn_out = [f"/model/encoder/layer.{i}/output/dense/MatMul" for i in range(64)]
    exclude = attention + (ffn_out if variant == "int8-safe" else [])
    dst = Path(tempfile.mkdtemp(prefix="zr-int8-")) / "model.onnx"
    import logging

    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
    try:
        quantize_dynamic(str(impl.model_file), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=exclude)
    finally:
        logging.getLogger().setLevel(root_level)
    impl.session = _ort_session(dst, encoder.num_threads or len(os.sched_getaffinity(0)))
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
    print(f"\nRouting-quality proxy: leave-one-out {k}-NN prediction of per-model correctness "
          f"(mean ROC-AUC over models; {n_per_dataset} prompts per dataset; embeddings cached in {cache})")
    print(f"{'dataset':20s} " + " ".join(f"{'L=' + str(L):>8s}" for L in lengths) + f" {'task only':>10s}")
    for dataset in ("zeroeval", "routerbench_subset"):
        prompts = pd.read_parquet(DATA / dataset / "prompts.parquet")
        prompts = prompts.sample(n=min(n_per_dataset, len(prompts)), random_state=0)
        outcomes = pd.read_parquet(DATA / dataset / "outcomes.parquet")
        scores = outcomes.pivot_table(index="prompt_id", columns="model", values="score").reindex(prompts["prompt_id"])
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
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of prompts (default 200)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    parser.add_argument("--threads", type=int, nargs="+", default=[0], help="0 = all cores (default)")
    parser.add_argument("--repeat", type=int, default=2, help="batch runs per config (best kept)")
    parser.add_argument("--int8", action="store_true", help="add dynamic int8 ONNX rows (needs onnx)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-load and export timings")
    parser.add_argument("--quality", type=int, default=0, metavar="N",
                        help="also run the k-NN routing-quality proxy on N prompts per dataset")
    parser.add_argument("--quality-only", action="store_true", help="only the quality proxy")
    args = parser.parse_args()

    if args.quality_only:
        knn_quality(sorted(args.lengths), args.quality or 600)
        return
    prompts = load_prompts(args.n)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(default_model_path()) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    n_tokens = np.array([len(e.ids) for e in tokenizer.encode_batch(prompts)])
    print(f"{len(prompts)} prompts; tokens p10/p50/p90/max = "
          f"{np.percentile(n_tokens, 10):.0f}/{np.median(n_tokens):.0f}/{np.percentile(n_tokens, 90):.0f}/"
          f"{n_tokens.max()}; cores available: {len(os.sched_getaffinity(0))}; ONNX cache: {default_cache_dir()}")

    variants = list(args.backends) + (["int8", "int8-safe"] if args.int8 else [])
    header = (f"{'backend':10s} {'thr':>3s} {'max_len':>7s} {'trunc%':>6s} {'p50 ms':>7s} {'p99 ms':>7s} "
              f"{'min ms':>6s} {'batch32/s':>9s} {'cos vs torch min/mean':>22s} {'cos vs L256':>11s}")
    print("\nSingle query (encode_one, cache off) and batch throughput")
    print(header)
    print("-" * len(header), flush=True)
    ref256: dict[tuple[str, int], np.ndarray] = {}
    lengths = sorted(args.lengths, reverse=True)  # 256 first: the truncation reference
    for threads in args.threads:
        for length in lengths:
            encoders: dict[str, QueryEncoder] = {}
            for v in variants:
                enc = QueryEncoder(backend="torch" if v == "torch" else "onnx", max_seq_length=length,
                                   cache_size=0, num_threads=threads or None, show_progress=False)
                if v.startswith("int8"):
                    enc = make_int8(enc, v)
                enc.warmup()
                encoders[v] = enc
            # Batch throughput (and the embeddings used for the agreement columns).
            batch_out, rate = {}, {}
            for v, enc in encoders.items():
                best = float("inf")
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    batch_out[v] = enc.encode(prompts)
                    best = min(best, time.perf_counter() - t0)
                rate[v] = len(prompts) / best
            # Single-query latency, backends interleaved per prompt.
            lat: dict[str, list[float]] = {v: [] for v in encoders}
            single_out: dict[str, list[np.ndarray]] = {v: [] for v in encoders}
            for p in prompts:
                for v, enc in encoders.items():
                    t0 = time.perf_counter()
                    vec = enc.encode_one(p)
                    lat[v].append((time.perf_counter() - t0) * 1000)
                    single_out[v].append(vec)
            for v in encoders:
                single = np.vstack(single_out[v])
                base = "torch" if "torch" in batch_out else v
                cos = np.concatenate([rowwise_cos(batch_out[v], batch_out[base]),
                                      rowwise_cos(single, batch_out[base])])
                key = (v, threads)
                if length == 256:
                    ref256[key] = batch_out[v]
                trunc_cos = rowwise_cos(batch_out[v], ref256[key]).mean() if key in ref256 else float("nan")
                print(f"{v:10s} {threads or len(os.sched_getaffinity(0)):3d} {length:7d} "
                      f"{100 * float((n_tokens > length).mean()):6.1f} {statistics.median(lat[v]):7.2f} "
                      f"{float(np.percentile(lat[v], 99)):7.2f} {min(lat[v]):6.2f} {rate[v]:9.1f} "
                      f"{cos.min():11.5f}/{cos.mean():.5f} {trunc_cos:11.4f}", flush=True)
            # LRU hit cost, for the record.
            enc = QueryEncoder(backend="onnx" if "onnx" in encoders else "torch", max_seq_length=length)
            enc.encode_one(prompts[0])
            t0 = time.perf_counter()
            for _ in range(1000):
                enc.encode_one(prompts[0])
            hit_us = (time.perf_counter() - t0) * 1000
    print(f"\nLRU cache hit (encode_one, repeated prompt): {hit_us:.1f} µs")

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
