"""ZeroRouter's universal latent space: a multidimensional item-response model with a text predictor.

Formulation
-----------
Every prompt ``i`` has latent coordinates ``θ_i ∈ R^k`` (``k = n_dims``, default 8) that describe
*what kind of difficulty* it poses; every model ``m`` has an ability ``w_m = (a_m, b_m) ∈ R^{k+1}``.
The probability that ``m`` answers ``i`` well is

    P(y_im = 1) = σ(a_m · θ_i + b_m)                                                  (1)

(scores in [0, 1], e.g. F1, are used as soft labels of the same Bernoulli likelihood).

The space is *context-aware*: a linear predictor maps the prompt's features ``x_i`` (MiniLM
embedding + cheap text features, standardized) to its coordinates, ``θ̂_i = W x_i + c``. Training
fits everything jointly by maximum a posteriori (L-BFGS):

    Σ_obs BCE(y_im, σ(a_m·θ_i + b_m)) + λ_θ/2 Σ_i ||θ_i − W x_i − c||² + λ_W/2 ||W||² + λ_a/2 Σ_m ||a_m||²

so the latent directions are those that both explain many models' outcomes and can be read off the
text. After the joint fit, ``W`` is refit by cross-validated ridge regression of ``θ`` on ``x``,
and the out-of-fold residual covariance ``Σ_θ`` says how far a new prompt's true coordinates may sit
from ``θ̂``.

Why this formulation: (1) is model-agnostic (the space is learned from *many* models and no single
one defines it), a new model is a point ``w`` in a (k+1)-dimensional space, estimable from ~100
anchors, and the Gaussian posterior of ``w`` gives calibrated uncertainty. With ``θ = Wx`` the whole
router is a low-rank logistic regression on the prompt features, which is as accurate as a per-model
logistic regression on the known models while needing k+1 instead of d+1 numbers per new model.

Onboarding a new model (``fit_ability``) is Bayesian logistic regression of its anchor scores on
``[θ_i, 1]`` with the *population prior* ``N(μ_pop, Σ_pop)`` (mean and Ledoit-Wolf covariance of the
known models' abilities): with 10 anchors the estimate stays near a typical model of the pool instead
of jumping to "solves everything"; with 100 the data dominate. The posterior covariance comes from the
Laplace approximation.

Prediction for a prompt at ``θ̂`` integrates both uncertainties, the ability posterior ``Σ_w`` and
the coordinate residual ``Σ_θ``, into the logit variance ``v = z^T Σ_w z + a^T Σ_θ a`` (``z = [θ̂, 1]``)
and uses the probit approximation ``p = σ(μ / sqrt(1 + π v / 8))``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from zerorouter_integrations.latent.base import Ability, LatentSpace, check_is_fitted, validate_xy

__all__ = ["IRTSpace", "bayes_logistic"]


def _bce_grad_setup(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    M = ~np.isnan(Y)
    return np.where(M, Y, 0.0), M.astype(float), int(M.sum())


def bayes_logistic(Zb: np.ndarray, y: np.ndarray, prior_mean: np.ndarray, prior_prec: np.ndarray,
                   *, max_iter: int = 50, tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
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


class IRTSpace(LatentSpace):
    """ZeroRouter's universal latent space (see the module docstring for the exact formulation).

    Parameters
    ----------
    n_dims : int, default=8
        Dimension ``k`` of the latent coordinates.
    theta_reg : float, default=1.0
        ``λ_θ``: how tightly training coordinates follow the text predictor.
    weight_reg : float, default=10.0
        ``λ_W``: ridge penalty of the predictor during the joint fit.
    ability_reg : float, default=0.1
        ``λ_a``: ridge penalty of the known models' ability vectors.
    prior_scale : float, default=1.0
        Multiplies the population covariance used as the prior of a new model's ability (larger =
        trust anchors more).
    max_iter : int, default=400
        L-BFGS iterations of the joint fit.
    seed : int, default=0
        Seed of the (otherwise deterministic) initialization.

    Attributes
    ----------
    models_ : list of str
    abilities_ : dict of str to Ability
    W_, c_ : ndarray
        Predictor of coordinates from standardized features.
    x_mean_, x_scale_ : ndarray
        Feature standardization.
    theta_cov_ : ndarray of shape (k, k)
        Out-of-fold covariance of ``θ − θ̂``.
    prior_mean_, prior_cov_ : ndarray
        Population prior of abilities (from the known models).
    train_Z_ : ndarray of shape (n_train, k)
        Fitted coordinates of the training prompts.
    """

    kind = "irt"

    def __init__(self, *, n_dims: int = 8, theta_reg: float = 1.0, weight_reg: float = 10.0,
                 ability_reg: float = 0.1, prior_scale: float = 1.0, max_iter: int = 400, seed: int = 0,
                 coords: str = "free", ability_coords: str = "fitted", onboard_prior: str = "gaussian",
                 mixture_tau: float = 0.1, mixture_novel: float = 0.2, anchor_method: str = "dopt"):
        self.n_dims = n_dims
        self.theta_reg = theta_reg
        self.weight_reg = weight_reg
        self.ability_reg = ability_reg
        self.prior_scale = prior_scale
        self.max_iter = max_iter
        self.seed = seed
        self.coords = coords
        self.ability_coords = ability_coords
        self.onboard_prior = onboard_prior
        self.mixture_tau = mixture_tau
        self.mixture_novel = mixture_novel
        self.anchor_method = anchor_method

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, Y: np.ndarray, models: Sequence[str]) -> "IRTSpace":
        X, Y = validate_xy(X, Y, models)
        if not isinstance(self.n_dims, int) or self.n_dims < 1:
            raise ValueError(f"n_dims must be a positive int, got {self.n_dims!r}")
        if self.coords not in ("free", "linear"):
            raise ValueError(f"coords must be 'free' or 'linear', got {self.coords!r}")
        n, d = X.shape
        m = Y.shape[1]
        k = self.n_dims
        self.x_mean_ = X.mean(axis=0)
        self.x_scale_ = X.std(axis=0) + 1e-8
        Xs = (X - self.x_mean_) / self.x_scale_
        Yf, M, n_obs = _bce_grad_setup(Y)
        theta0, W0, c0, A0, b0 = self._init(Xs, Y, M)

        from threadpoolctl import threadpool_limits

        # L-BFGS works on vectors of ~10^4 numbers: BLAS threads only add synchronization, and on a busy
        # machine they make the fit an order of magnitude slower.
        with threadpool_limits(limits=1, user_api="blas"):
            if self.coords == "free":
                theta, W, c, A, b = self._fit_free(Xs, Yf, M, n_obs, theta0, W0, c0, A0, b0)
            else:
                W, c, A, b = self._fit_linear(Xs, Yf, M, n_obs, W0, c0, A0, b0)
                theta = Xs @ W + c
        self.models_ = list(models)
        la = self.ability_reg
        W_all = np.column_stack([A, b])

        if self.coords == "free":
            # Refit the predictor with cross-validated ridge; honest residual covariance from out-of-fold fits.
            self.W_, self.c_, self.theta_cov_, self.predictor_alpha_, oof = _ridge_cv(Xs, theta, seed=self.seed)
            if self.ability_coords == "predicted":
                # Abilities re-estimated on the coordinates a prompt gets at serve time (out-of-fold θ̂),
                # so they are calibrated for θ̂; the coordinate residual is then part of the fit.
                theta = oof
                W_all = self._refit_abilities(theta, Yf, M, W_all)
                self.theta_cov_ = np.zeros((k, k))
        else:
            self.W_, self.c_ = W, c
            self.theta_cov_ = np.zeros((k, k))
            self.predictor_alpha_ = float(self.weight_reg)
        self.train_Z_ = theta

        # Known models: abilities with Laplace covariance given the training coordinates.
        Zb = np.column_stack([theta, np.ones(n)])
        prior_prec = np.diag(np.r_[np.full(k, la), 1e-4])
        self.abilities_ = {}
        for j, name in enumerate(self.models_):
            obs = M[:, j] > 0
            w = W_all[j]
            p = expit(Zb[obs] @ w)
            H = (Zb[obs] * (p * (1 - p))[:, None]).T @ Zb[obs] + prior_prec
            self.abilities_[name] = Ability("irt", {"w": w, "cov": np.linalg.inv(H)}, n_obs=int(obs.sum()))

        # Population prior for new models: mean and shrunk covariance of the known abilities.
        from sklearn.covariance import LedoitWolf

        self.prior_mean_ = W_all.mean(axis=0)
        if m >= 3:
            cov = LedoitWolf().fit(W_all).covariance_
        else:
            cov = np.diag(np.var(W_all, axis=0) + 1.0)
        self.prior_cov_ = cov + 1e-3 * np.eye(k + 1)
        return self

    def _init(self, Xs: np.ndarray, Y: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, ...]:
        """Deterministic SVD initialization on the column-centered, mean-filled score matrix."""
        n, d = Xs.shape
        m = Y.shape[1]
        k = self.n_dims
        col_mean = np.nanmean(Y, axis=0)
        filled = np.where(M > 0, Y, col_mean)
        U, S, Vt = np.linalg.svd(filled - col_mean, full_matrices=False)
        kk = min(k, len(S))
        theta0 = np.zeros((n, k))
        A0 = np.zeros((m, k))
        theta0[:, :kk] = U[:, :kk] * np.sqrt(S[:kk]) * np.sqrt(n / max(m, 1)) ** 0.5
        A0[:, :kk] = Vt[:kk].T * np.sqrt(S[:kk]) / np.sqrt(n / max(m, 1)) ** 0.5 * 4.0
        rng = np.random.default_rng(self.seed)
        theta0 += 1e-3 * rng.standard_normal(theta0.shape)
        b0 = np.log(np.clip(col_mean, 1e-3, 1 - 1e-3) / (1 - np.clip(col_mean, 1e-3, 1 - 1e-3)))
        G = Xs.T @ Xs + self.weight_reg * np.eye(d)
        W0 = np.linalg.solve(G, Xs.T @ theta0)
        return theta0, W0, np.zeros(k), A0, b0

    def _minimize(self, fg, v0: np.ndarray) -> np.ndarray:
        opt = minimize(fg, v0, jac=True, method="L-BFGS-B",
                       options={"maxiter": int(self.max_iter), "maxfun": int(self.max_iter) * 2})
        self.n_iter_ = int(opt.nit)
        self.train_loss_ = float(opt.fun)
        return opt.x

    def _fit_free(self, Xs, Yf, M, n_obs, theta0, W0, c0, A0, b0) -> list[np.ndarray]:
        n, d = Xs.shape
        m, k = A0.shape
        unpack = _unpacker([(n, k), (d, k), (k,), (m, k), (m,)])
        lt, lw, la = self.theta_reg, self.weight_reg, self.ability_reg
        scale = 1.0 / n_obs

        def fg(v: np.ndarray) -> tuple[float, np.ndarray]:
            theta, W, c, A, b = unpack(v)
            logits = theta @ A.T + b
            ll = np.sum(M * (np.logaddexp(0.0, logits) - Yf * logits))
            R = M * (expit(logits) - Yf)
            res = theta - Xs @ W - c
            loss = ll + 0.5 * lt * np.sum(res ** 2) + 0.5 * lw * np.sum(W ** 2) + 0.5 * la * np.sum(A ** 2)
            g_theta = R @ A + lt * res
            g_W = -lt * (Xs.T @ res) + lw * W
            g_c = -lt * res.sum(axis=0)
            g_A = R.T @ theta + la * A
            g_b = R.sum(axis=0)
            grad = np.concatenate([g_theta.ravel(), g_W.ravel(), g_c, g_A.ravel(), g_b])
            return loss * scale, grad * scale

        return unpack(self._minimize(fg, np.concatenate([theta0.ravel(), W0.ravel(), c0, A0.ravel(), b0])))

    def _fit_linear(self, Xs, Yf, M, n_obs, W0, c0, A0, b0) -> list[np.ndarray]:
        """Reduced-rank logistic regression: coordinates are exactly ``θ = W x + c``."""
        n, d = Xs.shape
        m, k = A0.shape
        unpack = _unpacker([(d, k), (k,), (m, k), (m,)])
        lw, la = self.weight_reg, self.ability_reg
        scale = 1.0 / n_obs

        def fg(v: np.ndarray) -> tuple[float, np.ndarray]:
            W, c, A, b = unpack(v)
            T = Xs @ W + c
            logits = T @ A.T + b
            ll = np.sum(M * (np.logaddexp(0.0, logits) - Yf * logits))
            R = M * (expit(logits) - Yf)
            loss = ll + 0.5 * lw * np.sum(W ** 2) + 0.5 * la * np.sum(A ** 2)
            g_T = R @ A
            grad = np.concatenate([(Xs.T @ g_T + lw * W).ravel(), g_T.sum(axis=0), (R.T @ T + la * A).ravel(),
                                   R.sum(axis=0)])
            return loss * scale, grad * scale

        return unpack(self._minimize(fg, np.concatenate([W0.ravel(), c0, A0.ravel(), b0])))

    def _refit_abilities(self, Z: np.ndarray, Yf: np.ndarray, M: np.ndarray, W_all: np.ndarray) -> np.ndarray:
        k = Z.shape[1]
        prec = np.diag(np.r_[np.full(k, self.ability_reg), 1e-4])
        Zb = np.column_stack([Z, np.ones(len(Z))])
        out = W_all.copy()
        for j in range(W_all.shape[0]):
            obs = M[:, j] > 0
            out[j], _ = bayes_logistic(Zb[obs], Yf[obs, j], np.zeros(k + 1), prec)
        return out

    # ------------------------------------------------------------------ space
    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "W_")
        X, _ = validate_xy(X)
        if X.shape[1] != self.W_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features; this space was fit on {self.W_.shape[0]}")
        return ((X - self.x_mean_) / self.x_scale_) @ self.W_ + self.c_

    def fit_ability(self, Z: np.ndarray, y: np.ndarray) -> Ability:
        check_is_fitted(self, "prior_mean_")
        Z = np.asarray(Z, dtype=float)
        y = np.asarray(y, dtype=float)
        if Z.ndim != 2 or Z.shape[1] != self.n_dims or len(y) != len(Z):
            raise ValueError(f"expected Z of shape (n, {self.n_dims}) and y of length n, got {Z.shape} and {y.shape}")
        prior_cov = self.prior_cov_ * float(self.prior_scale)
        prec = np.linalg.inv(prior_cov)
        if len(y) == 0:
            return Ability("irt", {"w": self.prior_mean_.copy(), "cov": prior_cov}, n_obs=0)
        Zb = np.column_stack([Z, np.ones(len(Z))])
        if self.onboard_prior == "mixture":
            w, cov = self._mixture_posterior(Zb, y)
        else:
            w, cov = bayes_logistic(Zb, y, self.prior_mean_, prec)
        return Ability("irt", {"w": w, "cov": cov}, n_obs=int(len(y)))

    def _mixture_posterior(self, Zb: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior of ``w`` under a mixture prior: "like one of the known models" or "like none of them".

        Components: ``N(w_j, τ Σ_pop)`` around each known model's ability (weight ``(1 − π₀)/m`` each) and
        the population prior ``N(μ_pop, s Σ_pop)`` (weight ``π₀``). Each component's posterior and evidence
        come from the Laplace approximation; the mixture posterior is moment-matched to one Gaussian.
        """
        prior_cov = self.prior_cov_ * float(self.prior_scale)
        comps = [(a.array("w"), self.prior_cov_ * float(self.mixture_tau)) for a in self.abilities_.values()]
        comps.append((self.prior_mean_, prior_cov))
        n_known = len(comps) - 1
        pi0 = float(self.mixture_novel)
        log_w = np.r_[np.full(n_known, np.log((1 - pi0) / max(n_known, 1))), np.log(pi0)]
        means, covs, log_ev = [], [], []
        for (mu, cov0), lw in zip(comps, log_w):
            prec = np.linalg.inv(cov0)
            w, cov = bayes_logistic(Zb, y, mu, prec)
            s = Zb @ w
            nll = float(np.sum(np.logaddexp(0.0, s) - y * s))
            dlt = w - mu
            ev = (-nll - 0.5 * dlt @ prec @ dlt - 0.5 * np.linalg.slogdet(cov0)[1]
                  + 0.5 * np.linalg.slogdet(cov)[1])
            means.append(w)
            covs.append(cov)
            log_ev.append(ev + lw)
        log_ev = np.asarray(log_ev)
        r = np.exp(log_ev - log_ev.max())
        r /= r.sum()
        means_a = np.asarray(means)
        mean = r @ means_a
        diff = means_a - mean
        cov = np.einsum("j,jab->ab", r, np.asarray(covs)) + (diff * r[:, None]).T @ diff
        return mean, cov

    def predict(self, Z: np.ndarray, ability: Ability) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "theta_cov_")
        w, cov = ability.array("w"), ability.array("cov")
        Zb = np.column_stack([Z, np.ones(len(Z))])
        mu = Zb @ w
        a = w[:-1]
        v_w = np.einsum("ij,jk,ik->i", Zb, cov, Zb)
        v = v_w + float(a @ self.theta_cov_ @ a)
        p = expit(mu / np.sqrt(1.0 + np.pi * v / 8.0))
        return p, _epistemic_sd(p, v_w)

    def predict_matrix(self, Z: np.ndarray, abilities: Sequence[Ability]) -> tuple[np.ndarray, np.ndarray]:
        if not abilities:
            return np.zeros((len(Z), 0)), np.zeros((len(Z), 0))
        Zb = np.column_stack([Z, np.ones(len(Z))])
        Wm = np.column_stack([a.array("w") for a in abilities])  # (k+1, m)
        mu = Zb @ Wm
        v_w = np.column_stack([np.einsum("ij,jk,ik->i", Zb, a.array("cov"), Zb) for a in abilities])
        v_theta = np.array([float(a.array("w")[:-1] @ self.theta_cov_ @ a.array("w")[:-1]) for a in abilities])
        p = expit(mu / np.sqrt(1.0 + np.pi * (v_w + v_theta) / 8.0))
        return p, _epistemic_sd(p, v_w)

    def select_anchors(self, Z: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
        """Information-maximizing anchors: greedy D-optimal design for a new model's ability.

        Maximizes the expected log-determinant of the posterior precision of ``w``, averaged over the
        known models (each plays "a typical new model"), so anchors land where models disagree and
        outcomes are uncertain, spread across the latent directions.
        """
        check_is_fitted(self, "abilities_")
        Z = np.asarray(Z, dtype=float)
        n = len(Z)
        if k >= n:
            return np.arange(n)
        if self.anchor_method == "random":
            return np.random.default_rng(seed).choice(n, size=k, replace=False)
        if self.anchor_method == "kcenter":
            from zerorouter_integrations.latent.base import greedy_kcenter

            return greedy_kcenter(Z, k, seed=seed)
        Zb = np.column_stack([Z, np.ones(n)])
        Wm = np.column_stack([a.array("w") for a in self.abilities_.values()])
        P = expit(Zb @ Wm)
        info = P * (1 - P)  # (n, m) Fisher weights
        prec0 = np.linalg.inv(self.prior_cov_)
        Minv = np.repeat(np.linalg.inv(prec0)[None], Wm.shape[1], axis=0)  # (m, k+1, k+1)
        chosen: list[int] = []
        available = np.ones(n, dtype=bool)
        jitter = 1e-9 * np.random.default_rng(seed).random(n)
        for _ in range(k):
            q = np.einsum("ij,mjk,ik->im", Zb, Minv, Zb)  # z^T M_m^-1 z
            gain = np.log1p(info * q).mean(axis=1) + jitter
            gain[~available] = -np.inf
            i = int(np.argmax(gain))
            chosen.append(i)
            available[i] = False
            z = Zb[i]
            for j in range(Minv.shape[0]):
                u = Minv[j] @ z
                Minv[j] -= info[i, j] * np.outer(u, u) / (1.0 + info[i, j] * (z @ u))
        return np.asarray(chosen)


def _epistemic_sd(p: np.ndarray, v_w: np.ndarray) -> np.ndarray:
    """SD of the success probability due to the ability's uncertainty (delta method, capped at 0.5).

    The coordinate residual ``Σ_θ`` enters the mean (probit approximation), not this SD: the SD says how
    unsure the router is about the *model*, which shrinks as anchors or feedback accumulate.
    """
    return np.minimum(p * (1 - p) * np.sqrt(v_w), 0.5)


def _ridge_cv(Xs: np.ndarray, T: np.ndarray, *, seed: int, alphas: Sequence[float] = (1.0, 10.0, 100.0, 1000.0),
              n_folds: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
    """Ridge regression ``T ≈ Xs W + c`` with alpha chosen by K-fold CV; also the out-of-fold residual covariance."""
    n, d = Xs.shape
    rng = np.random.default_rng(seed)
    folds = rng.permutation(n) % n_folds
    best = None
    for alpha in alphas:
        oof = np.zeros_like(T)
        for f in range(n_folds):
            tr, te = folds != f, folds == f
            W, c = _ridge(Xs[tr], T[tr], alpha)
            oof[te] = Xs[te] @ W + c
        err = float(np.mean((T - oof) ** 2))
        if best is None or err < best[0]:
            best = (err, alpha, oof)
    _, alpha, oof = best
    W, c = _ridge(Xs, T, alpha)
    resid = T - oof
    cov = np.atleast_2d(np.cov(resid, rowvar=False)) if n > 1 else np.zeros((T.shape[1], T.shape[1]))
    return W, c, cov, float(alpha), oof


def _unpacker(shapes: Sequence[tuple[int, ...]]):
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(v: np.ndarray) -> list[np.ndarray]:
        out, i = [], 0
        for s, z in zip(shapes, sizes):
            out.append(v[i:i + z].reshape(s))
            i += z
        return out

    return unpack


def _ridge(X: np.ndarray, T: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    xm, tm = X.mean(axis=0), T.mean(axis=0)
    Xc = X - xm
    n, d = X.shape
    if d <= n:
        W = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(d), Xc.T @ (T - tm))
    else:  # dual form
        W = Xc.T @ np.linalg.solve(Xc @ Xc.T + alpha * np.eye(n), T - tm)
    return W, tm - xm @ W
