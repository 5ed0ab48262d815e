"""``CascadePolicy``: the per-query choice between one model and a cascade, calibrated like ``Policy``.

It scores every plan of a request (each single model, each cheap pair with its λ-optimal acceptance
rule and escalation) by ``Q − λ·C − μ·L`` and takes the best (:meth:`CascadePolicy.plan`); λ is
calibrated to a budget or a quality target on a calibration set (:meth:`CascadePolicy.fit`,
:meth:`CascadePolicy.fit_router`). The formulation is in :mod:`zerorouter_integrations.cascade`.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from zerorouter_integrations.agreement import AgreementModel
from zerorouter_integrations.cascade_menus import build_menus, calibrate_lam, choose, plan_from_choice
from zerorouter_integrations.errors import (
    NoAdmissibleModelError,
    NotFittedError,
    SchemaError,
    UnknownModelError,
)
from zerorouter_integrations.plan import CascadePlan, accept_answers
from zerorouter_integrations.policy_calibration import prompt_uniform
from zerorouter_integrations.policy_params import TARGET_PARAMS, PolicyParams

__all__ = ["CascadePolicy"]


class CascadePolicy(PolicyParams):
    """Per-query choice between single models and cascades, calibrated to a budget or a quality target.

    Parameters
    ----------
    lam : float, optional
        Price of cost (quality units per USD). Give at most one of ``lam``, ``budget_usd_per_1k``,
        ``quality_target`` and ``reference_fraction``; with none, :func:`run_cascade` takes the
        router's own policy target (and :meth:`fit` raises).
    mu : float, default=0.0
        Price of latency (quality units per second); the expected escalation latency counts.
    budget_usd_per_1k : float, optional
        Calibrate λ so that the mean expected cost on the calibration set is this many USD per 1k calls.
    quality_target : float, optional
        Calibrate λ so that the mean expected quality on the calibration set is this value.
    reference : str, optional
        With ``reference_fraction``: the target is that fraction of this model's mean predicted quality.
    reference_fraction : float, optional
    max_candidates : int, default=4
        Per prompt, the first-stage candidates are the models cheaper than the escalation target whose
        predicted quality clears ``quality_floor`` and that are on the predicted quality/cost frontier
        (no other candidate is both cheaper and better); the ``max_candidates`` best of them are kept
        and every pair of them is a plan (the policy takes the best).
    quality_floor : float, default=0.3
        Least predicted quality of a first-stage model.
    escalate_to : "reference", "best" or Policy, default="reference"
        The escalation target. ``"reference"``: the model of highest mean predicted quality on the
        calibration set (the policy's best-quality model), or, for a request where it is not
        admissible, that request's best admissible model. ``"best"``: per request, the admissible
        model of highest predicted quality (ties to the cheaper). A per-query
        :class:`~zerorouter_integrations.policy.Policy`: its choice (e.g.
        ``Policy.for_quality_target(0.99, reference=...)``, fitted on the same calibration set when it
        is not fitted yet). ``"reference"`` is the default because a per-request argmax follows the
        noise of the predictions (the evaluation in ``benchmarks/cascade.py`` compares them).
    extractor : "auto" or callable, default="auto"
        ``"auto"``: the answer kind is detected from the prompt (:func:`detect_answer_kind`) and its
        extractor used; prompts without a comparable answer (code, open-ended) are never cascaded.
        A callable ``str → str | None`` is used for every prompt.
    agreement : AgreementModel, optional
        Default: the closed-form prior.
    uncertainty_penalty : float, default=0.0
        The cheap models' predicted probabilities enter the agreement model as ``p − κ·sd``
        (``κ`` = this value, ``sd`` the predictor's standard deviation).
    logprob_weight : float, default=0.5
        Weight, in logit units, of the answer's token probability when the provider returns
        log-probabilities: ``logit conf ← logit conf + w·(logit p_tokens − logit p_model)``.
    allow_single : bool, default=True
        Whether single-model plans compete with cascades (``False``: always cascade when the answer
        kind allows it).
    chunk_chars : int, default=32
        Size of the chunks a stream yields for an accepted (buffered) first-stage answer.
    random_state : int, default=0
        Seed for requests without a key on a mixed calibration.

    Attributes
    ----------
    lam_, lam_alt_, mix_, mu_ : float
        Calibrated price of cost (``lam_alt_`` for the fraction ``mix_`` of prompts), price of latency.
    agreement_ : AgreementModel
    escalate_policy_ : Policy or None
    calibration_ : dict
        ``kind``, ``target``, ``achieved``, ``relative_error``, ``mean_cost_usd``, ``mean_quality``,
        ``cascade_share``, ``expected_escalation_rate``, ``lam``, ``lam_alt``, ``mix``, ``n_prompts``.
    """

    def __init__(
        self,
        *,
        lam: float | None = None,
        mu: float = 0.0,
        budget_usd_per_1k: float | None = None,
        quality_target: float | None = None,
        reference: str | None = None,
        reference_fraction: float | None = None,
        max_candidates: int = 4,
        quality_floor: float = 0.3,
        escalate_to: Any = "reference",
        extractor: Any = "auto",
        agreement: AgreementModel | None = None,
        uncertainty_penalty: float = 0.0,
        logprob_weight: float = 0.5,
        allow_single: bool = True,
        chunk_chars: int = 32,
        random_state: int | None = 0,
    ):
        self.lam = lam
        self.mu = mu
        self.budget_usd_per_1k = budget_usd_per_1k
        self.quality_target = quality_target
        self.reference = reference
        self.reference_fraction = reference_fraction
        self.max_candidates = max_candidates
        self.quality_floor = quality_floor
        self.escalate_to = escalate_to
        self.extractor = extractor
        self.agreement = agreement
        self.uncertainty_penalty = uncertainty_penalty
        self.logprob_weight = logprob_weight
        self.allow_single = allow_single
        self.chunk_chars = chunk_chars
        self.random_state = random_state

    @classmethod
    def from_policy(cls, policy: Any, **params: Any) -> CascadePolicy:
        """A cascade policy with the same target (λ, budget or quality) as a per-query ``Policy``."""
        inherited = {k: getattr(policy, k, None) for k in TARGET_PARAMS}
        inherited["mu"] = float(inherited["mu"] or 0.0)
        if all(
            inherited[k] is None for k in ("lam", "budget_usd_per_1k", "quality_target", "reference_fraction")
        ):
            lam = getattr(policy, "lam_", None)
            if lam is None:
                raise ValueError(
                    f"cannot take a target from {policy!r}: it has no lam, budget or quality target"
                )
            inherited["lam"] = float(lam)
        return cls(**{**inherited, **params})

    def _target_kind(self) -> str | None:
        given = self._given_targets()
        if len(given) > 1:
            raise ValueError(
                f"give at most one of lam, budget_usd_per_1k, quality_target or reference_fraction; "
                f"got {', '.join(given)}"
            )
        self._check_target_values()
        if not (isinstance(self.max_candidates, int) and self.max_candidates >= 2):
            raise ValueError(f"max_candidates must be an int ≥ 2; got {self.max_candidates!r}")
        if not (self.escalate_to in ("best", "reference") or hasattr(self.escalate_to, "choose")):
            raise ValueError(f"escalate_to must be 'best', 'reference' or a Policy; got {self.escalate_to!r}")
        if not (self.extractor == "auto" or callable(self.extractor)):
            raise ValueError(
                f"extractor must be 'auto' or a callable str → str | None; got {self.extractor!r}"
            )
        return given[0] if given else None

    # ---- fit
    def fit(
        self,
        Q: Any,
        C: Any,
        L: Any = None,
        *,
        sd: Any = None,
        kinds: Sequence[str | None] | None = None,
        model_names: Sequence[str] | None = None,
        mask: Any = None,
        keys: Sequence[Hashable] | None = None,
    ) -> CascadePolicy:
        """Calibrate λ on a calibration set of predictions.

        Parameters
        ----------
        Q, C : array-like, shape (n_prompts, n_models)
            Predicted quality and cost (USD per call).
        L : array-like, optional
            Predicted latency (seconds); needed when ``mu`` ≠ 0.
        sd : array-like, optional
            Standard deviation of ``Q`` (used with ``uncertainty_penalty``).
        kinds : sequence of str or None, optional
            Answer kind of each prompt (``None``: not comparable, never cascaded). Default: every
            prompt comparable with the agreement model's pooled (``"*"``) probabilities.
        model_names : sequence of str, optional
            Column names (needed with ``reference``).
        mask : array-like of bool, optional
            Admissible (prompt, model) pairs.
        keys : sequence of hashable, optional
            Prompt keys for the calibrated mix (default: the row index).

        Returns
        -------
        self

        Raises
        ------
        InfeasibleError
            The target cannot be met on the calibration set.
        """
        kind = self._target_kind()
        if kind is None:
            raise ValueError(
                "CascadePolicy.fit needs a target: give lam, budget_usd_per_1k, quality_target or "
                "reference_fraction (run_cascade takes the router's own target when none is given)"
            )
        Qm = np.asarray(Q, dtype=float)
        if Qm.ndim != 2:
            raise ValueError(f"Q must be 2-D (n_prompts × n_models); got shape {Qm.shape}")
        Cm = np.asarray(C, dtype=float)
        if Cm.shape != Qm.shape:
            raise ValueError(f"C has shape {Cm.shape}; expected {Qm.shape} like Q")
        mu = float(self.mu)
        if mu and L is None:
            raise ValueError(f"mu={mu} prices latency, so L= (predicted latency, seconds) is required")
        n, m = Qm.shape
        names = None if model_names is None else list(model_names)
        if names is not None and len(names) != m:
            raise ValueError(f"model_names has {len(names)} names; Q has {m} columns")
        kinds = ["*"] * n if kinds is None else list(kinds)
        if len(kinds) != n:
            raise ValueError(f"kinds has {len(kinds)} entries; Q has {n} rows")
        adm = None if mask is None else np.asarray(mask, dtype=bool)
        self.agreement_ = self.agreement if self.agreement is not None else AgreementModel()
        self.escalate_policy_ = None
        self.escalate_model_ = None
        if self.escalate_to == "reference":
            j = int(np.lexsort((np.nanmean(Cm, axis=0), -np.nanmean(Qm, axis=0)))[0])
            self.escalate_model_ = names[j] if names is not None else j
        elif self.escalate_to != "best":
            esc = self.escalate_to
            if getattr(esc, "lam_", None) is None and getattr(esc, "lam", None) is None:
                esc = copy.deepcopy(esc).fit(
                    Qm, Cm, L if getattr(esc, "mu", 0.0) else None, model_names=names, mask=adm
                )
            self.escalate_policy_ = esc
        pl = build_menus(self, Qm, Cm, L, sd, kinds, adm, keys, names)
        u = self._uniforms(n, keys)

        lam_alt, mix, binding = None, 0.0, True
        target = None
        if kind == "lam":
            lam, binding = float(cast(float, self.lam)), False
        else:
            if kind == "budget":
                target = float(cast(float, self.budget_usd_per_1k)) / 1000.0
            elif kind == "quality":
                target = float(cast(float, self.quality_target))
            else:
                if names is None:
                    raise ValueError(f"reference={self.reference!r} needs model_names= to find its column")
                if self.reference not in names:
                    raise UnknownModelError(str(self.reference), names)
                target = float(cast(float, self.reference_fraction)) * float(
                    pl.Q[:, names.index(self.reference)].mean()
                )
            lam, lam_alt, mix, binding = calibrate_lam(pl, kind, target, mu, u)
        self._set_prices(lam, lam_alt, mix, mu)
        self.model_names_ = names
        self.rng_ = np.random.default_rng(self.random_state)
        ch = choose(pl, self._lams(u), mu)
        mean_c, mean_q = float(ch.C.mean()), float(ch.Q.mean())
        achieved = None if kind == "lam" else (mean_c if kind == "budget" else mean_q)
        rel = None if achieved is None or not target else abs(achieved - target) / abs(target)
        esc_rate = np.where(ch.is_pair, ch.p_agree * ~ch.acc_agree + (1 - ch.p_agree) * ~ch.acc_dis, 0.0)
        self.calibration_ = {
            "kind": kind,
            "target": target,
            "achieved": achieved,
            "relative_error": rel,
            "binding": bool(binding),
            "mean_cost_usd": mean_c,
            "cost_usd_per_1k": 1000 * mean_c,
            "mean_quality": mean_q,
            "mean_latency_s": float(ch.L.mean()),
            "cascade_share": float(ch.is_pair.mean()),
            "expected_escalation_rate": float(np.nan_to_num(esc_rate).mean()),
            "lam": self.lam_,
            "lam_alt": self.lam_alt_,
            "mix": self.mix_,
            "mu": mu,
            "n_prompts": int(n),
        }
        if names is not None and self.reference in (names or []):
            j = names.index(self.reference)
            ref_c = float(pl.C[:, j].mean())
            self.calibration_.update(
                reference=self.reference,
                reference_mean_quality=float(pl.Q[:, j].mean()),
                reference_mean_cost_usd=ref_c,
                saving_fraction=None if ref_c <= 0 else 1 - mean_c / ref_c,
            )
        if binding and rel is not None and rel > 0.01:
            import warnings

            warnings.warn(
                f"cascade calibration reached {achieved:.6g} for a {kind} target of {target:.6g} "
                f"({rel:.2%} off): the calibration set is too small",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def _lams(self, u: np.ndarray) -> np.ndarray:
        lam = np.full(len(u), self.lam_)
        if self.lam_alt_ is not None and self.mix_ > 0:
            lam[u < self.mix_] = self.lam_alt_
        return lam

    # ---- one request
    def _fitted(self) -> None:
        if not hasattr(self, "lam_"):
            if self.lam is not None and self._target_kind() == "lam":
                self.agreement_ = self.agreement if self.agreement is not None else AgreementModel()
                self.escalate_policy_ = None if isinstance(self.escalate_to, str) else self.escalate_to
                self.escalate_model_ = None
                self.lam_, self.lam_alt_, self.mix_, self.mu_ = float(self.lam), None, 0.0, float(self.mu)
                return
            raise NotFittedError(
                "this CascadePolicy is calibrated to a target; call fit(Q, C, ...) on a calibration "
                "set first (or give it to run_cascade, which fits it on the router's calibration set)"
            )

    def plan(
        self,
        models: Sequence[str],
        q: Any,
        c: Any,
        l: Any = None,
        *,
        sd: Any = None,
        kind: str | None = "*",
        key: Hashable | None = None,
        latency_sla_s: float | None = None,
    ) -> CascadePlan:
        """The plan for one request over its admissible ``models``.

        Parameters
        ----------
        models : sequence of str
        q, c, l, sd : array-like, shape (n_models,)
            Predicted quality, cost (USD), latency (s) and quality sd of each model.
        kind : str or None
            Answer kind of the request (``None``: not comparable → single-model plan).
        key : hashable, optional
            Decides the side of a mixed calibration by a stable hash (else the seeded generator).
        latency_sla_s : float, optional
            Cascades whose worst case (slower first-stage model, then the escalation) is predicted to
            take longer are not considered.
        """
        self._fitted()
        names = list(models)
        m = len(names)
        if m == 0:
            raise NoAdmissibleModelError("no admissible model for this request")
        q = np.asarray(q, dtype=float).reshape(1, m)
        c = np.asarray(c, dtype=float).reshape(1, m)
        L = (
            None
            if l is None
            else np.asarray([np.nan if v is None else v for v in np.ravel(l)], dtype=float).reshape(1, m)
        )
        SD = (
            None
            if sd is None
            else np.asarray([np.nan if v is None else v for v in np.ravel(sd)], dtype=float).reshape(1, m)
        )
        lam = self.lam_
        if self.lam_alt_ is not None and self.mix_ > 0:
            if key is not None:
                uu = prompt_uniform(key)
            else:
                if not hasattr(self, "rng_"):
                    self.rng_ = np.random.default_rng(self.random_state)
                uu = float(self.rng_.random())
            if uu < self.mix_:
                lam = self.lam_alt_
        pl = build_menus(self, q, c, L, SD, [kind], keys=None if key is None else [key], names=names)
        if latency_sla_s is not None and pl.pair_ok.any():
            la = np.take_along_axis(pl.L, pl.prim, 1)
            lb = np.take_along_axis(pl.L, pl.sec, 1)
            pl.pair_ok &= np.maximum(la, lb) + pl.L[0, pl.E[0]] <= float(latency_sla_s)
        ch = choose(pl, lam, self.mu_)
        return plan_from_choice(ch, pl, names, q, c, kind, float(lam), self.quality_floor)

    def accept(
        self,
        plan: CascadePlan,
        answers: Mapping[str, str | None],
        token_probs: Mapping[str, float | None] | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """The second-stage decision of a cascade from the first stage's extracted answers: accepted or
        not, and ``detail`` (agreement, confidence, threshold, answer_model, reason). The rule is
        :func:`~zerorouter_integrations.plan.accept_answers` with this policy's ``logprob_weight``."""
        if plan.mode != "cascade":
            raise ValueError("accept() needs a cascade plan")
        return accept_answers(plan, answers, token_probs, logprob_weight=float(self.logprob_weight or 0.0))

    # ---- against a router
    def fit_router(self, router: Any) -> CascadePolicy:
        """Calibrate on the router's calibration prompts (taking the router's own target when none is set)."""
        pool = router.routable_models
        calib = router.calibration()
        target = self
        if self._target_kind() is None:
            target = CascadePolicy.from_policy(
                router.policy,
                **{k: v for k, v in self.get_params().items() if k not in TARGET_PARAMS},
            )
        if calib is None:
            if target.lam is None:
                raise SchemaError(
                    "this router has no calibration prompts; give the CascadePolicy an explicit lam"
                )
            target._fitted()
        else:
            Z, toks = calib
            pred = router.predictor.predict(Z=Z, input_tokens=toks, models=pool)
            L = None
            if target.mu:
                stats = router.store.all_stats()
                L = np.tile([router.expected_latency(mm, stats.get(mm)) for mm in pool], (len(Z), 1))
            target.fit(pred.quality, pred.cost_usd, L, sd=pred.quality_sd, model_names=pool)
        if target is not self:
            for k, v in vars(target).items():
                if k.endswith("_") and not k.startswith("_"):
                    setattr(self, k, v)
        return self
