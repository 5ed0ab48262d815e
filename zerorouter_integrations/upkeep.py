"""What keeps a :class:`~zerorouter_integrations.router.ZeroRouter` sound (a mixin; the router holds the state).

* **money**: models whose price is unknown (no list prices, no observed costs, no endpoint prices)
  are left out of routing with that reason (:meth:`Upkeep.unpriced`);
* **atomic changes**: :meth:`Upkeep.add_profile` (what ``onboard`` ends with) snapshots the pool and
  rolls back on any failure; :meth:`Upkeep.record_quality` computes the update before anything is
  written;
* **health**: :meth:`Upkeep.health` (the store's outbox and each model's circuit), :meth:`Upkeep.close`;
* **copies**: pickling and deep copies keep the artifact, pool, endpoints (with their keys), encoder,
  policy and store (by path / URL; an in-memory store is copied); locks, the executor and derived
  caches are rebuilt.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from zerorouter_integrations.errors import UnknownModelError

__all__ = ["PRICE_UNKNOWN", "Upkeep"]

PRICE_UNKNOWN = (
    "price unknown: onboard it with input_usd_per_token/output_usd_per_token or costs=, or give its "
    "ModelEndpoint input_cost_per_token/output_cost_per_token"
)

#: Rebuilt after a copy: the lock, the executor (LiteLLM client state) and derived caches.
_NOT_COPIED = (
    "_lock",
    "_executor",
    "_pool_caps",
    "_prior_latency_arrays",
    "_prior_latency_cache",
    "_unpriced_cache",
)
_CACHES = ("_pool_caps", "_prior_latency_arrays", "_reference_cache", "_unpriced_cache")


class Upkeep:
    """Money, atomicity, health and copies of a router (see the module docstring)."""

    predictor: Any
    store: Any
    endpoints: dict[str, Any]
    circuit: Any
    policy: Any
    _pool: list[str]
    _lock: Any
    _executor: Any
    _caps_cache: dict[str, Any]
    _policy_spec: Any

    if TYPE_CHECKING:  # the router's own members (this is a mixin of ZeroRouter)

        def __getattr__(self, name: str) -> Any: ...

    # ------------------------------------------------------------------ money
    def unpriced(self) -> list[str]:
        """Pool models whose price is unknown (no prices, no observed costs, no endpoint prices)."""
        from zerorouter_integrations.profiles import profiles_version

        key = (profiles_version(), len(self._pool), len(self.endpoints))
        cached = self.__dict__.get("_unpriced_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        out = []
        for m in self._pool:
            if self.endpoints and m not in self.endpoints:
                continue
            priced_ep = getattr(self.endpoints.get(m), "has_custom_prices", False)
            if not self.predictor.profiles_[m].price_known and not priced_ep:
                out.append(m)
        self.__dict__["_unpriced_cache"] = (key, out)
        return out

    def unpriced_reasons(self) -> dict[str, str]:
        """``{model: "price unknown: …"}`` for :meth:`unpriced` (what decisions show in ``removed``)."""
        return {m: PRICE_UNKNOWN for m in self.unpriced()}

    # ------------------------------------------------------------------ atomic changes
    def snapshot_pool(self, name: str) -> tuple:
        """What a change of ``name``'s profile may touch, to :meth:`restore_pool` on failure."""
        return (
            name,
            self.predictor.profiles_.get(name),
            list(self._pool),
            dict(self.endpoints),
            self._executor,
            self.policy,
        )

    def restore_pool(self, saved: tuple) -> None:
        """Undo a failed profile change (see :meth:`snapshot_pool`)."""
        name, old, pool, endpoints, executor, policy = saved
        with self._lock:
            if old is None:
                self.predictor.profiles_.pop(name, None)
            else:
                self.predictor.profiles_[name] = old
            self._pool[:] = pool
            self.endpoints.clear()
            self.endpoints.update(endpoints)
            self._executor = executor
            self.policy = policy
            self.forget_caches(name)

    def forget_caches(self, name: str) -> None:
        """Drop what is derived from ``name``'s profile or from the pool."""
        self._caps_cache.pop(name, None)
        for key in _CACHES:
            self.__dict__.pop(key, None)
        self.__dict__.get("_prior_latency_cache", {}).pop(name, None)

    def check_new_profile(self, name: str, calibration: Any) -> None:
        """Raise unless ``name``'s profile can route: readable capabilities, finite predictions."""
        self.capabilities(name)
        if calibration is None:
            return
        Z, toks = calibration
        pred = self.predictor.predict(Z=Z[:8], input_tokens=toks[:8], models=[name])
        if not (np.isfinite(pred.quality).all() and np.isfinite(pred.cost_usd).all()):
            raise ValueError(f"the profile of {name!r} predicts non-finite quality or cost; it was not added")

    def updated_ability(self, model: str, Z: np.ndarray, y: np.ndarray) -> Any:
        """``model``'s ability after a Bayesian update on ``(Z, y)``; nothing is changed."""
        from zerorouter_integrations.latent.base import Ability
        from zerorouter_integrations.latent.irt import bayes_logistic

        ab = self.predictor.profiles_[model].ability
        if ab.kind != "irt":
            raise NotImplementedError(f"quality feedback updates need the IRT space, not {ab.kind!r}")
        w, cov = ab.array("w"), ab.array("cov")
        if Z.shape[1] + 1 != len(w):
            raise ValueError(
                f"the request's latent position has {Z.shape[1]} dims; {model!r} expects {len(w) - 1}"
            )
        Zb = np.column_stack([Z, np.ones(len(Z))])
        w_new, cov_new = bayes_logistic(Zb, y, w, np.linalg.inv(cov))
        if not (np.isfinite(w_new).all() and np.isfinite(cov_new).all()):
            raise ValueError(f"the quality update of {model!r} is not finite; the profile is left unchanged")
        return Ability(ab.kind, {**ab.params, "w": w_new, "cov": cov_new}, n_obs=ab.n_obs + len(y))

    # ------------------------------------------------------------------ feedback on quality
    def record_quality(self, request_id: str, score: float) -> Any:
        """Grade an answer (thumbs up = 1, down = 0, a judge's or a test's score in [0, 1]).

        The observation is stored, and the model's ability is refined by a Bayesian update in the
        latent space (its current posterior is the prior). Returns the updated profile. Everything is
        checked and computed first: on any failure neither the store nor the profile changes.
        """
        if isinstance(score, bool) or not (
            isinstance(score, (int, float, np.integer, np.floating)) and 0.0 <= float(score) <= 1.0
        ):
            raise ValueError(f"score must be a number in [0, 1], got {score!r}")
        req = self.store.get_request(request_id)
        if req is None:
            raise KeyError(f"unknown request_id {request_id!r}: not routed by this router or expired")
        model, latent = req.get("model"), req.get("latent")
        if latent is None:
            raise ValueError(f"request {request_id!r} bypassed routing (model=…); it has no latent position")
        if model not in self.predictor.profiles_:
            raise UnknownModelError(str(model), self.models)
        ability = self.updated_ability(model, np.asarray([latent], dtype=float), np.asarray([float(score)]))
        self.store.append_quality(model, list(latent), float(score), request_id=request_id)
        p = self.predictor.profiles_[model]
        with self._lock:  # a new Ability (never edited in place): the predictor sees the change
            p.ability = ability
            p.capability = None
        return p

    def add_profile(self, profile: Any, endpoint: Any = None) -> None:
        """Add (or replace) ``profile`` in the pool, with its LiteLLM ``endpoint`` when given; caches are
        reset and the policy recalibrated on the new pool (what :meth:`onboard` ends with). Atomic: when
        the profile cannot route (unreadable capabilities, non-finite predictions) or the policy cannot
        be recalibrated, the router is left exactly as it was and the error is raised."""
        saved = self.snapshot_pool(profile.name)
        try:
            with self._lock:
                self.predictor.profiles_[profile.name] = profile
                if profile.name not in self._pool:
                    self._pool.append(profile.name)
                if endpoint is not None:
                    self.endpoints[profile.name] = endpoint
                    self._executor = None
                self.forget_caches(profile.name)
            self.check_new_profile(profile.name, self._calibration())
            # The pool changed: recalibrate the policy (its reference and λ depend on the pool).
            spec = self._policy_spec
            if spec is not None and hasattr(spec, "get_params") and getattr(spec, "lam_", None) is None:
                spec = type(spec)(**spec.get_params())
            self.policy = self._fit_policy(spec)
        except BaseException:
            self.restore_pool(saved)
            raise

    # ------------------------------------------------------------------ health and lifecycle
    def health(self) -> dict[str, Any]:
        """The profile store (``ok``, ``queued`` / ``dropped`` / ``written_late`` observations,
        ``outages``, ``last_error``) and each routable model's circuit, as last known."""
        now = time.time()
        stats = self.store.all_stats()
        pool = self._routable_pool()
        return {
            "store": self.store.health(),
            "models": {m: self.circuit.health(m, stats.get(m), now) for m in pool},
        }

    def close(self) -> None:
        """Write queued observations and close the profile store."""
        self.store.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ copies
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _NOT_COPIED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._executor = None
