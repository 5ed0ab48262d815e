"""Cascade mode: answer with cheap models first, check the answer, escalate only when it is doubtful.

A cascade is one more *plan* the per-query policy can choose, next to sending the request to a single
model. For one prompt with predicted quality ``q_j``, cost ``c_j`` and latency ``l_j`` per model
(the router's latent-space predictions), a cascade plan is

    first stage  : two cheap models ``a`` and ``b``, called concurrently;
    acceptance   : their normalized final answers agree (extractors of :mod:`answers`), weighed with
                   the router's predicted probabilities of success (and token log-probabilities when
                   the provider returns them);
    escalation   : otherwise the escalation target ``E`` (the best-quality admissible model, or the
                   choice of a stricter per-query :class:`~zerorouter_integrations.policy.Policy`).

Which pair, and whether to cascade at all, is decided like any other plan: the policy scores every
plan by ``Q − λ·C − μ·L`` and takes the best, where for a cascade

    Q = P(agree)·[accept? q(a | agree) : q(E | agree)] + P(disagree)·[accept? q(a | disagree) : q(E | disagree)]
    C = c_a + c_b + P(escalate)·c_E          L = max(l_a, l_b) + P(escalate)·l_E

and "accept?" is itself the λ-optimal second-stage rule: accept the cheap answer when its confidence
is at least the escalation's net value, ``conf ≥ q(E | ·) − λ·c_E − μ·l_E`` (that right-hand side is
the *accept threshold* of the request). The probabilities come from an :class:`AgreementModel`: a
closed-form prior (the two cheap answers' correctness is correlated beyond the predictions, ρ = 0.3;
agreement is evidence that the prompt is easy, which moves the escalation target's log-odds as much
as the cheap model's, β = 1, the item-response view of a shared prompt difficulty; two wrong answers
agree with a chance rate that depends on the answer kind) whose three parameters per answer kind can
be fitted on recorded answers (:meth:`AgreementModel.fit`). The default is the prior: it is what a
deployed router has, and on the shared tables it did at least as well as the fitted version
(``benchmarks/cascade.py``). With ``β = 1`` the dear end of the sweep (``λ → 0``) keeps the
escalation target's answer whenever the cheap model is predicted worse than it, so the cascade's
curve reaches the escalation target's quality; the earlier independence prior (``ρ = β = 0``)
accepted agreeing cheap answers with a predicted confidence of about 0.99 where 0.94–0.97 were
right, and the curve stopped short of the best single model on routerbench_subset.

``λ`` (and so every threshold) is calibrated exactly like the per-query policy: to a budget or to a
quality target on a calibration set (:meth:`CascadePolicy.fit`), bisecting ``λ`` and mixing the two
ends of the last step, so the calibration set lands within 1 % of the target.

Entry points: :func:`run_cascade`, :func:`arun_cascade`, :func:`stream_cascade`,
:func:`astream_cascade` (what ``ZeroRouter.complete(..., cascade=True)`` calls), and the offline
evaluation router ``"zerorouter-cascade"`` registered in :data:`EVAL_ROUTERS`, which replays the
answers recorded in a routing table's ``outcome_extras.parquet``.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from zerorouter_integrations.agreement import AgreementModel
from zerorouter_integrations.answers import (
    ANSWER_KINDS,
    answers_match,
    canonical_answer,
    detect_answer_kind,
    extractor_for,
)
from zerorouter_integrations.cascade_policy import CascadePolicy
from zerorouter_integrations.cascade_replay import EVAL_ROUTERS, evaluate_cascade, table_answers
from zerorouter_integrations.plan import CascadePlan, SinglePlan

__all__ = [
    "ANSWER_KINDS",
    "EVAL_ROUTERS",
    "AgreementModel",
    "CascadePlan",
    "CascadePolicy",
    "answers_match",
    "arun_cascade",
    "astream_cascade",
    "canonical_answer",
    "comparable_scores",
    "detect_answer_kind",
    "evaluate_cascade",
    "extractor_for",
    "plan_cascade",
    "resolve_policy",
    "run_cascade",
    "stream_cascade",
    "table_answers",
]


_DEFAULT_POLICIES: weakref.WeakKeyDictionary[Any, tuple[Any, CascadePolicy]] = weakref.WeakKeyDictionary()


def resolve_policy(router: Any, policy: Any) -> CascadePolicy:
    """The fitted cascade policy for ``router``: ``None`` / ``True`` → the router's own target,
    calibrated on its calibration prompts (cached per router and per-query policy); an unfitted
    ``CascadePolicy`` is fitted the same way."""
    if policy is None or policy is True:
        entry = _DEFAULT_POLICIES.get(router)
        if entry is None or entry[0] is not router.policy:
            entry = (router.policy, CascadePolicy().fit_router(router))
            _DEFAULT_POLICIES[router] = entry
        return entry[1]
    if not isinstance(policy, CascadePolicy):
        raise TypeError(f"cascade policy must be a CascadePolicy, True or None; got {policy!r}")
    if not hasattr(policy, "lam_"):
        policy.fit_router(router)
    return policy


def plan_cascade(
    router: Any,
    decision: Any,
    policy: Any,
    text: str,
    comparable: bool = True,
    latency_sla_s: float | None = None,
    turn: str | None = None,
) -> Any:
    """Give ``decision`` its cascade-mode plan (a :class:`CascadePlan`, or a single-model plan when the
    cascade policy prefers one) over the decision's ranked candidates; returns the decision.

    ``comparable=False`` (tool calls) never cascades; ``text`` is the request's text (the stable mixing
    key); the answer kind is detected from ``turn`` (the turn being answered; default ``text``).
    Requests without comparable answers are answered by one model, and the decision's ``notes`` say
    why: tool calls, code or open-ended requests, and every request of a router whose quality scores
    are judge scores or win probabilities (:func:`comparable_scores`).
    """
    pol = resolve_policy(router, policy)
    score_type = comparable_scores(router)
    if not comparable:
        kind, why = None, "a tool call"
    elif score_type is not None:
        kind, why = None, f"the router's quality scores are {score_type}, not checkable answers"
    elif callable(pol.extractor):
        kind, why = "custom", ""
    else:
        kind = detect_answer_kind(text if turn is None else turn)
        why = "an open-ended or code request (no comparable final answer)"
    if kind is None:
        decision.notes = [*(decision.notes or []), f"cascade declined: {why}; one model answers"]
    cands = decision.candidates
    plan = pol.plan(
        [cd.model for cd in cands],
        [cd.predicted_quality for cd in cands],
        [cd.predicted_cost_usd for cd in cands],
        [cd.predicted_latency_s for cd in cands],
        sd=[cd.quality_sd for cd in cands],
        kind=kind,
        key=text,
        latency_sla_s=latency_sla_s,
    )
    if plan.mode == "single":
        decision.plan = SinglePlan(
            [plan.first[0]] + [m for m in decision.ranking if m != plan.first[0]],
            reason=plan.reason,
            cascade=True,
            kind=kind,
            expected_quality=plan.expected_quality,
            expected_cost_usd=plan.expected_cost_usd,
        )
    else:
        e = plan.escalate_to
        plan.escalation = [str(e)] + [m for m in decision.ranking if m not in (e, *plan.first)]
        plan.logprob_weight = float(pol.logprob_weight or 0.0)
        plan.chunk_chars = int(pol.chunk_chars)
        plan.extractor = pol.extractor
        decision.plan = plan
    decision.policy = {
        "mode": "cascade",
        "lam": plan.lam,
        "mu": pol.mu_,
        **{k: v for k, v in (getattr(pol, "calibration_", None) or {}).items() if k in ("kind", "target")},
    }
    return decision


def comparable_scores(router: Any) -> str | None:
    """``None`` when the router's quality scores are checkable correctness (0/1 or partial credit), else
    what they are: a cascade compares two answers, which means nothing for a judge's score or a win
    probability against a reference, so such a router never cascades. Read from the predictor's (or
    the router's) ``score_type_`` / ``score_type`` attribute; unknown, or ``"mixed"`` (fit on tables of
    several score types, where the answer kind of each request decides), counts as comparable."""
    for obj in (getattr(router, "predictor", None), router):
        for name in ("score_type_", "score_type"):
            value = getattr(obj, name, None)
            if isinstance(value, str):
                return (
                    None
                    if value in ("binary", "partial", "mixed")
                    else f"{value} (judge scores or win probabilities)"
                )
    return None


def _cascade_kwargs(policy: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(kwargs)
    if "routing_policy" in kwargs:  # the per-query Policy that ranks the candidates (ZeroRouter's policy=)
        kwargs["policy"] = kwargs.pop("routing_policy")
    kwargs["cascade"] = True if policy is None or policy is True else policy
    return kwargs


def run_cascade(
    router: Any, messages: Any, *, policy: CascadePolicy | bool | None = None, **kwargs: Any
) -> Any:
    """Answer with a cascade: plan, run the cheap first stage concurrently, accept or escalate.

    The same as ``router.complete(messages, cascade=policy or True, **kwargs)``.

    Parameters
    ----------
    router : ZeroRouter
    messages : list of dict or str
    policy : CascadePolicy, True or None
        ``None``/``True``: a cascade policy with the router's own target, calibrated on its calibration
        prompts (cached per router). An unfitted ``CascadePolicy`` is fitted the same way.
    **kwargs
        LiteLLM parameters and routing options, as for ``ZeroRouter.complete`` (the router's per-query
        ``policy=`` option is spelled ``routing_policy=`` here). ``model=`` bypasses the cascade.

    Returns
    -------
    RoutedResponse
        ``usage`` and ``cost_usd`` sum every call of every stage; ``decision.stages`` lists them.
    """
    return router.complete(messages, **_cascade_kwargs(policy, kwargs))


async def arun_cascade(
    router: Any, messages: Any, *, policy: CascadePolicy | bool | None = None, **kwargs: Any
) -> Any:
    """Async twin of :func:`run_cascade` (the first stage runs under ``asyncio.gather``)."""
    return await router.acomplete(messages, **_cascade_kwargs(policy, kwargs))


def stream_cascade(
    router: Any, messages: Any, *, policy: CascadePolicy | bool | None = None, **kwargs: Any
) -> Iterator[Any]:
    """Stream a cascade's answer as ``RoutedChunk`` objects, the last one with ``final=True``.

    The first stage is buffered (both cheap models run to completion, concurrently); an accepted answer
    is then yielded in chunks of ``policy.chunk_chars`` characters. An escalated request streams the
    escalation model's answer live. A single-model plan streams live from the start.
    """
    yield from router.stream(messages, **_cascade_kwargs(policy, kwargs))


async def astream_cascade(
    router: Any, messages: Any, *, policy: CascadePolicy | bool | None = None, **kwargs: Any
) -> AsyncIterator[Any]:
    """Async twin of :func:`stream_cascade`."""
    async for chunk in router.astream(messages, **_cascade_kwargs(policy, kwargs)):
        yield chunk
