"""Plans: what a routing decision says to do, as plain data that the executor runs.

Two kinds, both with ``to_dict()`` / ``from_dict()`` and shown in :class:`RoutingDecision`:

* :class:`SinglePlan`: call the ranked candidates in order; the first is the chosen model, the rest
  are the fallbacks down the decision's ranking (a retryable error on one moves to the next).
* :class:`CascadePlan`: the **first stage** (two cheap models called concurrently), the **acceptance
  rule** (accept their answer when the confidence of the compared answers reaches the threshold:
  ``threshold_agree`` / ``threshold_disagree``, ``confidence_agree`` / ``confidence_disagree``,
  ``logprob_weight``), and the **escalation** (``escalate_to``, then the fallbacks in ``escalation``).

:mod:`zerorouter_integrations.executor` runs either (sync, async, stream, astream);
:func:`accept_answers` is the acceptance rule itself, shared by the executor and
:meth:`CascadePolicy.accept <zerorouter_integrations.cascade_policy.CascadePolicy.accept>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from zerorouter_integrations.answers import answers_match
from zerorouter_integrations.jsonsafe import json_safe

__all__ = ["CascadePlan", "Plan", "SinglePlan", "accept_answers", "plan_from_dict"]


@dataclass
class SinglePlan:
    """Send the request to ``models[0]``; on a retryable failure fall back to ``models[1:]`` in order.

    Attributes
    ----------
    models : list of str
        Ranked candidates: the chosen model, then the fallbacks.
    mode : {"single", "forced"}
        ``"forced"`` when ``model=`` bypassed routing.
    reason : str
        Why this plan.
    cascade : bool
        The request asked for a cascade and the cascade policy chose a single model (the response
        then records a ``"route"`` stage with the expected figures below).
    kind : str or None
        Answer kind of the request (cascade requests only).
    expected_quality, expected_cost_usd : float or None
        Of the plan, when a cascade policy chose it.
    """

    models: list[str]
    mode: str = "single"
    reason: str = ""
    cascade: bool = False
    kind: str | None = None
    expected_quality: float | None = None
    expected_cost_usd: float | None = None

    @property
    def order(self) -> list[str]:
        """The models in the order they are tried."""
        return list(self.models)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``"plan": "single"`` tells the kind)."""
        return json_safe({"plan": "single", **{f.name: getattr(self, f.name) for f in fields(self)}})


@dataclass
class CascadePlan:
    """A cascade for one request (see :meth:`CascadePolicy.plan`), or its single-model verdict.

    Attributes
    ----------
    mode : {"single", "cascade"}
        ``"single"``: the cascade policy found a single model better (``first`` holds it).
    first : list of str
        ``[model]`` for a single plan; ``[primary, second]`` for a cascade.
    escalate_to : str or None
        The escalation target of a cascade.
    kind : str or None
        Answer kind compared in the first stage.
    lam : float
        The λ this request uses (either end of a mixed calibration).
    expected_quality, expected_cost_usd, expected_latency_s : float
        Of the whole plan (a cascade counts its expected escalation).
    p_agree : float or None
        Predicted probability that the two cheap answers agree.
    accept_if_agree, accept_if_disagree : bool or None
        The λ-optimal second-stage rule under the predicted probabilities.
    threshold_agree, threshold_disagree : float or None
        Accept thresholds: the escalation's net value ``q(E | ·) − λ·c_E − μ·l_E``.
    confidence_agree, confidence_disagree : float or None
        Predicted probability that the cheap answer is right, given agreement / disagreement.
    reason : str
        Why this plan.
    escalation : list of str
        The escalation order: ``escalate_to``, then the rest of the decision's ranking (set when the
        router makes the plan; empty from :meth:`CascadePolicy.plan`).
    logprob_weight : float
        Weight, in logit units, of the answer's token probability in the acceptance rule.
    chunk_chars : int
        Chunk size a stream uses for an accepted (buffered) first-stage answer.
    extractor : "auto" or callable
        How answers are extracted for comparison (``"auto"``: by ``kind``); not serialized.
    """

    mode: str
    first: list[str]
    escalate_to: str | None
    kind: str | None
    lam: float
    expected_quality: float
    expected_cost_usd: float
    expected_latency_s: float
    p_agree: float | None = None
    accept_if_agree: bool | None = None
    accept_if_disagree: bool | None = None
    threshold_agree: float | None = None
    threshold_disagree: float | None = None
    confidence_agree: float | None = None
    confidence_disagree: float | None = None
    quality: dict[str, float] = field(default_factory=dict)
    cost_usd: dict[str, float] = field(default_factory=dict)
    latency_s: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    escalation: list[str] = field(default_factory=list)
    logprob_weight: float = 0.5
    chunk_chars: int = 32
    extractor: Any = field(default="auto", repr=False, compare=False)

    @property
    def order(self) -> list[str]:
        """Every model the plan may call: the first stage, then the escalation order."""
        return list(
            dict.fromkeys([*self.first, *(self.escalation or [self.escalate_to] if self.escalate_to else [])])
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``"plan": "cascade"``; a callable extractor is written as ``"custom"``)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["extractor"] = d["extractor"] if isinstance(d["extractor"], str) else "custom"
        return json_safe({"plan": "cascade", **d})


Plan = SinglePlan | CascadePlan


def plan_from_dict(d: Mapping[str, Any]) -> Plan:
    """Rebuild a plan from its :meth:`to_dict` output (a ``"custom"`` extractor comes back as ``"auto"``)."""
    kind = d.get("plan")
    names = {
        "single": {f.name for f in fields(SinglePlan)},
        "cascade": {f.name for f in fields(CascadePlan)},
    }
    if kind not in names:
        raise ValueError(f"plan dict has plan={kind!r}; expected 'single' or 'cascade'")
    kw = {k: v for k, v in d.items() if k in names[kind]}
    if kind == "single":
        return SinglePlan(**kw)
    if kw.get("extractor") == "custom":
        kw["extractor"] = "auto"
    return CascadePlan(**kw)


def _num(v: float | None) -> float:
    if v is None:
        raise ValueError("this cascade plan lacks its acceptance thresholds (made by CascadePolicy.plan)")
    return float(v)


def _logit(p: float) -> float:
    q = np.clip(float(p), 1e-4, 1 - 1e-4)
    return float(np.log(q) - np.log1p(-q))


def _expit(x: float) -> float:
    return float(0.5 * (1.0 + np.tanh(0.5 * float(x))))


def accept_answers(
    plan: CascadePlan,
    answers: Mapping[str, str | None],
    token_probs: Mapping[str, float | None] | None = None,
    logprob_weight: float | None = None,
) -> tuple[bool, dict[str, Any]]:
    """The acceptance rule of a cascade plan, applied to the first stage's extracted answers.

    Parameters
    ----------
    plan : CascadePlan
        A ``"cascade"`` plan.
    answers : mapping of str to str or None
        Canonical extracted answer of each first-stage model (``None``: failed or no answer).
    token_probs : mapping of str to float, optional
        Probability of each model's answer tokens, when the provider returned log-probabilities.
    logprob_weight : float, optional
        Overrides ``plan.logprob_weight``.

    Returns
    -------
    (accepted, detail)
        ``detail`` holds ``agreement``, ``confidence``, ``threshold``, ``answer_model`` and ``reason``.
    """
    if plan.mode != "cascade":
        raise ValueError(f"the acceptance rule needs a cascade plan, got mode={plan.mode!r}")
    weight = plan.logprob_weight if logprob_weight is None else logprob_weight
    a, b = plan.first
    ans_a, ans_b = answers.get(a), answers.get(b)
    answer_model = a if ans_a is not None or ans_b is None else b
    agree = answers_match(ans_a, ans_b)
    if agree:
        conf, thr = _num(plan.confidence_agree), _num(plan.threshold_agree)
    elif ans_a is None and ans_b is None:
        return False, {
            "agreement": False,
            "confidence": 0.0,
            "threshold": plan.threshold_disagree,
            "answer_model": None,
            "reason": "no first-stage model gave a comparable answer",
        }
    elif ans_a is None or ans_b is None:
        # one answer only: its model's own predicted quality is the confidence
        conf = float(plan.quality.get(answer_model, 0.0))
        thr = _num(plan.threshold_disagree)
    else:
        conf, thr = _num(plan.confidence_disagree), _num(plan.threshold_disagree)
    tp = (token_probs or {}).get(answer_model)
    if tp is not None and weight:
        prior = float(plan.quality.get(answer_model, 0.5))
        conf = float(_expit(_logit(conf) + float(weight) * (_logit(tp) - _logit(prior))))
    accepted = conf >= thr
    if agree:
        why = (
            f"answers agree; confidence {conf:.3f} ≥ threshold {thr:.3f}"
            if accepted
            else f"answers agree but confidence {conf:.3f} < threshold {thr:.3f} (escalation is worth its cost)"
        )
    elif ans_a is None or ans_b is None:
        why = (
            f"only {answer_model} answered; confidence {conf:.3f} "
            + ("≥" if accepted else "<")
            + f" threshold {thr:.3f}"
        )
    else:
        why = (
            f"answers disagree ({ans_a!r} vs {ans_b!r}); confidence {conf:.3f} "
            + ("≥" if accepted else "<")
            + f" threshold {thr:.3f}"
        )
    return bool(accepted), {
        "agreement": bool(agree),
        "confidence": conf,
        "threshold": thr,
        "answer_model": answer_model,
        "reason": why,
    }
