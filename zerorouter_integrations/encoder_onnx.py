"""The ONNX backend of the query encoder: ``onnxruntime`` + ``tokenizers``, nothing heavier.

It runs the shipped int8 MiniLM (:func:`~zerorouter_integrations.encoder_model.shipped_spec`) as is, or
another model's export under ``<cache>/onnx/<model hash>-<export version>/`` (made once by
:mod:`~zerorouter_integrations.encoder_export`, which needs the ``torch`` extra).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

from zerorouter_integrations.encoder_model import (
    ModelSpec,
    OnnxUnavailable,
    default_threads,
    l2_normalize,
    ort_session,
    pad_id,
)

__all__ = ["OnnxBackend", "optimized_session"]

logger = logging.getLogger("zerorouter_integrations.encoder")


def optimized_session(model: Path, num_threads: int, root: Path) -> Any:
    """A session of ``model`` (the shipped int8 file) from its graph as onnxruntime optimizes it,
    optimized once per model file and onnxruntime version and kept under ``<root>/onnx/optimized/``.

    Optimizing the graph is most of opening a session (~0.1 s of a ~0.4 s first decision); a graph
    saved at the ``extended`` level (fusions only: no hardware-specific layouts, so the file is valid
    on any CPU) loads with optimizations off and computes bit-identical embeddings to a session
    optimized at the ``all`` level (``tests/test_encoder.py``). A cache that cannot be written or
    read costs only the time: the plain session is used.
    """
    import onnxruntime as ort

    st = model.stat()
    cached = (
        root / "onnx" / "optimized" / f"{model.stem}-{st.st_size}-{st.st_mtime_ns}-ort{ort.__version__}.onnx"
    )
    if cached.is_file():
        try:
            return ort_session(cached, num_threads, level="disabled")
        except Exception as exc:  # truncated or foreign: optimize again below
            logger.warning("discarding unreadable optimized ONNX graph %s: %s", cached, exc)
            cached.unlink(missing_ok=True)
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        session = ort_session(model, num_threads, level="extended", save_to=tmp)
        os.replace(tmp, cached)
        return session
    except Exception as exc:  # a read-only or full cache: run without it
        logger.info("not caching the optimized ONNX graph of %s: %s", model, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return ort_session(model, num_threads)


class OnnxBackend:
    """Embed one batch with onnxruntime (pooling inside the graph, Normalize here)."""

    name = "onnx"

    def __init__(
        self,
        spec: ModelSpec,
        max_seq_length: int,
        num_threads: int | None,
        root: Path,
        precision: str = "float32",
    ):
        if spec.onnx_blocker is not None:
            raise OnnxUnavailable(spec.onnx_blocker)
        try:
            import onnxruntime  # noqa: F401
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise OnnxUnavailable(f"onnxruntime / tokenizers not importable: {exc}") from exc
        assert spec.files_hash is not None and spec.transformer_dir is not None
        threads = num_threads or default_threads()
        if spec.onnx_file is not None:  # the shipped int8 model: ready to run, nothing to export
            if precision != "int8":
                raise OnnxUnavailable(f"the shipped ONNX model is int8, not {precision}")
            target = Path(spec.onnx_file)
            self.session = optimized_session(target, threads, root)
        else:
            target = self._exported(spec, root, threads, precision)
        # Dynamic int8 quantization scales activations by the whole input tensor, padding included:
        # batched, a text's embedding would depend on its batch mates. One text per run keeps it a
        # function of the text alone (the same in training, serving and the caches).
        self.one_at_a_time = precision == "int8"
        self.model_file = target
        self._tokenizer_dir = Path(spec.transformer_dir)
        self._max_seq_length = max_seq_length
        tokenizer = Tokenizer.from_file(str(self._tokenizer_dir / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_seq_length)
        self._single = tokenizer
        self._padded: Any = None  # built on the first batch (the int8 model runs one text at a time)
        self.normalizes = spec.normalizes
        probe = self.embed(["dimension probe"])
        self.dim = int(probe.shape[1])

    def _exported(self, spec: ModelSpec, root: Path, threads: int, precision: str) -> Path:
        """Open this model's export under ``root`` (exporting / quantizing it once); return its file."""
        from zerorouter_integrations.encoder_export import (
            ONNX_EXPORT_VERSION,
            export_or_unavailable,
            quantized_export,
            require_quantizer,
        )

        assert spec.files_hash is not None
        export_dir = root / "onnx" / f"{spec.files_hash[:20]}-{ONNX_EXPORT_VERSION}"
        model_file = export_dir / "model.onnx"
        # Only the session that will run is loaded (the int8 copy when asked for; loading the float32
        # export as well would cost ~0.4 s at every start). A file that does not load is rebuilt.
        target = model_file.with_name("model.int8.onnx") if precision == "int8" else model_file
        self.session = None
        if target.is_file():
            try:
                self.session = ort_session(target, threads)
            except Exception as exc:
                logger.warning("discarding unreadable ONNX export %s: %s", target, exc)
                shutil.rmtree(export_dir, ignore_errors=True)
        if self.session is None:
            if not model_file.is_file():
                export_or_unavailable(spec, export_dir, root)
            if precision == "int8":
                require_quantizer()
                try:
                    quantized_export(model_file)
                except OnnxUnavailable as exc:  # the float32 export may be damaged: rebuild it once
                    logger.warning("rebuilding the ONNX export %s: %s", model_file, exc)
                    shutil.rmtree(export_dir, ignore_errors=True)
                    export_or_unavailable(spec, export_dir, root)
                    quantized_export(model_file)
            self.session = ort_session(target, threads)
        return target

    def _padded_tokenizer(self) -> Any:
        if self._padded is None:
            from tokenizers import Tokenizer

            padded = Tokenizer.from_file(str(self._tokenizer_dir / "tokenizer.json"))
            padded.enable_truncation(max_length=self._max_seq_length)
            pad = pad_id(padded, str(self._tokenizer_dir))
            padded.enable_padding(pad_id=pad, pad_token=padded.id_to_token(pad) or "[PAD]")
            self._padded = padded
        return self._padded

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.one_at_a_time and len(texts) > 1:
            return np.vstack([self.embed([t]) for t in texts])
        if len(texts) == 1:
            enc = self._single.encode(texts[0])
            ids = np.asarray([enc.ids], dtype=np.int64)
            mask = np.asarray([enc.attention_mask], dtype=np.int64)
        else:
            encs = self._padded_tokenizer().encode_batch(texts)
            ids = np.asarray([e.ids for e in encs], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
        out = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        out = np.asarray(out, dtype=np.float32)
        if self.normalizes:
            out = l2_normalize(out)
        return out
