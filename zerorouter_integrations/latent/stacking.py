"""Robust by construction: blend a latent space's prediction with simpler estimates, weights by out-of-fold loss.

A low-rank latent model (:class:`~zerorouter_integrations.latent.irt.IRTSpace`) explains benchmark
outcomes well, but on a table whose outcomes it does not explain (open-ended chat judged by win
probability, a few hundred prompts) the simple estimates it competes with can be better: the
model's mean score in the prompt's cluster (UniRoute's K-means router) or its overall mean. Rather
than choosing one per table by hand, every fit chooses for itself: the candidates' predictions on
training prompts held out of each fold (a known model's ability estimated on the other folds, as a
new model's is from its anchors) are pooled, and the convex weights minimizing their cross-entropy
(the Bernoulli quasi-likelihood, a proper loss for 0/1, partial-credit and continuous scores alike)
are kept. Weights ``(1, 0, 0, 0)`` reproduce the latent model exactly; any other choice was better on
the held-out folds, so the blend is never worse than its best candidate there.

Three things keep that validation honest and the result safe (issue 15):

* a known model is validated *as if it were new*: its ability is re-estimated under the prior of the
  other known models (a model cannot be its own prior; with a single known model the prior mean would
  be its own full-data ability), and with one known model the latent candidate is not blended at all
  (a space learned from one model's outcomes says nothing of how it transfers to another);
* besides the local clusters' means, the means of coarse groups of clusters are a candidate (on a
  small table 32 clusters are too fine, one overall mean too coarse);
* :func:`guard_top_choice`: where the blend's preferences for other models than the best one lose on
  held-out prompts (the known models' rows: :func:`choose_weights`), the weights move toward the
  overall means (which always pick the best model) until they do not, so the dearest operating point
  does not fall below the best single model's quality.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zerorouter_integrations.latent import bayes
from zerorouter_integrations.latent.base import Ability
from zerorouter_integrations.latent.clusters import cluster_rates

__all__ = [
    "CANDIDATES",
    "active_weights",
    "blend",
    "candidate_columns",
    "choose_weights",
    "cluster_params",
    "cross_entropy",
    "fit_stack_weights",
    "guard_top_choice",
    "out_of_fold_candidates",
    "plain_weights",
    "preference_gain",
    "simplex_weights",
    "typical_cluster_params",
]

#: The blended predictions, in the order of the weights (spaces of earlier releases: the first three).
CANDIDATES = ("latent", "cluster", "overall", "coarse")


def plain_weights() -> np.ndarray:
    """Weights ``(1, 0, 0, 0)``: the plain latent prediction."""
    return np.r_[1.0, np.zeros(len(CANDIDATES) - 1)]


def active_weights(weights: np.ndarray | None) -> np.ndarray | None:
    """The stacking weights, or None when the plain latent prediction is used (none, or ``w[0] = 1``)."""
    return None if weights is None or weights[0] == 1.0 else weights


def cluster_params(
    local: np.ndarray, y: np.ndarray, smoothing: float, groups: np.ndarray | None = None
) -> dict[str, np.ndarray | float]:
    """A model's smoothed mean score per local cluster (``rate``), per coarse group of clusters
    (``coarse``, indexed by local cluster) and overall (``overall``).

    ``local`` is the one-hot cluster block of the coordinates (n × K), ``y`` the model's scores and
    ``groups`` the coarse group of each local cluster (no ``coarse`` without it, or when its length is
    not ``K``); ``smoothing`` pseudo-counts pull each mean toward the overall one.
    """
    rate, _mass, overall = cluster_rates(local, y, float(smoothing))
    out: dict[str, np.ndarray | float] = {
        "rate": rate,
        "overall": float(np.mean(y)) if len(y) else overall,
    }
    if groups is not None and local.shape[1] == len(groups):
        G = np.eye(int(groups.max()) + 1)[groups]  # (K, g): cluster -> its coarse group
        coarse, _m, _o = cluster_rates(local @ G, y, float(smoothing))
        out["coarse"] = coarse[groups]
    return out


def typical_cluster_params(known: Sequence[Ability]) -> dict[str, Any]:
    """A typical known model's means (:func:`cluster_params` averaged over ``known``): a new model's
    before any anchor; empty when a known model has none."""
    if not known or not all("rate" in a.params for a in known):
        return {}
    params: dict[str, Any] = {"rate": np.mean([a.array("rate") for a in known], axis=0)}
    if all("coarse" in a.params for a in known):
        params["coarse"] = np.mean([a.array("coarse") for a in known], axis=0)
    params["overall"] = float(np.mean([float(a.params["overall"]) for a in known]))
    return params


def candidate_columns(p: np.ndarray, local: np.ndarray, ability: Ability) -> np.ndarray:
    """(n × 4) predictions of the :data:`CANDIDATES` from the latent prediction ``p`` and the one-hot
    cluster block ``local`` of the prompts' coordinates (without local clusters the cluster and coarse
    candidates are the latent one)."""
    rate = ability.array("rate") if "rate" in ability.params else np.zeros(0)
    cluster = local @ rate if rate.size else p  # without local clusters: the latent one
    coarse = local @ ability.array("coarse") if "coarse" in ability.params else cluster
    overall = np.full(len(p), float(ability.params.get("overall", np.nan)))
    return np.column_stack([p, cluster, overall, coarse])


def blend(p: np.ndarray, local: np.ndarray, ability: Ability, weights: np.ndarray | None) -> np.ndarray:
    """The stacked prediction: ``p`` itself under plain weights (:func:`active_weights`) or for an ability
    without cluster means, else the :func:`candidate_columns` weighted by ``weights``."""
    w = active_weights(weights)
    if w is None or "rate" not in ability.params:
        return p
    return candidate_columns(p, local, ability)[:, : len(w)] @ w


def fit_stack_weights(
    space: Any,
    Z: np.ndarray,
    Y: np.ndarray,
    W_known: np.ndarray,
    *,
    fit_under: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], Ability],
    standardized: bool,
    min_bias_sd: float,
    folds: int,
    anchor_rows: int,
    seed: int,
) -> tuple[np.ndarray, dict[str, float]]:
    """Stacking weights and losses of a fitted space (:func:`choose_weights` on
    :func:`out_of_fold_candidates`; :func:`plain_weights` and no losses when there are too few prompts).

    ``W_known`` holds the known models' ability vectors (one row per column of ``Y``), and
    ``fit_under(Z, y, prior_mean, prior_cov)`` estimates an ability under a given prior. A known model's
    latent candidate is re-estimated under the prior of the *other* known models
    (:func:`~zerorouter_integrations.latent.bayes.prior_without`, with ``standardized`` shrinkage and the
    bias SD floored at ``min_bias_sd``): under the full population prior its own full-data ability would
    be the prior mean, which flatters the latent model most where the pool is smallest (with one known
    model the prior is the model itself).
    """
    priors = [
        bayes.prior_without(W_known, j, standardized=standardized, min_bias_sd=min_bias_sd)
        for j in range(len(W_known))
    ]

    def fit_j(j: int, Zj: np.ndarray, yj: np.ndarray) -> Ability:
        return fit_under(Zj, yj, *priors[j])

    found = out_of_fold_candidates(
        space, Z, Y, folds=folds, anchor_rows=anchor_rows, seed=seed, fit_ability=fit_j
    )
    if found is None:
        return plain_weights(), {}
    return choose_weights(*found, latent_ok=len(W_known) >= 2)


def cross_entropy(p: np.ndarray, y: np.ndarray) -> float:
    """Mean Bernoulli cross-entropy of predictions ``p`` for scores ``y`` in [0, 1] (soft labels allowed)."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def simplex_weights(P: np.ndarray, y: np.ndarray, *, max_iter: int = 200) -> np.ndarray:
    """Convex weights ``w`` (``w ≥ 0``, ``Σ w = 1``) minimizing ``cross_entropy(P @ w, y)``.

    ``P`` is (n × c): one column per candidate. The loss is convex in ``w``; it is minimized by
    exponentiated-gradient steps with a backtracking step size, from the first candidate's vertex
    side (``w = (1, 0, …)`` is kept unless another point is strictly better). Deterministic.
    """
    P = np.clip(np.asarray(P, dtype=float), 1e-6, 1 - 1e-6)
    y = np.asarray(y, dtype=float)
    if P.ndim != 2 or len(P) != len(y) or P.shape[1] < 1:
        raise ValueError(f"P must be (n × c) with n = len(y) = {len(y)}, got shape {P.shape}")
    c = P.shape[1]
    vertices = np.eye(c)
    losses = [cross_entropy(P @ v, y) for v in vertices]
    best_w, best_f = vertices[int(np.argmin(losses))], min(losses)
    w = np.full(c, 1.0 / c)
    f = cross_entropy(P @ w, y)
    step = 1.0
    for _ in range(max_iter):
        p = np.clip(P @ w, 1e-6, 1 - 1e-6)
        grad = P.T @ ((p - y) / (p * (1 - p))) / len(y)
        while step > 1e-8:
            w_new = w * np.exp(-step * (grad - grad.min()))
            w_new /= w_new.sum()
            f_new = cross_entropy(P @ w_new, y)
            if f_new < f:
                break
            step *= 0.5
        else:
            break
        converged = f - f_new < 1e-10
        w, f, step = w_new, f_new, step * 2.0
        if converged:
            break
    if best_f <= f:  # a single candidate is as good: keep it exactly
        return best_w
    return w


def out_of_fold_candidates(
    space: Any,
    Z: np.ndarray,
    Y: np.ndarray,
    *,
    folds: int,
    anchor_rows: int,
    seed: int,
    fit_ability: Callable[[int, np.ndarray, np.ndarray], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Pooled held-out candidate predictions ``(P, y, where)`` of a fitted space's known models
    (``where``: each row's training-prompt index, model column, variant (0 = all rows, 1 = anchors)
    and fold).

    In each of ``folds`` folds of the training prompts (coordinates ``Z``, scores ``Y`` with NaN
    where unobserved), every model's ability is estimated from the other folds, once from all their
    prompts and once from a random ``anchor_rows`` of them (a new model onboarded from anchors), and
    ``space.candidate_predictions`` predicts the held-out fold. The estimate is
    ``fit_ability(j, Z, y)`` for model column ``j`` (default ``space.fit_ability(Z, y)``; a space
    whose prior of a new model is built from the known models passes one that leaves model ``j``
    out of that prior, since a model cannot be its own prior). ``None`` when there are too few
    prompts for the folds.
    """
    n = len(Z)
    if folds < 2 or n < 5 * folds:
        return None
    rng = np.random.default_rng(seed)
    fold = rng.permutation(n) % folds
    rows: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    where: list[np.ndarray] = []
    for f in range(folds):
        held, rest = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        anchors = np.sort(rng.permutation(rest)[:anchor_rows])  # a random sample, as anchors cover the table
        for j in range(Y.shape[1]):
            test = held[~np.isnan(Y[held, j])]
            if not len(test):
                continue
            for variant, sub in enumerate((rest, anchors)):
                tr = sub[~np.isnan(Y[sub, j])]
                if len(tr) >= 5:
                    ab = (
                        space.fit_ability(Z[tr], Y[tr, j])
                        if fit_ability is None
                        else fit_ability(j, Z[tr], Y[tr, j])
                    )
                    rows.append(space.candidate_predictions(Z[test], ab))
                    targets.append(Y[test, j])
                    where.append(
                        np.column_stack(
                            [test, np.full(len(test), j), np.full(len(test), variant), np.full(len(test), f)]
                        )
                    )
    if not rows:
        return None
    return np.vstack(rows), np.concatenate(targets), np.vstack(where)


def choose_weights(
    P: np.ndarray, y: np.ndarray, where: np.ndarray, *, latent_ok: bool = True
) -> tuple[np.ndarray, dict[str, float]]:
    """Stacking weights from out-of-fold candidate predictions, and the losses: each candidate's, the
    least-loss blend's (step 1) and the returned blend's (``"blend"``).

    1. Convex weights of least cross-entropy (:func:`simplex_weights`). Without ``latent_ok`` (a
       space learned from one model's outcomes is that model's difficulty: its fit on that model
       says nothing of how it transfers to another) only the model-free candidates are blended.
    2. :func:`guard_top_choice` toward the overall means: the dearest operating point (each prompt's
       first choice) must not lose to always calling the best model of the training folds. It is
       judged on the rows whose abilities came from all the other folds' prompts (variant 0, the
       known models a pool is mostly made of), where there are any: the preferences of abilities
       estimated from ``anchor_rows`` random prompts are noisy enough that guarding them would pull
       every model's weights to the overall means (llmrouter_ulab: −5.9 AUDC on one split), and
       guarding them separately, with weights of their own, cost more than it kept (routerbench_subset:
       −1.0 AUDC over 6 splits).
    """
    if latent_ok:
        w = simplex_weights(P, y)
    else:
        w = np.r_[0.0, simplex_weights(P[:, 1:], y)]
    known = where[:, 2] == 0 if np.any(where[:, 2] == 0) else np.ones(len(y), dtype=bool)
    guarded = guard_top_choice(P[known], y[known], where[known], w, fallback=CANDIDATES.index("overall"))
    losses = {name: cross_entropy(P[:, i], y) for i, name in enumerate(CANDIDATES)}
    return guarded, {
        **losses,
        "least_loss_blend": cross_entropy(P @ w, y),
        "blend": cross_entropy(P @ guarded, y),
    }


def preference_gain(
    P: np.ndarray, y: np.ndarray, where: np.ndarray, w: np.ndarray, *, best_by: int
) -> dict[int, tuple[float, float]]:
    """Per variant, the held-out gain of preferring another model to the best one where ``P @ w`` says
    so, and its standard error over prompts.

    ``where`` (from :func:`out_of_fold_candidates`) says each row's (prompt, model, variant, fold). On
    each held-out prompt, ``b`` is the model, among those scored there, that candidate ``best_by``
    (the overall means of the other folds) ranks first: the best single model a router without
    prompt features would call. For every other model ``j`` the blend ranks above ``b``, the gain is
    ``y_j − y_b``; the mean over all (prompt, other model) pairs is returned. Pairs rather than the
    whole pool: a router's pool is any subset of models with ``b``, and each model's overestimates
    cost it in any pool. Variants without a prompt scored by two models are left out.
    """
    q, o = P @ w, P[:, best_by]
    out: dict[int, tuple[float, float]] = {}
    for v in np.unique(where[:, 2]):
        per_prompt: list[np.ndarray] = []
        pairs = 0
        for f in np.unique(where[where[:, 2] == v, 3]):
            sel = (where[:, 2] == v) & (where[:, 3] == f)
            prompts, pi = np.unique(where[sel, 0], return_inverse=True)
            models, mi = np.unique(where[sel, 1], return_inverse=True)
            shape = (len(prompts), len(models))
            Q, O, Yv = np.full(shape, np.nan), np.full(shape, -np.inf), np.full(shape, np.nan)
            Q[pi, mi], O[pi, mi], Yv[pi, mi] = q[sel], o[sel], y[sel]
            seen = ~np.isnan(Q)
            rows = np.flatnonzero(seen.sum(axis=1) >= 2)
            if not len(rows):
                continue
            b = O[rows].argmax(axis=1)
            qb, yb = Q[rows, b][:, None], Yv[rows, b][:, None]
            prefer = seen[rows] & (np.nan_to_num(Q[rows], nan=-np.inf) > qb)
            per_prompt.append(np.sum(np.where(prefer, Yv[rows] - yb, 0.0), axis=1))
            pairs += int(seen[rows].sum()) - len(rows)
        if pairs:
            g = np.concatenate(per_prompt)
            se = float(np.std(g, ddof=1) * np.sqrt(len(g))) / pairs if len(g) > 1 else 0.0
            out[int(v)] = (float(g.sum()) / pairs, se)
    return out


#: A blend's preferences count as losing when their held-out gain is this many standard errors below 0:
#: 0, the natural threshold (preferring another model to the best one must not lose on held-out
#: prompts). Earlier releases guarded every variant at 2, which the anchor rows' noise required.
Z_LOSS = 0.0


def guard_top_choice(
    P: np.ndarray, y: np.ndarray, where: np.ndarray, w: np.ndarray, *, fallback: int, steps: int = 10
) -> np.ndarray:
    """``w`` moved toward candidate ``fallback``'s vertex until preferring another model to the best one pays.

    With the per-model overall means as ``fallback``, the vertex ranks one model first everywhere (the
    best single model of the training folds). A blend whose preferences for other models lose on
    held-out prompts (:func:`preference_gain` < 0) makes a router's dearest operating point worse
    than always calling that model: the smallest mix ``(1 − t) w + t e`` (``t`` on a grid of
    ``steps``) whose gain is ≥ −:data:`Z_LOSS` standard errors (0: ≥ 0) in every variant of the rows
    given is returned (``w`` itself when it already is, or when nothing can be ranked).
    """
    e = np.zeros_like(w)
    e[fallback] = 1.0
    for t in np.linspace(0.0, 1.0, steps + 1):
        mix = (1.0 - t) * w + t * e
        gains = preference_gain(P, y, where, mix, best_by=fallback).values()
        if all(g >= -Z_LOSS * se for g, se in gains):
            return mix
    return e
