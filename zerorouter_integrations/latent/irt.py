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

import numpy as np

from zerorouter_integrations.extras import need
from zerorouter_integrations.latent import bayes, stacking
from zerorouter_integrations.latent.base import Ability, LatentSpace, check_is_fitted, validate_xy
from zerorouter_integrations.latent.bayes import bayes_logistic
from zerorouter_integrations.latent.clusters import coarse_groups, nearest_one_hot
from zerorouter_integrations.latent.design import greedy_logit_design
from zerorouter_integrations.latent.irt_fit import fit_free, fit_known, fit_linear, laplace_covs, svd_init
from zerorouter_integrations.latent.irt_serving import IRTStack, predict_irt_stacked, serving_map, stack_irt
from zerorouter_integrations.special import expit

__all__ = ["IRTSpace", "bayes_logistic"]


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
    stack : bool, default=True
        Blend the prediction (2) with the model's smoothed mean score in the prompt's local cluster,
        in its coarse group of clusters, and overall, with convex weights ``stack_weights_`` chosen
        by out-of-fold cross-entropy on the training prompts, each known model validated as if it
        were new (under the other models' prior), then moved toward the overall means where the
        blend's preferences for other models than the best one lose out of fold
        (:mod:`~zerorouter_integrations.latent.stacking`): where the low-rank space does not explain
        a table, the cluster and overall estimates take over; where it does, the weights stay at
        ``(1, 0, 0, 0)``.
    stack_folds, stack_anchor_rows : int, default=3, 100
        Folds of that validation; in each, every known model's ability is re-estimated from the other
        folds' prompts, all of them and ``stack_anchor_rows`` of them (like a new model's anchors).
    cluster_smoothing : float, default=2.0
        Pseudo-counts pulling each cluster's mean score toward the model's overall mean.

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
    stack_weights_ : ndarray of shape (4,)
        Weights of the latent prediction, the local-cluster mean, the overall mean and the coarse-group
        mean (:data:`~zerorouter_integrations.latent.stacking.CANDIDATES`; ``(1, 0, 0, 0)`` without
        stacking; artifacts of earlier releases hold the first three and behave so).
    stack_losses_ : dict
        Out-of-fold cross-entropy of each candidate, of the least-loss blend and of the blend kept.
    coarse_groups_ : ndarray of shape (K,) or None
        Coarse group of each local cluster (K-means of the centres, ``K // 4`` groups).
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
        stack: bool = True,
        stack_folds: int = 3,
        stack_anchor_rows: int = 100,
        cluster_smoothing: float = 2.0,
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
        self.stack = stack
        self.stack_folds = stack_folds
        self.stack_anchor_rows = stack_anchor_rows
        self.cluster_smoothing = cluster_smoothing

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, Y: np.ndarray, models: Sequence[str]) -> IRTSpace:
        X, Y = validate_xy(X, Y, models)
        self._check_params()
        need("fit", "fitting the IRT latent space")
        from threadpoolctl import threadpool_limits  # comes with scikit-learn

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
        Yf, M, n_obs = bayes.bce_setup(Y)
        theta0, W0, c0, A0, b0 = svd_init(Xs, Y, M, k=k, weight_reg=self.weight_reg, seed=self.seed)

        if self.coords == "free":
            regs = (self.theta_reg, self.weight_reg, self.ability_reg)
            (theta, W, c, A, b), self.n_iter_, self.train_loss_ = fit_free(
                Xs, Yf, M, n_obs, theta0, W0, c0, A0, b0, regs=regs, max_iter=self.max_iter
            )
        else:
            (W, c, A, b), self.n_iter_, self.train_loss_ = fit_linear(
                Xs,
                Yf,
                M,
                n_obs,
                W0,
                c0,
                A0,
                b0,
                regs=(self.weight_reg, self.ability_reg),
                max_iter=self.max_iter,
            )
            theta = Xs @ W + c
        self.models_ = list(models)

        if self.coords == "free":
            # Refit the predictor with cross-validated ridge; honest residual covariance from out-of-fold fits.
            self.W_, self.c_, self.theta_cov_, self.predictor_alpha_, oof = bayes.ridge_cv(
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
        self.coarse_groups_ = None
        if K > 0:
            need("fit", "fitting the IRT space's local clusters")
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=min(K, n), n_init=2, random_state=self.seed).fit(Xs)
            self.centers_ = km.cluster_centers_
            self.coarse_groups_ = coarse_groups(
                self.centers_, np.bincount(km.labels_, minlength=len(self.centers_)), seed=self.seed
            )
        local = nearest_one_hot(Xs, self.centers_)  # the training prompts' clusters, one-hot
        Z = np.column_stack([base, local])
        W_all = np.column_stack([A, np.zeros((m, Z.shape[1] - k)), b])  # [a, u, b]

        # Known models: abilities (with Laplace covariance) on the training coordinates.
        la = self.ability_reg
        self.abilities_ = {}
        refit = self.ability_coords == "predicted" or Z.shape[1] > k
        if refit:
            center = self.ability_coords == "predicted"
            W_all, covs, sd_u = fit_known(Z, Yf, M, W_all, k=k, ability_reg=self.ability_reg, center=center)
            self.local_sd_ = sd_u if Z.shape[1] > k else 0.0
        else:
            self.local_sd_ = 0.0
            covs = laplace_covs(Z, M, W_all, np.diag(np.r_[np.full(k, la), 1e-4]))
        for j, name in enumerate(self.models_):
            obs = M[:, j] > 0
            params = {"w": W_all[j], "cov": covs[j], **self._cluster_params(Z[obs], Yf[obs, j])}
            self.abilities_[name] = Ability("irt", params, n_obs=int(obs.sum()))
        self.train_Z_ = Z

        # Population prior for new models: mean and shrunk covariance of the known abilities.
        self.prior_mean_ = W_all.mean(axis=0)
        self.prior_cov_ = bayes.population_cov(W_all, standardized=self.prior_shrinkage == "standardized")
        # A new release often lies outside the known models' range of overall ability (and a few known
        # models underestimate the spread): the bias gets at least ``min_bias_sd`` logits of prior SD.
        self.prior_cov_[-1, -1] = max(
            self.prior_cov_[-1, -1], float(self.min_bias_sd) ** 2
        )  # see prior_without

        # Serve-time coordinates of the training prompts, for anchor design.
        zt = np.column_stack([oof, local, np.ones(n)])
        self.target_moment_ = zt.T @ zt / n
        self.stack_weights_ = stacking.plain_weights()
        self.stack_losses_: dict[str, float] = {}
        if self.stack:
            self._fit_stack(Z, np.where(M > 0, Yf, np.nan))
        return self

    def _cluster_params(self, Z: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray | float]:
        """:func:`~zerorouter_integrations.latent.stacking.cluster_params` of the local block of ``Z``."""
        groups = getattr(self, "coarse_groups_", None)
        return stacking.cluster_params(Z[:, self.n_dims :], y, float(self.cluster_smoothing), groups)

    def _fit_stack(self, Z: np.ndarray, Y: np.ndarray) -> None:
        """``stack_weights_`` by out-of-fold loss (:func:`~zerorouter_integrations.latent.stacking.fit_stack_weights`)."""
        self.stack_weights_, self.stack_losses_ = stacking.fit_stack_weights(
            self,
            Z,
            Y,
            np.stack([a.array("w") for a in (self.abilities_ or {}).values()]),  # in models_ order
            fit_under=self._fit_ability_under,
            standardized=self.prior_shrinkage == "standardized",
            min_bias_sd=float(self.min_bias_sd),
            folds=int(self.stack_folds),
            anchor_rows=int(self.stack_anchor_rows),
            seed=self.seed + 1,
        )

    def candidate_predictions(self, Z: np.ndarray, ability: Ability) -> np.ndarray:
        """(n × 4) predictions of the stacked candidates (:data:`~zerorouter_integrations.latent.stacking.CANDIDATES`):
        latent model, local-cluster mean, overall mean, coarse-group mean."""
        return stacking.candidate_columns(self._predict_latent(Z, ability)[0], Z[:, self.n_dims :], ability)

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
        if not isinstance(self.stack_folds, int) or self.stack_folds < 2:
            raise ValueError(f"stack_folds must be an int ≥ 2, got {self.stack_folds!r}")

    def _serving_map(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, o)`` with ``X A + o = [θ̂, ‖c‖² − 2 x̃·c for every centre c]`` on raw features ``X``.

        The standardization is folded into one matrix, so :meth:`transform` costs one product; the
        second block ranks the centres exactly as ``‖x̃ − c‖²`` does (``‖x̃‖²`` is common to all). Cached
        while the learned arrays are the same objects.
        """
        parts = (self.W_, self.c_, self.x_mean_, self.x_scale_, getattr(self, "centers_", None))
        cached = self.__dict__.get("_serving_cache")
        if cached is None or not all(map(operator.is_, cached[0], parts)):
            cached = (parts, *serving_map(*parts))
            self.__dict__["_serving_cache"] = cached
        return cached[1], cached[2]

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
        return self._fit_ability_under(Z, y, self.prior_mean_, self.prior_cov_)

    def _fit_ability_under(
        self, Z: np.ndarray, y: np.ndarray, prior_mean: np.ndarray, prior_cov: np.ndarray
    ) -> Ability:
        """:meth:`fit_ability` under the population prior ``N(prior_mean, prior_scale · prior_cov)``."""
        prior_cov = prior_cov * float(self.prior_scale)
        prec = np.linalg.inv(prior_cov)
        if len(y) == 0:
            typical = stacking.typical_cluster_params(list((self.abilities_ or {}).values()))
            return Ability("irt", {"w": prior_mean.copy(), "cov": prior_cov, **typical}, n_obs=0)
        Zb = np.column_stack([Z, np.ones(len(Z))])
        w, cov = bayes_logistic(Zb, y, prior_mean, prec)
        return Ability("irt", {"w": w, "cov": cov, **self._cluster_params(Z, y)}, n_obs=len(y))

    def _theta_var(self, w: np.ndarray) -> float:
        a = w[: self.n_dims]
        return float(a @ self.theta_cov_ @ a)

    def predict(self, Z: np.ndarray, ability: Ability) -> tuple[np.ndarray, np.ndarray]:
        p, sd = self._predict_latent(Z, ability)
        weights = getattr(self, "stack_weights_", None)
        return stacking.blend(p, Z[:, self.n_dims :], ability, weights), sd

    def _predict_latent(self, Z: np.ndarray, ability: Ability) -> tuple[np.ndarray, np.ndarray]:
        """Prediction (2) alone, with the probit approximation of the ability's uncertainty."""
        check_is_fitted(self, "theta_cov_")
        w, cov = ability.array("w"), ability.array("cov")
        Zb = np.column_stack([Z, np.ones(len(Z))])
        mu = Zb @ w
        v_w = np.einsum("ij,jk,ik->i", Zb, cov, Zb)
        v = v_w + self._theta_var(w)
        p = expit(mu / np.sqrt(1.0 + np.pi * v / 8.0))
        return p, bayes.epistemic_sd(p, v_w)

    def stack_abilities(self, abilities: Sequence[Ability]) -> IRTStack:
        """Abilities stacked for vectorized prediction (:func:`~zerorouter_integrations.latent.irt_serving.stack_irt`)."""
        check_is_fitted(self, "theta_cov_")
        weights = stacking.active_weights(getattr(self, "stack_weights_", None))
        return stack_irt(abilities, self.n_dims, self.n_coords, self.theta_cov_, weights)

    def predict_stacked(self, Z: np.ndarray, stacked: IRTStack) -> tuple[np.ndarray, np.ndarray]:
        return predict_irt_stacked(Z, stacked, self.n_dims)

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
        Wm = np.column_stack([a.array("w") for a in (self.abilities_ or {}).values()])
        vopt = self.anchor_method == "vopt" and getattr(self, "target_moment_", None) is not None
        return greedy_logit_design(
            Z, Wm, self.prior_cov_, k, target_moment=self.target_moment_ if vopt else None, seed=seed
        )
