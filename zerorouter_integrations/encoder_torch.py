"""The torch fallback of the query encoder: ``sentence_transformers`` on CPU (the ``torch`` extra).

Used for models the ONNX backend cannot reproduce, or with ``QueryEncoder(backend="torch")``.
"""

from __future__ import annotations

import numpy as np

from zerorouter_integrations.encoder_export import transformers_quiet
from zerorouter_integrations.encoder_model import ModelSpec

__all__ = ["TorchBackend"]


class TorchBackend:
    """Embed one batch with sentence-transformers (the model's own pooling and Normalize)."""

    name = "torch"

    def __init__(self, spec: ModelSpec, max_seq_length: int, num_threads: int | None):
        import torch
        from sentence_transformers import SentenceTransformer

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with transformers_quiet():
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
