"""Reference routers used in evaluation, behind the same :class:`LatentSpace` interface.

* :class:`KNNSpace`: a model's predicted quality on a prompt is the (smoothed) mean score of its
  ``n_neighbors`` most similar scored prompts (cosine similarity of standardized features).
* :class:`LogisticSpace`: one L2-regularized logistic regression per model on the full features;
  a new model's regression is fit on its anchors with the pool's mean weights as the prior mean.

Neither has a shared low-dimensional space: their "coordinates" are the standardized features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zerorouter_integrations.latent.base import Ability, LatentSpace, check_is_fitted, validate_xy
from zerorouter_integrations.latent.irt import bayes_logistic
from zerorouter_integrations.special import expit

__all__ = ["KNNSpace", "LogisticSpace"]


class _StandardizedFeatures(LatentSpace):
    def _standardize_fit(self, X: np.ndarray) -> np.ndarray:
        self.x_mean_ = X.mean(axis=0)
        self.x_scale_ = X.std(axis=0) + 1e-8
        return (X - self.x_mean_) / self.x_scale_

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "x_mean_")
        X, _ = validate_xy(X)
        return (X - self.x_mean_) / self.x_scale_


class KNNSpace(_StandardizedFeatures):
    """k-nearest-neighbour quality estimate.

    Parameters
    ----------
    n_neighbors : int, default=10
    smoothing : float, default=1.0
        Pseudo-count toward the model's overall mean.
    """

    kind = "knn"

    def __init__(self, *, n_neighbors: int = 10, smoothing: float = 1.0):
        self.n_neighbors = n_neighbors
        self.smoothing = smoothing

    def fit(self, X: np.ndarray, Y: np.ndarray, models: Sequence[str]) -> KNNSpace:
        X, Y = validate_xy(X, Y, models)
        Z = self._standardize_fit(X)
        self.train_Z_ = Z
        self.models_ = list(models)
        self.abilities_ = {}
        for j, name in enumerate(self.models_):
            obs = ~np.isnan(Y[:, j])
            self.abilities_[name] = self.fit_ability(Z[obs], Y[obs, j])
        return self

    def fit_ability(self, Z: np.ndarray, y: np.ndarray) -> Ability:
        Z = np.asarray(Z, dtype=float)
        unit = Z / (np.linalg.norm(Z, axis=1, keepdims=True) + 1e-12)
        return Ability("knn", {"Z": unit, "y": np.asarray(y, dtype=float)}, n_obs=len(y))

    def predict(self, Z: np.ndarray, ability: Ability) -> tuple[np.ndarray, np.ndarray]:
        ref, y = ability.array("Z"), ability.array("y")
        overall = float(np.mean(y)) if len(y) else 0.5
        if len(y) == 0:
            return np.full(len(Z), overall), np.full(len(Z), 0.5)
        q = np.asarray(Z, dtype=float)
        q = q / (np.linalg.norm(q, axis=1, keepdims=True) + 1e-12)
        k = min(int(self.n_neighbors), len(y))
        sim = q @ ref.T
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        mean = (y[idx].sum(axis=1) + self.smoothing * overall) / (k + self.smoothing)
        return mean, np.sqrt(mean * (1 - mean) / (k + self.smoothing + 1.0))


class LogisticSpace(_StandardizedFeatures):
    """Per-model L2 logistic regression on the standardized features.

    Parameters
    ----------
    reg : float, default=30.0
        Prior precision (L2 penalty) of the weights; the bias is nearly unpenalized.
    """

    kind = "logreg"

    def __init__(self, *, reg: float = 30.0):
        self.reg = reg

    def fit(self, X: np.ndarray, Y: np.ndarray, models: Sequence[str]) -> LogisticSpace:
        X, Y = validate_xy(X, Y, models)
        Z = self._standardize_fit(X)
        self.train_Z_ = Z
        self.models_ = list(models)
        d = Z.shape[1]
        self.prior_mean_ = np.zeros(d + 1)
        self.abilities_ = {}
        for j, name in enumerate(self.models_):
            obs = ~np.isnan(Y[:, j])
            self.abilities_[name] = self.fit_ability(Z[obs], Y[obs, j])
        W = np.column_stack([a.array("w") for a in self.abilities_.values()])
        self.prior_mean_ = W.mean(axis=1)
        return self

    def fit_ability(self, Z: np.ndarray, y: np.ndarray) -> Ability:
        check_is_fitted(self, "prior_mean_")
        Z = np.asarray(Z, dtype=float)
        d = Z.shape[1]
        prec = np.diag(np.r_[np.full(d, float(self.reg)), 1e-2])
        Zb = np.column_stack([Z, np.ones(len(Z))])
        w, cov = bayes_logistic(Zb, np.asarray(y, dtype=float), self.prior_mean_, prec, max_iter=30)
        return Ability("logreg", {"w": w, "cov_diag": np.diag(cov)}, n_obs=len(y))

    def predict(self, Z: np.ndarray, ability: Ability) -> tuple[np.ndarray, np.ndarray]:
        w = ability.array("w")
        Zb = np.column_stack([Z, np.ones(len(Z))])
        mu = Zb @ w
        v = (Zb**2) @ ability.array("cov_diag")
        p = expit(mu / np.sqrt(1.0 + np.pi * v / 8.0))
        return p, p * (1 - p) * np.sqrt(v)
