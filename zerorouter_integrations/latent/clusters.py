"""UniRoute's cluster-based representations (arXiv 2502.08773), behind the :class:`LatentSpace` interface.

* :class:`KMeansSpace`: K-means on prompt features; a prompt's coordinates are the one-hot of its
  cluster; a model is its vector of per-cluster success rates (1 − error), estimated from whatever
  scored prompts it has (training data or ~100 anchors) with Beta smoothing toward the model's own
  overall rate.
* :class:`LearnedMapSpace`: the learned cluster map: a softmax map ``Z = softmax(X V)`` trained so
  that ``P(good) = Z · ψ_m`` fits the known models' outcomes; a new model's ψ is the Z-weighted
  average of its anchor scores, smoothed the same way. The map has many more parameters than a
  small table has prompts, so its clusters can separate the training outcomes better than they
  separate new prompts: the prediction is shrunk toward the model's overall rate,
  ``P = r̄ + α (Z · ψ − r̄)``, with ``α ∈ [0, 1]`` chosen on training prompts the map did not see
  (``α = 0`` is the per-model mean, so on those prompts it can never do worse than the mean).

Routing with either is UniRoute's rule ``argmin_m err_m(x) + λ·cost_m`` with ``err = 1 − P(good)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zerorouter_integrations.extras import need
from zerorouter_integrations.latent.base import Ability, LatentSpace, check_is_fitted, validate_xy
from zerorouter_integrations.special import softmax

__all__ = ["KMeansSpace", "LearnedMapSpace", "cluster_rates", "coarse_groups", "nearest_one_hot"]


def cluster_rates(Z: np.ndarray, y: np.ndarray, smoothing: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Smoothed per-cluster mean scores from (soft) assignments ``Z`` (n × K) and scores ``y``.

    Returns ``(rate, mass, overall)``: each cluster's mean score with ``smoothing`` pseudo-counts at
    the overall mean, the assignment mass per cluster, and the overall mean (0.5 without scores).
    """
    overall = float(np.mean(y)) if len(y) else 0.5
    overall = float(np.clip(overall, 1e-3, 1 - 1e-3))
    mass = Z.sum(axis=0)
    rate = (Z.T @ y + smoothing * overall) / (mass + smoothing)
    return rate, mass, overall


def nearest_one_hot(X: np.ndarray, centers: np.ndarray | None) -> np.ndarray:
    """(n × K) one-hot nearest centre of each row of ``X`` (no columns when there are no centres)."""
    if centers is None:
        return np.zeros((len(X), 0))
    d2 = (X**2).sum(axis=1)[:, None] - 2 * X @ centers.T + (centers**2).sum(axis=1)[None, :]
    out = np.zeros((len(X), len(centers)))
    out[np.arange(len(X)), np.argmin(d2, axis=1)] = 1.0
    return out


def coarse_groups(centers: np.ndarray, counts: np.ndarray, *, seed: int, ratio: int = 4) -> np.ndarray:
    """Coarse group of each cluster: K-means (``K // ratio`` groups, at least 1) of the cluster centres
    weighted by their sizes, so a coarse estimate is a function of the fine cluster. Seeded."""
    need("fit", "grouping a latent space's clusters")
    from sklearn.cluster import KMeans

    K = len(centers)
    g = max(1, K // int(ratio))
    if g == 1:
        return np.zeros(K, dtype=int)
    km = KMeans(n_clusters=g, n_init=2, random_state=seed)
    return km.fit(centers, sample_weight=np.maximum(np.asarray(counts, dtype=float), 1e-9)).labels_.astype(
        int
    )


def _validated_shrinkage(
    Z_fit: np.ndarray, Y_fit: np.ndarray, Z_val: np.ndarray, Y_val: np.ndarray, smoothing: float
) -> float:
    """``α ∈ [0, 1]`` minimizing the held-out log loss of ``r̄ + α (Z · rate − r̄)`` over all models.

    Rates and overall rates come from the fit rows; the loss is pooled over every observed
    (validation prompt, model) pair.
    """
    cluster, overall, target = [], [], []
    for j in range(Y_fit.shape[1]):
        obs_f, obs_v = ~np.isnan(Y_fit[:, j]), ~np.isnan(Y_val[:, j])
        if not obs_f.any() or not obs_v.any():
            continue
        rate, _mass, r_bar = cluster_rates(Z_fit[obs_f], Y_fit[obs_f, j], smoothing)
        cluster.append(Z_val[obs_v] @ rate)
        overall.append(np.full(int(obs_v.sum()), r_bar))
        target.append(Y_val[obs_v, j])
    if not target:
        return 1.0
    p_c, p_o, y = np.concatenate(cluster), np.concatenate(overall), np.concatenate(target)

    def loss(alpha: float) -> float:
        p = np.clip(p_o + alpha * (p_c - p_o), 1e-6, 1 - 1e-6)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    need("fit", "fitting a cluster latent space")
    from scipy.optimize import minimize_scalar  # imported here: loading a fitted space stays fast

    res = minimize_scalar(loss, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-3})
    return float(np.clip(res.x, 0.0, 1.0))


class _ClusterAbilityMixin:
    smoothing: float

    def fit_ability(self, Z: np.ndarray, y: np.ndarray) -> Ability:
        Z = np.asarray(Z, dtype=float)
        y = np.asarray(y, dtype=float)
        if len(y) != len(Z):
            raise ValueError(f"Z has {len(Z)} rows but y has {len(y)}")
        rate, mass, overall = cluster_rates(Z, y, self.smoothing)
        return Ability(self.kind, {"rate": rate, "mass": mass, "overall": overall}, n_obs=len(y))  # type: ignore[attr-defined]

    def predict(self, Z: np.ndarray, ability: Ability) -> tuple[np.ndarray, np.ndarray]:
        rate, mass = ability.array("rate"), ability.array("mass")
        p = Z @ rate
        sd = np.sqrt(Z @ (rate * (1 - rate) / (mass + self.smoothing + 1.0)))
        shrink = float(getattr(self, "shrink_", 1.0))
        if shrink != 1.0:
            overall = float(ability.params["overall"])
            p = overall + shrink * (p - overall)
            sd = shrink * sd
        return p, sd


class KMeansSpace(_ClusterAbilityMixin, LatentSpace):
    """UniRoute K-means: a model is its per-cluster success rates.

    Parameters
    ----------
    n_clusters : int, default=16
    smoothing : float, default=2.0
        Pseudo-count pulling each cluster's rate toward the model's overall rate.
    seed : int, default=0
    """

    kind = "kmeans"

    def __init__(self, *, n_clusters: int = 16, smoothing: float = 2.0, seed: int = 0):
        self.n_clusters = n_clusters
        self.smoothing = smoothing
        self.seed = seed

    def fit(self, X: np.ndarray, Y: np.ndarray, models: Sequence[str]) -> KMeansSpace:
        need("fit", "fitting the K-means latent space")
        from sklearn.cluster import KMeans

        X, Y = validate_xy(X, Y, models)
        self.x_mean_ = X.mean(axis=0)
        self.x_scale_ = X.std(axis=0) + 1e-8
        Xs = (X - self.x_mean_) / self.x_scale_
        k = min(int(self.n_clusters), len(X))
        self.kmeans_ = KMeans(n_clusters=k, n_init=4, random_state=self.seed).fit(Xs)
        self.train_Z_ = self.transform(X)
        self.models_ = list(models)
        self.abilities_ = {}
        for j, name in enumerate(self.models_):
            obs = ~np.isnan(Y[:, j])
            self.abilities_[name] = self.fit_ability(self.train_Z_[obs], Y[obs, j])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "kmeans_")
        X, _ = validate_xy(X)
        labels = self.kmeans_.predict((X - self.x_mean_) / self.x_scale_)
        return np.eye(self.kmeans_.n_clusters)[labels]

    def select_anchors(self, Z: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
        """Cluster-stratified anchors: round-robin over clusters, proportional to cluster size."""
        Z = np.asarray(Z)
        n = len(Z)
        if k >= n:
            return np.arange(n)
        rng = np.random.default_rng(seed)
        labels = Z.argmax(axis=1)
        pools = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)}
        sizes = {c: len(v) for c, v in pools.items()}
        quota = {c: max(1, int(round(k * s / n))) for c, s in sizes.items()}
        chosen: list[int] = []
        for c in sorted(pools, key=lambda c: -sizes[c]):
            take = pools[c][: quota[c]]
            chosen.extend(take)
            pools[c] = pools[c][quota[c] :]
        rest = [i for c in pools for i in pools[c]]
        rng.shuffle(rest)
        chosen = chosen[:k] + rest[: max(0, k - len(chosen))]
        return np.asarray(chosen[:k])


class LearnedMapSpace(_ClusterAbilityMixin, LatentSpace):
    """UniRoute's learned cluster map: ``Z = softmax(X V)``, ``P(good | m) = Z · ψ_m``.

    Parameters
    ----------
    n_clusters : int, default=16
    smoothing : float, default=2.0
    reg : float, default=1.0
        L2 penalty on the map ``V`` (standardized features).
    max_iter : int, default=300
    validation_fraction : float, default=0.2
        Share of the training prompts held out of the map's fit to choose the shrinkage ``shrink_``
        (``α``) of predictions toward each model's overall rate (the per-cluster rates are then
        estimated on every training prompt). ``0`` fits the map on every prompt without shrinkage.
    seed : int, default=0

    Attributes
    ----------
    V_ : ndarray (d × K)
        The map from standardized features to cluster logits.
    shrink_ : float
        ``α``: the share of the cluster prediction's departure from the overall rate that is kept.
    """

    kind = "learned_map"

    def __init__(
        self,
        *,
        n_clusters: int = 16,
        smoothing: float = 2.0,
        reg: float = 1.0,
        max_iter: int = 300,
        validation_fraction: float = 0.2,
        seed: int = 0,
    ):
        self.n_clusters = n_clusters
        self.smoothing = smoothing
        self.reg = reg
        self.max_iter = max_iter
        self.validation_fraction = validation_fraction
        self.seed = seed

    def fit(self, X: np.ndarray, Y: np.ndarray, models: Sequence[str]) -> LearnedMapSpace:
        X, Y = validate_xy(X, Y, models)
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        self.x_mean_ = X.mean(axis=0)
        self.x_scale_ = X.std(axis=0) + 1e-8
        Xs = (X - self.x_mean_) / self.x_scale_
        n = len(Xs)
        n_val = int(round(float(self.validation_fraction) * n))
        self.shrink_ = 1.0
        if n_val >= 10 and n - n_val >= 10:
            perm = np.random.default_rng(self.seed).permutation(n)
            val, fit_rows = perm[:n_val], perm[n_val:]
            self.V_ = self._fit_map(Xs[fit_rows], Y[fit_rows])
            self.shrink_ = _validated_shrinkage(
                softmax(Xs[fit_rows] @ self.V_, axis=1),
                Y[fit_rows],
                softmax(Xs[val] @ self.V_, axis=1),
                Y[val],
                self.smoothing,
            )
        else:
            self.V_ = self._fit_map(Xs, Y)
        self.train_Z_ = self.transform(X)
        self.models_ = list(models)
        self.abilities_ = {}
        M = ~np.isnan(Y)
        for j, name in enumerate(self.models_):
            obs = M[:, j]
            self.abilities_[name] = self.fit_ability(self.train_Z_[obs], Y[obs, j])
        return self

    def _fit_map(self, Xs: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """The map ``V`` fit on standardized features ``Xs`` and scores ``Y``, initialized from K-means."""
        need("fit", "fitting the learned cluster map")
        from sklearn.cluster import KMeans

        n, d = Xs.shape
        m = Y.shape[1]
        M = ~np.isnan(Y)
        Yf = np.where(M, Y, 0.0)
        Mf = M.astype(float)
        n_obs = max(int(M.sum()), 1)
        # V maps onto the K-means centroids, ψ from the per-cluster rates under that map.
        K = min(int(self.n_clusters), n)
        V0 = KMeans(n_clusters=K, n_init=2, random_state=self.seed).fit(Xs).cluster_centers_.T * 0.5
        Z0 = softmax(Xs @ V0, axis=1)
        seen = M.sum(axis=0)
        col = np.where(seen > 0, Yf.sum(axis=0) / np.maximum(seen, 1), 0.5)  # a model unseen in the fit rows
        P0 = np.clip((Z0.T @ Yf + 2 * col) / (Z0.T @ Mf + 2), 1e-3, 1 - 1e-3).T  # (m, K)
        psi0 = np.log(P0 / (1 - P0))

        def unpack(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return v[: d * K].reshape(d, K), v[d * K :].reshape(m, K)

        def fg(v: np.ndarray) -> tuple[float, np.ndarray]:
            V, psi = unpack(v)
            Z = softmax(Xs @ V, axis=1)
            Psi = 1.0 / (1.0 + np.exp(-psi))
            U = np.clip(Z @ Psi.T, 1e-6, 1 - 1e-6)
            loss = -np.sum(Mf * (Yf * np.log(U) + (1 - Yf) * np.log(1 - U))) + 0.5 * self.reg * np.sum(V**2)
            dU = Mf * (U - Yf) / (U * (1 - U))
            g_psi = (dU.T @ Z) * Psi * (1 - Psi)
            dZ = dU @ Psi
            g_logits = Z * (dZ - np.sum(dZ * Z, axis=1, keepdims=True))
            g_V = Xs.T @ g_logits + self.reg * V
            return loss / n_obs, np.concatenate([g_V.ravel(), g_psi.ravel()]) / n_obs

        from scipy.optimize import minimize

        opt = minimize(
            fg,
            np.concatenate([V0.ravel(), psi0.ravel()]),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": int(self.max_iter)},
        )
        self.n_iter_ = int(opt.nit)
        return unpack(opt.x)[0]

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "V_")
        X, _ = validate_xy(X)
        return softmax(((X - self.x_mean_) / self.x_scale_) @ self.V_, axis=1)
