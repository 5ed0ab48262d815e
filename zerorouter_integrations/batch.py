"""Offline batch routing: a Parquet file of prompts in, the router's choice per prompt out.

``INPUT.parquet`` has a ``prompt_id`` column and either ``prompt`` (text) or ``messages`` (a JSON
chat, or a list of ``{"role", "content"}``). ``OUT.parquet`` keeps ``prompt_id`` and adds ``model``
(the choice), ``predicted_quality``, ``predicted_cost_usd`` and ``policy`` (the policy used, as JSON).

The decision is the router's per-query policy over its whole pool (:meth:`Policy.choose
<zerorouter_integrations.policy.Policy.choose>` on the predicted quality and cost), with the
request's text as the key of a mixed calibration (as :meth:`ZeroRouter.route` keys it), so a row's
choice never depends on which rows share its batch or which worker ran it, and it is the choice
``route()`` makes for the same request. Offline there are no live request constraints (tools, context windows) or
observed latencies; this is the choice :meth:`ZeroRouter.route` makes for a plain text request with a
fresh store.

:class:`BatchRouter` is the one piece of work: a picklable callable on a pandas batch that loads the
router (and its encoder) once. The local engine (:func:`route_parquet` with ``engine="local"``)
streams the input through it in batches, writing as it goes, so memory stays flat; the Ray engine
(:mod:`zerorouter_integrations.batch_ray`) runs the same class as a Ray Data actor pool.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.extras import need

__all__ = ["OUTPUT_COLUMNS", "BatchRouter", "BatchStats", "batch_texts", "decide", "route_parquet"]

#: Columns of the output, in order.
OUTPUT_COLUMNS = ("prompt_id", "model", "predicted_quality", "predicted_cost_usd", "policy")
ENGINES = ("local", "ray")


def _router(artifact: Any, models: Sequence[str] | None, policy: Any, encoder: Any = None) -> Any:
    from zerorouter_integrations.artifact import RouterArtifact
    from zerorouter_integrations.router import ZeroRouter

    kwargs: dict[str, Any] = {"endpoints": {}, "policy": policy, "encoder": encoder}
    if models is not None:
        kwargs["models"] = list(models)
    if isinstance(artifact, ZeroRouter):
        return artifact
    if isinstance(artifact, RouterArtifact):
        return ZeroRouter(artifact, **kwargs)
    if artifact is None:
        return ZeroRouter.default(**kwargs)
    return ZeroRouter.load(artifact, **kwargs)


def policy_label(policy: Any) -> str:
    """The policy as compact JSON: its parameters and the calibrated ``λ`` (and mix)."""
    params = {k: v for k, v in policy.get_params().items() if v is not None}
    for key in ("lam_", "lam_alt_", "mix_"):
        v = getattr(policy, key, None)
        if v is not None:
            params[key.rstrip("_")] = float(v)
    return json.dumps(params, sort_keys=True, default=str)


def decide(
    router_or_artifact: Any,
    X: np.ndarray,
    tokens: np.ndarray,
    *,
    keys: Sequence[str],
    models: Sequence[str] | None = None,
    policy: Any = None,
) -> dict[str, Any]:
    """Choices for prompts with features ``X``: ``{"model", "predicted_quality", "predicted_cost_usd", "policy", "propensity"}``.

    ``propensity`` is the probability of each choice under the policy's mixed calibration, the side
    of the mix taken as random with probability ``mix`` (1 where both prices choose the same model,
    or without a mix): what a deployment logs for inverse-propensity estimates.

    ``router_or_artifact`` is a :class:`~zerorouter_integrations.router.ZeroRouter`, a
    :class:`~zerorouter_integrations.artifact.RouterArtifact`, an artifact path or ``None`` (the
    shipped default); ``models`` restricts the pool and ``policy`` replaces the default policy
    (both only when a router is built here).
    """
    router = _router(router_or_artifact, models, policy)
    pool = router.routable_models  # the pool the policy is calibrated on (price-unknown models are left out)
    pred = router.predictor.predict(X, input_tokens=tokens, models=pool)
    idx = router.policy.choose(pred.quality, pred.cost_usd, keys=list(keys))
    rows = np.arange(len(idx))
    return {
        "model": [pool[i] for i in idx],
        "predicted_quality": pred.quality[rows, idx],
        "predicted_cost_usd": pred.cost_usd[rows, idx],
        "policy": policy_label(router.policy),
        "propensity": _propensity(router.policy, pred.quality, pred.cost_usd, idx),
    }


def _propensity(policy: Any, Q: np.ndarray, C: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """P(choice ``idx``) per row under the policy's mix (1 for a policy without ``choice_probabilities``)."""
    probabilities = getattr(policy, "choice_probabilities", None)
    if probabilities is None:
        return np.ones(len(idx))
    return np.asarray(probabilities(Q, C))[np.arange(len(idx)), idx]


def batch_texts(batch: Any) -> list[str]:
    """Prompt texts of a pandas batch: ``prompt``, or ``messages`` (JSON text or a list of messages)
    read as the router reads a chat (:func:`~zerorouter_integrations.features.messages_to_text`)."""
    return [_request_text(r) for r in _batch_requests(batch)]


def _request_text(request: str | list[dict[str, Any]]) -> str:
    """The text :meth:`ZeroRouter.route` reads (and keys its calibrated mix by) for one request."""
    from zerorouter_integrations.features import messages_to_text

    return messages_to_text([{"role": "user", "content": request}] if isinstance(request, str) else request)


def _encoder_reading(request: str | list[dict[str, Any]]) -> str:
    """What the encoder reads of one request, as in :meth:`ZeroRouter.route`."""
    from zerorouter_integrations.features import request_reading
    from zerorouter_integrations.validation import encoder_messages

    msgs = [{"role": "user", "content": request}] if isinstance(request, str) else request
    return request_reading([dict(m) for m in encoder_messages(msgs)])


def _batch_requests(batch: Any) -> list[str | list[dict[str, Any]]]:
    """Each row's request: the ``prompt`` text, or the ``messages`` chat as a list of dicts."""
    if "prompt" in batch.columns:
        values = batch["prompt"].tolist()
        bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
        if bad is not None:
            raise SchemaError(
                f"column 'prompt' row {bad} (prompt_id {batch['prompt_id'].iloc[bad]!r}) holds "
                f"{values[bad]!r:.60}; expected text"
            )
        return list(values)
    if "messages" not in batch.columns:
        raise SchemaError(
            f"the input needs a 'prompt' (text) or 'messages' (JSON chat) column; found {list(batch.columns)}"
        )
    from zerorouter_integrations.features import split_turn

    out: list[str | list[dict[str, Any]]] = []
    for i, v in enumerate(batch["messages"].tolist()):
        try:
            msgs = json.loads(v) if isinstance(v, str) else v
            if hasattr(msgs, "tolist"):
                msgs = msgs.tolist()
            chat = [dict(m) for m in msgs]
            split_turn(chat)  # raises on a malformed message
            out.append(chat)
        except (TypeError, ValueError, AttributeError) as exc:
            raise SchemaError(
                f"column 'messages' row {i} (prompt_id {batch['prompt_id'].iloc[i]!r}) is not a chat "
                f"(a JSON list of {{'role', 'content'}} objects): {exc}"
            ) from None
    return out


class BatchRouter:
    """Route a pandas batch (``prompt_id`` + ``prompt``/``messages``) to the :data:`OUTPUT_COLUMNS`.

    Parameters
    ----------
    artifact : str, path or None
        Router artifact to load (``None``: the shipped default).
    models : sequence of str, optional
        Restrict the pool.
    policy : mapping, optional
        ``{"budget_usd_per_1k": x}`` or ``{"quality_target": q, "reference": name}``; default: the
        router's default policy.
    num_threads : int, optional
        Encoder threads (Ray actors use one each). Each thread runs its own single-threaded encoder
        session on a share of the batch (the shipped int8 encoder embeds one text per run, so one
        session with several intra-op threads leaves cores idle on such small runs); default: one
        per available core.
    """

    def __init__(
        self,
        artifact: str | Path | None = None,
        *,
        models: Sequence[str] | None = None,
        policy: Mapping[str, Any] | None = None,
        num_threads: int | None = None,
    ):
        self.artifact = None if artifact is None else str(artifact)
        self.models = None if models is None else list(models)
        self.policy = dict(policy) if policy else None
        self.num_threads = num_threads
        self._state: Any = None
        self._encoders: list[Any] = []

    def _load(self) -> Any:
        if self._state is None:
            from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
            from zerorouter_integrations.encoder import QueryEncoder
            from zerorouter_integrations.encoder_model import default_threads
            from zerorouter_integrations.policy import Policy

            art = RouterArtifact.load(self.artifact or DEFAULT_ARTIFACT)
            settings = {k: v for k, v in art.encoder.items() if k in ("max_seq_length", "precision")}
            n = self.num_threads or default_threads()
            self._encoders = [
                QueryEncoder(**settings, num_threads=1, cache_size=0, show_progress=False) for _ in range(n)
            ]
            encoder = self._encoders[0]
            pol = None
            if self.policy:
                pol = (
                    Policy.for_budget(self.policy["budget_usd_per_1k"])
                    if "budget_usd_per_1k" in self.policy
                    else Policy.for_quality_target(
                        self.policy["quality_target"], reference=self.policy.get("reference")
                    )
                )
            self._state = _router(art, self.models, pol, encoder)
        return self._state

    def __call__(self, batch: Any) -> Any:
        need("tables", "routing a Parquet batch")
        import pandas as pd

        from zerorouter_integrations.profiles import estimate_tokens

        router = self._load()
        if "prompt_id" not in batch.columns:
            raise SchemaError(f"the input needs a 'prompt_id' column; found {list(batch.columns)}")
        requests = _batch_requests(batch)
        texts = [_request_text(r) for r in requests]
        readings = [_encoder_reading(r) for r in requests]
        X = router.featurizer.transform(readings, self._embed(readings))
        tokens = np.array([estimate_tokens(t) for t in texts], dtype=float)
        out = decide(router, X, tokens, keys=texts)  # keyed like route(): by the request's text
        return pd.DataFrame(
            {
                "prompt_id": batch["prompt_id"].to_numpy(),
                "model": out["model"],
                "predicted_quality": out["predicted_quality"],
                "predicted_cost_usd": out["predicted_cost_usd"],
                "policy": [out["policy"]] * len(texts),
            },
            columns=list(OUTPUT_COLUMNS),
        )

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts``: each distinct text once, shares of them on the encoder threads."""
        uniq = list(dict.fromkeys(texts))
        encoders = self._encoders[: max(1, min(len(self._encoders), len(uniq) // 8))]
        if len(encoders) == 1:
            emb = encoders[0].encode(uniq)
        else:
            from concurrent.futures import ThreadPoolExecutor

            bounds = np.linspace(0, len(uniq), len(encoders) + 1).astype(int)
            with ThreadPoolExecutor(len(encoders)) as pool:
                parts = list(
                    pool.map(
                        lambda j: encoders[j].encode(uniq[bounds[j] : bounds[j + 1]]), range(len(encoders))
                    )
                )
            emb = np.vstack(parts)
        if len(uniq) == len(texts):
            return emb
        pos = {t: i for i, t in enumerate(uniq)}
        return emb[[pos[t] for t in texts]]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_state"] = None  # workers load their own router and encoders
        state["_encoders"] = []
        return state


@dataclass
class BatchStats:
    """What a batch run did: rows, seconds, rows per second, engine."""

    rows: int
    seconds: float
    engine: str
    out: Path

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def _input_columns(path: Path) -> list[str]:
    need("tables", "routing a Parquet batch (zerorouter route-batch)")
    import pyarrow.parquet as pq

    if not path.is_file():
        raise SchemaError(f"{path}: input file not found")
    try:
        names = pq.ParquetFile(path).schema_arrow.names
    except Exception as exc:
        raise SchemaError(f"{path}: cannot read as Parquet: {exc}") from exc
    if "prompt_id" not in names or not ({"prompt", "messages"} & set(names)):
        raise SchemaError(
            f"{path}: expected a 'prompt_id' column and a 'prompt' or 'messages' column; found {names}"
        )
    return ["prompt_id", "prompt" if "prompt" in names else "messages"]


def route_parquet(
    input_path: str | Path,
    out_path: str | Path,
    *,
    engine: str = "local",
    artifact: str | Path | None = None,
    models: Sequence[str] | None = None,
    policy: Mapping[str, Any] | None = None,
    batch_size: int = 1024,
    concurrency: int = 2,
    num_threads: int | None = None,
    show_progress: bool | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> BatchStats:
    """Route every row of ``input_path`` and write ``out_path`` (Parquet, written atomically).

    ``on_rows(n)`` (optional) is called with the number of rows written so far after each output
    batch, with either engine.

    ``engine="ray"`` needs the ``ray`` extra (``pip install 'zerorouter-integrations[ray]'``) and runs
    ``concurrency`` actors with one encoder thread each on the current (or a local) Ray instance.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size!r}")
    src, dst = Path(input_path), Path(out_path)
    columns = _input_columns(src)
    fn_kwargs: dict[str, Any] = {"artifact": artifact, "models": models, "policy": policy}
    t0 = time.perf_counter()
    write = functools.partial(write_batches, on_rows=on_rows)
    if engine == "ray":
        from zerorouter_integrations.batch_ray import route_parquet_ray

        rows = route_parquet_ray(
            src,
            dst,
            columns,
            BatchRouter,
            fn_kwargs,
            write,
            batch_size=batch_size,
            concurrency=concurrency,
        )
    else:
        fn = BatchRouter(**fn_kwargs, num_threads=num_threads)
        rows = _route_local(src, dst, columns, fn, batch_size, show_progress, write)
    return BatchStats(rows=rows, seconds=time.perf_counter() - t0, engine=engine, out=dst)


def write_batches(dst: Path, frames: Iterable[Any], on_rows: Callable[[int], None] | None = None) -> int:
    """Write an iterable of output frames into one Parquet file, atomically; returns the row count.

    ``on_rows(n)`` is called with the rows written so far after each frame.
    """
    import os
    import tempfile

    need("tables", "writing routed Parquet batches")
    import pyarrow as pa
    import pyarrow.parquet as pq

    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    rows, writer = 0, None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += len(frame)
            if on_rows is not None:
                on_rows(rows)
        if writer is None:
            import pandas as pd

            pq.write_table(pa.Table.from_pandas(pd.DataFrame(columns=list(OUTPUT_COLUMNS))), tmp)
        else:
            writer.close()
            writer = None
        os.replace(tmp, dst)
    finally:
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return rows


def _route_local(
    src: Path,
    dst: Path,
    columns: list[str],
    fn: BatchRouter,
    batch_size: int,
    show_progress: bool | None,
    write: Callable[[Path, Iterable[Any]], int],
) -> int:
    need("tables", "routing a Parquet batch (zerorouter route-batch)")
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    pf = pq.ParquetFile(src)
    bar = tqdm(total=pf.metadata.num_rows, desc="route-batch", unit="row", disable=show_progress is False)

    def frames():
        for rb in pf.iter_batches(batch_size=batch_size, columns=columns):
            out = fn(rb.to_pandas())
            bar.update(len(out))
            yield out

    try:
        return write(dst, frames())
    finally:
        bar.close()
