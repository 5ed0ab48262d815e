"""QueryEncoder with the real bundled MiniLM, offline: ONNX export, torch agreement, caches, errors."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zerorouter_integrations  # noqa: F401  (offline settings)
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.encoder import CacheInfo, QueryEncoder, default_model_path
from zerorouter_integrations.errors import ZeroRouterError

DATA = find_data_dir()
SHORT = ["What is 2 + 2?", "", "Write a haiku about routers.", "  spaces  ", "é ü 中文 🙂"]


@pytest.fixture(scope="module", autouse=True)
def onnx_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Export the ONNX model into a fresh folder, so every run exercises the export."""
    root = tmp_path_factory.mktemp("zr-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("ZEROROUTER_CACHE_DIR", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def real_prompts() -> list[str]:
    """50 real prompts: 25 from zeroeval and 25 from routerbench_subset (fixed seed)."""
    pd = pytest.importorskip("pandas")
    if not DATA.is_dir():
        pytest.skip(f"benchmark data not found at {DATA}")
    rng = np.random.default_rng(7)
    out: list[str] = []
    for folder in ("zeroeval", "routerbench_subset"):
        col = pd.read_parquet(DATA / folder / "prompts.parquet")["prompt"]
        out += [col.iloc[i] for i in rng.choice(len(col), size=25, replace=False)]
    return out


@pytest.fixture(scope="module")
def onnx_encoder(onnx_cache_dir: Path) -> QueryEncoder:
    enc = QueryEncoder()  # "auto"
    enc.warmup()
    return enc


@pytest.fixture(scope="module")
def torch_encoder() -> QueryEncoder:
    return QueryEncoder(backend="torch")


@contextlib.contextmanager
def no_network():
    """Any socket use inside raises (pytest-socket), so a hidden download attempt fails the test."""
    pytest_socket = pytest.importorskip("pytest_socket")
    pytest_socket.disable_socket()
    try:
        yield
    finally:
        pytest_socket.enable_socket()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_auto_exports_onnx_atomically_and_encodes(onnx_encoder: QueryEncoder, onnx_cache_dir: Path):
    assert onnx_encoder.resolved_backend == "onnx"
    exports = [p for p in (onnx_cache_dir / "onnx").iterdir() if p.name != "optimized"]  # shipped graph
    assert [p.name.startswith(".tmp-") for p in exports] == [False]  # one export, no leftovers
    assert (exports[0] / "model.onnx").is_file()
    assert json.loads((exports[0] / "meta.json").read_text())["pooling"] == "mean"

    vecs = onnx_encoder.encode(SHORT)
    assert vecs.shape == (len(SHORT), 384) and vecs.dtype == np.float32
    assert onnx_encoder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert onnx_encoder.encode([]).shape == (0, 384)
    one = onnx_encoder.encode_one("What is 2 + 2?")
    assert one.shape == (384,) and one.dtype == np.float32


def test_constructor_only_stores_params(tmp_path: Path):
    enc = QueryEncoder(str(tmp_path / "no-such-model"), backend="torch", max_seq_length=64)
    assert (enc.backend, enc.max_seq_length, enc.cache_dir) == ("torch", 64, None)
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        enc.encode(["x"])


def test_deterministic_and_batch_matches_single(onnx_encoder: QueryEncoder, real_prompts: list[str]):
    texts = real_prompts[:8] + SHORT
    first = QueryEncoder(cache_size=0).encode(texts)
    again = QueryEncoder(cache_size=0).encode(texts)
    np.testing.assert_array_equal(first, again)
    singles = np.vstack([QueryEncoder(cache_size=0).encode_one(t) for t in texts[:3]])
    np.testing.assert_allclose(singles, first[:3], atol=1e-5)  # padding changes only rounding
    # Duplicates are encoded once and come back in input order.
    dup = QueryEncoder(cache_size=0)
    out = dup.encode(["b", "a", "b"])
    np.testing.assert_array_equal(out[0], out[2])
    assert dup.cache_info().misses == 2


def test_lru_cache_hit_skips_the_model(onnx_encoder: QueryEncoder):
    enc = QueryEncoder(cache_size=2)
    first = enc.encode_one("cache me")
    assert enc.cache_info() == CacheInfo(hits=0, disk_hits=0, misses=1, maxsize=2, currsize=1)
    first[:] = 0.0  # the caller's copy; the cache is untouched
    second = enc.encode_one("cache me")
    assert enc.cache_info().hits == 1 and enc.cache_info().misses == 1
    np.testing.assert_array_equal(second, onnx_encoder.encode_one("cache me"))
    enc.encode(["cache me", "other", "third"])  # 1 hit, 2 misses; "cache me" is evicted last-in-first
    info = enc.cache_info()
    assert (info.hits, info.misses, info.currsize) == (2, 3, 2)
    enc.encode_one("cache me")  # evicted (capacity 2) → encoded again
    assert enc.cache_info().misses == 4
    off = QueryEncoder(cache_size=0)
    off.encode_one("x"), off.encode_one("x")
    assert off.cache_info().misses == 2 and off.cache_info().currsize == 0


def _write_cache(cache_dir: str, texts: list[str], queue) -> None:  # runs in a child process
    enc = QueryEncoder(cache_dir=cache_dir, batch_size=4)
    enc.encode(texts)
    queue.put(enc.cache_info().misses)


def test_disk_cache_round_trip_and_concurrent_writers(tmp_path: Path, real_prompts: list[str]):
    texts = real_prompts[:12] + SHORT
    writer = QueryEncoder(cache_dir=tmp_path)
    written = writer.encode(texts)
    assert writer.cache_info().misses == len(texts)

    reader = QueryEncoder(cache_dir=tmp_path)  # a second instance, empty LRU
    read = reader.encode(texts)
    assert reader.cache_info().disk_hits == len(texts) and reader.cache_info().misses == 0
    np.testing.assert_array_equal(read, written)
    np.testing.assert_array_equal(QueryEncoder(cache_dir=tmp_path).encode_one(texts[3]), written[3])

    other = QueryEncoder(cache_dir=tmp_path, max_seq_length=64)  # another fingerprint: no reuse
    assert other.fingerprint != reader.fingerprint
    other.encode(texts[:2])
    assert other.cache_info().misses == 2

    # Two processes write overlapping texts into one fresh cache at the same time.
    shared = tmp_path / "shared"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_write_cache, args=(str(shared), texts[i : i + 12], queue)) for i in (0, 5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(queue.get(timeout=5) for _ in procs) == [12, 12]
    union = QueryEncoder(cache_dir=shared)
    np.testing.assert_allclose(union.encode(texts), written, atol=1e-5)
    assert union.cache_info().disk_hits == len(texts) and union.cache_info().misses == 0


def test_onnx_matches_torch_on_real_prompts(
    onnx_encoder: QueryEncoder, torch_encoder: QueryEncoder, real_prompts: list[str]
):
    assert torch_encoder.resolved_backend == "torch"
    assert torch_encoder.fingerprint == onnx_encoder.fingerprint  # the backend is not part of it
    texts = real_prompts + SHORT
    cos = _cos(onnx_encoder.encode(texts), torch_encoder.encode(texts))
    assert cos.min() >= 0.999, cos.min()
    single = np.vstack([QueryEncoder(cache_size=0).encode_one(t) for t in real_prompts[:5]])
    assert _cos(single, torch_encoder.encode(real_prompts[:5])).min() >= 0.999


def test_other_model_by_path_cls_pooling(tmp_path: Path, torch_encoder: QueryEncoder):
    """A different sentence-transformers folder (CLS pooling, no Normalize) works on both backends."""
    src = Path(default_model_path())
    model = tmp_path / "minilm-cls"
    shutil.copytree(src, model, ignore=shutil.ignore_patterns("model.safetensors"))
    (model / "model.safetensors").symlink_to(src / "model.safetensors")
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    (model / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    modules = json.loads((model / "modules.json").read_text())[:2]
    (model / "modules.json").write_text(json.dumps(modules))

    raw_onnx = QueryEncoder(str(model), backend="onnx", normalize=False, max_seq_length=64)
    raw_torch = QueryEncoder(str(model), backend="torch", normalize=False, max_seq_length=64)
    assert raw_onnx.fingerprint != torch_encoder.fingerprint
    with no_network():  # the export (transformers, torch.onnx) is offline too
        a, b = raw_onnx.encode(SHORT[:3]), raw_torch.encode(SHORT[:3])
    assert np.linalg.norm(a, axis=1).max() > 1.5  # not normalized
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


def test_pickle_round_trip(onnx_encoder: QueryEncoder):
    enc = QueryEncoder(max_seq_length=96, cache_size=16)
    expected = enc.encode(SHORT)
    blob = pickle.dumps(enc)
    assert len(blob) < 2000  # parameters only; the model and the cache are dropped
    clone = pickle.loads(blob)
    assert (clone.max_seq_length, clone.cache_size, clone.fingerprint) == (96, 16, enc.fingerprint)
    assert clone.cache_info().currsize == 0
    np.testing.assert_array_equal(clone.encode(SHORT), expected)


def test_bad_inputs(tmp_path: Path):
    enc = QueryEncoder()
    with pytest.raises(TypeError, match=r"texts\[1\] must be str, got int"):
        enc.encode(["ok", 3])
    with pytest.raises(TypeError, match=r"texts\[0\] must be str, got NoneType"):
        enc.encode([None])
    with pytest.raises(TypeError, match="single str"):
        enc.encode("one string")
    with pytest.raises(TypeError, match="text must be str, got bytes"):
        enc.encode_one(b"bytes")
    with pytest.raises(ValueError, match="backend='tf'"):
        QueryEncoder(backend="tf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_seq_length=1"):
        QueryEncoder(max_seq_length=1)
    with pytest.raises(ValueError, match="exceeds"):
        QueryEncoder(max_seq_length=4096).encode(["x"])
    with pytest.raises(ZeroRouterError, match="backend='onnx' is unavailable"):
        QueryEncoder(str(tmp_path), backend="onnx").encode(["x"])  # not a model folder


def test_loads_offline_with_sockets_disabled():
    # max_seq_length=100: settings no other test uses, so both backends load afresh here.
    with no_network():
        for backend in ("auto", "torch"):
            vec = QueryEncoder(backend=backend, max_seq_length=100).encode_one("no network needed")
            assert vec.shape == (384,)


async def test_async_twins_match_sync(onnx_encoder: QueryEncoder):
    enc = QueryEncoder()
    batch, one = await asyncio.gather(enc.aencode(SHORT), enc.aencode_one(SHORT[0]))
    np.testing.assert_allclose(batch, onnx_encoder.encode(SHORT), atol=1e-6)
    np.testing.assert_allclose(one, batch[0], atol=1e-5)
    hit = await enc.aencode_one(SHORT[2])  # cached by the batch above
    np.testing.assert_array_equal(hit, batch[2])
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        await enc.aencode([1])


def test_progress_bar_on_request(capsys: pytest.CaptureFixture[str]):
    QueryEncoder(cache_size=0, show_progress=True).encode(SHORT)
    assert "encoding prompts" in capsys.readouterr().err
    QueryEncoder(cache_size=0).encode(SHORT, show_progress=False)
    assert "encoding prompts" not in capsys.readouterr().err


def test_int8_precision_is_a_quantized_onnx_model_close_to_float32(
    onnx_encoder: QueryEncoder, onnx_cache_dir: Path, real_prompts: list[str]
):
    """``precision="int8"`` quantizes the export once beside it (atomically), embeds within cosine
    0.98 of float32 on real prompts, and is told apart from float32 everywhere it matters."""
    pytest.importorskip("onnx")
    enc = QueryEncoder(
        default_model_path(), precision="int8", cache_size=0
    )  # the export, not the shipped file
    assert enc.fingerprint == onnx_encoder.fingerprint + "-int8"
    e8 = enc.encode(real_prompts)
    e32 = onnx_encoder.encode(real_prompts)
    cos = (e8 * e32).sum(axis=1) / (np.linalg.norm(e8, axis=1) * np.linalg.norm(e32, axis=1))
    assert cos.min() > 0.98 and cos.mean() > 0.99
    assert not np.allclose(e8, e32, atol=1e-4)  # really another model, not the float32 one
    model_file = enc._load().model_file
    assert model_file.name == "model.int8.onnx" and model_file.parent.parent.parent == onnx_cache_dir
    assert not [p for p in model_file.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    np.testing.assert_array_equal(enc.encode_one(real_prompts[0]), e8[0])
    clone = pickle.loads(pickle.dumps(enc))
    assert clone.precision == "int8" and "precision='int8'" in repr(clone)
    with pytest.raises(ValueError, match="precision='int8' needs the ONNX backend"):
        QueryEncoder(backend="torch", precision="int8")
    with pytest.raises(ValueError, match="precision='fp16' is not one of"):
        QueryEncoder(precision="fp16")
    batch_mates = enc.encode([real_prompts[0], "short", real_prompts[5]])
    np.testing.assert_array_equal(batch_mates[0], e8[0])  # an embedding never depends on its batch


def test_shipped_int8_model_is_the_exporters_output(onnx_cache_dir: Path, real_prompts: list[str]):
    """The int8 MiniLM shipped in the package (scripts/build_encoder.py) is what the exporter and
    quantizer make from the bundled weights: the same file, the same embeddings and fingerprint, and
    it loads with no export and no torch (the cache gets only its optimized graph)."""
    pytest.importorskip("onnx")
    from zerorouter_integrations.encoder_model import SHIPPED_DIR

    exported = QueryEncoder(default_model_path(), precision="int8", max_seq_length=64, cache_size=0)
    shipped = QueryEncoder(precision="int8", max_seq_length=64, cache_size=0)
    assert shipped._load().model_file == SHIPPED_DIR / "model.int8.onnx"
    assert exported._load().model_file.parent.parent.parent == onnx_cache_dir
    assert shipped.fingerprint == exported.fingerprint
    np.testing.assert_array_equal(shipped.encode(real_prompts), exported.encode(real_prompts))
    meta = json.loads((SHIPPED_DIR / "meta.json").read_text())
    digest = hashlib.sha256(exported._load().model_file.read_bytes()).hexdigest()
    assert digest == meta["sha256"]["model.int8.onnx"]  # byte-identical to a fresh export
    code = (
        "import sys\n"
        "from zerorouter_integrations.encoder import QueryEncoder\n"
        "e = QueryEncoder(precision='int8', max_seq_length=64)\n"
        "v = e.encode(['What is 2 + 2?'])\n"
        "print(e.resolved_backend, v.shape[1], 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    empty = onnx_cache_dir / "fresh-root"
    env = {**os.environ, "ZEROROUTER_CACHE_DIR": str(empty)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["onnx", "384", "False", "False"]
    # nothing exported: the one file written is the shipped graph as onnxruntime optimized it
    written = [p.relative_to(empty) for p in empty.rglob("*") if p.is_file()]
    assert len(written) == 1 and written[0].parent == Path("onnx/optimized"), written


def test_optimized_graph_cache_gives_the_same_embeddings(real_prompts, tmp_path, caplog):
    """The shipped model's session comes from a graph optimized once and cached per onnxruntime
    version: first use (optimize at the extended level, save), later uses (load the saved graph with
    optimizations off) and a plain fully optimized session give bit-identical outputs."""
    from tokenizers import Tokenizer

    from zerorouter_integrations.encoder_model import SHIPPED_DIR, ort_session
    from zerorouter_integrations.encoder_onnx import optimized_session

    model = SHIPPED_DIR / "model.int8.onnx"
    tok = Tokenizer.from_file(str(SHIPPED_DIR / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=64)

    def run(session) -> np.ndarray:
        rows = []
        for text in [*real_prompts, *SHORT]:
            e = tok.encode(text)
            feed = {
                "input_ids": np.asarray([e.ids], np.int64),
                "attention_mask": np.asarray([e.attention_mask], np.int64),
            }
            rows.append(session.run(None, feed)[0])
        return np.vstack(rows)

    plain = run(ort_session(model, 2))
    first = run(optimized_session(model, 2, tmp_path))
    (cached,) = (tmp_path / "onnx" / "optimized").glob("model.int8-*-ort*.onnx")
    assert not list(cached.parent.glob(".*.tmp"))
    again = run(optimized_session(model, 2, tmp_path))
    assert np.array_equal(first, plain) and np.array_equal(again, plain)
    cached.write_bytes(cached.read_bytes()[:1000])  # truncated: discarded with a warning, optimized again
    with caplog.at_level("WARNING", logger="zerorouter_integrations.encoder"):
        assert np.array_equal(run(optimized_session(model, 2, tmp_path)), plain)
    assert "discarding unreadable optimized ONNX graph" in caplog.text
    assert cached.stat().st_size > 1_000_000
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache folder would be")
    assert np.array_equal(run(optimized_session(model, 2, blocked)), plain)  # no cache: plain session
