"""Query encoder: prompt text → unit-length sentence embedding, fast, cached and offline.

The router embeds every prompt it routes, so the encoder is the bulk of the routing overhead. The
default model is the sentence-transformers ``all-MiniLM-L6-v2``; nothing is ever downloaded.

Backends (each in its own module; this one is the :class:`QueryEncoder` surface):

``"onnx"`` (:mod:`~zerorouter_integrations.encoder_onnx`)
    ``onnxruntime`` with the fast ``tokenizers`` tokenizer. With ``precision="int8"`` (the router's
    setting, :data:`ROUTING_ENCODER`) the default model is the int8 MiniLM **shipped in this package**
    (``zerorouter_integrations/shipped_encoder/``, built by ``scripts/build_encoder.py``): the base install
    needs neither torch nor sentence-transformers. Other models and float32 are exported once
    (:mod:`~zerorouter_integrations.encoder_export`, the ``torch`` extra) into
    ``<cache>/onnx/<model hash>-<export version>/``.
``"torch"`` (:mod:`~zerorouter_integrations.encoder_torch`)
    ``sentence_transformers.SentenceTransformer`` on CPU (the ``torch`` extra). Works for any
    sentence-transformers model.

``"auto"`` (the default) uses ONNX when it can reproduce the model's pipeline (Transformer → Pooling
(cls / mean / max / mean-sqrt-len) → optional Normalize) and falls back to torch otherwise.

Embeddings are cached in memory (an LRU keyed by text, for repeated prompts at serve time) and,
when ``cache_dir`` is given, on disk in one SQLite file (:mod:`~zerorouter_integrations.encoder_cache`).
Both caches are keyed by text only within one :attr:`QueryEncoder.fingerprint`, which names the model
files and the settings that change an embedding (``max_seq_length``, ``normalize``, ``precision``),
never the backend; the shipped int8 model has the fingerprint of an int8 export of the bundled weights.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from zerorouter_integrations._aio import to_thread
from zerorouter_integrations.encoder_cache import CacheInfo, DiskCache, MemoryCache
from zerorouter_integrations.encoder_model import (
    TORCH_EXTRA_HINT,
    ModelSpec,
    OnnxUnavailable,
    default_cache_dir,
    default_model_path,
    inspect_model,
    l2_normalize,
    shipped_spec,
)
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

#: Batch encodes longer than this show a progress bar when stderr is a terminal.
_PROGRESS_MIN_TEXTS = 256
#: Computed embeddings are written to the disk cache every this many texts.
_DISK_FLUSH_EVERY = 1024


#: Loaded backends by (model, backend, max_seq_length, num_threads); freed when no encoder uses them.
_SHARED_BACKENDS: weakref.WeakValueDictionary[tuple, Any] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


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
        self._mem = MemoryCache(self.cache_size)  # LRU and counters (fast)
        self._spec: ModelSpec | None = None
        self._impl: Any | None = None
        self._fingerprint: str | None = None
        self._disk = DiskCache(self.cache_dir) if self.cache_dir is not None else None

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

    def _model_spec(self) -> ModelSpec:
        if self._spec is None:
            with self._load_lock:
                if self._spec is None:
                    spec = self._shipped()
                    if spec is not None:
                        self._spec = spec
                        return spec
                    name = self.model_name_or_path or default_model_path()
                    spec = inspect_model(name)
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

    def _shipped(self) -> ModelSpec | None:
        """The shipped int8 model when it serves this encoder (default model, int8, not torch)."""
        if self.model_name_or_path is not None or self.precision != "int8" or self.backend == "torch":
            return None
        spec = shipped_spec()
        if spec is None:
            return None
        if spec.max_length_limit is not None and self.max_seq_length > spec.max_length_limit:
            raise ValueError(
                f"max_seq_length={self.max_seq_length} exceeds what the shipped model accepts "
                f"({spec.max_length_limit} tokens)"
            )
        return spec

    def _load(self) -> Any:
        impl = self._impl
        if impl is not None:
            return impl
        with self._load_lock:
            if self._impl is None:
                self._impl = self._make_backend()
            return self._impl

    def _make_backend(self) -> Any:
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

    def _new_backend(self, spec: ModelSpec, root: Path) -> Any:
        from zerorouter_integrations.encoder_onnx import OnnxBackend

        if self.backend in ("auto", "onnx"):
            try:
                return OnnxBackend(spec, self.max_seq_length, self.num_threads, root, self.precision)
            except OnnxUnavailable as exc:
                if self.backend == "onnx" or spec.onnx_file is not None:
                    raise ZeroRouterError(f"backend='onnx' is unavailable for {spec.name!r}: {exc}") from exc
                log = logger.info if spec.onnx_blocker else logger.warning
                log("QueryEncoder: using the torch backend for %s (%s)", spec.name, exc)
        try:
            from zerorouter_integrations.encoder_torch import TorchBackend

            return TorchBackend(spec, self.max_seq_length, self.num_threads)
        except ImportError as exc:
            raise ZeroRouterError(
                f"the torch backend for {spec.name!r} needs torch and sentence-transformers ({exc}): "
                f"{TORCH_EXTRA_HINT}"
            ) from exc

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
        return self._mem.info()

    def cache_clear(self) -> None:
        """Empty the in-memory cache and reset the counters (the disk cache is kept)."""
        self._mem.clear()

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
        found = self._mem.get_many(unique)
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
        cached = self._mem.get(text)
        if cached is not None:
            return cached.copy()
        return self._encode_uncached([text], False)[text].copy()

    async def aencode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Async twin of :meth:`encode`; runs in a worker thread."""
        items = _check_texts(texts)
        return await to_thread(self.encode, items, show_progress=show_progress)

    async def aencode_one(self, text: str) -> np.ndarray:
        """Async twin of :meth:`encode_one`; a cache hit returns at once, a miss runs in a thread."""
        if isinstance(text, str):
            cached = self._mem.get(text)
            if cached is not None:
                return cached.copy()
        return await to_thread(self.encode_one, text)

    # -- internals ---------------------------------------------------------------------------------

    def _want_progress(self, override: bool | None, n: int) -> bool:
        choice = override if override is not None else self.show_progress
        if choice is not None:
            return bool(choice)
        try:
            return n > _PROGRESS_MIN_TEXTS and sys.stderr is not None and sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False

    def _encode_uncached(self, texts: list[str], progress: bool) -> dict[str, np.ndarray]:
        """Embed texts missing from the LRU: disk cache first, then the model; fill both caches."""
        result: dict[str, np.ndarray] = {}
        keys: dict[str, bytes] = {}
        if self._disk is not None:
            fingerprint = self.fingerprint
            keys = {t: DiskCache.key(fingerprint, t) for t in texts}
            stored = self._disk.get_many(list(keys.values()))
            for text, key in keys.items():
                vec = stored.get(key)
                if vec is not None:
                    vec.setflags(write=False)
                    result[text] = vec
            self._mem.count(disk_hits=len(result))
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
                        vecs = l2_normalize(vecs)
                    for text, row in zip(batch, vecs, strict=True):
                        vec = np.array(row, dtype=np.float32)  # own copy: a cached row must not pin its batch
                        vec.setflags(write=False)
                        result[text] = vec
                        if self._disk is not None:
                            pending.append((keys[text], vec))
                    self._mem.count(misses=len(batch))
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
        self._mem.put_many(result.items())
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
