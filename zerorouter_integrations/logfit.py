"""Refine a router artifact (the shipped prior, or any ``zerorouter fit`` output) with your own traffic.

Logged traffic shows one model per prompt, with a score on some calls (feedback, a judge, or
``record_quality``). :func:`refine_artifact` updates, in the prior's own latent space (IRT):

1. **the prompt-to-latent map**: ``θ̂(x) = W x̃ + c`` moves to ``(W + ΔW) x̃ + (c + Δc)``, where
   ``(ΔW, Δc)`` minimizes the logged calls' cross-entropy under the prior abilities plus the ridge
   penalty ``λ_W/2 ‖ΔW‖² + λ_c/2 ‖Δc‖²`` (convex, L-BFGS). ``λ = ∞`` keeps that part; ``λ_W = ∞``
   with a finite ``λ_c`` only shifts the coordinates;
2. **the abilities**, one of two ways (cross-validation picks):

   * a Bayesian logistic update of each logged model's prior posterior ``N(w, κ Σ)`` with its scored
     calls at their new coordinates, as :meth:`ZeroRouter.record_quality` does for one call, with
     the prior's covariance widened by ``κ ≥ 1`` (a power prior: benchmark data count for less than
     your own traffic);
   * ``κ = "eb"``: **empirical-Bayes bias shrinkage**: each logged model's logit moves by an offset
     ``δ_m ~ N(0, τ²)`` (your traffic is easier or harder *for that model* than the prior says), with
     ``τ²`` shared by the logged models and estimated by maximizing their (Laplace) marginal
     likelihood (``τ = 0``: no change when the logs carry no signal); ``δ_m`` is the posterior mode,
     and its posterior variance enters the ability's covariance.

   A logged model the prior does not know is onboarded from its scored calls (population prior of
   the space);
3. **cost models** from the logged costs (all calls, scored or not) and the expected output tokens.

``(λ_W, λ_c)`` and ``κ`` are chosen by 5-fold cross-validated log loss of the scored calls (grids
:data:`MAP_PENALTIES` × :data:`PRIOR_WIDENING`, folds by a stable hash of the call id) with the
one-standard-error rule (:func:`choose_by_cv`): the least flexible setting, "no change" first,
whose loss is within one SE of the best; so the refined router stays the prior when the logs carry
no clear signal. The policy-calibration prompts become a sample of your logged prompts, so
budgets and quality targets are calibrated on your own traffic.
"""

from __future__ import annotations

import copy
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
from zerorouter_integrations.stable_hash import stable_hash64

__all__ = [
    "MAP_PENALTIES",
    "PRIOR_WIDENING",
    "Observations",
    "RefitInfo",
    "log_losses",
    "refine_artifact",
    "stable_fold",
]

#: Ridge penalties ``(λ_W, λ_c)`` of the map update tried by cross-validation (``inf`` keeps that
#: part): no change; a shift of the coordinates only (your traffic is easier or harder along the
#: latent directions than the benchmarks); the whole linear map.
MAP_PENALTIES = ((math.inf, math.inf), (math.inf, 0.1), (math.inf, 0.01), (1.0, 0.01), (0.1, 0.01))
#: Ability updates tried by cross-validation: widening factors κ of the prior abilities' covariance
#: (1 = plain Bayes), and ``"eb"``: the empirical-Bayes bias offsets only.
PRIOR_WIDENING: tuple[float | str, ...] = (1.0, "eb", 4.0, 16.0)
#: Grid of the offsets' prior SD ``τ`` over which the marginal likelihood is maximized (0 included).
EB_TAU_GRID = np.r_[0.0, np.geomspace(0.02, 3.0, 24)]


def stable_fold(key: str, n_folds: int, seed: int = 0) -> int:
    """A fold in ``range(n_folds)`` from a stable hash of ``key`` (independent of order and batch)."""
    return stable_hash64(f"{seed}:{key}") % n_folds


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
    #: κ, ``"eb"`` (bias offsets only) or ``"none"`` (the prior's abilities kept).
    prior_widening: float | str
    cv_log_loss: dict[str, float] = field(default_factory=dict)
    n_observations: int = 0
    updated_models: dict[str, int] = field(default_factory=dict)
    onboarded_models: list[str] = field(default_factory=list)
    cost_models: dict[str, int] = field(default_factory=dict)
    skipped_models: dict[str, str] = field(default_factory=dict)
    eb_tau: float | None = None
    eb_offsets: dict[str, float] = field(default_factory=dict)

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
            "eb_tau": self.eb_tau,
            "eb_offsets": dict(self.eb_offsets),
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


def _offset_mode(s: np.ndarray, y: np.ndarray, tau2: float) -> tuple[float, float, float]:
    """``(δ̂, H, log marginal)`` of ``y ~ σ(s + δ)``, ``δ ~ N(0, τ²)`` (Newton; Laplace approximation)."""
    if tau2 <= 0.0:
        return 0.0, 0.0, float(-np.sum(np.logaddexp(0.0, s) - y * s))
    d = 0.0
    for _ in range(50):
        p = expit(s + d)
        g = np.sum(y - p) - d / tau2
        h = float(np.sum(p * (1 - p))) + 1.0 / tau2
        step = g / h
        d += step
        if abs(step) < 1e-10:
            break
    p = expit(s + d)
    H = float(np.sum(p * (1 - p)))
    ll = -np.sum(np.logaddexp(0.0, s + d) - y * (s + d))
    return d, H, float(ll - d * d / (2 * tau2) - 0.5 * math.log1p(tau2 * H))


def eb_offsets(
    groups: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[float, dict[str, tuple[float, float]]]:
    """Empirical-Bayes logit offsets per model: ``(τ̂, {model: (δ̂, posterior variance)})``.

    ``groups`` maps a model to ``(s, y)``: its calls' prior logits and scores. ``τ`` maximizes the
    summed Laplace marginal likelihood over :data:`EB_TAU_GRID`; ``τ̂ = 0`` leaves every model as it was.
    """
    best_tau, best = 0.0, -math.inf
    for tau in EB_TAU_GRID:
        total = sum(_offset_mode(s, y, float(tau) ** 2)[2] for s, y in groups.values())
        if total > best + 1e-9:
            best_tau, best = float(tau), total
    out = {}
    for m, (s, y) in groups.items():
        d, H, _ = _offset_mode(s, y, best_tau**2)
        out[m] = (d, 0.0 if best_tau == 0.0 else 1.0 / (H + 1.0 / best_tau**2))
    return best_tau, out


def _shift(ability: Ability, delta: float, var: float) -> Ability:
    """``ability`` with its bias moved by ``delta`` (and the offset's posterior variance added)."""
    w, cov = ability.array("w").copy(), ability.array("cov").copy()
    w[-1] += delta
    cov[-1, -1] += var
    return Ability(ability.kind, {**ability.params, "w": w, "cov": cov}, n_obs=ability.n_obs)


def log_losses(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-call log loss of predictions ``p`` (clipped to [1e-6, 1 − 1e-6]) for scores ``y``."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _fit_rows(
    prob: _MapProblem,
    obs: Observations,
    abilities: Mapping[str, Ability],
    rows: np.ndarray,
    lam: tuple[float, float],
    widen: float | str,
    solved: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Ability], float | None]:
    """Map update (or the given ``solved`` one), then each logged model's ability update; and ``τ̂`` for ``"eb"``."""
    dW, dc = prob.solve(lam, rows) if solved is None else solved
    Z = prob.coordinates(dW, dc, rows)
    models = np.array([obs.models[i] for i in rows])
    y = prob.y[rows]
    new: dict[str, Ability] = {}
    names = list(dict.fromkeys(models.tolist()))
    if widen == "eb":
        groups = {}
        for m in names:
            sel = models == m
            w = abilities[m].array("w")
            groups[m] = (Z[sel] @ w[:-1] + w[-1], y[sel])
        tau, offsets = eb_offsets(groups)
        for m, (d, var) in offsets.items():
            new[m] = _shift(abilities[m], d, var)
        return dW, dc, new, tau
    for m in names:
        sel = models == m
        new[m] = _update(abilities[m], Z[sel], y[sel], float(widen))
    return dW, dc, new, None


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
    widening: Sequence[float | str] = PRIOR_WIDENING,
    n_folds: int = 5,
    seed: int = 0,
) -> tuple[tuple[float, float], float | str, dict[str, float]]:
    """``((λ_W, λ_c), κ, table)`` chosen by cross-validated log loss with the one-standard-error rule.

    The chosen point is the *least flexible* one (the prior unchanged first, then by position in
    ``penalties`` plus position in ``widening``) whose out-of-fold log loss is within one standard
    error (over calls) of the best point's. A handful of scored calls thus keeps the prior unless the
    logs clearly say otherwise (``κ = "none"``, ``λ = ∞``: no change at all).
    """
    prob = _MapProblem(space, obs, abilities)
    folds = np.array([stable_fold(i, n_folds, seed) for i in obs.ids])
    table: dict[str, float] = {}
    rows_all = np.arange(len(obs))
    p0 = _predict_rows(prob, obs, abilities, rows_all, *prob.solve((math.inf, math.inf), rows_all))
    y = prob.y
    # (complexity, loss per call, λ, κ); the prior itself is the simplest candidate.
    cands: list[tuple[int, np.ndarray, tuple[float, float], float | str]] = [
        (-1, log_losses(p0, y), (math.inf, math.inf), "none")
    ]
    table["prior (no change)"] = float(cands[0][1].mean())
    for li, lam in enumerate(penalties):
        solved: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # the map update does not depend on κ
        for wi, widen in enumerate(widening):
            per_call = np.full(len(obs), np.nan)
            for f in range(n_folds):
                tr, va = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
                if len(va) == 0 or len(tr) == 0:
                    continue
                if f not in solved:
                    solved[f] = prob.solve(lam, tr)
                dW, dc, fitted, _ = _fit_rows(prob, obs, abilities, tr, lam, widen, solved[f])
                per_call[va] = log_losses(
                    _predict_rows(prob, obs, {**abilities, **fitted}, va, dW, dc), y[va]
                )
            per_call = np.where(np.isnan(per_call), cands[0][1], per_call)
            lam_s = ",".join("inf" if math.isinf(v) else f"{v:g}" for v in lam)
            kappa = widen if isinstance(widen, str) else f"{widen:g}"
            table[f"lambda=({lam_s}),kappa={kappa}"] = float(per_call.mean())
            cands.append((li + wi, per_call, lam, widen))
    best = min(cands, key=lambda c: c[1].mean())
    # The SE of the best point's CV loss (not of paired differences, which are small exactly for the
    # settings that barely differ and would favour the wild ones).
    se = float(best[1].std(ddof=1) / math.sqrt(len(obs))) if len(obs) > 1 else 0.0
    for _, losses, lam, widen in sorted(cands, key=lambda c: c[0]):
        if losses.mean() <= best[1].mean() + se + 1e-12:
            return lam, widen, table
    return best[2], best[3], table


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
    widening: Sequence[float | str] = PRIOR_WIDENING,
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
    info = RefitInfo(map_penalty=(math.inf, math.inf), prior_widening="none", n_observations=len(obs))
    if len(obs):
        if obs.y.min() < 0 or obs.y.max() > 1 or np.isnan(obs.y).any():
            raise ValueError("observation scores must be in [0, 1]")
        known = [i for i, m in enumerate(obs.models) if m in pred.profiles_]
        unknown = sorted({m for m in obs.models if m not in pred.profiles_})
        kobs = obs.take(np.asarray(known, dtype=int))
        abilities = {m: p.ability for m, p in pred.profiles_.items()}
        lam: tuple[float, float] = (math.inf, math.inf)
        widen: float | str = "none"
        if len(kobs) >= 10:
            lam, widen, info.cv_log_loss = choose_by_cv(
                space0, kobs, abilities, penalties=penalties, widening=widening, seed=seed
            )
        info.map_penalty, info.prior_widening = lam, widen
        if len(kobs) and widen != "none":
            prob = _MapProblem(space0, kobs, abilities)
            rows = np.arange(len(kobs))
            dW, dc, fitted, info.eb_tau = _fit_rows(prob, kobs, abilities, rows, lam, widen)
            if widen == "eb":
                info.eb_offsets = {
                    m: float(ab.array("w")[-1] - abilities[m].array("w")[-1]) for m, ab in fitted.items()
                }
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
            list_input = pred.profiles_[m].input_usd_per_token
            pred.profiles_[m].cost = CostModel.fit(t[ok], c[ok], min_per_input_token_usd=list_input or 0.0)
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
