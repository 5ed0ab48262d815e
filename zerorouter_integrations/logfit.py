"""Refine a router artifact (the shipped prior, or any ``zerorouter fit`` output) with your own traffic.

Logged traffic shows one model per prompt, with a score on some calls (feedback, a judge, or
``record_quality``). :func:`refine_artifact` updates, in the prior's own latent space (IRT):

1. **the prompt-to-latent map**: ``θ̂(x) = W x̃ + c`` moves to ``(W + ΔW) x̃ + (c + Δc)``, where
   ``(ΔW, Δc)`` minimizes the logged calls' cross-entropy under the prior abilities plus the ridge
   penalty ``λ_W/2 ‖ΔW‖² + λ_c/2 ‖Δc‖²`` (convex, L-BFGS). ``λ = ∞`` keeps that part; ``λ_W = ∞``
   with a finite ``λ_c`` only shifts the coordinates;
2. **the abilities**: each logged model's ability is a Bayesian logistic update of the prior's
   posterior ``N(w, κ Σ)`` with its scored calls at their new coordinates, as
   :meth:`ZeroRouter.record_quality` does for one call, with the prior's covariance widened by
   ``κ ≥ 1`` (a power prior: benchmark data count for less than your own traffic). A logged model the
   prior does not know is onboarded from its scored calls (population prior of the space);
3. **cost models** from the logged costs (all calls, scored or not) and the expected output tokens.

``(λ_W, λ_c)`` and ``κ`` are chosen by 5-fold cross-validated log loss of the scored calls (grids
:data:`MAP_PENALTIES` × :data:`PRIOR_WIDENING`), folds by a stable hash of the call id; the grids
include "no change" (``λ = ∞``, ``κ = 1``), so the refined router falls back to the prior when the
logs carry no signal. The policy-calibration prompts become a sample of your logged prompts, so
budgets and quality targets are calibrated on your own traffic.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zerorouter_integrations.artifact import RouterArtifact
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.extras import need
from zerorouter_integrations.latent.base import Ability
from zerorouter_integrations.profiles import CostModel, estimate_tokens
from zerorouter_integrations.special import expit

__all__ = ["MAP_PENALTIES", "PRIOR_WIDENING", "Observations", "RefitInfo", "refine_artifact", "stable_fold"]

#: Ridge penalties ``(λ_W, λ_c)`` of the map update tried by cross-validation (``inf`` keeps that
#: part): no change; a shift of the coordinates only (your traffic is easier or harder along the
#: latent directions than the benchmarks); the whole linear map.
MAP_PENALTIES = ((math.inf, math.inf), (math.inf, 0.1), (math.inf, 0.01), (1.0, 0.01), (0.1, 0.01))
#: Widening factors κ of the prior abilities' covariance tried by cross-validation (1 = plain Bayes).
PRIOR_WIDENING = (1.0, 4.0, 16.0)


def stable_fold(key: str, n_folds: int, seed: int = 0) -> int:
    """A fold in ``range(n_folds)`` from a stable hash of ``key`` (independent of order and batch)."""
    h = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % n_folds


@dataclass
class Observations:
    """Scored calls in feature space: ``X`` (n × d features), model index per row, score in [0, 1]."""

    ids: list[str]
    X: np.ndarray
    models: list[str]
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx: np.ndarray) -> Observations:
        return Observations(
            [self.ids[i] for i in idx], self.X[idx], [self.models[i] for i in idx], self.y[idx]
        )


@dataclass
class RefitInfo:
    """What :func:`refine_artifact` chose and why (the cross-validation table)."""

    map_penalty: tuple[float, float]
    prior_widening: float
    cv_log_loss: dict[str, float] = field(default_factory=dict)
    n_observations: int = 0
    updated_models: dict[str, int] = field(default_factory=dict)
    onboarded_models: list[str] = field(default_factory=list)
    cost_models: dict[str, int] = field(default_factory=dict)
    skipped_models: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "map_penalty": [None if math.isinf(v) else v for v in self.map_penalty],
            "prior_widening": self.prior_widening,
            "cv_log_loss": dict(self.cv_log_loss),
            "n_observations": self.n_observations,
            "updated_models": dict(self.updated_models),
            "onboarded_models": list(self.onboarded_models),
            "cost_models": dict(self.cost_models),
            "skipped_models": dict(self.skipped_models),
        }


def _check_irt(artifact: RouterArtifact) -> Any:
    space = artifact.predictor.space_
    if space.kind != "irt":
        raise SchemaError(
            f"learning from logs needs an IRT (zerorouter) artifact, not a {space.kind!r} space"
        )
    return space


class _MapProblem:
    """The logged calls in the form the map and ability updates read (prior abilities fixed)."""

    def __init__(self, space: Any, obs: Observations, abilities: Mapping[str, Ability]):
        k = space.n_dims
        self.k = k
        self.Xs = (obs.X - space.x_mean_) / space.x_scale_
        self.Z0 = space.transform(obs.X)
        self.y = obs.y.astype(float)
        W = np.stack([abilities[m].array("w") for m in obs.models])  # (n, k + K + 1)
        self.A = W[:, :k]
        self.base = np.einsum("ij,ij->i", self.Z0, W[:, :-1]) + W[:, -1]

    def solve(self, lam: tuple[float, float], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ΔW, Δc)`` on the given rows for penalties ``lam = (λ_W, λ_c)`` (``inf`` keeps that part)."""
        d, k = self.Xs.shape[1], self.k
        lam_w, lam_c = lam
        if (math.isinf(lam_w) and math.isinf(lam_c)) or len(rows) == 0:
            return np.zeros((d, k)), np.zeros(k)
        need("fit", "fit_from_logs")
        from scipy.optimize import minimize

        Xs, A, base, y = self.Xs[rows], self.A[rows], self.base[rows], self.y[rows]
        n = len(rows)
        nw = 0 if math.isinf(lam_w) else d * k
        pen = np.r_[
            np.full(nw, 0.0 if math.isinf(lam_w) else lam_w), np.full(k, 0.0 if math.isinf(lam_c) else lam_c)
        ]
        free = np.r_[np.ones(nw), np.full(k, 0.0 if math.isinf(lam_c) else 1.0)]

        def fg(v: np.ndarray) -> tuple[float, np.ndarray]:
            v = v * free
            dc = v[nw:]
            shift = (Xs @ v[:nw].reshape(d, k) if nw else 0.0) + dc  # (n, k)
            s = base + np.einsum("ij,ij->i", np.broadcast_to(shift, A.shape), A)
            loss = np.sum(np.logaddexp(0.0, s) - y * s) / n + 0.5 * float(pen @ (v * v))
            r = (expit(s) - y) / n
            g_shift = r[:, None] * A
            g = np.concatenate([(Xs.T @ g_shift).ravel() if nw else np.zeros(0), g_shift.sum(axis=0)])
            return float(loss), (g + pen * v) * free

        opt = minimize(fg, np.zeros(nw + k), jac=True, method="L-BFGS-B", options={"maxiter": 200})
        x = opt.x * free
        dW = x[:nw].reshape(d, k) if nw else np.zeros((d, k))
        return dW, x[nw:]

    def coordinates(self, dW: np.ndarray, dc: np.ndarray, rows: np.ndarray) -> np.ndarray:
        Z = self.Z0[rows].copy()
        Z[:, : self.k] += self.Xs[rows] @ dW + dc
        return Z


def _update(ability: Ability, Z: np.ndarray, y: np.ndarray, widen: float) -> Ability:
    from zerorouter_integrations.latent.irt import bayes_logistic

    w, cov = ability.array("w"), ability.array("cov") * widen
    Zb = np.column_stack([Z, np.ones(len(Z))])
    w_new, cov_new = bayes_logistic(Zb, y, w, np.linalg.inv(cov))
    return Ability(ability.kind, {**ability.params, "w": w_new, "cov": cov_new}, n_obs=ability.n_obs + len(y))


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _fit_rows(
    prob: _MapProblem,
    obs: Observations,
    abilities: Mapping[str, Ability],
    rows: np.ndarray,
    lam: tuple[float, float],
    widen: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, Ability]]:
    dW, dc = prob.solve(lam, rows)
    Z = prob.coordinates(dW, dc, rows)
    models = np.array([obs.models[i] for i in rows])
    new = {}
    for m in dict.fromkeys(models.tolist()):
        sel = models == m
        new[m] = _update(abilities[m], Z[sel], prob.y[rows][sel], widen)
    return dW, dc, new


def _predict_rows(
    prob: _MapProblem, obs: Observations, abilities: Mapping[str, Ability], rows: np.ndarray, dW, dc
) -> np.ndarray:
    Z = prob.coordinates(dW, dc, rows)
    W = np.stack([abilities[obs.models[i]].array("w") for i in rows])
    return expit(np.einsum("ij,ij->i", Z, W[:, :-1]) + W[:, -1])


def choose_by_cv(
    space: Any,
    obs: Observations,
    abilities: Mapping[str, Ability],
    *,
    penalties: Sequence[tuple[float, float]] = MAP_PENALTIES,
    widening: Sequence[float] = PRIOR_WIDENING,
    n_folds: int = 5,
    seed: int = 0,
) -> tuple[tuple[float, float], float, dict[str, float]]:
    """``((λ_W, λ_c), κ, table)``: the grid point of least cross-validated log loss (ties: the smaller change)."""
    prob = _MapProblem(space, obs, abilities)
    folds = np.array([stable_fold(i, n_folds, seed) for i in obs.ids])
    table: dict[str, float] = {}
    best: tuple[float, tuple[float, float], float] = (math.inf, (math.inf, math.inf), 1.0)
    for lam in penalties:
        for widen in widening:
            losses = []
            for f in range(n_folds):
                tr, va = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
                if len(va) == 0 or len(tr) == 0:
                    continue
                dW, dc, fitted = _fit_rows(prob, obs, abilities, tr, lam, widen)
                merged = {**abilities, **fitted}
                losses.append(_log_loss(_predict_rows(prob, obs, merged, va, dW, dc), prob.y[va]) * len(va))
            loss = float(np.sum(losses) / len(obs))
            lam_s = ",".join("inf" if math.isinf(v) else f"{v:g}" for v in lam)
            table[f"lambda=({lam_s}),kappa={widen:g}"] = loss
            if loss < best[0] - 1e-9:
                best = (loss, lam, widen)
    return best[1], best[2], table


def refine_artifact(
    artifact: RouterArtifact,
    obs: Observations,
    *,
    costs: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    output_tokens: Mapping[str, float] | None = None,
    calibration_texts: Sequence[str] = (),
    featurizer: Any = None,
    min_onboard: int = 10,
    min_cost_calls: int = 10,
    penalties: Sequence[tuple[float, float]] = MAP_PENALTIES,
    widening: Sequence[float] = PRIOR_WIDENING,
    seed: int = 0,
    build_info: Mapping[str, Any] | None = None,
) -> tuple[RouterArtifact, RefitInfo]:
    """A refined copy of ``artifact`` (the input is not changed) and what was chosen.

    ``obs`` holds the scored calls (features from the artifact's own featurizer). ``costs`` maps a
    model to ``(input_tokens, cost_usd)`` of its logged calls; ``calibration_texts`` (logged prompts)
    replace the policy-calibration prompts, and the anchors' coordinates follow a changed map
    (``featurizer`` encodes both).
    """
    space0 = _check_irt(artifact)
    new = copy.deepcopy(artifact)
    pred = new.predictor
    space = pred.space_
    info = RefitInfo(map_penalty=(math.inf, math.inf), prior_widening=1.0, n_observations=len(obs))
    if len(obs):
        if obs.y.min() < 0 or obs.y.max() > 1 or np.isnan(obs.y).any():
            raise ValueError("observation scores must be in [0, 1]")
        known = [i for i, m in enumerate(obs.models) if m in pred.profiles_]
        unknown = sorted({m for m in obs.models if m not in pred.profiles_})
        kobs = obs.take(np.asarray(known, dtype=int))
        abilities = {m: p.ability for m, p in pred.profiles_.items()}
        if len(kobs) >= 10:
            lam, widen, info.cv_log_loss = choose_by_cv(
                space0, kobs, abilities, penalties=penalties, widening=widening, seed=seed
            )
        else:
            lam, widen = (math.inf, math.inf), 1.0
        info.map_penalty, info.prior_widening = lam, widen
        if len(kobs):
            prob = _MapProblem(space0, kobs, abilities)
            rows = np.arange(len(kobs))
            dW, dc, fitted = _fit_rows(prob, kobs, abilities, rows, lam, widen)
            if not (math.isinf(lam[0]) and math.isinf(lam[1])):
                space.W_ = space0.W_ + dW  # type: ignore[attr-defined]  # an IRT space (checked above)
                space.c_ = space0.c_ + dc  # type: ignore[attr-defined]
            for m, ab in fitted.items():
                pred.profiles_[m].ability = ab
                pred.profiles_[m].source = f"{pred.profiles_[m].source}+logs"
                info.updated_models[m] = int(sum(1 for x in kobs.models if x == m))
        for m in unknown:
            rows = np.flatnonzero(np.array(obs.models) == m)
            if len(rows) < min_onboard:
                info.skipped_models[m] = f"{len(rows)} scored calls; onboarding needs {min_onboard}"
                continue
            Z = space.transform(obs.X[rows])
            pred.onboard(m, Z, obs.y[rows])
            pred.profiles_[m].source = f"logs:{len(rows)} calls"
            info.onboarded_models.append(m)
    for m, (toks, cst) in (costs or {}).items():
        t, c = np.asarray(toks, dtype=float), np.asarray(cst, dtype=float)
        ok = ~(np.isnan(t) | np.isnan(c))
        if m in pred.profiles_ and ok.sum() >= min_cost_calls:
            pred.profiles_[m].cost = CostModel.fit(t[ok], c[ok])
            info.cost_models[m] = int(ok.sum())
    for m, eo in (output_tokens or {}).items():
        if m in pred.profiles_ and eo is not None and np.isfinite(eo):
            pred.profiles_[m].expected_output_tokens = float(eo)
    _recalibrate(new, space, calibration_texts, featurizer, seed)
    new.build = {**artifact.build, "refined_from_logs": {**info.to_dict(), **dict(build_info or {})}}
    return new, info


def _recalibrate(
    artifact: RouterArtifact, space: Any, texts: Sequence[str], featurizer: Any, seed: int
) -> None:
    """Calibration prompts from the logs; anchor coordinates under the (possibly) new map."""
    pred = artifact.predictor
    if featurizer is not None and artifact.anchors is not None and len(artifact.anchors):
        artifact.anchors.Z = space.transform(featurizer.transform(artifact.anchors.texts))
    if featurizer is not None and len(texts) >= 50:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(texts), size=min(600, len(texts)), replace=False))
        chosen = [texts[i] for i in pick]
        artifact.calibration_Z = space.transform(featurizer.transform(chosen))
        artifact.calibration_tokens = np.array([estimate_tokens(t) for t in chosen], dtype=float)
    elif featurizer is not None and artifact.anchors is not None and len(artifact.anchors):
        # Too few logged prompts to calibrate on: the anchors, at their coordinates under the new map.
        artifact.calibration_Z = artifact.anchors.Z
        artifact.calibration_tokens = np.array(
            [estimate_tokens(t) for t in artifact.anchors.texts], dtype=float
        )
    if artifact.calibration_Z is not None:
        for name, profile in pred.profiles_.items():
            q = pred.predict(
                Z=artifact.calibration_Z, input_tokens=artifact.calibration_tokens, models=[name]
            )
            profile.capability = float(q.quality.mean())
