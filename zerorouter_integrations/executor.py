"""The executor: runs any plan a routing decision carries, sync / async / stream / astream.

One place does everything between the decision and the answer:

* **dispatch** through LiteLLM with retries and fallback down the plan's order
  (:class:`~zerorouter_integrations.dispatch.Dispatcher`);
* a :class:`~zerorouter_integrations.plan.SinglePlan` is one dispatch over its ranked candidates;
* a :class:`~zerorouter_integrations.plan.CascadePlan` calls its two cheap first-stage models
  concurrently, extracts and compares their answers (:func:`~zerorouter_integrations.plan.accept_answers`),
  and either returns the accepted answer or escalates down ``plan.escalation`` (when every escalation
  model fails, the first stage's answer is returned);
* **aggregation**: usage, cost and latency of every call of every stage in one
  :class:`~zerorouter_integrations.responses.RoutedResponse`; the stages in ``decision.stages``;
* **feedback** to the profile store: each call's latency, tokens and cost, each error (cooldowns),
  the request's latent position for later quality feedback, and the session's escalate-only floor.

The four entry points share everything except the I/O: the sync bodies and their async twins
differ only in how they call the dispatcher (threads vs ``asyncio.gather``); what happens before and
after each call is in :class:`_CascadeRun` and the module's helpers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from zerorouter_integrations.answers import extract_answer
from zerorouter_integrations.decision import Stage
from zerorouter_integrations.dispatch import Dispatcher, DispatchResult, RetryPolicy, StreamEnd, Usage
from zerorouter_integrations.errors import AllModelsFailedError
from zerorouter_integrations.plan import CascadePlan, SinglePlan, accept_answers
from zerorouter_integrations.responses import RoutedChunk, RoutedResponse

__all__ = ["Executor", "sum_usage", "token_prob"]


class Executor:
    """Runs plans against ``endpoints`` and records what happened in ``store``.

    Parameters
    ----------
    endpoints : mapping of str to ModelEndpoint
        How to call each model (LiteLLM).
    store : ProfileStore
        Where observed latency / cost / errors, request records and sessions go.
    stickiness : SessionStickiness
        Escalate-only session floors (recorded after each routed answer).
    capability : callable(str) -> float
        A model's capability (mean predicted quality), the stickiness floor.
    retry : RetryPolicy, optional
    feedback_alpha : float
        EWMA weight of a new observation.
    cooldown_after, cooldown_s, circuit : int, float, CircuitBreaker (:mod:`~zerorouter_integrations.circuit`)
        Model health (a breaker with these settings when ``circuit`` is None).
    hint : callable(model, ProviderError) -> str, optional; what to set for a configuration error.
    """

    def __init__(
        self,
        endpoints: Mapping[str, Any],
        *,
        store: Any,
        stickiness: Any,
        capability: Callable[[str], float],
        retry: RetryPolicy | None = None,
        feedback_alpha: float = 0.2,
        cooldown_after: int = 3,
        cooldown_s: float = 30.0,
        circuit: Any = None,
        hint: Callable[[str, Any], str] | None = None,
    ):
        from zerorouter_integrations.circuit import CircuitBreaker, CircuitPolicy

        self.circuit = circuit or CircuitBreaker(CircuitPolicy(cooldown_after, cooldown_s))
        self.hint = hint
        self.store = store
        self.stickiness = stickiness
        self.capability = capability
        self.feedback_alpha = feedback_alpha
        self.cooldown_after = cooldown_after
        self.cooldown_s = cooldown_s
        self.dispatcher = Dispatcher(
            endpoints,
            retry=retry or RetryPolicy(),
            on_success=self.record_success,
            on_error=self.record_error,
        )

    # ------------------------------------------------------------------ feedback
    def record_success(self, model: str, result: DispatchResult) -> None:
        """Feedback for one successful call (latency, TTFT, tokens, known cost); closes the circuit."""
        self.circuit.succeeded(model)
        self.store.record_call(
            model,
            latency_s=result.latency_s,
            ttft_s=result.ttft_s,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cost_usd=result.cost_usd if getattr(result, "cost_known", True) else None,
            alpha=self.feedback_alpha,
        )

    def record_error(self, model: str, attempt: Any) -> None:
        """Feedback for one failed attempt, through the circuit breaker (see its ``failed_attempt``)."""
        self.circuit.failed_attempt(self.store, model, attempt, self.hint)

    def finish(self, decision: Any, result: DispatchResult) -> RoutedResponse:
        """The response for ``result``; records the session floor and the request's latent position."""
        if decision.session_id is not None and decision.policy.get("mode") != "forced":
            self.stickiness.record(decision.session_id, result.model, self.capability(result.model))
        latent = getattr(decision, "latent", None)
        if latent is not None:
            self.store.put_request(decision.request_id, {"model": result.model, "latent": latent})
        return RoutedResponse(
            content=result.content,
            tool_calls=result.tool_calls,
            finish_reason=result.finish_reason,
            model=result.model,
            decision=decision,
            usage=result.usage,
            cost_usd=result.cost_usd,
            latency_s=result.latency_s,
            ttft_s=result.ttft_s,
            request_id=decision.request_id,
            attempts=result.attempts,
            response=result.response,
        )

    def _single(self, decision: Any, result: DispatchResult) -> RoutedResponse:
        plan = decision.plan
        if isinstance(plan, SinglePlan) and plan.cascade:
            decision.stages.append(_route_stage(plan, result))
        return self.finish(decision, result)

    # ------------------------------------------------------------------ the four entry points
    def complete(
        self, decision: Any, messages: list[dict[str, Any]], params: dict[str, Any], t0: float | None = None
    ) -> RoutedResponse:
        """Run ``decision.plan`` and return the answer (``t0``: when the request started, for latency)."""
        plan = decision.plan
        if not _is_cascade(plan):
            return self._single(decision, self.dispatcher.complete(plan.order, messages, **params))
        run = _CascadeRun(self, decision, messages, params, t0)
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=len(plan.first), thread_name_prefix="zerorouter-cascade"
        ) as pool:
            futs = [pool.submit(self._call_one, name, messages, params) for name in plan.first]
            outs = [f.result() for f in futs]
        final = run.first_stage(outs)
        if final is not None:
            return run.respond(final)
        try:
            esc = self.dispatcher.complete(plan.escalation, messages, **params)
        except AllModelsFailedError as exc:
            return run.respond(run.escalation_failed(exc))
        return run.respond(run.escalated(esc))

    async def acomplete(
        self, decision: Any, messages: list[dict[str, Any]], params: dict[str, Any], t0: float | None = None
    ) -> RoutedResponse:
        """Async twin of :meth:`complete` (the first stage runs under ``asyncio.gather``)."""
        plan = decision.plan
        if not _is_cascade(plan):
            return self._single(decision, await self.dispatcher.acomplete(plan.order, messages, **params))
        run = _CascadeRun(self, decision, messages, params, t0)
        outs = await asyncio.gather(*(self._acall_one(name, messages, params) for name in plan.first))
        final = run.first_stage(outs)
        if final is not None:
            return run.respond(final)
        try:
            esc = await self.dispatcher.acomplete(plan.escalation, messages, **params)
        except AllModelsFailedError as exc:
            return run.respond(run.escalation_failed(exc))
        return run.respond(run.escalated(esc))

    def stream(
        self, decision: Any, messages: list[dict[str, Any]], params: dict[str, Any], t0: float | None = None
    ) -> Iterator[RoutedChunk]:
        """Stream the answer: content chunks, then one final chunk with the :class:`RoutedResponse`.

        A cascade's first stage is buffered (both cheap models run to completion, concurrently); an
        accepted answer is then yielded in chunks of ``plan.chunk_chars`` characters, an escalation
        streams live.
        """
        plan = decision.plan
        if not _is_cascade(plan):
            for ev in self.dispatcher.stream(plan.order, messages, **params):
                yield self._chunk_or_final(decision, ev)
            return
        run = _CascadeRun(self, decision, messages, params, t0)
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=len(plan.first), thread_name_prefix="zerorouter-cascade"
        ) as pool:
            futs = [pool.submit(self._call_one, name, messages, params) for name in plan.first]
            outs = [f.result() for f in futs]
        final = run.first_stage(outs)
        if final is not None:
            yield from run.replay(final)
            return
        esc = None
        try:
            for ev in self.dispatcher.stream(plan.escalation, messages, **params):
                if isinstance(ev, StreamEnd):
                    esc = ev.result
                else:
                    yield delta_chunk(ev)
        except AllModelsFailedError as exc:
            yield from run.replay(run.escalation_failed(exc))
            return
        yield run.final_chunk(esc)

    async def astream(
        self, decision: Any, messages: list[dict[str, Any]], params: dict[str, Any], t0: float | None = None
    ) -> AsyncIterator[RoutedChunk]:
        """Async twin of :meth:`stream`."""
        plan = decision.plan
        if not _is_cascade(plan):
            async for ev in self.dispatcher.astream(plan.order, messages, **params):
                yield self._chunk_or_final(decision, ev)
            return
        run = _CascadeRun(self, decision, messages, params, t0)
        outs = await asyncio.gather(*(self._acall_one(name, messages, params) for name in plan.first))
        final = run.first_stage(outs)
        if final is not None:
            for chunk in run.replay(final):
                yield chunk
            return
        esc = None
        try:
            async for ev in self.dispatcher.astream(plan.escalation, messages, **params):
                if isinstance(ev, StreamEnd):
                    esc = ev.result
                else:
                    yield delta_chunk(ev)
        except AllModelsFailedError as exc:
            for chunk in run.replay(run.escalation_failed(exc)):
                yield chunk
            return
        yield run.final_chunk(esc)

    # ------------------------------------------------------------------ I/O helpers
    def _call_one(self, name: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        try:
            return self.dispatcher.complete([name], messages, **params)
        except AllModelsFailedError as exc:
            return exc

    async def _acall_one(self, name: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        try:
            return await self.dispatcher.acomplete([name], messages, **params)
        except AllModelsFailedError as exc:
            return exc

    def _chunk_or_final(self, decision: Any, ev: Any) -> RoutedChunk:
        if isinstance(ev, StreamEnd):
            return RoutedChunk(model=ev.result.model, final=True, response=self._single(decision, ev.result))
        return delta_chunk(ev)


def _is_cascade(plan: Any) -> bool:
    return isinstance(plan, CascadePlan) and plan.mode == "cascade"


def delta_chunk(ev: Any) -> RoutedChunk:
    """A :class:`RoutedChunk` for one dispatch stream delta."""
    return RoutedChunk(
        content=ev.content_delta or "",
        tool_call_deltas=list(ev.tool_call_deltas or []),
        model=ev.model,
        raw=ev.raw,
    )


class _CascadeRun:
    """The state of one cascade between its calls: what the first stage gave, what it cost, the stages."""

    def __init__(
        self,
        executor: Executor,
        decision: Any,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        t0: float | None,
    ):
        self.executor = executor
        self.decision = decision
        self.plan: CascadePlan = decision.plan
        self.t0 = time.perf_counter() if t0 is None else t0
        self.done: list[DispatchResult] = []
        self.attempts: list[Any] = []

    def first_stage(self, outs: Sequence[Any]) -> DispatchResult | None:
        """Record the first stage's outcomes; the accepted result, or None to escalate."""
        plan = self.plan
        results: dict[str, DispatchResult] = {}
        answers: dict[str, str | None] = {}
        probs: dict[str, float | None] = {}
        for name, out in zip(plan.first, outs):
            if isinstance(out, AllModelsFailedError):
                self.attempts.extend(out.attempts)
                answers[name] = None
                continue
            if isinstance(out, BaseException):
                raise out
            results[name] = out
            self.attempts.extend(out.attempts)
            answers[name] = None if out.tool_calls else extract_answer(out.content, plan.kind, plan.extractor)
            probs[name] = token_prob(out.response)
        self.done = list(results.values())
        accepted, detail = accept_answers(plan, answers, probs)
        if accepted and detail.get("answer_model") not in results:
            accepted = False
        self.decision.stages.append(_cascade_stage(plan, results, answers, accepted, detail))
        return results[detail["answer_model"]] if accepted else None

    def escalated(self, esc: DispatchResult) -> DispatchResult:
        """The escalation answered: record its stage, count its cost."""
        self.decision.stages.append(_escalation_stage(self.plan, esc))
        self.done.append(esc)
        self.attempts.extend(esc.attempts)
        return esc

    def escalation_failed(self, exc: AllModelsFailedError) -> DispatchResult:
        """Every escalation model failed: the primary's first-stage answer, else the other's; else raise."""
        self.decision.stages.append(_escalation_stage(self.plan, None, exc, self.plan.escalation))
        self.attempts.extend(exc.attempts)
        by = {r.model: r for r in self.done}
        for name in self.plan.first:
            if name in by:
                return by[name]
        raise AllModelsFailedError(self.attempts) from exc

    def respond(self, final: DispatchResult) -> RoutedResponse:
        """One response for the whole cascade: ``final``'s answer, usage and cost of every call."""
        self.decision.chosen = final.model
        return self.executor.finish(self.decision, combine(final, self.done, self.attempts, self.t0))

    def final_chunk(self, esc: DispatchResult | None) -> RoutedChunk:
        """The last chunk of an escalation that streamed live (its stream must have ended)."""
        if esc is None:
            raise RuntimeError("the escalation's stream ended without its final event")
        return RoutedChunk(model=esc.model, final=True, response=self.respond(self.escalated(esc)))

    def replay(self, final: DispatchResult) -> Iterator[RoutedChunk]:
        """A buffered answer as a stream: chunks of ``plan.chunk_chars`` characters, then the final chunk."""
        for piece in _chunks(final.content or "", self.plan.chunk_chars):
            yield RoutedChunk(content=piece, model=final.model)
        yield RoutedChunk(model=final.model, final=True, response=self.respond(final))


# ------------------------------------------------------------------------------------------------
# aggregation
# ------------------------------------------------------------------------------------------------


def sum_usage(results: Sequence[Any]) -> Usage:
    """Token counts summed over calls."""
    u = Usage()
    for r in results:
        ru = r.usage
        u.input_tokens += ru.input_tokens
        u.output_tokens += ru.output_tokens
        u.total_tokens += ru.total_tokens
        u.cache_read_tokens += ru.cache_read_tokens
        u.reasoning_tokens += ru.reasoning_tokens
    return u


def combine(final: DispatchResult, results: Sequence[Any], attempts: list[Any], t0: float) -> DispatchResult:
    """One DispatchResult for a multi-call plan: the final answer, usage and cost of every call."""
    latency = time.perf_counter() - t0
    return DispatchResult(
        model=final.model,
        response=final.response,
        content=final.content,
        tool_calls=final.tool_calls,
        finish_reason=final.finish_reason,
        usage=sum_usage(results),
        cost_usd=float(sum(r.cost_usd for r in results)),
        latency_s=latency,
        ttft_s=latency
        if final.ttft_s is None or final.ttft_s == final.latency_s
        else (latency - final.latency_s + final.ttft_s),
        attempts=attempts,
        cost_known=all(getattr(r, "cost_known", True) for r in results),
    )


def token_prob(response: Any) -> float | None:
    """Probability of the answer's tokens (exp of the mean token log-probability), when returned."""
    try:
        lp = response.choices[0].logprobs
    except (AttributeError, IndexError, TypeError):
        return None
    if lp is None:
        return None
    content = lp.get("content") if isinstance(lp, Mapping) else getattr(lp, "content", None)
    if not content:
        return None
    vals = []
    for t in content:
        v = t.get("logprob") if isinstance(t, Mapping) else getattr(t, "logprob", None)
        if v is not None and math.isfinite(float(v)):
            vals.append(float(v))
    if not vals:
        return None
    return float(math.exp(sum(vals) / len(vals)))


def _chunks(text: str, size: int) -> list[str]:
    size = max(1, int(size))
    return [text[i : i + size] for i in range(0, len(text), size)] if text else []


# ------------------------------------------------------------------------------------------------
# stage records
# ------------------------------------------------------------------------------------------------


def _cascade_stage(
    plan: CascadePlan,
    results: Mapping[str, Any],
    answers: Mapping[str, Any],
    accepted: bool,
    detail: Mapping[str, Any],
) -> Stage:
    return Stage(
        kind="cascade",
        models=list(plan.first),
        outcome="accepted" if accepted else "escalated",
        detail={
            "answer_kind": plan.kind,
            "answers": dict(answers),
            "contents": {m: (r.content or "")[:200] for m, r in results.items()},
            "failed": [m for m in plan.first if m not in results],
            "agreement": detail.get("agreement"),
            "confidence": detail.get("confidence"),
            "threshold": detail.get("threshold"),
            "accepted_model": detail.get("answer_model") if accepted else None,
            "reason": detail.get("reason"),
            "escalate_to": plan.escalate_to,
            "lam": plan.lam,
            "p_agree": plan.p_agree,
            "expected_quality": plan.expected_quality,
            "expected_cost_usd": plan.expected_cost_usd,
            "expected_latency_s": plan.expected_latency_s,
            "cost_usd": {m: r.cost_usd for m, r in results.items()},
            "latency_s": {m: r.latency_s for m, r in results.items()},
        },
    )


def _route_stage(plan: SinglePlan, result: DispatchResult) -> Stage:
    return Stage(
        kind="route",
        models=[result.model],
        outcome="answered",
        detail={
            "reason": plan.reason,
            "answer_kind": plan.kind,
            "expected_quality": plan.expected_quality,
            "expected_cost_usd": plan.expected_cost_usd,
            "cost_usd": result.cost_usd,
            "latency_s": result.latency_s,
        },
    )


def _escalation_stage(
    plan: CascadePlan,
    result: DispatchResult | None,
    error: BaseException | None = None,
    tried: Sequence[str] = (),
) -> Stage:
    if result is None:
        return Stage(
            kind="escalation",
            models=list(tried),
            outcome="failed",
            detail={
                "error": str(error)[:500] if error else None,
                "reason": "every escalation model failed; the first-stage answer is returned",
            },
        )
    return Stage(
        kind="escalation",
        models=[result.model],
        outcome="answered",
        detail={
            "target": plan.escalate_to,
            "served_by": result.model,
            "cost_usd": result.cost_usd,
            "latency_s": result.latency_s,
        },
    )
