"""What a router sees during offline evaluation (:class:`EvalContext`), and fitting it as a router would
be fit (:func:`fit_and_onboard`: the space on the known models' training outcomes, then every new model
onboarded from anchors)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zerorouter_integrations.latent.base import LatentSpace
from zerorouter_integrations.predictor import QualityPredictor
from zerorouter_integrations.tables import RoutingTable

__all__ = ["EvalContext", "fit_and_onboard"]


@dataclass
class EvalContext:
    """What a router sees during evaluation (training part and the new models' anchor access)."""

    table: RoutingTable
    features: np.ndarray
    train_idx: np.ndarray
    eval_idx: np.ndarray
    models: list[str]
    known: list[str]
    new_models: list[str]
    pool: list[str]
    S_all: np.ndarray
    C_all: np.ndarray
    tokens_all: np.ndarray
    prices: dict[str, tuple[float | None, float | None]]
    anchors: int
    seed: int


def fit_and_onboard(
    ctx: EvalContext, space: LatentSpace, *, anchors: int | None = None, anchor_seed: int | None = None
) -> QualityPredictor:
    """Fit ``space`` on the known models' training outcomes, pick anchors, onboard every other pool model."""
    known_cols = np.asarray([ctx.models.index(m) for m in ctx.known], dtype=int)
    tr = ctx.train_idx
    pred = QualityPredictor(space).fit(
        ctx.features[tr],
        ctx.S_all[np.ix_(tr, known_cols)],
        ctx.known,
        costs=ctx.C_all[np.ix_(tr, known_cols)],
        input_tokens=ctx.tokens_all[tr],
        prices=ctx.prices,
    )
    to_onboard = [m for m in ctx.pool if m not in pred.profiles_]
    if to_onboard:
        k = ctx.anchors if anchors is None else anchors
        Z_train = pred.space_.training_coordinates()
        chosen = pred.space_.select_anchors(Z_train, k, seed=ctx.seed if anchor_seed is None else anchor_seed)
        anchor_rows = tr[chosen]
        Z_anchor = Z_train[chosen]
        for name in to_onboard:
            j = ctx.models.index(name)
            y = ctx.S_all[anchor_rows, j]
            ok = ~np.isnan(y)
            pred.onboard(
                name,
                Z_anchor[ok],
                y[ok],
                costs=ctx.C_all[anchor_rows, j][ok],
                input_tokens=ctx.tokens_all[anchor_rows][ok],
                prices=ctx.prices.get(name),
            )
    return pred
