"""The joint fit of the IRT space (formulation in :mod:`zerorouter_integrations.latent.irt`).

Maximum a posteriori by L-BFGS of the outcomes' cross-entropy plus the coordinate, predictor and
ability penalties, from a deterministic SVD start.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zerorouter_integrations.extras import need
from zerorouter_integrations.latent.bayes import bayes_logistic, unpacker
from zerorouter_integrations.special import expit

__all__ = ["fit_free", "fit_known", "fit_linear", "laplace_covs", "lbfgs", "svd_init"]


def svd_init(
    Xs: np.ndarray, Y: np.ndarray, M: np.ndarray, *, k: int, weight_reg: float, seed: int
) -> tuple[np.ndarray, ...]:
    """Deterministic SVD initialization on the column-centered, mean-filled score matrix."""
    n, d = Xs.shape
    m = Y.shape[1]
    col_mean = np.nanmean(Y, axis=0)
    filled = np.where(M > 0, Y, col_mean)
    U, S, Vt = np.linalg.svd(filled - col_mean, full_matrices=False)
    kk = min(k, len(S))
    theta0 = np.zeros((n, k))
    A0 = np.zeros((m, k))
    theta0[:, :kk] = U[:, :kk] * np.sqrt(S[:kk]) * np.sqrt(n / max(m, 1)) ** 0.5
    A0[:, :kk] = Vt[:kk].T * np.sqrt(S[:kk]) / np.sqrt(n / max(m, 1)) ** 0.5 * 4.0
    rng = np.random.default_rng(seed)
    theta0 += 1e-3 * rng.standard_normal(theta0.shape)
    b0 = np.log(np.clip(col_mean, 1e-3, 1 - 1e-3) / (1 - np.clip(col_mean, 1e-3, 1 - 1e-3)))
    G = Xs.T @ Xs + weight_reg * np.eye(d)
    W0 = np.linalg.solve(G, Xs.T @ theta0)
    return theta0, W0, np.zeros(k), A0, b0


def lbfgs(fg: Callable, v0: np.ndarray, max_iter: int) -> tuple[np.ndarray, int, float]:
    """L-BFGS-B on ``fg`` (value and gradient) from ``v0``: ``(solution, iterations, final value)``."""
    need("fit", "fitting the IRT latent space")
    from scipy.optimize import minimize  # imported here: loading a fitted space must stay fast

    opt = minimize(
        fg,
        v0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": int(max_iter), "maxfun": int(max_iter) * 2},
    )
    return opt.x, int(opt.nit), float(opt.fun)


def fit_free(
    Xs, Yf, M, n_obs, theta0, W0, c0, A0, b0, *, regs: tuple[float, float, float], max_iter: int
) -> tuple[list[np.ndarray], int, float]:
    """Joint MAP fit with free coordinates tied to ``W x + c`` (``regs = (λ_θ, λ_W, λ_a)``)."""
    n, d = Xs.shape
    m, k = A0.shape
    unpack = unpacker([(n, k), (d, k), (k,), (m, k), (m,)])
    lt, lw, la = regs
    scale = 1.0 / n_obs

    def fg(v: np.ndarray) -> tuple[float, np.ndarray]:
        theta, W, c, A, b = unpack(v)
        logits = theta @ A.T + b
        ll = np.sum(M * (np.logaddexp(0.0, logits) - Yf * logits))
        R = M * (expit(logits) - Yf)
        res = theta - Xs @ W - c
        loss = ll + 0.5 * lt * np.sum(res**2) + 0.5 * lw * np.sum(W**2) + 0.5 * la * np.sum(A**2)
        g_theta = R @ A + lt * res
        g_W = -lt * (Xs.T @ res) + lw * W
        g_c = -lt * res.sum(axis=0)
        g_A = R.T @ theta + la * A
        g_b = R.sum(axis=0)
        grad = np.concatenate([g_theta.ravel(), g_W.ravel(), g_c, g_A.ravel(), g_b])
        return loss * scale, grad * scale

    v, nit, loss = lbfgs(fg, np.concatenate([theta0.ravel(), W0.ravel(), c0, A0.ravel(), b0]), max_iter)
    return unpack(v), nit, loss


def fit_linear(
    Xs, Yf, M, n_obs, W0, c0, A0, b0, *, regs: tuple[float, float], max_iter: int
) -> tuple[list[np.ndarray], int, float]:
    """Reduced-rank logistic regression: coordinates are exactly ``θ = W x + c`` (``regs = (λ_W, λ_a)``)."""
    _n, d = Xs.shape
    m, k = A0.shape
    unpack = unpacker([(d, k), (k,), (m, k), (m,)])
    lw, la = regs
    scale = 1.0 / n_obs

    def fg(v: np.ndarray) -> tuple[float, np.ndarray]:
        W, c, A, b = unpack(v)
        T = Xs @ W + c
        logits = T @ A.T + b
        ll = np.sum(M * (np.logaddexp(0.0, logits) - Yf * logits))
        R = M * (expit(logits) - Yf)
        loss = ll + 0.5 * lw * np.sum(W**2) + 0.5 * la * np.sum(A**2)
        g_T = R @ A
        grad = np.concatenate(
            [(Xs.T @ g_T + lw * W).ravel(), g_T.sum(axis=0), (R.T @ T + la * A).ravel(), R.sum(axis=0)]
        )
        return loss * scale, grad * scale

    v, nit, loss = lbfgs(fg, np.concatenate([W0.ravel(), c0, A0.ravel(), b0]), max_iter)
    return unpack(v), nit, loss


def fit_known(
    Z: np.ndarray, Yf: np.ndarray, M: np.ndarray, W0: np.ndarray, *, k: int, ability_reg: float, center: bool
) -> tuple[np.ndarray, list[np.ndarray], float]:
    """Known abilities ``[a, u, b]`` by Bayesian logistic regression on ``Z``; σ_u by empirical Bayes.

    ``center``: the prior mean of the ``k`` latent weights is 0 (coordinates are out-of-fold
    predictions) instead of the joint fit's ``W0``.
    """
    n_loc = Z.shape[1] - k
    Zb = np.column_stack([Z, np.ones(len(Z))])
    mean0 = W0.copy()
    if center:
        mean0[:, :k] = 0.0

    def run(sd_u: float) -> tuple[np.ndarray, list[np.ndarray]]:
        prec = np.diag(np.r_[np.full(k, ability_reg), np.full(n_loc, 1.0 / sd_u**2), 1e-4])
        out, covs = W0.copy(), []
        for j in range(W0.shape[0]):
            obs = M[:, j] > 0
            out[j], cov = bayes_logistic(Zb[obs], Yf[obs, j], mean0[j], prec)
            covs.append(cov)
        return out, covs

    sd_u = 1.0
    W_all, covs = run(sd_u)
    if n_loc:
        u = W_all[:, k : k + n_loc]
        post_var = np.array([np.diag(c)[k : k + n_loc] for c in covs])
        sd_u = float(np.sqrt(max(np.mean(u**2) - np.mean(post_var), 0.01)))
        W_all, covs = run(sd_u)
    return W_all, covs, sd_u


def laplace_covs(Z: np.ndarray, M: np.ndarray, W: np.ndarray, prior_prec: np.ndarray) -> list[np.ndarray]:
    """Laplace posterior covariance of each row of ``W`` (abilities ``[w, b]``) on its observed rows of ``Z``."""
    Zb = np.column_stack([Z, np.ones(len(Z))])
    covs = []
    for j in range(len(W)):
        obs = M[:, j] > 0
        p = expit(Zb[obs] @ W[j])
        covs.append(np.linalg.inv((Zb[obs] * (p * (1 - p))[:, None]).T @ Zb[obs] + prior_prec))
    return covs
