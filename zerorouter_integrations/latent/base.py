"""The one interface behind every latent space (ZeroRouter IRT, UniRoute clusters, kNN, logistic).

A latent space splits routing knowledge in two, which is what makes zero-shot onboarding possible:

* the **shared space**, learned once by :meth:`LatentSpace.fit` from the outcomes of many models:
  :meth:`transform` maps prompt features ``X`` (embedding + cheap text features) to latent
  coordinates ``Z``;
* one :class:`Ability` per model, a small object living in that space: :meth:`fit_ability` estimates
  it from ``(Z, y)`` pairs, e.g. ~100 scored anchor prompts of a model released today, *without*
  touching the space or any other model's ability; :meth:`predict` turns ``(Z, ability)`` into the
  probability of a good answer, with an uncertainty.

Everything is scikit-learn flavoured: the constructor stores parameters only, learned state ends in
``_``, ``fit`` returns ``self``, and every object pickles.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from zerorouter_integrations.errors import NotFittedError, SchemaError

__all__ = ["Ability", "LatentSpace", "check_is_fitted", "greedy_kcenter", "validate_xy"]


@dataclass
class Ability:
    """A model's position in a latent space.

    Attributes
    ----------
    kind : str
        The latent space family that understands ``params`` (``"irt"``, ``"clusters"``, ...).
    params : dict
        Plain-JSON parameters (lists of floats); see each space.
    n_obs : int
        How many scored prompts the ability was estimated from.
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    n_obs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": _jsonable(self.params), "n_obs": int(self.n_obs)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ability:
        try:
            return cls(kind=str(data["kind"]), params=dict(data["params"]), n_obs=int(data.get("n_obs", 0)))
        except (KeyError, TypeError) as exc:
            raise SchemaError(f"ability: expected keys 'kind' and 'params', got {data!r:.120}") from exc

    def array(self, key: str) -> np.ndarray:
        """``params[key]`` as a float array (converted once and kept, so hot paths pay nothing)."""
        value = self.params[key]
        if not (isinstance(value, np.ndarray) and value.dtype == np.float64):
            value = np.asarray(value, dtype=float)
            self.params[key] = value
        return value


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def check_is_fitted(estimator: Any, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has the learned ``attribute``."""
    if getattr(estimator, attribute, None) is None:
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call fit(X, Y, models) before using it"
        )


@overload
def validate_xy(
    X: np.ndarray, Y: None = None, models: Sequence[str] | None = None
) -> tuple[np.ndarray, None]: ...


@overload
def validate_xy(
    X: np.ndarray, Y: np.ndarray, models: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]: ...


def validate_xy(
    X: np.ndarray, Y: np.ndarray | None = None, models: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check shapes and ranges of features ``X`` (n × d) and scores ``Y`` (n × m, NaN = unobserved)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_prompts × n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise ValueError(f"X has a non-finite value at row {row}; features must be finite")
    if Y is None:
        return X, None
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"Y must be (n_prompts × n_models) with n_prompts={X.shape[0]}, got shape {Y.shape}")
    if models is not None and len(models) != Y.shape[1]:
        raise ValueError(f"got {len(models)} model names for {Y.shape[1]} columns of Y")
    obs = ~np.isnan(Y)
    if ((Y[obs] < 0) | (Y[obs] > 1)).any():
        raise ValueError("Y must hold scores in [0, 1] (NaN where unobserved)")
    empty = np.flatnonzero(obs.sum(axis=0) == 0)
    if empty.size:
        name = models[empty[0]] if models is not None else f"column {empty[0]}"
        raise ValueError(f"model {name!r} has no observed score; drop it before fitting")
    return X, Y


class LatentSpace(ABC):
    """Base class: shared latent space + per-model abilities (see the module docstring)."""

    kind: str = "base"

    # -- learned state common to all spaces
    models_: list[str] | None = None
    abilities_: dict[str, Ability] | None = None

    @abstractmethod
    def fit(self, X: np.ndarray, Y: np.ndarray, models: Sequence[str]) -> LatentSpace:
        """Learn the shared space and the abilities of ``models`` from features and a sparse score matrix."""

    @abstractmethod
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Latent coordinates of prompts with features ``X`` (no model runs needed)."""

    def training_coordinates(self) -> np.ndarray:
        """Latent coordinates of the training prompts as the space knows them (default: ``transform``)."""
        check_is_fitted(self, "train_Z_")
        return self.train_Z_  # type: ignore[attr-defined]

    @abstractmethod
    def fit_ability(self, Z: np.ndarray, y: np.ndarray) -> Ability:
        """Estimate one model's ability from its scores ``y`` on prompts at coordinates ``Z``.

        Pure: reads the fitted space, never changes it or any other ability.
        """

    @abstractmethod
    def predict(self, Z: np.ndarray, ability: Ability) -> tuple[np.ndarray, np.ndarray]:
        """Predicted P(good answer) and its standard deviation for prompts at ``Z``."""

    # ---------------------------------------------------------------- conveniences
    def predict_matrix(self, Z: np.ndarray, abilities: Sequence[Ability]) -> tuple[np.ndarray, np.ndarray]:
        """(n × m) mean and sd for a list of abilities."""
        return self.predict_stacked(Z, self.stack_abilities(abilities))

    def stack_abilities(self, abilities: Sequence[Ability]) -> Any:
        """The abilities of a pool in the form :meth:`predict_stacked` reads.

        Callers that score many prompts against the same pool (the predictor) build this once and
        reuse it; spaces override it with stacked arrays (default: the list itself).
        """
        return list(abilities)

    def predict_stacked(self, Z: np.ndarray, stacked: Any) -> tuple[np.ndarray, np.ndarray]:
        """(n × m) mean and sd for abilities prepared by :meth:`stack_abilities`."""
        means, sds = zip(*(self.predict(Z, a) for a in stacked)) if stacked else ((), ())
        n = Z.shape[0]
        return (
            np.column_stack(means) if means else np.zeros((n, 0)),
            np.column_stack(sds) if sds else np.zeros((n, 0)),
        )

    def select_anchors(self, Z: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
        """Indices of ``k`` informative anchor prompts among candidates at coordinates ``Z``.

        Default: greedy k-center (farthest-point) cover of the latent space, which spreads anchors over
        every region (cluster-stratified and difficulty-spread at once). Spaces may override it.
        """
        return greedy_kcenter(Z, k, seed=seed)


def greedy_kcenter(Z: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Farthest-point sampling: ``k`` row indices of ``Z`` that cover it (deterministic in ``seed``)."""
    Z = np.asarray(Z, dtype=float)
    n = Z.shape[0]
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    center = Z.mean(axis=0)
    first = int(np.argmin(((Z - center) ** 2).sum(axis=1) + 1e-9 * rng.random(n)))
    chosen = [first]
    dist = ((Z - Z[first]) ** 2).sum(axis=1)
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, ((Z - Z[nxt]) ** 2).sum(axis=1))
    return np.asarray(chosen)
