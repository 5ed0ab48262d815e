"""ZeroRouter's universal latent space: a multidimensional item-response model with a text predictor.

Formulation
-----------
Every prompt ``i`` has latent coordinates ``θ_i ∈ R^k`` (``k = n_dims``, default 4) that describe
*what kind of difficulty* it poses; every model ``m`` has an ability. The probability that ``m``
answers ``i`` well is

    P(y_im = 1) = σ(a_m · θ_i + b_m)                                                  (1)

(scores in [0, 1], e.g. F1, are used as soft labels of the same Bernoulli likelihood).

**The space** is learned from many models at once and read off the text. A linear predictor maps the
prompt's features ``x_i`` (MiniLM embedding + cheap text features, standardized) to coordinates
``θ̂_i = W x_i + c``; training fits everything jointly by maximum a posteriori (L-BFGS):

    Σ_obs BCE(y_im, σ(a_m·θ_i + b_m)) + λ_θ/2 Σ_i ||θ_i − W x_i − c||² + λ_W/2 ||W||² + λ_a/2 Σ_m ||a_m||²

so the latent directions are those that both explain many models' outcomes and can be read off the
text. ``W`` is then refit by ridge regression of ``θ`` on ``x`` with the penalty chosen per dimension
by 5-fold cross-validation.

**Serve-time coordinates.** What the router knows about a new prompt is ``z(x) = [θ̂(x), φ(x)]``:
the predicted coordinates plus, with ``local_clusters = K > 0`` (default 32), the one-hot K-means
cluster ``φ`` of the prompt's features. Abilities ``w_m = [a_m, u_m, b_m]`` live on these
coordinates,

    P(y = 1 | x, m) = σ(a_m · θ̂(x) + u_m · φ(x) + b_m),                              (2)

and are estimated by Bayesian logistic regression on the *out-of-fold* ``θ̂`` of the training prompts
(``ability_coords="predicted"``), so a training prompt carries the same coordinate error as a prompt
seen at serve time and the fit is calibrated for it. The per-cluster offsets ``u_m`` (prior
``N(0, σ_u²)``, ``σ_u`` by empirical Bayes over the known models) hold what the low-rank space cannot
express about one model, e.g. a model that fails one task's answer format. Anchors, onboarding,
online feedback and prediction then all use the same coordinates. (``ability_coords="fitted"``
instead estimates ``(a_m, b_m)`` on the fitted ``θ`` and integrates the out-of-fold residual
covariance ``Σ_θ`` of ``θ − θ̂`` into predictions; it uses anchors more efficiently when (1) holds
exactly but is miscalibrated when it does not; see ``benchmarks/quality.py``.)

Why this formulation: (1) is model-agnostic (the space is learned from *many* models and no single
one defines it); a new model is a point ``w`` in a (k+K+1)-dimensional space estimable from ~100
anchors, and the Gaussian posterior of ``w`` gives calibrated uncertainty.

Onboarding a new model (``fit_ability``) is Bayesian logistic regression of its anchor scores on
``[z_i, 1]`` with the *population prior* ``N(μ_pop, prior_scale · Σ_pop)``: ``μ_pop`` is the mean of
the known models' abilities and ``Σ_pop`` their Ledoit-Wolf covariance, shrunk on the standardized
coordinates (``prior_shrinkage="standardized"``: correlations are pulled toward zero while each
coordinate keeps its own variance), with the prior SD of the bias ``b`` floored at ``min_bias_sd``
logits (a new release may lie outside the known models' range): with 10 anchors the estimate stays
near a typical model of the pool instead of jumping to "solves everything"; with 100 the data
dominate. The posterior covariance comes from the
Laplace approximation. Anchors are chosen by a greedy V-optimal design (``select_anchors``): each
one most reduces the expected posterior variance of the logit over the serve-time coordinates of
real prompts.

Prediction integrates the ability posterior ``Σ_w`` (and, in ``"fitted"`` mode, ``Σ_θ``) into the
logit variance ``v = z^T Σ_w z (+ a^T Σ_θ a)`` (``z = [θ̂, φ, 1]``) and uses the probit approximation
``p = σ(μ / sqrt(1 + π v / 8))``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from zerorouter_integrations.latent.base import Ability, LatentSpace, check_is_fitted, validate_xy

__all__ = ["IRTSpace", "bayes_logistic"]


def _bce_grad_setup(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
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


class IRTSpace(LatentSpace):
    """ZeroRouter's universal latent space (see the module docstring for the exact formulation).

    Parameters
    ----------
    n_dims : int, default=4
        Dimension ``k`` of the latent coordinates. Only a few directions of the outcome structure can
        be read off the text; more dimensions add ability parameters that anchors must pin down.
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
    coords : {"free", "linear"}, default="free"
        ``"free"``: training coordinates are free parameters tied to ``W x + c`` (the formulation
        above); ``"linear"``: they are exactly ``W x + c`` (a reduced-rank logistic regression).
    ability_coords : {"predicted", "fitted"}, default="predicted"
        Coordinates the abilities are estimated on: the out-of-fold predictions ``θ̂`` of the training
        prompts (what a prompt gets at serve time, so the coordinate error is part of the fit), or
        their fitted ``θ`` (the coordinate residual then enters predictions through ``Σ_θ``).
    local_clusters : int, default=32
        ``K > 0`` appends a one-hot K-means cluster of the prompt features to the coordinates, and each
        ability gets a per-cluster logit offset ``u_m`` (prior ``N(0, σ_u²)``, ``σ_u`` by empirical
        Bayes over the known models): what the low-rank space cannot express about one model.
    anchor_method : {"vopt", "dopt", "kcenter", "random"}, default="vopt"
        How :meth:`select_anchors` picks anchors (see there).
    prior_shrinkage : {"standardized", "identity"}, default="standardized"
        How the population covariance of the known abilities is shrunk (Ledoit-Wolf): on the
        standardized coordinates (correlations shrink, each coordinate keeps its variance), or
        toward a multiple of the identity.
    min_bias_sd : float, default=1.0
        Floor of the prior SD (logits) of a new model's bias ``b``: a new release is often better (or
        worse) than every known model, which the known models' spread alone would not allow from
        a few anchors. ``0`` disables the floor (with ``n_dims=8`` and ``prior_shrinkage="identity"``
        this reproduces the prior of earlier releases).
    ridge_alphas : sequence of float, default=(1, 10, 100, 300, 1000, 3000, 10000)
        Grid of the cross-validated ridge penalty of the coordinate predictor (chosen per dimension).

    Attributes
    ----------
    models_ : list of str
    abilities_ : dict of str to Ability
    W_, c_ : ndarray
        Predictor of coordinates from standardized features.
    x_mean_, x_scale_ : ndarray
        Feature standardization.
    theta_cov_ : ndarray of shape (k, k)
        Covariance of ``θ − θ̂`` added to predictions: the out-of-fold residual covariance in
        ``"fitted"`` mode, zero in ``"predicted"`` mode (the abilities already absorb it).
    predictor_alpha_ : ndarray of shape (k,)
        Ridge penalty chosen for each coordinate.
    local_sd_ : float
        ``σ_u``, the prior SD of the per-cluster offsets (0 without local clusters).
    prior_mean_, prior_cov_ : ndarray
        Population prior of abilities (from the known models).
    train_Z_ : ndarray of shape (n_train, k + K)
        Coordinates of the training prompts the abilities were estimated on (what
        :meth:`training_coordinates` returns, e.g. for anchors).
    centers_ : ndarray of shape (K, d) or None
        Cluster centres (standardized features) when ``local_clusters > 0``.
    target_moment_ : ndarray
        ``E[z zᵀ]`` of serve-time coordinates ``z = [θ̂, φ, 1]`` over the training prompts (anchor
        design).
    """

    kind = "irt"

    def __init__(
        self,
        *,
        n_dims: int = 4,
        theta_reg: float = 1.0,
        weight_reg: float = 10.0,
        ability_reg: float = 0.1,
        prior_scale: float = 1.0,
        max_iter: int = 400,
        seed: int = 0,
        coords: str = "free",
        ability_coords: str = "predicted",
        local_clusters: int = 32,
        anchor_method: str = "vopt",
        prior_shrinkage: str = "standardized",
        min_bias_sd: float = 1.0,
        ridge_alphas: Sequence[float] = (1.0, 10.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0),
    ):
        self.n_dims = n_dims
        self.theta_reg = theta_reg
        self.weight_reg = weight_reg
        self.ability_reg = ability_reg
        self.prior_scale = prior_scale
        self.max_iter = max_iter
        self.seed = seed
        self.coords = coords
        self.ability_coords = ability_coords
        self.local_clusters = local_clusters
        self.anchor_method = anchor_method
        self.prior_shrinkage = prior_shrinkage
        self.min_bias_sd = min_bias_sd
        self.ridge_alphas = ridge_alphas

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, Y: np.ndarray, models: Sequence[str]) -> IRTSpace:
        X, Y = validate_xy(X, Y, models)
        self._check_params()
        from threadpoolctl import threadpool_limits

        # The fit is made of many small linear-algebra calls (L-BFGS on ~10^4 numbers, Newton steps on
        # 40-dimensional abilities): BLAS threads only add synchronization, and on a busy machine they
        # make it an order of magnitude slower.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(X, Y, models)

    def _fit(self, X: np.ndarray, Y: np.ndarray, models: Sequence[str]) -> IRTSpace:
        n, _d = X.shape
        m = Y.shape[1]
        k = self.n_dims
        self.x_mean_ = X.mean(axis=0)
        self.x_scale_ = X.std(axis=0) + 1e-8
        Xs = (X - self.x_mean_) / self.x_scale_
        Yf, M, n_obs = _bce_grad_setup(Y)
        theta0, W0, c0, A0, b0 = self._init(Xs, Y, M)

        if self.coords == "free":
            theta, W, c, A, b = self._fit_free(Xs, Yf, M, n_obs, theta0, W0, c0, A0, b0)
        else:
            W, c, A, b = self._fit_linear(Xs, Yf, M, n_obs, W0, c0, A0, b0)
            theta = Xs @ W + c
        self.models_ = list(models)

        if self.coords == "free":
            # Refit the predictor with cross-validated ridge; honest residual covariance from out-of-fold fits.
            self.W_, self.c_, self.theta_cov_, self.predictor_alpha_, oof = _ridge_cv(
                Xs, theta, seed=self.seed, alphas=self.ridge_alphas
            )
        else:
            self.W_, self.c_, oof = W, c, theta
            self.theta_cov_ = np.zeros((k, k))
            self.predictor_alpha_ = np.full(k, float(self.weight_reg))
        base = theta
        if self.ability_coords == "predicted":
            # Abilities estimated on the coordinates a prompt gets at serve time (out-of-fold θ̂), so they
            # are calibrated for θ̂; the coordinate residual is then part of the fit.
            base = oof
            self.theta_cov_ = np.zeros((k, k))

        K = int(self.local_clusters)
        self.centers_ = None
        if K > 0:
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=min(K, n), n_init=2, random_state=self.seed).fit(Xs)
            self.centers_ = km.cluster_centers_
        Z = np.column_stack([base, self._local(Xs)])
        W_all = np.column_stack([A, np.zeros((m, Z.shape[1] - k)), b])  # [a, u, b]

        # Known models: abilities (with Laplace covariance) on the training coordinates.
        la = self.ability_reg
        self.abilities_ = {}
        refit = self.ability_coords == "predicted" or Z.shape[1] > k
        if refit:
            W_all, covs, sd_u = self._fit_known(Z, Yf, M, W_all)
            self.local_sd_ = sd_u if Z.shape[1] > k else 0.0
        else:
            self.local_sd_ = 0.0
            Zb = np.column_stack([Z, np.ones(n)])
            prior_prec = np.diag(np.r_[np.full(k, la), 1e-4])
            covs = []
            for j in range(m):
                obs = M[:, j] > 0
                p = expit(Zb[obs] @ W_all[j])
                H = (Zb[obs] * (p * (1 - p))[:, None]).T @ Zb[obs] + prior_prec
                covs.append(np.linalg.inv(H))
        for j, name in enumerate(self.models_):
            self.abilities_[name] = Ability("irt", {"w": W_all[j], "cov": covs[j]}, n_obs=int(M[:, j].sum()))
        self.train_Z_ = Z

        # Population prior for new models: mean and shrunk covariance of the known abilities.
        self.prior_mean_ = W_all.mean(axis=0)
        self.prior_cov_ = _population_cov(W_all, standardized=self.prior_shrinkage == "standardized")
        # A new release often lies outside the known models' range of overall ability (and a few known
        # models underestimate the spread): the bias gets at least ``min_bias_sd`` logits of prior SD.
        self.prior_cov_[-1, -1] = max(self.prior_cov_[-1, -1], float(self.min_bias_sd) ** 2)

        # Serve-time coordinates of the training prompts, for anchor design.
        zt = np.column_stack([oof, self._local(Xs), np.ones(n)])
        self.target_moment_ = zt.T @ zt / n
        return self

    def _check_params(self) -> None:
        if not isinstance(self.n_dims, int) or self.n_dims < 1:
            raise ValueError(f"n_dims must be a positive int, got {self.n_dims!r}")
        for name, allowed in (
            ("coords", ("free", "linear")),
            ("ability_coords", ("fitted", "predicted")),
            ("anchor_method", ("dopt", "vopt", "kcenter", "random")),
            ("prior_shrinkage", ("standardized", "identity")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not isinstance(self.local_clusters, int) or self.local_clusters < 0:
            raise ValueError(f"local_clusters must be an int ≥ 0, got {self.local_clusters!r}")
        if not np.isfinite(self.min_bias_sd) or self.min_bias_sd < 0:
            raise ValueError(f"min_bias_sd must be a finite number ≥ 0, got {self.min_bias_sd!r}")

    def _local(self, Xs: np.ndarray) -> np.ndarray:
        """One-hot nearest cluster of standardized features (no columns without local clusters)."""
        centers = getattr(self, "centers_", None)
        if centers is None:
            return np.zeros((len(Xs), 0))
        d2 = (Xs**2).sum(axis=1)[:, None] - 2 * Xs @ centers.T + (centers**2).sum(axis=1)[None, :]
        out = np.zeros((len(Xs), len(centers)))
        out[np.arange(len(Xs)), np.argmin(d2, axis=1)] = 1.0
        return out

    def _serving_map(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, o)`` with ``X A + o = [θ̂, ‖c‖² − 2 x̃·c for every centre c]`` on raw features ``X``.

        The standardization is folded into one matrix, so :meth:`transform` costs one product; the
        second block ranks the centres exactly as ``‖x̃ − c‖²`` does (``‖x̃‖²`` is common to all). Cached
        while the learned arrays are the same objects.
        """
        parts = (self.W_, self.c_, self.x_mean_, self.x_scale_, getattr(self, "centers_", None))
        cached = self.__dict__.get("_serving_cache")
        if cached is None or not all(map(operator.is_, cached[0], parts)):
            W, c, mean, scale, centers = parts
            A, o = W / scale[:, None], c - (mean / scale) @ W
            if centers is not None:
                Cs = (centers / scale[None, :]).T  # x̃·c = x·(c/scale) − (mean/scale)·c
                A = np.concatenate([A, -2.0 * Cs], axis=1)
                o = np.concatenate([o, (centers**2).sum(axis=1) + 2.0 * (mean / scale) @ centers.T])
            cached = (parts, np.ascontiguousarray(A), o)
            self.__dict__["_serving_cache"] = cached
        return cached[1], cached[2]

    def _fit_known(
        self, Z: np.ndarray, Yf: np.ndarray, M: np.ndarray, W0: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray], float]:
        """Known abilities ``[a, u, b]`` by Bayesian logistic regression on ``Z``; σ_u by empirical Bayes."""
        k = self.n_dims
        n_loc = Z.shape[1] - k
        Zb = np.column_stack([Z, np.ones(len(Z))])
        mean0 = W0.copy()
        if self.ability_coords == "predicted":
            mean0[:, :k] = 0.0

        def run(sd_u: float) -> tuple[np.ndarray, list[np.ndarray]]:
            prec = np.diag(np.r_[np.full(k, self.ability_reg), np.full(n_loc, 1.0 / sd_u**2), 1e-4])
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
        from scipy.optimize import minimize  # imported here: loading a fitted space must stay fast

        opt = minimize(
            fg,
            v0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": int(self.max_iter), "maxfun": int(self.max_iter) * 2},
        )
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
            loss = ll + 0.5 * lt * np.sum(res**2) + 0.5 * lw * np.sum(W**2) + 0.5 * la * np.sum(A**2)
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
        _n, d = Xs.shape
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
            loss = ll + 0.5 * lw * np.sum(W**2) + 0.5 * la * np.sum(A**2)
            g_T = R @ A
            grad = np.concatenate(
                [(Xs.T @ g_T + lw * W).ravel(), g_T.sum(axis=0), (R.T @ T + la * A).ravel(), R.sum(axis=0)]
            )
            return loss * scale, grad * scale

        return unpack(self._minimize(fg, np.concatenate([W0.ravel(), c0, A0.ravel(), b0])))

    # ------------------------------------------------------------------ space
    @property
    def n_coords(self) -> int:
        """Columns of the latent coordinates ``Z`` (``n_dims`` plus the local clusters, if any)."""
        centers = getattr(self, "centers_", None)
        return int(self.n_dims + (0 if centers is None else len(centers)))

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "W_")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.W_.shape[0]:
            validate_xy(X)  # names a wrong rank
            raise ValueError(f"X has {X.shape[1]} features; this space was fit on {self.W_.shape[0]}")
        A, o = self._serving_map()
        out = X @ A + o
        if not np.isfinite(out).all():  # a non-finite feature makes its rows non-finite: name it
            validate_xy(X)
        k = self.n_dims
        if out.shape[1] == k:
            return out
        out[:, k:] = (
            np.arange(out.shape[1] - k) == np.argmin(out[:, k:], axis=1)[:, None]
        )  # nearest centre, one-hot
        return out

    def fit_ability(self, Z: np.ndarray, y: np.ndarray) -> Ability:
        check_is_fitted(self, "prior_mean_")
        Z = np.asarray(Z, dtype=float)
        y = np.asarray(y, dtype=float)
        if Z.ndim != 2 or Z.shape[1] != self.n_coords or len(y) != len(Z):
            raise ValueError(
                f"expected Z of shape (n, {self.n_coords}) and y of length n, got {Z.shape} and {y.shape}"
            )
        prior_cov = self.prior_cov_ * float(self.prior_scale)
        prec = np.linalg.inv(prior_cov)
        if len(y) == 0:
            return Ability("irt", {"w": self.prior_mean_.copy(), "cov": prior_cov}, n_obs=0)
        Zb = np.column_stack([Z, np.ones(len(Z))])
        w, cov = bayes_logistic(Zb, y, self.prior_mean_, prec)
        return Ability("irt", {"w": w, "cov": cov}, n_obs=len(y))

    def _theta_var(self, w: np.ndarray) -> float:
        a = w[: self.n_dims]
        return float(a @ self.theta_cov_ @ a)

    def predict(self, Z: np.ndarray, ability: Ability) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "theta_cov_")
        w, cov = ability.array("w"), ability.array("cov")
        Zb = np.column_stack([Z, np.ones(len(Z))])
        mu = Zb @ w
        v_w = np.einsum("ij,jk,ik->i", Zb, cov, Zb)
        v = v_w + self._theta_var(w)
        p = expit(mu / np.sqrt(1.0 + np.pi * v / 8.0))
        return p, _epistemic_sd(p, v_w)

    def stack_abilities(self, abilities: Sequence[Ability]) -> _IRTStack:
        """Abilities stacked for vectorized prediction.

        Besides the ``w`` columns and the covariances side by side (any ``Z``), it keeps the pieces of
        the logit mean and variance for serve-time coordinates ``z = [θ, e_c, 1]`` whose local part is
        one-hot (cluster ``c``): ``μ = θ·a + u_c + b`` and
        ``zᵀ Σ z = θᵀ Σ_θθ θ + 2 θᵀ (Σ_θc + Σ_θb) + (Σ_cc + 2 Σ_cb + Σ_bb)``, a few dozen
        multiply-adds per model instead of ``(k + K + 1)²``.
        """
        check_is_fitted(self, "theta_cov_")
        arrays = [(a.array("w"), a.array("cov")) for a in abilities]
        p, k = self.n_coords + 1, self.n_dims
        n_loc = p - 1 - k
        m = len(arrays)
        if not m:
            return _IRTStack(
                np.zeros((p, 0)),
                np.zeros((p, 0)),
                np.zeros(0),
                np.zeros((k * k, 0)),
                np.zeros((max(n_loc, 1), k, 0)),
                np.zeros((max(n_loc, 1), 0)),
            )
        Wm = np.column_stack([w for w, _ in arrays])  # (p, m)
        covs = np.stack([c for _, c in arrays])  # (m, p, p)
        cov_cols = np.ascontiguousarray(covs.transpose(1, 0, 2).reshape(p, -1))  # (p, m·p)
        v_theta = np.array([self._theta_var(w) for w, _ in arrays])
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
        return _IRTStack(Wm, cov_cols, v_theta, quad, np.ascontiguousarray(by_cluster), offset)

    def predict_stacked(self, Z: np.ndarray, stacked: _IRTStack) -> tuple[np.ndarray, np.ndarray]:
        n, m = len(Z), stacked.W.shape[1]
        if m == 0:
            return np.zeros((n, 0)), np.zeros((n, 0))
        k = self.n_dims
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
        return p, _epistemic_sd(p, v_w)

    def select_anchors(self, Z: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
        """Anchors that pin down a new model's ability, among candidates at training coordinates ``Z``.

        ``anchor_method``:

        * ``"dopt"``: greedy D-optimal design, maximizing the expected log-determinant of the posterior
          precision of ``w`` averaged over the known models (each plays "a typical new model");
        * ``"vopt"``: greedy V-optimal design, minimizing the expected posterior variance of the logit
          at serve-time coordinates (``E[z zᵀ]`` of the training prompts' ``θ̂``), so anchors inform
          the directions that vary between real prompts rather than every latent direction;
        * ``"kcenter"``: farthest-point cover of ``Z``; ``"random"``: a uniform sample (seeded).
        """
        check_is_fitted(self, "abilities_")
        Z = np.asarray(Z, dtype=float)
        n = len(Z)
        if k >= n:
            return np.arange(n)
        if self.anchor_method == "random":
            return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))
        if self.anchor_method == "kcenter":
            from zerorouter_integrations.latent.base import greedy_kcenter

            return greedy_kcenter(Z, k, seed=seed)
        Zb = np.column_stack([Z, np.ones(n)])
        Wm = np.column_stack([a.array("w") for a in self.abilities_.values()])
        vopt = self.anchor_method == "vopt" and getattr(self, "target_moment_", None) is not None
        if vopt and Wm.shape[1] > 8:  # a spread of typical models is enough for the design
            order = np.argsort(Wm[-1])
            Wm = Wm[:, order[np.linspace(0, len(order) - 1, 8).round().astype(int)]]
        info = expit(Zb @ Wm)
        info *= 1 - info  # (n, m) Fisher weights
        n_m = Wm.shape[1]
        S = self.target_moment_ if vopt else None
        # Every model starts from the population prior; rank-one updates keep, for each candidate z,
        # q = zᵀ Σ_m z and (V-optimal) r = zᵀ Σ_m S Σ_m z current in O(n p) per pick and model.
        Sig = np.repeat(self.prior_cov_[None], n_m, axis=0)
        U0 = Zb @ self.prior_cov_
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
                if vopt:
                    Su = S @ u
                    h = Zb @ (Sig[j] @ Su)
                    r[:, j] -= 2.0 * c * h * g - c * c * float(u @ Su) * g * g
                q[:, j] -= c * g * g
                Sig[j] -= c * np.outer(u, u)
        return np.asarray(chosen)


def _population_cov(W: np.ndarray, *, standardized: bool = True) -> np.ndarray:
    """Shrunk covariance of the known models' abilities (rows of ``W``), the prior of a new model.

    Ledoit-Wolf shrinks toward a multiple of the identity. Ability coordinates have very different
    scales (the bias spreads over logits, a cluster offset over a tenth of that), so by default the
    shrinkage is applied to the correlation structure (each coordinate standardized, then rescaled):
    every coordinate keeps its own variance and only the correlations are pulled toward zero.
    """
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


@dataclass(frozen=True)
class _IRTStack:
    """A pool's abilities stacked for :meth:`IRTSpace.predict_stacked`."""

    W: np.ndarray  # (p, m): one column [a, u, b] per model
    cov_cols: np.ndarray  # (p, m·p): the models' posterior covariances side by side
    v_theta: np.ndarray  # (m,): aᵀ Σ_θ a, the coordinate residual's share of the logit variance
    quad: np.ndarray  # (k², m): θ⊗θ ↦ θᵀ Σ_θθ θ
    by_cluster: np.ndarray  # (K, k, 2m): θ ↦ [2 θᵀ(Σ_θc + Σ_θb) | θ·a] for one-hot cluster c
    offset: np.ndarray  # (K, 2m): [Σ_cc + 2 Σ_cb + Σ_bb | u_c + b]


def _epistemic_sd(p: np.ndarray, v_w: np.ndarray) -> np.ndarray:
    """SD of the success probability due to the ability's uncertainty (delta method, capped at 0.5).

    The coordinate residual ``Σ_θ`` enters the mean (probit approximation), not this SD: the SD says how
    unsure the router is about the *model*, which shrinks as anchors or feedback accumulate.
    """
    return np.minimum(p * (1 - p) * np.sqrt(v_w), 0.5)


def _ridge_cv(
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
        for ai, (W, c) in enumerate(_ridge_path(Xs[tr], T[tr], alphas)):
            oofs[ai][te] = Xs[te] @ W + c
    err = ((oofs - T[None]) ** 2).mean(axis=1)  # (alphas, k)
    best = np.argmin(err, axis=0)
    cols = np.arange(T.shape[1])
    oof = oofs[best, :, cols].T
    W = np.zeros((d, T.shape[1]))
    c = np.zeros(T.shape[1])
    path = _ridge_path(Xs, T, [alphas[a] for a in np.unique(best)])
    for (Wa, ca), ai in zip(path, np.unique(best)):
        sel = best == ai
        W[:, sel], c[sel] = Wa[:, sel], ca[sel]
    resid = T - oof
    cov = np.atleast_2d(np.cov(resid, rowvar=False)) if n > 1 else np.zeros((T.shape[1], T.shape[1]))
    return W, c, cov, np.asarray([alphas[a] for a in best]), oof


def _unpacker(shapes: Sequence[tuple[int, ...]]):
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(v: np.ndarray) -> list[np.ndarray]:
        out, i = [], 0
        for s, z in zip(shapes, sizes):
            out.append(v[i : i + z].reshape(s))
            i += z
        return out

    return unpack


def _ridge_path(X: np.ndarray, T: np.ndarray, alphas: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray]]:
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


def _ridge(X: np.ndarray, T: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    xm, tm = X.mean(axis=0), T.mean(axis=0)
    Xc = X - xm
    n, d = X.shape
    if d <= n:
        W = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(d), Xc.T @ (T - tm))
    else:  # dual form
        W = Xc.T @ np.linalg.solve(Xc @ Xc.T + alpha * np.eye(n), T - tm)
    return W, tm - xm @ W
