"""LangChain ``Embeddings`` over the router's own query encoder (the bundled MiniLM, offline).

Useful for small retrieval setups next to a :class:`~langchain_router.ZeroRouterChat`: pass the
router's encoder to share the loaded model and its cache.

>>> emb = ZeroRouterEmbeddings(encoder=router.encoder)          # doctest: +SKIP
>>> store = InMemoryVectorStore.from_texts(texts, emb)          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from langchain_core.embeddings import Embeddings

__all__ = ["ZeroRouterEmbeddings"]


class ZeroRouterEmbeddings(Embeddings):
    """Embed texts with a core ``QueryEncoder`` (unit-length vectors; 384 dims for MiniLM).

    Parameters
    ----------
    encoder : QueryEncoder, optional
        The encoder to use, e.g. ``router.encoder``. Default: a new ``QueryEncoder()`` over the bundled
        ``all-MiniLM-L6-v2``, created on the first call.
    **encoder_kwargs
        Passed to ``QueryEncoder`` when ``encoder`` is not given (``max_seq_length``, ``cache_dir``, ...).
    """

    def __init__(self, encoder: Any = None, **encoder_kwargs: Any):
        if encoder is not None and encoder_kwargs:
            raise ValueError(f"give encoder= or QueryEncoder arguments {sorted(encoder_kwargs)}, not both")
        self._encoder = encoder
        self._kwargs = encoder_kwargs
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle / deep copy: the encoder (same settings and precision) and its arguments."""
        return {"encoder": self._encoder, "kwargs": dict(self._kwargs)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._encoder = state["encoder"]
        self._kwargs = state["kwargs"]
        self._lock = threading.Lock()

    @property
    def encoder(self) -> Any:
        """The ``QueryEncoder`` (created on first use)."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    from zerorouter_integrations.encoder import QueryEncoder

                    self._encoder = QueryEncoder(**self._kwargs)
        return self._encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (one vector per text, in order)."""
        if not texts:
            return []
        return self.encoder.encode(list(texts)).astype(float).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self.encoder.encode([text])[0].astype(float).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of :meth:`embed_documents` (runs in a worker thread)."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of :meth:`embed_query`."""
        return await asyncio.to_thread(self.embed_query, text)
