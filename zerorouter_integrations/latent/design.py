"""Greedy optimal designs for anchors: which prompts most pin down a new model's ability.

The ability of a new model is a Bayesian logistic regression on serve-time coordinates ``z = [Z, 1]``
with a Gaussian prior; each pick is the candidate whose rank-one precision update most reduces the
expected posterior variance of the logit at real prompts (V-optimal, when their second moment
``E[z zᵀ]`` is given) or most increases the log-determinant of the posterior precision (D-optimal),
averaged over a spread of known models playing "a typical new model".
"""

from __future__ import annotations

import numpy as np

from zerorouter_integrations.special import expit

__all__ = ["greedy_logit_design"]


def greedy_logit_design(
    Z: np.ndarray,
    Wm: np.ndarray,
    prior_cov: np.ndarray,
    k: int,
    *,
    target_moment: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Indices of ``k`` rows of ``Z`` (candidates' coordinates, without the bias column).

    ``Wm`` (p × m) holds known abilities ``[w, b]`` as columns; ``prior_cov`` (p × p) is the new
    model's prior; ``target_moment`` (p × p) switches from D- to V-optimal design.
    """
    n = len(Z)
    Zb = np.column_stack([Z, np.ones(n)])
    vopt = target_moment is not None
    if vopt and Wm.shape[1] > 8:  # a spread of typical models is enough for the design
        order = np.argsort(Wm[-1])
        Wm = Wm[:, order[np.linspace(0, len(order) - 1, 8).round().astype(int)]]
    info = expit(Zb @ Wm)
    info *= 1 - info  # (n, m) Fisher weights
    n_m = Wm.shape[1]
    S = target_moment
    # Every model starts from the population prior; rank-one updates keep, for each candidate z,
    # q = zᵀ Σ_m z and (V-optimal) r = zᵀ Σ_m S Σ_m z current in O(n p) per pick and model.
    Sig = np.repeat(prior_cov[None], n_m, axis=0)
    U0 = Zb @ prior_cov
    q = np.repeat((U0 * Zb).sum(axis=1)[:, None], n_m, axis=1)  # (n, m)
    r = np.repeat(((U0 @ S) * U0).sum(axis=1)[:, None], n_m, axis=1) if vopt else None
    chosen: list[int] = []
    available = np.ones(n, dtype=bool)
    jitter = 1e-9 * np.random.default_rng(seed).random(n)
    for _ in range(k):
        if vopt:
            gain = (info * r / (1.0 + info * q)).mean(axis=1) + jitter
        else:
            gain = np.log1p(info * q).mean(axis=1) + jitter
        gain[~available] = -np.inf
        i = int(np.argmax(gain))
        chosen.append(i)
        available[i] = False
        z = Zb[i]
        for j in range(n_m):
            u = Sig[j] @ z
            c = info[i, j] / (1.0 + info[i, j] * (z @ u))
            g = Zb @ u
            if r is not None:  # V-optimal
                Su = S @ u
                h = Zb @ (Sig[j] @ Su)
                r[:, j] -= 2.0 * c * h * g - c * c * float(u @ Su) * g * g
            q[:, j] -= c * g * g
            Sig[j] -= c * np.outer(u, u)
    return np.asarray(chosen)
