"""The quality predictor: a fitted latent space plus one profile per model.

:class:`QualityPredictor` is the routing core without I/O: given prompt features it returns, for
every model of the pool, the predicted probability of a good answer (with uncertainty) and the
expected cost. It is what the shipped default artifact contains and what evaluation fits per split.

Flow: ``X`` (features) → :meth:`LatentSpace.transform` → ``Z`` → ``predict(Z, ability)`` per model;
cost from each profile's :class:`~zerorouter_integrations.profiles.CostModel`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zerorouter_integrations.errors import UnknownModelError
from zerorouter_integrations.latent.base import LatentSpace, check_is_fitted
from zerorouter_integrations.profiles import (
    CostModel,
    ModelProfile,
    ProfileDict,
    kneed_line_cost,
    profiles_version,
)

__all__ = ["Prediction", "QualityPredictor", "fit_cost"]


@dataclass
class Prediction:
    """Per-prompt, per-model predictions (arrays of shape n_prompts × n_models)."""

    models: list[str]
    quality: np.ndarray
    quality_sd: np.ndarray
    cost_usd: np.ndarray

    def row(self, i: int) -> Prediction:
        return Prediction(
            self.models, self.quality[i : i + 1], self.quality_sd[i : i + 1], self.cost_usd[i : i + 1]
        )


class QualityPredictor:
    """Latent space + model profiles.

    Parameters
    ----------
    space : LatentSpace
        An unfitted latent space (e.g. :class:`~zerorouter_integrations.latent.irt.IRTSpace`).

    Attributes
    ----------
    space_ : LatentSpace
        The fitted space (a deep copy of ``space``).
    profiles_ : dict of str to ModelProfile
        The pool, in insertion order.
    score_type_ : str or None
        What the outcomes it was fit on are (``"binary"``, ``"partial"``, ``"continuous"`` or
        ``"mixed"``), where known: a loaded artifact records it (``build["score_type"]``).
    """

    score_type_: str | None = None

    def __init__(self, space: LatentSpace):
        self.space = space

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        models: Sequence[str],
        *,
        costs: np.ndarray | None = None,
        input_tokens: np.ndarray | None = None,
        prices: Mapping[str, tuple[float | None, float | None]] | None = None,
    ) -> QualityPredictor:
        """Fit the space on ``X`` / ``Y`` and build a profile for each model.

        ``costs`` (n × m, NaN where unknown) and ``input_tokens`` (n,) fit each model's cost model;
        where a model has no observed cost its list ``prices`` are used with 200 expected output tokens.
        """
        models = list(models)
        obs = ~np.isnan(np.asarray(Y, dtype=float))
        keep = [j for j in range(len(models)) if obs[:, j].any()]
        self.space_ = copy.deepcopy(self.space).fit(
            X, np.asarray(Y, dtype=float)[:, keep], [models[j] for j in keep]
        )
        self.profiles_ = ProfileDict()
        for j in keep:
            name = models[j]
            cost = fit_cost(
                costs[:, j] if costs is not None else None, input_tokens, (prices or {}).get(name)
            )
            pin, pout = (prices or {}).get(name, (None, None))
            self.profiles_[name] = ModelProfile(
                name=name,
                ability=self.space_.abilities_[name],  # type: ignore[index]  # set by fit
                cost=cost,
                input_usd_per_token=pin,
                output_usd_per_token=pout,
                source="fit",
            )
        return self

    # ------------------------------------------------------------------ onboarding
    def onboard(
        self,
        name: str,
        Z: np.ndarray,
        scores: np.ndarray,
        *,
        costs: np.ndarray | None = None,
        input_tokens: np.ndarray | None = None,
        prices: tuple[float | None, float | None] | None = None,
        **profile_fields,
    ) -> ModelProfile:
        """A new model's profile from its scores on anchor prompts at latent coordinates ``Z``.

        Pure with respect to the space and the other profiles: only the returned profile is new, and
        it is added to ``profiles_`` (replacing a profile of the same name).
        """
        check_is_fitted(self, "space_")
        ability = self.space_.fit_ability(np.asarray(Z, dtype=float), np.asarray(scores, dtype=float))
        cost = fit_cost(costs, input_tokens, prices)
        pin, pout = prices if prices is not None else (None, None)
        profile = ModelProfile(
            name=name,
            ability=ability,
            cost=cost,
            input_usd_per_token=pin,
            output_usd_per_token=pout,
            source=f"onboard:{len(scores)} anchors",
            **profile_fields,
        )
        self.profiles_[name] = profile
        return profile

    # ------------------------------------------------------------------ predict
    @property
    def models(self) -> list[str]:
        check_is_fitted(self, "profiles_")
        return list(self.profiles_)

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "space_")
        return self.space_.transform(X)

    def predict(
        self,
        X: np.ndarray | None = None,
        *,
        Z: np.ndarray | None = None,
        input_tokens: np.ndarray | None = None,
        models: Sequence[str] | None = None,
    ) -> Prediction:
        """Predicted quality, its sd, and expected cost for prompts given by features ``X`` or coordinates ``Z``.

        The pool's abilities and cost models are stacked once and reused until a profile, its
        ability or its cost model is replaced (treat abilities as immutable: replace, don't edit).
        """
        check_is_fitted(self, "profiles_")
        if Z is None:
            if X is None:
                raise ValueError("predict needs features X or latent coordinates Z")
            Z = self.space_.transform(X)
        pool = self._pool()
        if models is None:
            names, stacked = pool.names, pool.stacked
            intercept, per_token, knee, tail = pool.intercept, pool.per_token, pool.knee, pool.tail
        else:
            last = pool.last
            if last is not None and models == last[0]:  # the same models as the previous call
                names, stacked, intercept, per_token, knee, tail = last[1]
            else:
                hit = pool.subset(self.space_, models, self.models)
                pool.last = (list(models), hit)
                names, stacked, intercept, per_token, knee, tail = hit
        q, sd = self.space_.predict_stacked(Z, stacked)
        if input_tokens is None:
            cost = np.broadcast_to(intercept, (len(Z), len(names))).copy()
        else:
            tokens = np.asarray(input_tokens, dtype=float).reshape(-1, 1)
            # past the longest fitted prompt (the knee), at least the list input price per token
            cost = kneed_line_cost(tokens, intercept, per_token, knee, tail)
        return Prediction(list(names), q, sd, cost)

    def _pool(self) -> _StackedPool:
        """The current pool stacked for prediction (rebuilt when a profile, ability or cost model changes)."""
        profiles = self.profiles_
        version: Any = profiles_version()
        if (
            type(profiles) is not ProfileDict
        ):  # a plain dict set by a caller: its membership is part of the key
            version = (version, tuple(profiles), tuple(map(id, profiles.values())))
        cached = self.__dict__.get("_pool_cache")
        if (
            cached is None
            or cached.version != version
            or cached.pool is not profiles
            or cached.space is not self.space_
        ):
            cached = _StackedPool.build(version, profiles, self.space_)
            self.__dict__["_pool_cache"] = cached
        return cached

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_pool_cache", None)
        return state


@dataclass
class _StackedPool:
    """A pool's abilities and cost models stacked once for vectorized prediction.

    Valid while :func:`~zerorouter_integrations.profiles.profiles_version` equals ``version`` and the
    predictor still holds the same ``pool`` dict and space.
    """

    version: Any
    pool: dict
    space: LatentSpace
    profiles: list[ModelProfile]
    names: tuple[str, ...]
    stacked: object
    intercept: np.ndarray
    per_token: np.ndarray
    knee: np.ndarray  # input tokens past which ``tail`` is added per token (inf: no knee)
    tail: np.ndarray
    subsets: dict
    last: tuple | None = None  # (models list, subset) of the previous call: routers ask for one pool

    @classmethod
    def build(cls, version: Any, pool: dict, space: LatentSpace) -> _StackedPool:
        profiles = list(pool.values())
        return cls(
            version=version,
            pool=pool,
            space=space,
            profiles=profiles,
            names=tuple(pool),
            stacked=space.stack_abilities([p.ability for p in profiles]),
            intercept=np.array([p.cost.intercept_usd for p in profiles], dtype=float),
            per_token=np.array([p.cost.per_input_token_usd for p in profiles], dtype=float),
            knee=np.array(
                [np.inf if p.cost.knee_input_tokens is None else p.cost.knee_input_tokens for p in profiles],
                dtype=float,
            ),
            tail=np.array([p.cost.tail_per_input_token_usd for p in profiles], dtype=float),
            subsets={},
        )

    def subset(
        self, space: LatentSpace, models: Sequence[str], known: Sequence[str]
    ) -> tuple[tuple[str, ...], object, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Names, stacked abilities and cost arrays of ``models`` (cached per distinct subset)."""
        names = tuple(models)
        hit = self.subsets.get(names)
        if hit is None:
            index = {n: i for i, n in enumerate(self.names)}
            for n in names:
                if n not in index:
                    raise UnknownModelError(n, list(known))
            idx = [index[n] for n in names]
            hit = (
                names,
                space.stack_abilities([self.profiles[i].ability for i in idx]),
                self.intercept[idx],
                self.per_token[idx],
                self.knee[idx],
                self.tail[idx],
            )
            if len(self.subsets) >= 64:  # bounded: callers with ever-changing subsets do not grow it
                self.subsets.clear()
            self.subsets[names] = hit
        return hit


def fit_cost(
    costs: np.ndarray | None,
    input_tokens: np.ndarray | None,
    prices: tuple[float | None, float | None] | None,
) -> CostModel:
    """A model's cost model: fitted on observed ``costs`` per call against ``input_tokens`` when given
    (its slope at least the list input price when that is known), else from its ``(input, output)``
    USD-per-token ``prices``, else an empty one."""
    if costs is not None and input_tokens is not None:
        c = np.asarray(costs, dtype=float)
        ok = ~np.isnan(c)
        if ok.any():
            floor = prices[0] if prices is not None and prices[0] is not None else 0.0
            return CostModel.fit(
                np.asarray(input_tokens, dtype=float)[ok], c[ok], min_per_input_token_usd=floor
            )
    if prices is not None and prices[0] is not None and prices[1] is not None:
        return CostModel.from_prices(prices[0], prices[1], expected_output_tokens=200.0)
    return CostModel()
