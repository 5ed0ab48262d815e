"""The Ray engine of batch routing: Ray Data over an actor pool that holds the router and its encoder.

``ray.data.read_parquet(INPUT).map_batches(BatchRouter, concurrency=N, batch_size=B)`` runs
:class:`~zerorouter_integrations.batch.BatchRouter` in ``N`` actors (one encoder thread each, loaded
once per actor); results stream back in input order and are written into one Parquet file by the
driver, so neither side holds the whole data set. Without a running Ray instance a local one is
started with ``num_cpus=concurrency`` (and shut down afterwards). Needs the ``ray`` extra.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zerorouter_integrations.extras import need

__all__ = ["EmbedBatch", "import_ray", "route_parquet_ray", "table_features_ray"]


def import_ray() -> Any:
    """``ray`` (with Ray Data), or an ImportError that says how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError(
            "the Ray engine needs Ray Data: pip install 'zerorouter-integrations[ray]' (or 'ray[data]')"
        ) from exc
    return ray


def route_parquet_ray(
    src: Path,
    dst: Path,
    columns: list[str],
    fn_cls: type,
    fn_kwargs: Mapping[str, Any],
    write: Callable[[Path, Any], int],
    *,
    batch_size: int,
    concurrency: int,
) -> int:
    """Route ``src`` into ``dst`` with Ray Data; returns the number of rows written.

    ``fn_cls`` (:class:`~zerorouter_integrations.batch.BatchRouter`) is built in each actor with
    ``fn_kwargs``; ``write(dst, frames)`` writes the streamed output frames.
    """
    ray = import_ray()
    started = _init(ray, concurrency)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        # One block per batch (at least one per actor): a single-file input otherwise reads as one
        # block, which one actor would route alone while the others wait. Ray Data's newer Parquet
        # reader (2.5x) splits only at row-group boundaries and ignores override_num_blocks, so the
        # reader that splits its output is used where the switch exists.
        import pyarrow.parquet as pq

        if getattr(ctx, "use_datasource_v2", False):
            ctx.use_datasource_v2 = False

        n_rows = pq.ParquetFile(src).metadata.num_rows
        blocks = max(concurrency, -(-n_rows // batch_size))
        ds = ray.data.read_parquet(str(src), columns=columns, override_num_blocks=blocks)
        out = ds.map_batches(
            fn_cls,
            fn_constructor_kwargs={**dict(fn_kwargs), "num_threads": 1},
            batch_size=batch_size,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_cpus=actor_cpus(ray, concurrency),
        )
        return write(dst, out.iter_batches(batch_size=batch_size, batch_format="pandas"))
    finally:
        if started:
            ray.shutdown()


class EmbedBatch:
    """A Ray Data actor: embeddings of a batch's ``prompt`` column with one encoder per actor."""

    def __init__(self, encoder_settings: Mapping[str, Any]):
        from zerorouter_integrations.encoder import QueryEncoder

        self.encoder = QueryEncoder(
            **dict(encoder_settings), num_threads=1, cache_size=0, show_progress=False
        )

    def __call__(self, batch: Any) -> Any:
        emb = self.encoder.encode(batch["prompt"].tolist())
        return {"row": batch["row"].to_numpy(), "embedding": list(emb.astype("float32"))}


def actor_cpus(ray: Any, concurrency: int) -> float:
    """CPUs per actor: the actors hold theirs for the whole run, and Ray Data's list/read tasks need
    one whole CPU slot meanwhile, so the actors share the instance's CPUs minus one (0.5 each for 2
    actors on a 2-CPU instance; the encoder runs one thread per actor either way)."""
    total = float(ray.cluster_resources().get("CPU", concurrency + 1))
    return max(0.1, min(1.0, (total - 1.0) / concurrency))


def _init(ray: Any, concurrency: int) -> bool:
    if ray.is_initialized():
        return False
    ray.init(
        num_cpus=concurrency,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    return True


def table_features_ray(
    table: Any, *, concurrency: int = 2, encoder_settings: Mapping[str, Any] | None = None
) -> Any:
    """Features of every prompt of a routing table (table order), the encoder running on Ray actors.

    The same features as :func:`~zerorouter_integrations.evaluation.table_features` with the routing
    encoder (:data:`~zerorouter_integrations.encoder.ROUTING_ENCODER`): what ``zerorouter eval
    --engine ray`` passes to the evaluation, whose output contract does not change.
    """
    import numpy as np

    need("ray", "routing a batch with Ray")
    import pandas as pd

    from zerorouter_integrations.encoder import ROUTING_ENCODER
    from zerorouter_integrations.features import PromptFeaturizer

    ray = import_ray()
    started = _init(ray, concurrency)
    texts = table.texts()
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ds = ray.data.from_pandas(pd.DataFrame({"row": np.arange(len(texts)), "prompt": texts}))
        out = ds.map_batches(
            EmbedBatch,
            fn_constructor_kwargs={"encoder_settings": dict(encoder_settings or ROUTING_ENCODER)},
            batch_size=256,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_cpus=actor_cpus(ray, concurrency),
        )
        emb = np.zeros((len(texts), 0), dtype=np.float32)
        parts = list(out.iter_batches(batch_format="pandas", batch_size=4096))
        rows = np.concatenate([p["row"].to_numpy() for p in parts]) if parts else np.zeros(0, dtype=int)
        vecs = np.vstack([np.stack(p["embedding"].to_numpy()) for p in parts]) if parts else emb
        emb = np.empty_like(vecs)
        emb[rows] = vecs
    finally:
        if started:
            ray.shutdown()
    return PromptFeaturizer(None).transform(texts, emb)
