"""Robust by construction: blend a latent space's prediction with simpler estimates, weights by out-of-fold loss.

A low-rank latent model (:class:`~zerorouter_integrations.latent.irt.IRTSpace`) explains benchmark
outcomes well, but on a table whose outcomes it does not explain (open-ended chat judged by win
probability, a few hundred prompts) the simple estimates it competes with can be better: the
model's mean score in the prompt's cluster (UniRoute's K-means router) or its overall mean. Rather
than choosing one per table by hand, every fit chooses for itself: the candidates' predictions on
training prompts held out of each fold (a known model's ability estimated on the other folds, as a
new model's is from its anchors) are pooled, and the convex weights minimizing their cross-entropy
(the Bernoulli quasi-likelihood, a proper loss for 0/1, partial-credit and continuous scores alike)
are kept. Weights ``(1, 0, 0)`` reproduce the latent model exactly; any other choice was better on
the held-out folds, so the blend is never worse than its best candidate there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CANDIDATES", "cross_entropy", "out_of_fold_candidates", "simplex_weights"]

#: The blended predictions, in the order of the weights.
CANDIDATES = ("latent", "cluster", "overall")


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
    space: Any, Z: np.ndarray, Y: np.ndarray, *, folds: int, anchor_rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Pooled held-out candidate predictions ``(P, y)`` of a fitted space's known models.

    In each of ``folds`` folds of the training prompts (coordinates ``Z``, scores ``Y`` with NaN
    where unobserved), every model's ability is estimated with ``space.fit_ability`` from the other
    folds, once from all their prompts and once from the first ``anchor_rows`` of them (a new model
    onboarded from anchors), and ``space.candidate_predictions`` predicts the held-out fold. ``None``
    when there are too few prompts for the folds.
    """
    n = len(Z)
    if folds < 2 or n < 5 * folds:
        return None
    fold = np.random.default_rng(seed).permutation(n) % folds
    rows: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for f in range(folds):
        held, rest = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        for j in range(Y.shape[1]):
            test = held[~np.isnan(Y[held, j])]
            if not len(test):
                continue
            for sub in (rest, rest[:anchor_rows]):
                tr = sub[~np.isnan(Y[sub, j])]
                if len(tr) >= 5:
                    rows.append(space.candidate_predictions(Z[test], space.fit_ability(Z[tr], Y[tr, j])))
                    targets.append(Y[test, j])
    if not rows:
        return None
    return np.vstack(rows), np.concatenate(targets)
