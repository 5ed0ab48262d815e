"""Exporting a sentence-transformers model to ONNX and quantizing it to int8 (needs the ``torch`` extra).

:func:`export_onnx` traces the transformer plus its pooling with ``torch.onnx.export`` into a folder
(atomically, checked against torch on a probe batch); :func:`quantized_export` writes the dynamically
int8-quantized copy beside it (``onnx`` + ``onnxruntime.quantization``). The encoder calls these for
models other than the shipped one; ``scripts/build_encoder.py`` builds the shipped int8 file with them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np

from zerorouter_integrations.encoder_model import (
    ModelSpec,
    OnnxUnavailable,
    ort_session,
    pad_id,
    rowwise_cosine,
)

__all__ = [
    "ONNX_EXPORT_VERSION",
    "ONNX_OPSET",
    "export_onnx",
    "export_or_unavailable",
    "quantized_export",
    "require_quantizer",
    "transformers_quiet",
]

logger = logging.getLogger("zerorouter_integrations.encoder")

#: Bump when the exported graph changes (wrapper, pooling, opset) so old exports are not reused.
ONNX_EXPORT_VERSION = "v1"
ONNX_OPSET = 17


def export_onnx(spec: ModelSpec, final_dir: Path) -> None:
    """Export ``spec``'s transformer + pooling to ``final_dir/model.onnx`` atomically.

    The export is written to a sibling temporary folder, checked against torch on a probe batch,
    and renamed into place; when another process wins the race its export is kept.
    """
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:  # pragma: no cover - torch and transformers are dependencies
        raise OnnxUnavailable(f"exporting needs torch and transformers: {exc}") from exc
    import inspect

    from tokenizers import Tokenizer

    kwargs: dict[str, Any] = {"local_files_only": True}
    with transformers_quiet():
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
    tokenizer = Tokenizer.from_file(str(Path(cast(str, spec.transformer_dir)) / "tokenizer.json"))
    tokenizer.enable_truncation(min(64, spec.max_length_limit or 64))
    pad = pad_id(tokenizer, spec.transformer_dir)
    tokenizer.enable_padding(pad_id=pad, pad_token=tokenizer.id_to_token(pad) or "[PAD]")
    probe = ["Route this prompt to the cheapest good model, please.", "2+2?", ""]
    encs = tokenizer.encode_batch(probe)
    ids = np.array([e.ids for e in encs], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encs], dtype=np.int64)

    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = final_dir.parent / f".tmp-{final_dir.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp_dir.mkdir()
    try:
        with torch.no_grad(), onnx_package_optional(), quiet_export_warnings():
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
                opset_version=ONNX_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
            expected = wrapper(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        # Check the graph on the traced batch and on one unpadded row (other batch and length).
        session = ort_session(tmp_dir / "model.onnx", num_threads=1)
        got = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        n_real = int(mask[1].sum())
        single = session.run(None, {"input_ids": ids[1:2, :n_real], "attention_mask": mask[1:2, :n_real]})[0]
        got = np.vstack([got, single])
        expected = np.vstack([expected, expected[1:2]])
        cos = rowwise_cosine(got, expected)
        if not np.all(cos >= 0.9999):
            raise OnnxUnavailable(f"exported graph disagrees with torch (cosine {cos.min():.6f})")
        meta = {
            "model": spec.name,
            "files_hash": spec.files_hash,
            "pooling": pooling,
            "export_version": ONNX_EXPORT_VERSION,
            "opset": ONNX_OPSET,
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
def onnx_package_optional() -> Iterator[None]:
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
        raise OnnxUnavailable("torch.onnx.export needs the `onnx` package here: pip install onnx") from exc
    original = onnx_proto_utils._add_onnxscript_fn

    def _identity(model_bytes: bytes, custom_opsets: Any) -> bytes:
        if custom_opsets:
            raise OnnxUnavailable("custom ONNX opsets need the `onnx` package: pip install onnx")
        return model_bytes

    onnx_proto_utils._add_onnxscript_fn = _identity
    try:
        yield
    finally:
        onnx_proto_utils._add_onnxscript_fn = original


@contextlib.contextmanager
def transformers_quiet() -> Iterator[None]:
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
def quiet_export_warnings() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def export_or_unavailable(spec: ModelSpec, export_dir: Path, root: Path) -> None:
    """:func:`export_onnx`, with every failure turned into :class:`OnnxUnavailable` (use torch)."""
    logger.info("exporting %s to ONNX under %s (once)", spec.name, export_dir)
    try:
        export_onnx(spec, export_dir)
    except OnnxUnavailable:
        raise
    except OSError as exc:
        raise OnnxUnavailable(
            f"cannot write the ONNX export under {root} ({exc}); set ZEROROUTER_CACHE_DIR to a writable folder"
        ) from exc
    except Exception as exc:
        raise OnnxUnavailable(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc


def require_quantizer() -> None:
    """Raise :class:`OnnxUnavailable` unless int8 quantization can run (it needs ``onnx``)."""
    try:
        import onnx  # noqa: F401
        from onnxruntime.quantization import quantize_dynamic  # noqa: F401
    except ImportError as exc:
        raise OnnxUnavailable(f"int8 quantization needs the onnx package ({exc})") from exc


def quantized_export(model_file: Path) -> None:
    """Write the int8 copy of an ONNX export beside it, atomically (raises OnnxUnavailable).

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
        raise OnnxUnavailable(f"int8 quantization failed: {type(exc).__name__}: {exc}") from exc
    finally:
        quiet.setLevel(level)
        tmp.unlink(missing_ok=True)
