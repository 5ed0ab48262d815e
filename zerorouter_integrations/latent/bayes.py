"""Numerical pieces of the IRT space: Bayesian logistic regression, ridge paths, population priors.

Each is a plain function on arrays (no fitted state), shared by the latent spaces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zerorouter_integrations.extras import need
from zerorouter_integrations.special import expit

__all__ = [
    "bayes_logistic",
    "bce_setup",
    "epistemic_sd",
    "population_cov",
    "ridge",
    "ridge_cv",
    "ridge_path",
    "unpacker",
]


def bce_setup(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(Y with NaN → 0, observed mask as floats, number observed)`` for masked cross-entropy."""
    M = ~np.isnan(Y)
    return np.where(M, Y, 0.0), M.astype(float), int(M.sum())


def bayes_logistic(
    Zb: np.ndarray,
    y: np.ndarray,
    prior_mean: np.ndarray,
    prior_prec: np.ndarray,
    *,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP and Laplace covariance of logistic regression ``y ~ σ(Zb · w)`` with a Gaussian prior.

    ``Zb`` already holds the bias column. Newton's method with step halving; soft labels allowed.
    """
    w = prior_mean.astype(float).copy()

    def objective(w: np.ndarray) -> float:
        s = Zb @ w
        ll = np.sum(np.logaddexp(0.0, s) - y * s)
        d = w - prior_mean
        return float(ll + 0.5 * d @ prior_prec @ d)

    f = objective(w)
    for _ in range(max_iter):
        p = expit(Zb @ w)
        grad = Zb.T @ (p - y) + prior_prec @ (w - prior_mean)
        H = (Zb * (p * (1 - p))[:, None]).T @ Zb + prior_prec
        step = np.linalg.solve(H, grad)
        t = 1.0
        while True:
            w_new = w - t * step
            f_new = objective(w_new)
            if f_new <= f + 1e-12 or t < 1e-4:
                break
            t *= 0.5
        converged = abs(f - f_new) < tol * (1 + abs(f))
        w, f = w_new, f_new
        if converged:
            break
    p = expit(Zb @ w)
    H = (Zb * (p * (1 - p))[:, None]).T @ Zb + prior_prec
    return w, np.linalg.inv(H)


def population_cov(W: np.ndarray, *, standardized: bool = True) -> np.ndarray:
    """Shrunk covariance of the known models' abilities (rows of ``W``), the prior of a new model.

    Ledoit-Wolf shrinks toward a multiple of the identity. Ability coordinates have very different
    scales (the bias spreads over logits, a cluster offset over a tenth of that), so by default the
    shrinkage is applied to the correlation structure (each coordinate standardized, then rescaled):
    every coordinate keeps its own variance and only the correlations are pulled toward zero.
    """
    need("fit", "the Ledoit-Wolf prior covariance of a latent space fit")
    from sklearn.covariance import LedoitWolf

    m, p = W.shape
    if m < 3:
        return np.diag(np.var(W, axis=0) + 1.0) + 1e-3 * np.eye(p)
    if not standardized:
        return LedoitWolf().fit(W).covariance_ + 1e-3 * np.eye(p)
    # Exact SDs (an additive epsilon would shrink small-scale coordinates, e.g. cluster offsets with an
    # SD of a few hundredths, and through the identity target every other one): the standardized
    # variances are then all 1, so Ledoit-Wolf's target is the identity and only correlations shrink.
    sd = W.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return LedoitWolf().fit(W / sd).covariance_ * np.outer(sd, sd) + 1e-6 * np.eye(p)


def prior_without(
    W: np.ndarray, j: int, *, standardized: bool = True, min_bias_sd: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Population prior ``(mean, covariance)`` of the abilities ``W`` (rows) other than row ``j``.

    What a new model's prior would be if model ``j`` were not known (:func:`population_cov`, the
    bias variance floored at ``min_bias_sd²``): for validating model ``j`` as if it were new. With no
    other model the mean is zero and the covariance the identity (a pool without spread).
    """
    others = np.delete(np.asarray(W, dtype=float), j, axis=0)
    p = W.shape[1]
    if len(others):
        mean, cov = others.mean(axis=0), population_cov(others, standardized=standardized).copy()
    else:
        mean, cov = np.zeros(p), np.eye(p)
    cov[-1, -1] = max(cov[-1, -1], float(min_bias_sd) ** 2)
    return mean, cov


def epistemic_sd(p: np.ndarray, v_w: np.ndarray) -> np.ndarray:
    """SD of the success probability due to the ability's uncertainty (delta method, capped at 0.5).

    The coordinate residual ``Σ_θ`` enters the mean (probit approximation), not this SD: the SD says how
    unsure the router is about the *model*, which shrinks as anchors or feedback accumulate.
    """
    return np.minimum(p * (1 - p) * np.sqrt(v_w), 0.5)


def ridge_cv(
    Xs: np.ndarray,
    T: np.ndarray,
    *,
    seed: int,
    alphas: Sequence[float] = (1.0, 10.0, 100.0, 1000.0),
    n_folds: int = 5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regression ``T ≈ Xs W + c``, the penalty chosen per column of ``T`` by K-fold CV.

    Returns ``W``, ``c``, the out-of-fold residual covariance, the chosen penalties and the out-of-fold
    predictions.
    """
    n, d = Xs.shape
    rng = np.random.default_rng(seed)
    folds = rng.permutation(n) % n_folds
    alphas = [float(a) for a in alphas]
    oofs = np.zeros((len(alphas), *T.shape))
    for f in range(n_folds):
        tr, te = folds != f, folds == f
        for ai, (W, c) in enumerate(ridge_path(Xs[tr], T[tr], alphas)):
            oofs[ai][te] = Xs[te] @ W + c
    err = ((oofs - T[None]) ** 2).mean(axis=1)  # (alphas, k)
    best = np.argmin(err, axis=0)
    cols = np.arange(T.shape[1])
    oof = oofs[best, :, cols].T
    W = np.zeros((d, T.shape[1]))
    c = np.zeros(T.shape[1])
    path = ridge_path(Xs, T, [alphas[a] for a in np.unique(best)])
    for (Wa, ca), ai in zip(path, np.unique(best)):
        sel = best == ai
        W[:, sel], c[sel] = Wa[:, sel], ca[sel]
    resid = T - oof
    cov = np.atleast_2d(np.cov(resid, rowvar=False)) if n > 1 else np.zeros((T.shape[1], T.shape[1]))
    return W, c, cov, np.asarray([alphas[a] for a in best]), oof


def unpacker(shapes: Sequence[tuple[int, ...]]):
    """A function splitting one flat parameter vector into arrays of ``shapes``."""
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(v: np.ndarray) -> list[np.ndarray]:
        out, i = [], 0
        for s, z in zip(shapes, sizes):
            out.append(v[i : i + z].reshape(s))
            i += z
        return out

    return unpack


def ridge_path(X: np.ndarray, T: np.ndarray, alphas: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ridge solutions for several penalties from one eigendecomposition."""
    xm, tm = X.mean(axis=0), T.mean(axis=0)
    Xc = X - xm
    n, d = X.shape
    out = []
    if d <= n:
        lam, V = np.linalg.eigh(Xc.T @ Xc)
        B = V.T @ (Xc.T @ (T - tm))
        for alpha in alphas:
            W = V @ (B / (lam + alpha)[:, None])
            out.append((W, tm - xm @ W))
    else:  # dual form
        lam, U = np.linalg.eigh(Xc @ Xc.T)
        B = U.T @ (T - tm)
        for alpha in alphas:
            W = Xc.T @ (U @ (B / (lam + alpha)[:, None]))
            out.append((W, tm - xm @ W))
    return out


def ridge(X: np.ndarray, T: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression ``T ≈ X W + c`` with one penalty (primal or dual form)."""
    xm, tm = X.mean(axis=0), T.mean(axis=0)
    Xc = X - xm
    n, d = X.shape
    if d <= n:
        W = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(d), Xc.T @ (T - tm))
    else:  # dual form
        W = Xc.T @ np.linalg.solve(Xc @ Xc.T + alpha * np.eye(n), T - tm)
    return W, tm - xm @ W
