"""Deciding: the half of :class:`~zerorouter_integrations.router.ZeroRouter` that turns a request into a
:class:`~zerorouter_integrations.decision.RoutingDecision` and its plan, without calling any model.

One request: text → features → latent coordinates → predicted quality / cost / latency per model →
constraints (capabilities, allow/deny, cooldown, SLA, session stickiness) → the policy's ranking →
the plan (the ranked candidates with their fallbacks, or a cascade plan). ``route_batch`` solves the
batch integer program instead. The per-model estimates it needs (capabilities, expected latency,
capability for stickiness) live here too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from zerorouter_integrations._aio import to_thread
from zerorouter_integrations.errors import NoAdmissibleModelError, UnknownModelError
from zerorouter_integrations.features import messages_to_text, split_turn
from zerorouter_integrations.profiles import estimate_tokens

__all__ = ["Deciding", "Messages", "as_messages", "policy_summary", "rank_candidates"]

Messages = Sequence[Mapping[str, Any]] | str


def as_messages(messages: Messages) -> list[dict[str, Any]]:
    """``messages`` as a list of OpenAI-style dicts (a string is one user message); a malformed request
    raises :class:`~zerorouter_integrations.errors.CallerError` naming the field."""
    from zerorouter_integrations.validation import check_messages

    return check_messages(messages)


class Deciding:
    """Routing decisions of a :class:`~zerorouter_integrations.router.ZeroRouter` (a mixin: the router
    holds the state: predictor, store, endpoints, policy, featurizer)."""

    predictor: Any
    store: Any
    endpoints: dict[str, Any]
    featurizer: Any
    policy: Any
    latency_sla_s: float | None
    stickiness: Any
    circuit: Any
    _pool: list[str]
    _lock: Any
    _caps_cache: dict[str, Any]

    if TYPE_CHECKING:  # defined by ZeroRouter

        def _routable_pool(self) -> list[str]: ...

        def unpriced_reasons(self) -> dict[str, str]: ...

        def _fit_policy(self, policy: Any) -> Any: ...

        def _reference(self) -> str: ...

        def _calibration(self) -> tuple[np.ndarray, np.ndarray] | None: ...

    # ------------------------------------------------------------------ deciding
    def _pool_capabilities(self, pool: list[str]) -> tuple[dict[str, Any], float]:
        """Capabilities of every model of ``pool`` and the smallest context window among them (built
        once per pool; reset when a profile changes)."""
        key = tuple(pool)
        cached = self.__dict__.get("_pool_caps")
        if cached is None or cached[0] != key:
            caps = {m: self._capabilities(m) for m in pool}
            windows = [c.context_window for c in caps.values() if c.context_window is not None]
            cached = (key, caps, min(windows, default=float("inf")))
            self.__dict__["_pool_caps"] = cached
        return cached[1], cached[2]

    def capabilities(self, name: str) -> Any:
        """The :class:`ModelCapabilities` of pool model ``name`` (LiteLLM's model map plus the profile's
        overrides; cached per model)."""
        return self._capabilities(name)

    def _capabilities(self, name: str) -> Any:
        from zerorouter_integrations.constraints import ModelCapabilities, capabilities_from_litellm

        with self._lock:
            if name not in self._caps_cache:
                p = self.predictor.profiles_[name]
                ep = self.endpoints.get(name)
                litellm_name = getattr(ep, "litellm_model", None) or p.litellm_model
                if litellm_name:
                    caps = capabilities_from_litellm(litellm_name, p.capabilities or None)
                else:
                    caps = (
                        ModelCapabilities.from_dict(p.capabilities) if p.capabilities else ModelCapabilities()
                    )
                self._caps_cache[name] = caps
            return self._caps_cache[name]

    def route(
        self,
        messages: Messages,
        *,
        tools: Sequence[Any] | None = None,
        response_format: Any = None,
        max_tokens: int | None = None,
        allowed_models: Sequence[str] | None = None,
        denied_models: Sequence[str] | None = None,
        session_id: str | None = None,
        policy: Any = None,
        latency_sla_s: float | None = None,
        request_id: str | None = None,
        cascade: Any = None,
    ) -> Any:
        """Decide which model should answer, without calling it. Returns a ``RoutingDecision``.

        Its ``plan`` is what :meth:`complete` would execute: the ranked candidates with their fallbacks,
        or, with ``cascade=True`` (or a ``CascadePolicy``), the cascade plan for this request.
        """
        return self._route(
            as_messages(messages),
            tools=tools,
            response_format=response_format,
            max_tokens=max_tokens,
            allowed_models=allowed_models,
            denied_models=denied_models,
            session_id=session_id,
            policy=policy,
            latency_sla_s=latency_sla_s,
            request_id=request_id,
            cascade=cascade,
            comparable=not tools,
        )

    def _route(
        self,
        msgs: list[dict[str, Any]],
        *,
        tools: Sequence[Any] | None,
        response_format: Any,
        max_tokens: int | None,
        cascade: Any,
        comparable: bool,
        allowed_models: Sequence[str] | None = None,
        denied_models: Sequence[str] | None = None,
        session_id: str | None = None,
        policy: Any = None,
        latency_sla_s: float | None = None,
        request_id: str | None = None,
    ) -> Any:
        from zerorouter_integrations.plan import SinglePlan
        from zerorouter_integrations.validation import encoder_messages

        text = messages_to_text(msgs)
        t0 = time.perf_counter()
        x = self.featurizer.transform_request(encoder_messages(msgs))  # cleaned for the encoder only
        decision = self._decide(
            msgs,
            x[None, :],
            text,
            tools=tools,
            response_format=response_format,
            max_tokens=max_tokens,
            allowed=allowed_models,
            denied=denied_models,
            session_id=session_id,
            policy=policy,
            latency_sla_s=latency_sla_s,
            request_id=request_id,
            t0=t0,
        )
        if cascade:
            from zerorouter_integrations.cascade import plan_cascade

            sla = latency_sla_s if latency_sla_s is not None else self.latency_sla_s
            turn = "\n".join(split_turn(msgs)[0])  # the answer kind is that of the turn being answered
            plan_cascade(self, decision, None if cascade is True else cascade, text, comparable, sla, turn)
        else:
            decision.plan = SinglePlan(decision.ranking)
        return decision

    async def aroute(self, messages: Messages, **kwargs: Any) -> Any:
        """Async twin of :meth:`route` (the encoder runs in a worker thread)."""
        return await to_thread(self.route, messages, **kwargs)

    def _decide(
        self,
        msgs: list[dict[str, Any]],
        X: np.ndarray,
        text: str,
        *,
        tools: Any,
        response_format: Any,
        max_tokens: int | None,
        allowed: Sequence[str] | None,
        denied: Sequence[str] | None,
        session_id: str | None,
        policy: Any,
        latency_sla_s: float | None,
        request_id: str | None,
        t0: float,
    ) -> Any:
        from zerorouter_integrations.constraints import filter_models, needs_from_request
        from zerorouter_integrations.decision import Candidate, RoutingDecision

        pool = self._routable_pool()
        for group in (allowed or ()), (denied or ()):
            for name in group:
                if name not in self.predictor.profiles_:
                    raise UnknownModelError(name, list(self._pool))
        needs = needs_from_request(msgs, tools=tools, response_format=response_format, max_tokens=max_tokens)
        caps, smallest_window = self._pool_capabilities(pool)
        if (
            allowed is None
            and denied is None
            and needs.max_tokens is None
            and not needs.needs_tools
            and not needs.needs_vision
            and not needs.needs_json_schema
            and not needs.needs_response_format
            and needs.prompt_tokens <= smallest_window
        ):
            removed: dict[str, str] = {}
            admissible = list(pool)  # a plain request that fits every context window
        else:
            admissible, removed = filter_models(pool, caps, needs, allow=allowed, deny=denied)
        now = time.time()
        stats = self.store.all_stats()
        admissible, unhealthy, notes = self.circuit.admit(admissible, stats, now)  # never empties the pool
        removed.update(unhealthy)
        removed.update(self.unpriced_reasons())
        Z = self.predictor.transform(X)
        tokens = np.array([needs.prompt_tokens], dtype=float)  # every input token, not the encoder's window
        pred = self.predictor.predict(Z=Z, input_tokens=tokens, models=admissible) if admissible else None
        if stats:
            latency = np.array([self._expected_latency(m, stats.get(m)) for m in admissible])
        else:  # nothing observed yet: the profiles' priors, one array per candidate list
            arrays = self.__dict__.setdefault("_prior_latency_arrays", {})
            key = tuple(admissible)
            if key not in arrays:
                if len(arrays) >= 64:
                    arrays.clear()
                prior = np.array([self._expected_latency(m, None) for m in admissible])
                prior.flags.writeable = False
                arrays[key] = prior
            latency = arrays[key]
        sla = latency_sla_s if latency_sla_s is not None else self.latency_sla_s
        if sla is not None and admissible:
            p95 = np.array([self._p95_latency(m, stats.get(m)) for m in admissible])
            keep = p95 <= sla
            for m, ok, v in zip(list(admissible), keep, p95):
                if not ok:
                    removed[m] = f"p95 latency {v:.2f} s > SLA {sla:.2f} s"
            idx = np.flatnonzero(keep)
            admissible = [admissible[i] for i in idx]
            latency = latency[idx]
            if pred is not None:
                pred = pred.__class__(
                    admissible, pred.quality[:, idx], pred.quality_sd[:, idx], pred.cost_usd[:, idx]
                )
        ranking_all = admissible
        sticky = False
        if session_id is not None and admissible:
            capability = {m: self._capability(m) for m in admissible}
            kept, sticky = self.stickiness.filter(session_id, admissible, capability)
            for m in admissible:
                if m not in kept:
                    removed[m] = "below the capability already used in this session (escalate-only)"
            ranking_all = list(kept)
        if not ranking_all:
            raise NoAdmissibleModelError("no model of the pool can serve this request", removed)
        assert pred is not None  # admissible models exist, so they were predicted
        pol = self.policy if policy is None else self._fit_policy(policy)
        if ranking_all is admissible:
            cols = list(range(len(admissible)))
        else:
            position = {m: i for i, m in enumerate(admissible)}
            cols = [position[m] for m in ranking_all]
        q = pred.quality[0, cols]
        c = pred.cost_usd[0, cols]
        lat = latency[cols]
        # The request's text keys the calibrated mix: the same request takes the same price weight,
        # and the displayed scores are those of the weight it took.
        scores = pol.scores(q[None, :], c[None, :], lat[None, :], keys=[text])[0]
        order = rank_candidates(pol, ranking_all, q, c, lat, key=text)
        candidates = [
            Candidate(
                model=ranking_all[i],
                predicted_quality=float(q[i]),
                quality_sd=float(pred.quality_sd[0, cols[i]]),
                predicted_cost_usd=float(c[i]),
                predicted_latency_s=float(lat[i]),
                score=float(scores[i]),
            )
            for i in order
        ]
        ref = self._reference()
        ref_q = ref_c = None
        if ref in self.predictor.profiles_:
            rp = self.predictor.predict(Z=Z, input_tokens=tokens, models=[ref])
            ref_q, ref_c = float(rp.quality[0, 0]), float(rp.cost_usd[0, 0])
        decision = RoutingDecision(
            request_id=request_id or uuid.uuid4().hex,
            chosen=candidates[0].model,
            candidates=candidates,
            removed=removed,
            policy=policy_summary(pol, key=text),
            reference_model=ref,
            reference_cost_usd=ref_c,
            reference_quality=ref_q,
            session_id=session_id,
            sticky=sticky,
            routing_time_s=time.perf_counter() - t0,
            notes=notes,
        )
        decision.latent = Z[0].tolist()  # type: ignore[attr-defined]
        return decision

    def capability(self, name: str) -> float:
        """Model ``name``'s mean predicted quality on the calibration prompts (0 without them; cached
        in its profile)."""
        return self._capability(name)

    def _capability(self, name: str) -> float:
        p = self.predictor.profiles_[name]
        if p.capability is not None:
            return float(p.capability)
        calib = self._calibration()
        if calib is None:
            return 0.0
        q = self.predictor.predict(Z=calib[0], input_tokens=calib[1], models=[name]).quality
        p.capability = float(q.mean())
        return p.capability

    def expected_latency(self, name: str, stats: Any = None) -> float:
        """Expected latency of a call to ``name`` in seconds: the observed EWMA in ``stats`` (its
        :class:`ObservedStats`) when feedback has seen the model, else its profile's prior."""
        return self._expected_latency(name, stats)

    def _expected_latency(self, name: str, st: Any) -> float:
        """Observed EWMA of the whole call's latency when feedback has seen the model, else the prior
        ``TTFT + expected output tokens ÷ tokens per second`` of its profile."""
        if st is not None and st.ewma_latency_s is not None and st.n_calls > 0:
            return float(st.ewma_latency_s)
        cache = self.__dict__.setdefault("_prior_latency_cache", {})
        if name not in cache:
            from zerorouter_integrations.latency import expected_latency_s

            prior = self._latency_prior(name)
            cache[name] = (
                float(expected_latency_s(prior.ttft_s, prior.tokens_per_s, prior.output_tokens)),
                prior.p95_factor,
            )
        return cache[name][0]

    def _latency_prior(self, name: str) -> Any:
        from zerorouter_integrations.latency import LatencyPrior

        p = self.predictor.profiles_[name]
        lp = p.latency_prior or {}
        return LatencyPrior(
            ttft_s=float(lp.get("ttft_s", 0.5)),
            tokens_per_s=float(lp.get("tokens_per_s", 60.0)),
            output_tokens=float(p.expected_output_tokens or lp.get("output_tokens", 256.0)),
            p95_factor=float(lp.get("p95_factor", 2.0)),
        )

    def _p95_latency(self, name: str, st: Any) -> float:
        """p95 estimate: expected latency × the profile's p95 factor (default 2)."""
        expected = self._expected_latency(name, st)
        return (
            expected * self.__dict__["_prior_latency_cache"].get(name, (0.0, 2.0))[1]
            if name in self.__dict__.get("_prior_latency_cache", {})
            else expected * self._latency_prior(name).p95_factor
        )

    # ------------------------------------------------------------------ batch
    def route_batch(
        self,
        prompts: Sequence[str],
        *,
        mode: Literal["max_quality", "min_cost"] = "min_cost",
        budget_usd: float | None = None,
        quality_target: float | None = None,
        allowed_models: Sequence[str] | None = None,
        capacity: Mapping[str, int] | None = None,
        max_latency_s: float | None = None,
    ) -> Any:
        """Assign models to a batch of prompts with the dual-mode integer program.

        ``mode="max_quality"`` maximizes total predicted quality within ``budget_usd`` (total for the batch);
        ``mode="min_cost"`` minimizes total cost with mean predicted quality ≥ ``quality_target``.
        """
        from zerorouter_integrations.optimizer import optimize_batch

        pool = [m for m in self._routable_pool() if allowed_models is None or m in set(allowed_models)]
        texts = [str(p) for p in prompts]
        X = self.featurizer.transform(texts)
        tokens = np.array([estimate_tokens(t) for t in texts], dtype=float)
        pred = self.predictor.predict(X, input_tokens=tokens, models=pool)
        stats = self.store.all_stats()
        L = np.tile([self._expected_latency(m, stats.get(m)) for m in pool], (len(texts), 1))
        return optimize_batch(
            pred.quality,
            pred.cost_usd,
            mode=mode,
            budget=budget_usd,
            target=quality_target,
            L=L,
            max_latency_s=max_latency_s,
            capacity=capacity,
            model_names=pool,
        )


def rank_candidates(
    pol: Any, names: list[str], q: np.ndarray, c: np.ndarray, lat: np.ndarray, *, key: str | None = None
) -> list[int]:
    """``pol.rank`` for the candidates ``names`` (indices into ``names``, best first).

    A fitted policy checks that it gets as many columns as it was calibrated on (the routable pool),
    while the candidates are the pool minus what the constraints removed; so the candidates are
    placed in the calibration columns and the others masked out.
    """
    fitted = getattr(pol, "model_names_", None)
    if (
        fitted is None
        or names == fitted
        or getattr(pol, "n_models_", None) is None
        or not set(names) <= set(fitted)
    ):  # no remapping needed (or possible)
        return [int(i) for i in pol.rank(q, c, lat, key=key)]
    col = {m: j for j, m in enumerate(fitted)}
    m = len(fitted)
    qf, cf, lf, mask = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m, dtype=bool)
    for i, name in enumerate(names):
        j = col[name]
        qf[j], cf[j], lf[j], mask[j] = q[i], c[i], lat[i], True
    pos = {name: i for i, name in enumerate(names)}
    return [pos[fitted[j]] for j in pol.rank(qf, cf, lf, mask, key=key)]


def policy_summary(policy: Any, key: str | None = None) -> dict[str, Any]:
    """The policy in force, as the ``policy`` dict of a ``RoutingDecision`` (with a request ``key``,
    ``lam_used``: the side of a calibrated mix that request took)."""
    out: dict[str, Any] = {"mode": "per-query"}
    for name in ("lam_", "mu_", "budget_usd_per_1k", "quality_target", "reference", "reference_fraction"):
        v = getattr(policy, name, None)
        if v is not None:
            out[name.rstrip("_")] = float(v) if isinstance(v, (int, float, np.floating)) else v
    if key is not None and hasattr(policy, "lam_for"):
        out["lam_used"] = float(policy.lam_for(key))
    return out
