"""Serving the IRT space fast: a pool's abilities stacked once, scored for many prompts.

The predictor stacks the pool's abilities when the pool changes and scores every request against the
stack: for serve-time coordinates whose local part is one-hot, the logit mean and variance reduce to
a few dozen multiply-adds per model (see :func:`stack_irt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zerorouter_integrations.latent.base import Ability
from zerorouter_integrations.latent.bayes import epistemic_sd
from zerorouter_integrations.special import expit

__all__ = ["IRTStack", "predict_irt_stacked", "serving_map", "stack_irt"]


@dataclass(frozen=True)
class IRTStack:
    """A pool's abilities stacked for :func:`predict_irt_stacked`."""

    W: np.ndarray  # (p, m): one column [a, u, b] per model
    cov_cols: np.ndarray  # (p, m·p): the models' posterior covariances side by side
    v_theta: np.ndarray  # (m,): aᵀ Σ_θ a, the coordinate residual's share of the logit variance
    quad: np.ndarray  # (k², m): θ⊗θ ↦ θᵀ Σ_θθ θ
    by_cluster: np.ndarray  # (K, k, 2m): θ ↦ [2 θᵀ(Σ_θc + Σ_θb) | θ·a] for one-hot cluster c
    offset: np.ndarray  # (K, 2m): [Σ_cc + 2 Σ_cb + Σ_bb | u_c + b]
    blend: tuple[np.ndarray, np.ndarray] | None  # (weights, [weighted local means; weighted overall means])


def stack_irt(
    abilities: Sequence[Ability],
    n_dims: int,
    n_coords: int,
    theta_cov: np.ndarray,
    weights: np.ndarray | None,
) -> IRTStack:
    """Abilities stacked for vectorized prediction.

    Besides the ``w`` columns and the covariances side by side (any ``Z``), it keeps the pieces of
    the logit mean and variance for serve-time coordinates ``z = [θ, e_c, 1]`` whose local part is
    one-hot (cluster ``c``): ``μ = θ·a + u_c + b`` and
    ``zᵀ Σ z = θᵀ Σ_θθ θ + 2 θᵀ (Σ_θc + Σ_θb) + (Σ_cc + 2 Σ_cb + Σ_bb)``, a few dozen
    multiply-adds per model instead of ``(k + K + 1)²``.
    """
    arrays = [(a.array("w"), a.array("cov")) for a in abilities]
    p, k = n_coords + 1, n_dims
    n_loc = p - 1 - k
    m = len(arrays)
    if not m:
        return IRTStack(
            np.zeros((p, 0)),
            np.zeros((p, 0)),
            np.zeros(0),
            np.zeros((k * k, 0)),
            np.zeros((max(n_loc, 1), k, 0)),
            np.zeros((max(n_loc, 1), 0)),
            None,
        )
    Wm = np.column_stack([w for w, _ in arrays])  # (p, m)
    covs = np.stack([c for _, c in arrays])  # (m, p, p)
    cov_cols = np.ascontiguousarray(covs.transpose(1, 0, 2).reshape(p, -1))  # (p, m·p)
    v_theta = np.array([float(w[:k] @ theta_cov @ w[:k]) for w, _ in arrays])
    quad = np.ascontiguousarray(covs[:, :k, :k].reshape(m, k * k).T)  # (k², m): θ⊗θ ↦ θᵀ Σ_θθ θ
    if n_loc:
        loc = np.arange(k, k + n_loc)
        lin = covs[:, :k, loc] + covs[:, :k, -1:]  # (m, k, K): Σ_θc + Σ_θb
        var0 = covs[:, loc, loc] + 2.0 * covs[:, loc, -1] + covs[:, -1:, -1]  # (m, K)
        mu0 = Wm[k:-1] + Wm[-1]  # (K, m): u_c + b
    else:
        lin, var0, mu0 = covs[:, :k, -1:], covs[:, -1:, -1], Wm[-1:]
    # Per cluster c: θ @ by_cluster[c] + offset[c] = [2 θᵀ(Σ_θc + Σ_θb) + const_c | θ·a + u_c + b].
    by_cluster = np.concatenate(
        [2.0 * lin.transpose(2, 1, 0), np.broadcast_to(Wm[:k], (lin.shape[2], k, m))], axis=2
    )  # (K, k, 2m)
    offset = np.concatenate([var0.T, mu0], axis=1)  # (K, 2m)
    blend = None
    if weights is not None and all("rate" in a.params for a in abilities):
        # the cluster, overall and coarse candidates are linear in the one-hot local part: one
        # (K + 1) × m matrix, the last row overall, with the coarse-group means folded into the rows
        w = np.asarray(weights, dtype=float)
        rates = w[1] * np.column_stack([a.array("rate") for a in abilities])
        if len(w) > 3 and w[3] != 0.0:
            rates = rates + w[3] * np.column_stack([a.array("coarse") for a in abilities])
        overall = w[2] * np.array([float(a.params["overall"]) for a in abilities])
        blend = (np.array([w[0], 1.0, 1.0]), np.vstack([rates, overall[None, :]]))
    return IRTStack(Wm, cov_cols, v_theta, quad, np.ascontiguousarray(by_cluster), offset, blend)


def predict_irt_stacked(Z: np.ndarray, stacked: IRTStack, n_dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(n × m) predicted scores and SDs of a stacked pool at coordinates ``Z``."""
    n, m = len(Z), stacked.W.shape[1]
    if m == 0:
        return np.zeros((n, 0)), np.zeros((n, 0))
    k = n_dims
    theta, local = Z[:, :k], Z[:, k:]
    if local.shape[1]:
        c = local.argmax(axis=1)
        if n == 1:
            one_hot = np.count_nonzero(local) == 1 and local[0, c[0]] == 1.0
        else:
            one_hot = np.count_nonzero(local) == n and (local[np.arange(n), c] == 1.0).all()
        if not one_hot:
            c = None  # the local part is not one-hot (e.g. coordinates averaged by a caller)
    else:
        c = np.zeros(n, dtype=np.intp)
    if c is not None:
        if n == 1:
            out = theta[0] @ stacked.by_cluster[c[0]] + stacked.offset[c[0]]
            out = out[None, :]
        else:
            out = (theta[:, None, :] @ stacked.by_cluster[c])[:, 0, :] + stacked.offset[c]
        v_w = out[:, :m] + (theta[:, :, None] * theta[:, None, :]).reshape(n, k * k) @ stacked.quad
        mu = out[:, m:]
    else:
        Zb = np.empty((n, Z.shape[1] + 1))
        Zb[:, :-1] = Z
        Zb[:, -1] = 1.0
        mu = Zb @ stacked.W
        v_w = np.einsum("nmp,np->nm", (Zb @ stacked.cov_cols).reshape(n, m, -1), Zb)
    v_w = np.maximum(v_w, 0.0)
    p = expit(mu / np.sqrt(1.0 + (np.pi / 8.0) * (v_w + stacked.v_theta)))
    sd = epistemic_sd(p, v_w)
    if stacked.blend is not None:
        w, R = stacked.blend
        p = w[0] * p + w[1] * (local @ R[:-1]) + w[2] * R[-1]
    return p, sd


def serving_map(
    W: np.ndarray, c: np.ndarray, mean: np.ndarray, scale: np.ndarray, centers: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(A, o)`` with ``X A + o = [θ̂, ‖c‖² − 2 x̃·c per centre]`` for raw features ``X`` (``x̃`` standardized)."""
    A, o = W / scale[:, None], c - (mean / scale) @ W
    if centers is not None:
        Cs = (centers / scale[None, :]).T  # x̃·c = x·(c/scale) − (mean/scale)·c
        A = np.concatenate([A, -2.0 * Cs], axis=1)
        o = np.concatenate([o, (centers**2).sum(axis=1) + 2.0 * (mean / scale) @ centers.T])
    return np.ascontiguousarray(A), o
