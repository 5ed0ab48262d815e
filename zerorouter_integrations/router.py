"""``ZeroRouter``: the one object users hold.

One request flows one way::

    messages ─ text ─ encoder ─ features ─ latent space ─ predicted quality / cost / latency per model
      ─ constraints (capabilities, allow/deny, cooldown, SLA, stickiness) ─ policy ─ RoutingDecision + plan
      ─ executor: dispatch (LiteLLM, retries, fallback down the plan), cascade acceptance ─ feedback (store)

:meth:`ZeroRouter.route` decides only (:mod:`zerorouter_integrations.routing`): a ``RoutingDecision``
whose ``plan`` (:mod:`zerorouter_integrations.plan`) says what to run; :meth:`complete` /
:meth:`acomplete` / :meth:`stream` / :meth:`astream` decide, then hand the plan to the
:class:`~zerorouter_integrations.executor.Executor`; :meth:`route_batch` runs the dual-mode integer
program over a batch; :meth:`onboard` adds a model from scored anchors, :meth:`onboard_live` by running the router's
own anchors through it; :meth:`record_quality` refines a model's ability from a graded answer.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zerorouter_integrations._aio import to_thread
from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
from zerorouter_integrations.catalog import BENCHMARK_ONLY, dispatch_model, missing_credentials, resolve
from zerorouter_integrations.endpoints import api_base_from_env, as_endpoint, gateway_endpoints
from zerorouter_integrations.errors import NoAdmissibleModelError, SchemaError, UnknownModelError
from zerorouter_integrations.features import PromptFeaturizer
from zerorouter_integrations.profiles import ModelProfile, estimate_tokens
from zerorouter_integrations.responses import RoutedChunk, RoutedResponse
from zerorouter_integrations.routing import Deciding, Messages, as_messages, policy_summary
from zerorouter_integrations.upkeep import Upkeep
from zerorouter_integrations.validation import check_params, check_sendable

__all__ = ["RoutedChunk", "RoutedResponse", "ZeroRouter"]

#: Routing options of ``complete`` & co. (the rest, except ``model`` and ``cascade``, goes to LiteLLM).
_ROUTE_KEYS = ("allowed_models", "denied_models", "session_id", "policy", "latency_sla_s", "request_id")


class ZeroRouter(Deciding, Upkeep):
    """Route each request to the cheapest model that will answer it well.

    Parameters
    ----------
    artifact : RouterArtifact
        Latent space, profiles, anchors (see :meth:`default` and :meth:`load`).
    endpoints : mapping of str to ModelEndpoint, its dict, or a LiteLLM model string, optional
        How to call each model through LiteLLM (see
        :func:`~zerorouter_integrations.endpoints.as_endpoint`). Models without an endpoint are routed
        to only when none has one (offline use of :meth:`route`). Default: every pool model on the
        server named by ``ZEROROUTER_API_BASE`` when it is set, else each profile's ``litellm_model``.
    models : sequence of str, optional
        Restrict the pool to these models.
    policy : Policy, optional
        Per-query trade-off; default: the cheapest choice that keeps 95 % of the reference model's
        predicted quality, calibrated on the artifact's calibration prompts.
    store : ProfileStore or str, optional
        Where feedback goes (``"sqlite:///path"``, ``"redis://…"``, a path, or a store); default in-memory.
    reference_model : str, optional
        The model savings are measured against (default: the pool model of highest predicted quality).
    encoder : QueryEncoder, optional
    retry : RetryPolicy, optional
    latency_sla_s : float, optional
        Default p95 latency bound; models whose p95 estimate exceeds it are removed.
    cooldown_after, cooldown_s : int, float
        The circuit breaker (:mod:`zerorouter_integrations.circuit`): after ``cooldown_after`` failed calls
        in a row of a transient kind (a call's retries count once) a model is skipped ``cooldown_s``
        seconds (or the provider's ``Retry-After``), then probed once; any success closes it.
    """

    def __init__(
        self,
        artifact: RouterArtifact,
        *,
        endpoints: Mapping[str, Any] | None = None,
        models: Sequence[str] | None = None,
        policy: Any = None,
        store: Any = None,
        reference_model: str | None = None,
        encoder: Any = None,
        retry: Any = None,
        latency_sla_s: float | None = None,
        cooldown_after: int = 3,
        cooldown_s: float = 30.0,
        feedback_alpha: float = 0.2,
    ):
        from zerorouter_integrations.decision import SessionStickiness
        from zerorouter_integrations.stores import ProfileStore, open_store

        self.artifact = artifact
        self.predictor = artifact.predictor
        all_models = list(self.predictor.profiles_)
        if models is not None:  # undated names, provider prefixes, -latest aliases (catalog.resolve)
            self._pool = list(dict.fromkeys(resolve(name, self.predictor.profiles_) for name in models))
        else:
            self._pool = all_models
        self.store = store if isinstance(store, ProfileStore) else open_store(store or ":memory:")
        self.endpoints: dict[str, Any] = {}
        gateway = api_base_from_env() if endpoints is None else None
        if gateway is not None:
            self.endpoints = gateway_endpoints(gateway, self._pool, self.predictor.profiles_)
        elif endpoints is None:
            from zerorouter_integrations.dispatch import ModelEndpoint

            for name in self._pool:
                p = self.predictor.profiles_[name]
                litellm_model = dispatch_model(name, p.litellm_model)  # the catalog's current string
                if litellm_model:
                    self.endpoints[name] = ModelEndpoint(
                        name=name,
                        litellm_model=litellm_model,
                        input_cost_per_token=p.input_usd_per_token,
                        output_cost_per_token=p.output_usd_per_token,
                        **_endpoint_kwargs(p.dispatch),
                    )
        else:
            for name, ep in endpoints.items():
                resolved = resolve(name, self.predictor.profiles_)
                self.endpoints[resolved] = as_endpoint(resolved, ep)
        if encoder is None:
            from zerorouter_integrations.encoder import QueryEncoder

            encoder = QueryEncoder(
                **{k: v for k, v in artifact.encoder.items() if k in ("max_seq_length", "precision")}
            )
        self.encoder = encoder
        self.featurizer = PromptFeaturizer(
            encoder, **{k: v for k, v in artifact.features.items() if k in ("use_text_features",)}
        )
        self.reference_model = reference_model
        self.latency_sla_s = latency_sla_s
        from zerorouter_integrations.circuit import CircuitBreaker, CircuitPolicy

        self.cooldown_after = cooldown_after
        self.cooldown_s = cooldown_s
        self.circuit = CircuitBreaker(CircuitPolicy(cooldown_after, cooldown_s), alpha=feedback_alpha)
        self.feedback_alpha = feedback_alpha
        self.stickiness = SessionStickiness(self.store)
        self._caps_cache: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._executor: Any = None
        self._retry = retry
        self._policy_spec = policy
        self.policy = self._fit_policy(policy)
        self.config_pool: Any = None  # set by from_litellm_config: aliases and skipped deployments
        self.config: Any = None  # the LiteLLMConfig it was built from

    # ------------------------------------------------------------------ construction
    @classmethod
    def default(cls, **kwargs: Any) -> ZeroRouter:
        """The router shipped with the package (offline; see ``scripts/build_default_artifact.py``)."""
        return cls(RouterArtifact.load(DEFAULT_ARTIFACT), **kwargs)

    @classmethod
    def from_litellm_config(cls, config: Any, **kwargs: Any) -> ZeroRouter:
        """A router whose pool is a LiteLLM proxy ``config.yaml`` (path) or Router ``model_list``.

        See :mod:`zerorouter_integrations.litellm_config`. Deployments that cannot be routed (no
        profile, missing ``os.environ/`` key) are left out with a warning saying what to do; they are
        listed in ``router.config_pool.skipped``. ``kwargs`` go to the constructor (plus ``artifact=``).
        """
        import warnings

        from zerorouter_integrations.litellm_config import router_parts

        artifact, kw, pool, cfg = router_parts(config, **kwargs)
        router = cls(artifact, **kw)
        router.config_pool, router.config = pool, cfg
        if pool.skipped:
            warnings.warn(f"{cfg.source}: deployments left out of routing:\n{pool.report()}", stacklevel=2)
        return router

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> ZeroRouter:
        """A router from an artifact file written by :meth:`save` or ``zerorouter fit``."""
        return cls(RouterArtifact.load(path), **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write the artifact (space, profiles incl. onboarded models, anchors) atomically."""
        return self.artifact.save(path)

    @property
    def models(self) -> list[str]:
        """The pool, in order."""
        return list(self._pool)

    @property
    def profiles(self) -> dict[str, ModelProfile]:
        return {m: self.predictor.profiles_[m] for m in self._pool}

    @property
    def routable_models(self) -> list[str]:
        """The pool models that can be called: those with an endpoint (all of them when none has one)."""
        return self._routable_pool()

    # ------------------------------------------------------------------ policy
    def calibration(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The calibration prompts policies are fitted on: ``(latent coordinates, input tokens)``, from
        the artifact's calibration set (else its anchors), or None when it has neither."""
        return self._calibration()

    def _calibration(self) -> tuple[np.ndarray, np.ndarray] | None:
        a = self.artifact
        if a.calibration_Z is not None:
            toks = (
                a.calibration_tokens
                if a.calibration_tokens is not None
                else np.full(len(a.calibration_Z), 200.0)
            )
            return a.calibration_Z, toks
        if a.anchors is not None and len(a.anchors):
            return a.anchors.Z, np.array([estimate_tokens(t) for t in a.anchors.texts], dtype=float)
        return None

    def _fit_policy(self, policy: Any) -> Any:
        from zerorouter_integrations.policy import Policy

        if policy is None:
            policy = Policy.for_quality_target(0.95, reference=self._reference())
        if getattr(policy, "lam_", None) is not None or not self._routable_pool():
            return policy  # fitted already, or nothing to calibrate on (route() then says why)
        if (
            getattr(policy, "lam", None) is not None
            and policy.budget_usd_per_1k is None
            and policy.quality_target is None
        ):
            pool = self._routable_pool()  # same width as a calibrated policy (see _rank)
            zeros = np.zeros((1, len(pool)))
            return policy.fit(zeros, zeros, zeros, model_names=pool)
        calib = self._calibration()
        if calib is None:
            raise SchemaError("this artifact has no calibration prompts; pass a Policy with an explicit lam")
        pool = self._routable_pool()
        Z, toks = calib
        pred = self.predictor.predict(Z=Z, input_tokens=toks, models=pool)
        stats = self.store.all_stats()
        L = np.tile([self._expected_latency(m, stats.get(m)) for m in pool], (len(Z), 1))
        return policy.fit(pred.quality, pred.cost_usd, L, model_names=pool)

    @property
    def effective_reference_model(self) -> str:
        """The model quality targets and savings are measured against: ``reference_model`` when set,
        else the routable pool model of highest mean predicted quality on the calibration prompts."""
        return self._reference()

    def _reference(self) -> str:
        pool_key = tuple(self._routable_pool())
        cached = getattr(self, "_reference_cache", None)
        if cached is not None and cached[0] == pool_key:
            return cached[1]
        ref = self._compute_reference()
        self._reference_cache = (pool_key, ref)
        return ref

    def _compute_reference(self) -> str:
        if self.reference_model is not None:
            if self.reference_model not in self.predictor.profiles_:
                raise UnknownModelError(self.reference_model, self.models)
            return self.reference_model
        calib = self._calibration()
        pool = self._routable_pool()
        if not pool:  # every model is price unknown (or has no endpoint): routing says so
            return self._pool[0]
        if calib is None:
            return pool[0]
        pred = self.predictor.predict(Z=calib[0], input_tokens=calib[1], models=pool)
        q = pred.quality.mean(axis=0)
        c = pred.cost_usd.mean(axis=0)
        return pool[int(np.lexsort((c, -q))[0])]

    def _routable_pool(self) -> list[str]:
        unpriced = set(self.unpriced())
        if self.endpoints:
            return [m for m in self._pool if m in self.endpoints and m not in unpriced]
        return [m for m in self._pool if m not in unpriced]

    def with_policy(self, policy: Any) -> ZeroRouter:
        """A copy of this router with another policy (calibrated on the same prompts); the policy is
        fitted first, so a bad one leaves nothing half-made; the copy's pool and endpoints are its own."""
        fitted = self._fit_policy(policy)
        clone = object.__new__(ZeroRouter)
        clone.__dict__.update(self.__dict__)
        clone._pool, clone.endpoints, clone._caps_cache = (
            list(self._pool),
            dict(self.endpoints),
            dict(self._caps_cache),
        )
        clone._lock, clone._policy_spec, clone.policy = threading.Lock(), policy, fitted
        return clone

    # ------------------------------------------------------------------ executing
    @property
    def executor(self) -> Any:
        """The :class:`~zerorouter_integrations.executor.Executor` that runs this router's plans (built
        on first use, which imports LiteLLM)."""
        if self._executor is None:
            from zerorouter_integrations.dispatch import RetryPolicy
            from zerorouter_integrations.executor import Executor

            if not self.endpoints:
                only = [m for m in self._pool if m in BENCHMARK_ONLY]
                raise SchemaError(
                    "no model of the pool has a LiteLLM endpoint; pass endpoints={name: ModelEndpoint(…)}"
                    + (f" (benchmark-only: {', '.join(only)})" if only else "")
                )
            from zerorouter_integrations._env import import_litellm

            import_litellm()  # pay LiteLLM's import here, not inside the first call's measured latency
            from zerorouter_integrations.classify import what_to_set

            self._executor = Executor(
                self.endpoints,
                circuit=self.circuit,
                hint=lambda m, err: what_to_set(err, getattr(self.endpoints.get(m), "litellm_model", None)),
                store=self.store,
                stickiness=self.stickiness,
                capability=self._capability,
                retry=self._retry or RetryPolicy(),
                feedback_alpha=self.feedback_alpha,
                cooldown_after=self.cooldown_after,
                cooldown_s=self.cooldown_s,
            )
        return self._executor

    def _decide_call(
        self, messages: Messages, kwargs: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], Any, dict[str, Any], float]:
        """Decide one call: (messages, the decision with its plan, LiteLLM parameters, start time)."""
        t0 = time.perf_counter()
        params = dict(kwargs)
        cascade = params.pop("cascade", None)
        routing = {k: params.pop(k) for k in _ROUTE_KEYS if k in params}
        forced = params.pop("model", None)
        msgs = as_messages(messages)
        check_sendable(msgs)
        check_params(params)
        if not self.endpoints:
            self.executor  # noqa: B018 - raises: no model can be called, whatever routing would decide
        if forced is not None:
            return msgs, self._forced_decision(forced, routing), params, t0
        lacking = self._lacking_credentials()
        if lacking:  # skip models whose provider has no key rather than trying each in turn
            routing["denied_models"] = [*(routing.get("denied_models") or ()), *lacking]
        decision = self._route(
            msgs,
            tools=params.get("tools"),
            response_format=params.get("response_format"),
            max_tokens=params.get("max_tokens"),
            cascade=cascade,
            comparable=not (params.get("tools") or params.get("functions")),
            **routing,
        )
        return msgs, decision, params, t0

    def _lacking_credentials(self) -> list[str]:
        """Routable models whose endpoint lacks its provider's key (see ``catalog.missing_credentials``);
        raises when that is every one of them, naming what to set."""
        pool = self._routable_pool()
        missing = {m: missing_credentials(self.endpoints[m]) for m in pool if m in self.endpoints}
        lacking = [m for m, names in missing.items() if names]
        if lacking and len(lacking) == len(pool):
            by_var: dict[str, list[str]] = {}
            for m in lacking:
                by_var.setdefault(" + ".join(missing[m]), []).append(m)
            detail = "; ".join(
                f"{var} for {', '.join(ms[:3])}{' …' if len(ms) > 3 else ''} ({len(ms)})"
                for var, ms in sorted(by_var.items(), key=lambda t: -len(t[1]))
            )
            raise NoAdmissibleModelError(
                f"no model of the pool has credentials: set {detail}; or pass "
                "endpoints={name: ModelEndpoint(..., api_key=...)}"
            )
        return lacking

    def _forced_decision(self, forced: str, routing: Mapping[str, Any]) -> Any:
        from zerorouter_integrations.decision import Candidate, RoutingDecision
        from zerorouter_integrations.plan import SinglePlan

        if forced not in self.endpoints and self.endpoints:
            with contextlib.suppress(UnknownModelError):  # undated name, provider prefix, alias
                forced = resolve(forced, self.endpoints)
        if forced not in self.endpoints:
            reason = BENCHMARK_ONLY.get(forced)
            if reason is not None:
                raise SchemaError(
                    f"model {forced!r} is benchmark-only ({reason}) and cannot be dispatched; serve it "
                    "yourself and pass endpoints={name: ModelEndpoint(...)}"
                )
            raise UnknownModelError(forced, list(self.endpoints))
        decision = RoutingDecision(
            request_id=routing.get("request_id") or uuid.uuid4().hex,
            chosen=forced,
            candidates=[Candidate(forced, float("nan"), None, float("nan"), None, 0.0)],
            removed={},
            policy={"mode": "forced"},
            reference_model=None,
            reference_cost_usd=None,
            reference_quality=None,
            session_id=routing.get("session_id"),
            plan=SinglePlan([forced], mode="forced", reason="model= bypassed routing"),
        )
        decision.latent = None  # type: ignore[attr-defined]
        return decision

    def complete(self, messages: Messages, **kwargs: Any) -> RoutedResponse:
        """Decide (a plan), then execute it: call the chosen model through LiteLLM (falling back down the
        ranking), or run the cascade; record feedback.

        Keyword arguments are LiteLLM parameters (``temperature``, ``max_tokens``, ``tools``, ``tool_choice``,
        ``response_format``, ``stop``, ``timeout``, …) plus the routing options ``allowed_models``,
        ``denied_models``, ``session_id``, ``policy``, ``latency_sla_s``, ``request_id``, ``cascade``
        (``True`` or a ``CascadePolicy``), and ``model=`` to bypass routing.
        """
        msgs, decision, params, t0 = self._decide_call(messages, kwargs)
        return self.executor.complete(decision, msgs, params, t0)

    async def acomplete(self, messages: Messages, **kwargs: Any) -> RoutedResponse:
        """Async twin of :meth:`complete`."""
        msgs, decision, params, t0 = await to_thread(self._decide_call, messages, kwargs)
        return await self.executor.acomplete(decision, msgs, params, t0)

    def stream(self, messages: Messages, **kwargs: Any) -> Iterator[RoutedChunk]:
        """Stream the routed answer: content chunks, then one final chunk with the :class:`RoutedResponse`."""
        msgs, decision, params, t0 = self._decide_call(messages, kwargs)
        yield from self.executor.stream(decision, msgs, params, t0)

    async def astream(self, messages: Messages, **kwargs: Any) -> AsyncIterator[RoutedChunk]:
        """Async twin of :meth:`stream`."""
        msgs, decision, params, t0 = await to_thread(self._decide_call, messages, kwargs)
        async for chunk in self.executor.astream(decision, msgs, params, t0):
            yield chunk

    # ------------------------------------------------------------------ onboarding
    def select_anchors(self, prompts: Sequence[str], k: int = 100, *, seed: int = 0) -> list[int]:
        """Indices of the ``k`` most informative prompts of a caller's labelled pool."""
        from zerorouter_integrations.onboarding import select_anchors

        return select_anchors(self, prompts, k, seed=seed)

    def onboard(
        self, model: str, anchor_prompts: Sequence[str], scores: Sequence[float], **kwargs: Any
    ) -> ModelProfile:
        """Add (or replace) a model from its scores on anchor prompts; nothing else changes."""
        from zerorouter_integrations.onboarding import onboard

        return onboard(self, model, anchor_prompts, scores, **kwargs)

    def onboard_live(self, model: str, endpoint: Any, k: int = 100, **kwargs: Any) -> ModelProfile:
        """Run the router's own anchors through ``endpoint`` (LiteLLM), grade them, and onboard the model."""
        from zerorouter_integrations.onboarding import onboard_live

        return onboard_live(self, model, endpoint, k=k, **kwargs)

    def __repr__(self) -> str:
        return f"ZeroRouter(models={len(self._pool)}, endpoints={len(self.endpoints)}, policy={policy_summary(self.policy)})"


def _endpoint_kwargs(dispatch: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("api_base", "api_key", "api_key_env")
    out = {k: dispatch[k] for k in keys if k in dispatch}
    extra = {k: v for k, v in dispatch.items() if k not in keys}
    if extra:
        out["extra"] = extra
    return out
