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

import copy
import inspect
import math
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from zerorouter_integrations.answers import (
    ANSWER_KINDS,
    answers_match,
    canonical_answer,
    detect_answer_kind,
    extract_answer,
    extractor_for,
)
from zerorouter_integrations.errors import (
    InfeasibleError,
    NoAdmissibleModelError,
    NotFittedError,
    SchemaError,
    UnknownModelError,
)
from zerorouter_integrations.plan import CascadePlan, accept_answers
from zerorouter_integrations.policy import _index_uniform, prompt_uniform

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
    "detect_answer_kind",
    "evaluate_cascade",
    "extractor_for",
    "plan_cascade",
    "resolve_policy",
    "run_cascade",
    "stream_cascade",
    "table_answers",
]

_EPS = 1e-4

# ------------------------------------------------------------------------------------------------
# agreement model
# ------------------------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


#: The five probabilities an agreement model gives for a pair (a, b) and an escalation target E.
_OUTPUTS = ("agree", "a_ok_agree", "a_ok_dis", "e_ok_agree", "e_ok_dis")


def _structural(
    pa: np.ndarray, pb: np.ndarray, pe: np.ndarray, r: float, rho: float, beta: float
) -> dict[str, np.ndarray]:
    """The five first-stage probabilities of the agreement model (see :class:`AgreementModel`)."""
    s = np.sqrt(pa * (1 - pa) * pb * (1 - pb))
    both = np.clip(pa * pb + rho * s, np.maximum(0.0, pa + pb - 1), np.minimum(pa, pb))
    both_wrong = np.clip(1 - pa - pb + both, 0.0, 1.0)
    agree = np.clip(both + r * both_wrong, _EPS, 1 - _EPS)
    a_ok_agree = np.clip(both / agree, _EPS, 1 - _EPS)
    a_ok_dis = np.clip((pa - both) / (1 - agree), 0.0, 1.0)
    # E's log-odds move by β times the primary's shift on each side, around a level ℓ that keeps E's
    # marginal: agree·expit(ℓ + β·δ_agree) + (1 − agree)·expit(ℓ + β·δ_dis) = p_E (Newton, bracketed).
    d_ag = beta * (_logit(a_ok_agree) - _logit(pa))
    d_dis = beta * (_logit(a_ok_dis) - _logit(pa))
    le = _logit(pe)
    lo, hi = le - np.maximum(d_ag, d_dis), le - np.minimum(d_ag, d_dis)
    ell = np.clip(le, lo, hi)
    for _ in range(30):
        s_ag, s_dis = _expit(ell + d_ag), _expit(ell + d_dis)
        f = agree * s_ag + (1 - agree) * s_dis - pe
        if np.all(np.abs(f) < 1e-7):
            break
        lo, hi = np.where(f < 0, ell, lo), np.where(f > 0, ell, hi)
        df = agree * s_ag * (1 - s_ag) + (1 - agree) * s_dis * (1 - s_dis)
        step = ell - f / np.maximum(df, 1e-12)
        ell = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
    e_ok_agree = np.clip(_expit(ell + d_ag), _EPS, 1 - _EPS)
    e_ok_dis = np.clip(_expit(ell + d_dis), 0.0, 1.0)
    return {
        "agree": agree,
        "a_ok_agree": a_ok_agree,
        "a_ok_dis": a_ok_dis,
        "e_ok_agree": e_ok_agree,
        "e_ok_dis": e_ok_dis,
    }


def _nll(
    theta: np.ndarray,
    pa: np.ndarray,
    pb: np.ndarray,
    pe: np.ndarray,
    agree: np.ndarray,
    ok_a: np.ndarray,
    ok_e: np.ndarray,
) -> float:
    r, rho, beta = _unpack(theta)
    pr = _structural(pa, pb, pe, r, rho, beta)

    def ll(p: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return y * np.log(p) + (1 - y) * np.log1p(-p)

    total = ll(pr["agree"], agree)
    total += np.where(agree, ll(pr["a_ok_agree"], ok_a), ll(pr["a_ok_dis"], ok_a))
    total += np.where(agree, ll(pr["e_ok_agree"], ok_e), ll(pr["e_ok_dis"], ok_e))
    return float(-total.mean())


def _unpack(theta: np.ndarray) -> tuple[float, float, float]:
    """Unconstrained → (chance r in (0, 1), correlation ρ in (-0.5, 1), coupling β in (0, 4))."""
    r = float(_expit(theta[0]))
    rho = float(-0.5 + 1.5 * _expit(theta[1]))
    beta = float(4.0 * _expit(theta[2]))
    return r, rho, beta


def _pack(r: float, rho: float, beta: float) -> np.ndarray:
    return np.array(
        [_logit(np.array(r))[()], _logit(np.array((rho + 0.5) / 1.5))[()], _logit(np.array(beta / 4.0))[()]],
        dtype=float,
    )


class AgreementModel:
    """Probabilities of the first-stage outcome of a cascade, from predicted qualities.

    For cheap models ``a`` (the primary: its answer is the one returned) and ``b`` and the escalation
    target ``E`` with predicted probabilities of success ``p_a``, ``p_b``, ``p_E``, it gives
    ``P(agree)``, ``P(a correct | agree)``, ``P(a correct | disagree)``, ``P(E correct | agree)`` and
    ``P(E correct | disagree)`` from three numbers per answer kind:

    * ``ρ``, the correlation of the two cheap models' correctness beyond their predicted
      probabilities (hard prompts are hard for both): ``P(both right) = p_a·p_b + ρ·√(p_a(1−p_a)p_b(1−p_b))``;
    * ``r``, the chance that two wrong answers agree (high for two-option questions, small for numbers);
      ``P(agree) = P(both right) + r·P(both wrong)``, and ``P(a right | agree) = P(both right) / P(agree)``;
    * ``β``, how much the first-stage outcome says about ``E``: on either side (agree / disagree),
      ``logit P(E right | side) = ℓ_E + β·(logit P(a right | side) − logit p_a)``, with the level
      ``ℓ_E`` (``= logit p_E`` at ``β = 0``) set so that ``p_E`` is kept on average.

    ``p_a`` and ``p_E`` are kept on average, so no plan gains quality from the first stage's outcome
    alone. Unfitted, ``ρ`` = :attr:`DEFAULT_RHO`,
    ``β`` = :attr:`DEFAULT_BETA` and ``r = chance[kind]``; :meth:`fit` estimates the three by maximum
    likelihood per answer kind from recorded answers.

    The prior's ``β = 1`` is the item-response reading of agreement: ``logit p_j = θ_j − b`` with one
    prompt difficulty ``b`` shared by every model, so what agreement says about ``b`` shifts the cheap
    model's and the escalation target's log-odds alike. One consequence: for ``p_a ≤ p_E``,
    ``P(a right | side) ≤ P(E right | side)`` on both sides, so at ``λ = 0`` the answer of a cheap
    model predicted worse than the escalation target is never accepted and the dear end of a λ
    sweep keeps the target's quality. ``ρ = 0.3`` (hard prompts are hard for both cheap models) is in the range the
    maximum-likelihood fit finds on both shared tables (0.2–0.4 per answer kind); with ``ρ = 0``
    the prior's confidence on agreement was about 0.99 where 0.94–0.97 of the agreeing answers were
    right.

    Parameters
    ----------
    chance : mapping of str to float, optional
        Prior chance that two wrong answers agree, per answer kind (``"*"``: any other kind); defaults
        in :attr:`DEFAULT_CHANCE`.
    rho : float, default=DEFAULT_RHO (0.3)
        Prior correlation of the cheap models' correctness (used until :meth:`fit`).
    beta : float, default=DEFAULT_BETA (1.0)
        Prior coupling of the escalation target's log-odds to agreement (used until :meth:`fit`).
    min_rows : int, default=200
        Fewest rows (prompt × pair) a kind needs for its own fit; with fewer it uses the pooled fit.

    Attributes
    ----------
    params_ : dict of str to dict
        Per kind (``"*"`` = pooled): ``{"chance": r, "rho": ρ, "beta": β}``. Absent before :meth:`fit`.
    n_rows_ : dict of str to int
        Rows each kind was fitted on.
    """

    DEFAULT_CHANCE: ClassVar[dict[str, float]] = {
        "choice": 0.35,
        "choice2": 1.0,
        "number": 0.05,
        "json": 0.08,
        "short": 0.1,
        "custom": 0.1,
        "*": 0.1,
    }
    DEFAULT_RHO = 0.3
    DEFAULT_BETA = 1.0

    def __init__(
        self,
        *,
        chance: Mapping[str, float] | None = None,
        rho: float = DEFAULT_RHO,
        beta: float = DEFAULT_BETA,
        min_rows: int = 200,
    ):
        self.chance = chance
        self.rho = rho
        self.beta = beta
        self.min_rows = min_rows

    def fit(
        self,
        pa: np.ndarray,
        pb: np.ndarray,
        pe: np.ndarray,
        agree: np.ndarray,
        ok_a: np.ndarray,
        ok_e: np.ndarray,
        kinds: Sequence[str] | np.ndarray | None = None,
    ) -> AgreementModel:
        """Estimate ``r``, ``ρ`` and ``β`` per answer kind on recorded first-stage outcomes.

        Parameters
        ----------
        pa, pb, pe : array-like, shape (n,)
            Predicted probabilities of success of the primary ``a``, the second model ``b`` and the
            escalation target ``E`` (one row per prompt × pair).
        agree : array-like of bool, shape (n,)
            Whether the recorded answers of ``a`` and ``b`` agreed.
        ok_a, ok_e : array-like, shape (n,)
            Recorded scores in [0, 1] of ``a`` and ``E``.
        kinds : sequence of str, optional
            Answer kind of each row; one fit per kind with at least ``min_rows`` rows, plus a pooled one.

        Returns
        -------
        self
        """
        from scipy.optimize import minimize

        pa, pb, pe = (np.clip(np.asarray(v, dtype=float).ravel(), _EPS, 1 - _EPS) for v in (pa, pb, pe))
        agree = np.asarray(agree, dtype=bool).ravel()
        ok_a = np.asarray(ok_a, dtype=float).ravel()
        ok_e = np.asarray(ok_e, dtype=float).ravel()
        n = len(pa)
        if not (len(pb) == len(pe) == len(agree) == len(ok_a) == len(ok_e) == n):
            raise ValueError("pa, pb, pe, agree, ok_a and ok_e must have the same length")
        if n == 0:
            raise ValueError("AgreementModel.fit needs at least one row")
        kinds_arr = np.asarray(["*"] * n if kinds is None else list(kinds), dtype=object)
        if len(kinds_arr) != n:
            raise ValueError(f"kinds has {len(kinds_arr)} entries; expected {n}")
        ok = ~(np.isnan(pa) | np.isnan(pb) | np.isnan(pe) | np.isnan(ok_a) | np.isnan(ok_e))
        self.params_: dict[str, dict[str, float]] = {}
        self.n_rows_: dict[str, int] = {}
        groups: list[tuple[str, np.ndarray]] = [("*", ok)]
        for k in sorted({str(k) for k in kinds_arr[ok]} - {"*"}):
            sel = ok & (kinds_arr == k)
            if sel.sum() >= self.min_rows:
                groups.append((k, sel))
        for k, sel in groups:
            if sel.sum() < 10:
                continue
            args = (pa[sel], pb[sel], pe[sel], agree[sel], ok_a[sel], ok_e[sel])
            x0 = _pack(min(max(self._chance(k), 0.01), 0.99), 0.1, 0.5)
            res = minimize(_nll, x0, args=args, method="L-BFGS-B", options={"maxiter": 200})
            r, rho, beta = _unpack(res.x)
            self.params_[k] = {"chance": r, "rho": rho, "beta": beta}
            self.n_rows_[k] = int(sel.sum())
        return self

    def _chance(self, kind: str) -> float:
        table = {**self.DEFAULT_CHANCE, **(self.chance or {})}
        return float(table.get(kind, table["*"]))

    def params(self, kind: str = "*") -> dict[str, float]:
        """``{"chance", "rho", "beta"}`` used for an answer kind (fitted, pooled fit, or prior)."""
        fitted = getattr(self, "params_", {})
        if kind in fitted:
            return dict(fitted[kind])
        if "*" in fitted:  # pooled correlations, the kind's own prior chance rate
            out = dict(fitted["*"])
            if kind != "*":
                out["chance"] = self._chance(kind)
            return out
        return {"chance": self._chance(kind), "rho": float(self.rho), "beta": float(self.beta)}

    def predict(
        self, pa: np.ndarray, pb: np.ndarray, pe: np.ndarray, kind: str = "*"
    ) -> dict[str, np.ndarray]:
        """The five probabilities (same shape as ``pa``) for one answer kind."""
        pa, pb, pe = np.broadcast_arrays(
            *(np.clip(np.asarray(v, dtype=float), _EPS, 1 - _EPS) for v in (pa, pb, pe))
        )
        prm = self.params(kind)
        return _structural(pa, pb, pe, prm["chance"], prm["rho"], prm["beta"])

    @property
    def fitted(self) -> bool:
        return bool(getattr(self, "params_", None))

    def to_dict(self) -> dict[str, Any]:
        return {
            "chance": dict(self.chance or {}),
            "rho": self.rho,
            "beta": self.beta,
            "min_rows": self.min_rows,
            "params": {k: dict(v) for k, v in getattr(self, "params_", {}).items()},
            "n_rows": dict(getattr(self, "n_rows_", {})),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AgreementModel:
        m = cls(
            chance=d.get("chance") or None,
            rho=float(d.get("rho", cls.DEFAULT_RHO)),
            beta=float(d.get("beta", cls.DEFAULT_BETA)),
            min_rows=int(d.get("min_rows", 200)),
        )
        if d.get("params"):
            m.params_ = {k: {kk: float(vv) for kk, vv in v.items()} for k, v in d["params"].items()}
            m.n_rows_ = {k: int(v) for k, v in (d.get("n_rows") or {}).items()}
        return m

    def __repr__(self) -> str:
        if not self.fitted:
            return "AgreementModel(prior)"
        shown = ", ".join(
            f"{k}: r={v['chance']:.2f} ρ={v['rho']:.2f} β={v['beta']:.2f}" for k, v in self.params_.items()
        )
        return f"AgreementModel({shown})"


# ------------------------------------------------------------------------------------------------
# plans (array level)
# ------------------------------------------------------------------------------------------------


@dataclass
class _Plans:
    """Per-prompt plan menus, independent of λ: single models plus cascade pairs."""

    Q: np.ndarray  # (n, m)
    C: np.ndarray  # (n, m)
    L: np.ndarray  # (n, m)
    single_ok: np.ndarray  # (n, m) bool
    E: np.ndarray  # (n,) escalation target
    A: np.ndarray  # (P,) primary of each pair  (column index; swapped per prompt below)
    B: np.ndarray  # (P,)
    prim: np.ndarray  # (n, P) primary column per prompt
    sec: np.ndarray  # (n, P)
    pair_ok: np.ndarray  # (n, P) bool
    probs: dict[str, np.ndarray]  # each (n, P)


@dataclass
class _Choice:
    """What the policy chose per prompt at one λ."""

    plan: np.ndarray  # (n,) index: < m single model, ≥ m pair (plan − m)
    is_pair: np.ndarray  # (n,) bool
    model: np.ndarray  # (n,) the single model, or the primary of the pair
    second: np.ndarray  # (n,) the second cheap model (-1 for single plans)
    E: np.ndarray  # (n,)
    acc_agree: np.ndarray  # (n,) bool: accept the cheap answer when they agree
    acc_dis: np.ndarray  # (n,) bool: accept the primary's answer when they disagree
    thr_agree: np.ndarray  # (n,) accept threshold on agreement
    thr_dis: np.ndarray
    conf_agree: np.ndarray  # (n,) confidence of the cheap answer on agreement
    conf_dis: np.ndarray
    p_agree: np.ndarray
    Q: np.ndarray  # (n,) expected quality of the chosen plan
    C: np.ndarray  # (n,) expected cost
    L: np.ndarray  # (n,) expected latency


def _pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    iu = np.triu_indices(m, k=1)
    return iu[0].astype(int), iu[1].astype(int)


# ------------------------------------------------------------------------------------------------
# the policy
# ------------------------------------------------------------------------------------------------


class CascadePolicy:
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

    # ---- sklearn-style params
    @classmethod
    def _get_param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as in scikit-learn."""
        return {k: getattr(self, k) for k in self._get_param_names()}

    def set_params(self, **params: Any) -> CascadePolicy:
        """Set constructor parameters (unknown names raise ``ValueError``); returns ``self``."""
        valid = set(self._get_param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"invalid parameter {k!r} for CascadePolicy; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if v is not sig.parameters[k].default and v != sig.parameters[k].default
        ]
        return f"CascadePolicy({', '.join(shown)})"

    @classmethod
    def from_policy(cls, policy: Any, **params: Any) -> CascadePolicy:
        """A cascade policy with the same target (λ, budget or quality) as a per-query ``Policy``."""
        keys = ("lam", "mu", "budget_usd_per_1k", "quality_target", "reference", "reference_fraction")
        inherited = {k: getattr(policy, k, None) for k in keys}
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
        given = [
            k
            for k, v in (
                ("lam", self.lam),
                ("budget", self.budget_usd_per_1k),
                ("quality", self.quality_target),
                ("reference", self.reference_fraction),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"give at most one of lam, budget_usd_per_1k, quality_target or reference_fraction; "
                f"got {', '.join(given)}"
            )
        if self.reference_fraction is not None:
            if self.reference is None:
                raise ValueError("reference_fraction needs reference= (the model whose quality it scales)")
            if not 0.0 < self.reference_fraction <= 1.0:
                raise ValueError(f"reference_fraction must be in (0, 1]; got {self.reference_fraction}")
        if self.lam is not None and not (self.lam >= 0 and math.isfinite(self.lam)):
            raise ValueError(f"lam must be a finite number ≥ 0; got {self.lam}")
        if not (self.mu >= 0 and math.isfinite(self.mu)):
            raise ValueError(f"mu must be a finite number ≥ 0; got {self.mu}")
        if not (isinstance(self.max_candidates, int) and self.max_candidates >= 2):
            raise ValueError(f"max_candidates must be an int ≥ 2; got {self.max_candidates!r}")
        if not (self.escalate_to in ("best", "reference") or hasattr(self.escalate_to, "choose")):
            raise ValueError(f"escalate_to must be 'best', 'reference' or a Policy; got {self.escalate_to!r}")
        if not (self.extractor == "auto" or callable(self.extractor)):
            raise ValueError(
                f"extractor must be 'auto' or a callable str → str | None; got {self.extractor!r}"
            )
        return given[0] if given else None

    # ---- plan menus
    def _agreement(self) -> AgreementModel:
        return getattr(self, "agreement_", None) or self.agreement or AgreementModel()

    def _escalation(
        self,
        Q: np.ndarray,
        C: np.ndarray,
        L: np.ndarray,
        adm: np.ndarray,
        keys: Sequence[Hashable] | None,
        names: Sequence[str] | None = None,
    ) -> np.ndarray:
        n = Q.shape[0]
        ref = getattr(self, "escalate_model_", None)
        if self.escalate_to == "reference" and ref is not None:
            S = np.where(adm, Q, -np.inf)
            best = S.max(axis=1, keepdims=True)
            E = np.where(S >= best - 1e-12, C, np.inf).argmin(axis=1)
            col = (
                (list(names).index(ref) if names is not None and ref in names else None)
                if isinstance(ref, str)
                else (int(ref) if names is None and int(ref) < Q.shape[1] else None)
            )
            if col is not None:
                E = np.where(adm[:, col], col, E)
            return E
        esc = getattr(self, "escalate_policy_", None)
        if esc is not None:
            try:
                return np.asarray(esc.choose(Q, C, L if getattr(esc, "mu_", 0.0) else None, adm, keys=keys))
            except ValueError:  # width differs from the calibration pool: rank per prompt
                out = np.empty(n, dtype=int)
                for i in range(n):
                    qi, ci, ai = Q[i], C[i], adm[i]
                    lam = float(getattr(esc, "lam_", 0.0))
                    s = np.where(ai, qi - lam * ci, -np.inf)
                    out[i] = int(np.where(s >= s.max(), ci, np.inf).argmin())
                return out
        S = np.where(adm, Q, -np.inf)
        best = S.max(axis=1, keepdims=True)
        return np.where(S >= best - 1e-12, C, np.inf).argmin(axis=1)

    def _menus(
        self,
        Q: np.ndarray,
        C: np.ndarray,
        L: np.ndarray | None,
        SD: np.ndarray | None,
        kinds: Sequence[str | None],
        adm: np.ndarray | None = None,
        keys: Sequence[Hashable] | None = None,
        names: Sequence[str] | None = None,
    ) -> _Plans:
        Q = np.asarray(Q, dtype=float)
        C = np.asarray(C, dtype=float)
        n, m = Q.shape
        L = np.zeros((n, m)) if L is None else np.nan_to_num(np.asarray(L, dtype=float), nan=0.0)
        SD = np.zeros((n, m)) if SD is None else np.nan_to_num(np.asarray(SD, dtype=float), nan=0.0)
        adm = (
            np.isfinite(Q) & np.isfinite(C)
            if adm is None
            else (np.asarray(adm, dtype=bool) & np.isfinite(Q) & np.isfinite(C))
        )
        if not adm.any(axis=1).all():
            raise NoAdmissibleModelError(
                f"{int((~adm.any(axis=1)).sum())} prompt(s) have no admissible model"
            )
        Qf = np.where(adm, Q, 0.0)
        Cf = np.where(adm, C, 0.0)
        rows = np.arange(n)
        E = self._escalation(Qf, Cf, L, adm, keys, names)
        cE = Cf[rows, E]
        # first-stage candidates: cheaper than E, above the floor, the max_candidates cheapest of those
        cand = adm & (Cf < cE[:, None]) & (Qf >= float(self.quality_floor))
        cand[rows, E] = False
        # drop a candidate when another one is at least as good and strictly cheaper (or as cheap and
        # better): on the predicted quality/cost frontier, then keep the max_candidates best of those
        dom = ((Qf[:, None, :] >= Qf[:, :, None]) & (Cf[:, None, :] < Cf[:, :, None])) | (
            (Qf[:, None, :] > Qf[:, :, None]) & (Cf[:, None, :] <= Cf[:, :, None])
        )
        cand &= ~(dom & cand[:, None, :]).any(axis=2)
        order = np.argsort(np.where(cand, -Qf, np.inf), axis=1, kind="stable")
        rank = np.empty_like(order)
        rank[rows[:, None], order] = np.arange(m)[None, :]
        cand &= rank < int(self.max_candidates)
        kinds_arr = list(kinds)
        comparable = np.array([k is not None for k in kinds_arr], dtype=bool)
        A, B = _pairs(m)
        pair_ok = cand[:, A] & cand[:, B] & comparable[:, None]
        # primary = higher predicted quality of the two
        swap = Qf[:, B] > Qf[:, A]
        prim = np.where(swap, B[None, :], A[None, :])
        sec = np.where(swap, A[None, :], B[None, :])
        kappa = float(self.uncertainty_penalty)
        Qadj = np.clip(Qf - kappa * SD, _EPS, 1 - _EPS) if kappa else Qf
        pa = np.take_along_axis(Qadj, prim, axis=1)
        pb = np.take_along_axis(Qadj, sec, axis=1)
        pe = np.broadcast_to(Qf[rows, E][:, None], pa.shape)
        model = self._agreement()
        probs = {k: np.zeros((n, len(A))) for k in _OUTPUTS}
        if len(A):
            uniq = {k for k in kinds_arr if k is not None}
            for kind in uniq:
                sel = np.array([k == kind for k in kinds_arr], dtype=bool)
                pr = model.predict(pa[sel], pb[sel], pe[sel], kind)
                for k in _OUTPUTS:
                    probs[k][sel] = pr[k]
        single_ok = adm.copy()
        if not self.allow_single:
            has_pair = pair_ok.any(axis=1)
            single_ok[has_pair] = False
        return _Plans(
            Q=Qf,
            C=Cf,
            L=L,
            single_ok=single_ok,
            E=E,
            A=A,
            B=B,
            prim=prim,
            sec=sec,
            pair_ok=pair_ok,
            probs=probs,
        )

    def _choose(self, pl: _Plans, lam: np.ndarray | float, mu: float) -> _Choice:
        n, m = pl.Q.shape
        rows = np.arange(n)
        lam_v = np.broadcast_to(np.asarray(lam, dtype=float), (n,)).astype(float)
        E = pl.E
        cE, lE = pl.C[rows, E], pl.L[rows, E]
        pr = pl.probs
        esc_cost = (lam_v * cE + mu * lE)[:, None]
        thr_ag = pr["e_ok_agree"] - esc_cost
        thr_dis = pr["e_ok_dis"] - esc_cost
        acc_ag = pr["a_ok_agree"] >= thr_ag
        acc_dis = pr["a_ok_dis"] >= thr_dis
        pag = pr["agree"]
        Qp = pag * np.where(acc_ag, pr["a_ok_agree"], pr["e_ok_agree"]) + (1 - pag) * np.where(
            acc_dis, pr["a_ok_dis"], pr["e_ok_dis"]
        )
        p_esc = pag * (~acc_ag) + (1 - pag) * (~acc_dis)
        ca = np.take_along_axis(pl.C, pl.prim, axis=1)
        cb = np.take_along_axis(pl.C, pl.sec, axis=1)
        la = np.take_along_axis(pl.L, pl.prim, axis=1)
        lb = np.take_along_axis(pl.L, pl.sec, axis=1)
        Cp = ca + cb + p_esc * cE[:, None]
        Lp = np.maximum(la, lb) + p_esc * lE[:, None]
        S_pair = np.where(pl.pair_ok, Qp - lam_v[:, None] * Cp - mu * Lp, -np.inf)
        S_single = np.where(pl.single_ok, pl.Q - lam_v[:, None] * pl.C - mu * pl.L, -np.inf)
        S = np.hstack([S_single, S_pair])
        Call = np.hstack([pl.C, Cp])
        best = S.max(axis=1, keepdims=True)
        plan = np.where(S >= best - 1e-12 * np.maximum(1.0, np.abs(best)), Call, np.inf).argmin(axis=1)
        is_pair = plan >= m
        pidx = np.where(is_pair, plan - m, 0)
        take = (lambda X: X[rows, pidx]) if S_pair.shape[1] else (lambda X: np.zeros(n))
        model = np.where(is_pair, pl.prim[rows, pidx] if S_pair.shape[1] else 0, plan)
        second = np.where(is_pair, pl.sec[rows, pidx] if S_pair.shape[1] else -1, -1)
        return _Choice(
            plan=plan,
            is_pair=is_pair,
            model=model.astype(int),
            second=second.astype(int),
            E=E,
            acc_agree=np.where(is_pair, take(acc_ag), True).astype(bool),
            acc_dis=np.where(is_pair, take(acc_dis), True).astype(bool),
            thr_agree=np.where(is_pair, take(thr_ag), np.nan),
            thr_dis=np.where(is_pair, take(thr_dis), np.nan),
            conf_agree=np.where(is_pair, take(pr["a_ok_agree"]), np.nan),
            conf_dis=np.where(is_pair, take(pr["a_ok_dis"]), np.nan),
            p_agree=np.where(is_pair, take(pag), np.nan),
            Q=np.where(is_pair, take(Qp), pl.Q[rows, np.minimum(plan, m - 1)]),
            C=np.where(is_pair, take(Cp), pl.C[rows, np.minimum(plan, m - 1)]),
            L=np.where(is_pair, take(Lp), pl.L[rows, np.minimum(plan, m - 1)]),
        )

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
        pl = self._menus(Qm, Cm, L, sd, kinds, adm, keys, names)
        u = _index_uniform(n) if keys is None else np.array([prompt_uniform(k) for k in keys])
        if keys is not None and len(u) != n:
            raise ValueError(f"keys has {len(u)} entries; Q has {n} rows")

        lam_alt, mix, binding = None, 0.0, True
        target = None
        if kind == "lam":
            lam, binding = float(self.lam), False
        else:
            if kind == "budget":
                target = float(self.budget_usd_per_1k) / 1000.0
            elif kind == "quality":
                target = float(self.quality_target)
            else:
                if names is None:
                    raise ValueError(f"reference={self.reference!r} needs model_names= to find its column")
                if self.reference not in names:
                    raise UnknownModelError(self.reference, names)
                target = float(self.reference_fraction) * float(pl.Q[:, names.index(self.reference)].mean())
            lam, lam_alt, mix, binding = self._calibrate(pl, kind, target, mu, u)
        self.lam_ = float(lam)
        self.lam_alt_ = None if lam_alt is None else float(lam_alt)
        self.mix_ = float(mix)
        self.mu_ = mu
        self.model_names_ = names
        self.rng_ = np.random.default_rng(self.random_state)
        ch = self._choose(pl, self._lams(u), mu)
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

    def _calibrate(
        self, pl: _Plans, kind: str, target: float, mu: float, u: np.ndarray
    ) -> tuple[float, float | None, float, bool]:
        budget = kind == "budget"
        n = pl.Q.shape[0]

        def vals(lam: float) -> np.ndarray:
            ch = self._choose(pl, lam, mu)
            return ch.C if budget else ch.Q

        def feasible(v: float) -> bool:
            return v <= target * (1 + 1e-12) if budget else v >= target * (1 - 1e-12)

        v0 = float(vals(0.0).mean())
        pos = pl.C[pl.C > 0]
        scale = float(np.median(pos)) if pos.size else 1.0
        lam_max = 1e7 / scale
        v_max = float(vals(lam_max).mean())
        if budget:
            if feasible(v0):
                return 0.0, None, 0.0, False
            if not feasible(v_max):
                raise InfeasibleError(
                    f"budget {target * 1000:.6g} USD per 1k calls is below the cheapest possible "
                    f"{v_max * 1000:.6g} USD per 1k calls",
                    best_value=v_max * 1000,
                    status="infeasible",
                )
        else:
            if not feasible(v0):
                raise InfeasibleError(
                    f"quality target {target:.6g} is above the best achievable mean expected "
                    f"quality {v0:.6g}",
                    best_value=v0,
                    status="infeasible",
                )
            if feasible(v_max):
                return lam_max, None, 0.0, False

        # Bisect λ between the dear side (small λ: mean above the target) and the cheap side.
        def dear(v: float) -> bool:
            return v > target if budget else v >= target

        lo, hi = 1e-9 / scale, lam_max
        if not dear(float(vals(lo).mean())):
            lo = 0.0
        for _ in range(200):
            mid = math.sqrt(lo * hi) if lo > 0 else hi * 1e-6
            if not (lo < mid < hi) or (lo > 0 and hi <= lo * (1 + 1e-10)):
                break
            if dear(float(vals(mid).mean())):
                lo = mid
            else:
                hi = mid
        # Mix the two ends: prompts whose value differs switch from the cheap end (hi) to the dear end
        # (lo) in the order of their u, stopping closest to the target on its feasible side.
        v_lo = vals(lo)
        best: tuple[float, float, float, float] | None = None
        for b in (hi, hi * 1.01, hi * 1.1):
            vb = v_lo if b == lo else vals(b)
            diff = np.flatnonzero(np.abs(v_lo - vb) > 0)
            order = diff[np.argsort(u[diff], kind="stable")]
            means = vb.mean() + np.concatenate([[0.0], np.cumsum((v_lo[order] - vb[order]) / n)])
            ok = np.array([feasible(float(x)) for x in means])
            err = np.where(ok, np.abs(means - target), np.inf)
            k = int(np.argmin(err))
            if not np.isfinite(err[k]) or (best is not None and err[k] >= best[0]):
                continue
            us = u[order]
            mix = 0.0 if k == 0 else (0.5 * (us[-1] + 1.0) if k == len(order) else 0.5 * (us[k - 1] + us[k]))
            best = (float(err[k]), b, lo, mix)
        if best is None:
            return (hi if budget else lo), None, 0.0, True
        _, lam_b, lam_a, mix = best
        return lam_b, (lam_a if mix > 0 else None), mix, True

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
        pl = self._menus(q, c, L, SD, [kind], keys=None if key is None else [key], names=names)
        if latency_sla_s is not None and pl.pair_ok.any():
            la = np.take_along_axis(pl.L, pl.prim, 1)
            lb = np.take_along_axis(pl.L, pl.sec, 1)
            pl.pair_ok &= np.maximum(la, lb) + pl.L[0, pl.E[0]] <= float(latency_sla_s)
        ch = self._choose(pl, lam, self.mu_)
        j = int(ch.model[0])
        quality = {names[i]: float(q[0, i]) for i in range(m)}
        cost = {names[i]: float(c[0, i]) for i in range(m)}
        lat = {names[i]: float(pl.L[0, i]) for i in range(m)}
        if not ch.is_pair[0]:
            if kind is None:
                why = "the answer kind of this request is not comparable (code or open-ended), so no cascade"
            elif not pl.pair_ok[0].any():
                why = (
                    f"fewer than two first-stage candidates (cheaper than {names[int(pl.E[0])]} with predicted "
                    f"quality ≥ {self.quality_floor})"
                )
            else:
                why = "a single model scores higher than every cascade at this trade-off"
            return CascadePlan(
                mode="single",
                first=[names[j]],
                escalate_to=None,
                kind=kind,
                lam=float(lam),
                expected_quality=float(ch.Q[0]),
                expected_cost_usd=float(ch.C[0]),
                expected_latency_s=float(ch.L[0]),
                quality=quality,
                cost_usd=cost,
                latency_s=lat,
                reason=why,
            )
        b, e = int(ch.second[0]), int(ch.E[0])
        return CascadePlan(
            mode="cascade",
            first=[names[j], names[b]],
            escalate_to=names[e],
            kind=kind,
            lam=float(lam),
            expected_quality=float(ch.Q[0]),
            expected_cost_usd=float(ch.C[0]),
            expected_latency_s=float(ch.L[0]),
            p_agree=float(ch.p_agree[0]),
            accept_if_agree=bool(ch.acc_agree[0]),
            accept_if_disagree=bool(ch.acc_dis[0]),
            threshold_agree=float(ch.thr_agree[0]),
            threshold_disagree=float(ch.thr_dis[0]),
            confidence_agree=float(ch.conf_agree[0]),
            confidence_disagree=float(ch.conf_dis[0]),
            quality=quality,
            cost_usd=cost,
            latency_s=lat,
            reason=f"cascade scores highest: expected quality {float(ch.Q[0]):.3f} at ${float(ch.C[0]) * 1000:.4g} "
            f"per 1k calls (P(agree) = {float(ch.p_agree[0]):.2f})",
        )

    def accept(
        self,
        plan: CascadePlan,
        answers: Mapping[str, str | None],
        token_probs: Mapping[str, float | None] | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """The second-stage decision of a cascade from the first stage's extracted answers.

        The rule is :func:`~zerorouter_integrations.plan.accept_answers` with this policy's
        ``logprob_weight``.

        Parameters
        ----------
        plan : CascadePlan
            A ``"cascade"`` plan.
        answers : mapping of str to str or None
            Canonical extracted answer of each first-stage model (``None``: failed or no answer).
        token_probs : mapping of str to float, optional
            Probability of each model's answer tokens, when the provider returned log-probabilities.

        Returns
        -------
        (accepted, detail)
            ``detail`` holds ``agreement``, ``confidence``, ``threshold``, ``answer_model`` and ``reason``.
        """
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
                **{
                    k: v
                    for k, v in self.get_params().items()
                    if k
                    not in (
                        "lam",
                        "mu",
                        "budget_usd_per_1k",
                        "quality_target",
                        "reference",
                        "reference_fraction",
                    )
                },
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


# ------------------------------------------------------------------------------------------------
# running a cascade through a router
# ------------------------------------------------------------------------------------------------

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
) -> Any:
    """Give ``decision`` its cascade-mode plan (a :class:`CascadePlan`, or a single-model plan when the
    cascade policy prefers one) over the decision's ranked candidates; returns the decision.

    ``comparable=False`` (tool calls) never cascades; ``text`` is the request's text (answer kind,
    stable mixing key).
    """
    from zerorouter_integrations.plan import SinglePlan

    pol = resolve_policy(router, policy)
    if not comparable:
        kind = None  # tool calls are not compared
    elif callable(pol.extractor):
        kind = "custom"
    else:
        kind = detect_answer_kind(text)
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
        plan.escalation = [e] + [m for m in decision.ranking if m not in (e, *plan.first)]
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


# ------------------------------------------------------------------------------------------------
# offline evaluation from recorded answers
# ------------------------------------------------------------------------------------------------


def table_answers(table: Any, *, extractor: Any = "auto") -> tuple[np.ndarray, list[str | None]] | str:
    """Canonical recorded answers of every (prompt, model) of a routing table, and each prompt's kind.

    Uses ``outcome_extras.parquet``: its ``parsed_answer`` column when present (answers already
    extracted, e.g. zeroeval), else an extractor over ``response`` (e.g. routerbench_subset), chosen
    per prompt by :func:`detect_answer_kind` unless ``extractor`` is a callable.

    Returns
    -------
    (answers, kinds) or str
        ``answers``: object array (n_prompts × n_models, table order; ``table.model_names`` columns)
        of canonical answers or ``None``; ``kinds``: answer kind per prompt (``None``: not comparable).
        A string says why the table has no usable answers.
    """
    import pandas as pd

    extras = table.extras("outcome_extras")
    if extras is None:
        return (
            f"table {table.name!r} has no outcome_extras.parquet, so there are no recorded answers to "
            "compare; the cascade cannot be evaluated offline"
        )
    texts = table.texts()
    if callable(extractor):
        kinds: list[str | None] = ["custom"] * len(texts)
    else:
        kinds = [detect_answer_kind(t) for t in texts]
    pid_pos = pd.Index(table.prompt_ids)
    models = table.model_names
    mod_pos = pd.Index(models)
    if "parsed_answer" in extras.columns:
        raw = extras["parsed_answer"].to_numpy(dtype=object)
        parsed = True
    elif "response" in extras.columns:
        raw = extras["response"].to_numpy(dtype=object)
        parsed = False
    else:
        return (
            f"outcome_extras of table {table.name!r} has neither 'parsed_answer' nor 'response' "
            f"(columns: {list(extras.columns)}); the cascade cannot be evaluated offline"
        )
    rows = pid_pos.get_indexer(extras["prompt_id"])
    cols = mod_pos.get_indexer(extras["model"])
    A = np.full((len(pid_pos), len(models)), None, dtype=object)
    for r, c, v in zip(rows, cols, raw):
        if r < 0 or c < 0 or kinds[r] is None:
            continue
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if parsed and not callable(extractor):
            A[r, c] = canonical_answer(v)
        else:
            A[r, c] = extract_answer(str(v), kinds[r], extractor)
    if not any(v is not None for v in A.ravel()):
        return (
            f"no comparable recorded answer in table {table.name!r}; the cascade cannot be evaluated offline"
        )
    return A, kinds


def _answer_codes(A: np.ndarray) -> np.ndarray:
    """Integer codes of canonical answers (-1 for none), equal codes ⇔ equal answers."""
    import pandas as pd

    flat = A.ravel()
    codes, _ = pd.factorize(pd.Series(flat, dtype=object), use_na_sentinel=True)
    return codes.reshape(A.shape)


def _sweep_lams(C: np.ndarray, n: int = 121) -> np.ndarray:
    pos = C[np.isfinite(C) & (C > 0)]
    scale = float(np.median(pos)) if pos.size else 1.0
    return np.concatenate([[0.0], np.geomspace(1e-4, 1e4, n) / scale, [1e9 / scale]])


def _realize(
    ch: _Choice, Y: np.ndarray, C: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Realized (quality, cost, escalated) per prompt of a choice, replaying the recorded answers."""
    n = Y.shape[0]
    rows = np.arange(n)
    a, b, E = ch.model, np.maximum(ch.second, 0), ch.E
    ca, cb = codes[rows, a], codes[rows, b]
    agree = (ca >= 0) & (ca == cb)
    has_a, has_b = ca >= 0, cb >= 0
    # which cheap answer would be returned: the primary's, else the other one's
    ans_model = np.where(has_a | ~has_b, a, b)
    acc = np.where(agree, ch.acc_agree, np.where(has_a | has_b, ch.acc_dis, False))
    esc = ch.is_pair & ~acc
    q = np.where(ch.is_pair, np.where(acc, Y[rows, ans_model], Y[rows, E]), Y[rows, a])
    c = np.where(ch.is_pair, C[rows, a] + C[rows, b] + np.where(esc, C[rows, E], 0.0), C[rows, a])
    return q, c, esc


def evaluate_cascade(
    ctx: Any,
    Y: np.ndarray,
    C: np.ndarray,
    *,
    policy: CascadePolicy | None = None,
    agreement: str = "prior",
    lams: np.ndarray | None = None,
    return_points: bool = False,
) -> Any:
    """The ``zerorouter-cascade`` evaluation router: deferral curve of the cascade policy from recorded answers.

    The IRT router is fit and new models onboarded exactly like ``zerorouter``
    (:func:`~zerorouter_integrations.evaluation.fit_and_onboard`); the agreement model is left at its
    closed-form prior (``agreement="prior"``, what a deployed router without recorded answers uses),
    or fit on the training prompts' recorded answers of the known models (``"fit"``; ``"crossfit"``
    fits it on out-of-fold predictions, two extra fits of the space); then λ sweeps a log grid, each λ
    gives per-prompt plans, and each plan is replayed on the test prompts: a cascade costs both cheap
    calls plus the escalation when its recorded answers lead to one, and scores the accepted answer's
    (or the escalation's) recorded score.

    Returns
    -------
    (Curve, dict) or str
        The curve and extras (share of cascaded prompts and escalation rate at the QNC point,
        agreement model rows), or why the table cannot be evaluated.
    """
    from zerorouter_integrations.evaluation import fit_and_onboard
    from zerorouter_integrations.latent.irt import IRTSpace
    from zerorouter_integrations.metrics import Curve, upper_hull

    got = table_answers(ctx.table, extractor=(policy.extractor if policy is not None else "auto"))
    if isinstance(got, str):
        return got
    A_all, kinds_all = got
    models = ctx.models
    if list(ctx.table.model_names) != list(models):
        order = [list(ctx.table.model_names).index(mm) for mm in models]
        A_all = A_all[:, order]
    pool_cols = [models.index(mm) for mm in ctx.pool]
    ev = ctx.eval_idx
    A_eval = A_all[np.ix_(ev, pool_cols)]
    if not any(v is not None for v in A_eval.ravel()):
        return (
            "no recorded answer of a pool model on the test prompts; the cascade cannot be evaluated offline"
        )
    pol = copy.deepcopy(policy) if policy is not None else CascadePolicy(lam=0.0)
    if not isinstance(pol.escalate_to, str):
        raise ValueError("offline evaluation supports escalate_to='best' or 'reference'")
    pred = fit_and_onboard(ctx, IRTSpace(seed=ctx.seed))
    P = pred.predict(ctx.features[ev], input_tokens=ctx.tokens_all[ev], models=ctx.pool)
    # the training prompts are the calibration set (reference model for escalate_to="reference")
    P_tr = pred.predict(
        ctx.features[ctx.train_idx], input_tokens=ctx.tokens_all[ctx.train_idx], models=ctx.pool
    )
    j_ref = int(np.lexsort((P_tr.cost_usd.mean(axis=0), -P_tr.quality.mean(axis=0)))[0])
    pol.escalate_model_ = ctx.pool[j_ref] if pol.escalate_to == "reference" else None
    pol.escalate_policy_ = None
    extra: dict[str, Any] = {}
    if agreement in ("fit", "crossfit"):
        model, rows_used = _fit_agreement(
            ctx, pred, A_all, kinds_all, pol, folds=2 if agreement == "crossfit" else 0
        )
        pol.agreement = model
        extra["agreement_rows"] = rows_used
    elif agreement != "prior":
        raise ValueError(f"agreement must be 'fit', 'crossfit' or 'prior', got {agreement!r}")
    pol.agreement_ = pol.agreement or AgreementModel()
    kinds_eval = [kinds_all[i] for i in ev]
    pl = pol._menus(P.quality, P.cost_usd, None, P.quality_sd, kinds_eval, names=ctx.pool)
    codes = _answer_codes(A_eval)
    grid = _sweep_lams(P.cost_usd) if lams is None else np.asarray(lams, dtype=float)
    pts, stats = [], []
    for lam in grid:
        ch = pol._choose(pl, float(lam), 0.0)
        q, c, esc = _realize(ch, Y, C, codes)
        pts.append([float(c.mean()), float(q.mean())])
        stats.append((float(ch.is_pair.mean()), float(esc.mean()), float(lam)))
    pts_a = np.asarray(pts)
    curve = Curve(points=pts_a, hull=upper_hull(pts_a))
    # operating point closest to the best single model's quality (for the extras)
    q_best = float(Y.mean(axis=0).max())
    reach = [i for i, (c_, q_) in enumerate(pts) if q_ >= q_best - 1e-12]
    i_op = min(reach, key=lambda i: pts[i][0]) if reach else int(np.argmax(pts_a[:, 1]))
    extra.update(
        cascade_share=stats[i_op][0],
        escalation_rate=stats[i_op][1],
        lam_at_best=stats[i_op][2],
        comparable_share=float(np.mean([k is not None for k in kinds_eval])),
    )
    if return_points:
        extra["points"] = pts_a.tolist()
        extra["stats"] = stats
    return curve, extra


def _oof_quality(ctx: Any, rows: np.ndarray, known: list[str], folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predicted quality (and sd) of the known models on training rows ``rows``."""
    from zerorouter_integrations.latent.irt import IRTSpace
    from zerorouter_integrations.predictor import QualityPredictor

    cols = [ctx.models.index(mm) for mm in known]
    fold = np.random.default_rng(ctx.seed + 7).integers(0, folds, size=len(ctx.train_idx))
    pos = {int(r): i for i, r in enumerate(ctx.train_idx)}
    Q = np.full((len(rows), len(known)), np.nan)
    SD = np.zeros_like(Q)
    for f in range(folds):
        fit_rows = ctx.train_idx[fold != f]
        pr = QualityPredictor(IRTSpace(seed=ctx.seed)).fit(
            ctx.features[fit_rows],
            ctx.S_all[np.ix_(fit_rows, cols)],
            known,
            costs=ctx.C_all[np.ix_(fit_rows, cols)],
            input_tokens=ctx.tokens_all[fit_rows],
            prices=ctx.prices,
        )
        sel = np.array([fold[pos[int(r)]] == f for r in rows], dtype=bool)
        if not sel.any():
            continue
        names = [mm for mm in known if mm in pr.profiles_]
        P = pr.predict(ctx.features[rows[sel]], input_tokens=ctx.tokens_all[rows[sel]], models=names)
        for j, mm in enumerate(names):
            Q[sel, known.index(mm)] = P.quality[:, j]
            SD[sel, known.index(mm)] = P.quality_sd[:, j]
    return Q, SD


def _fit_agreement(
    ctx: Any,
    pred: Any,
    A_all: np.ndarray,
    kinds_all: Sequence[str | None],
    pol: CascadePolicy,
    max_rows: int = 150_000,
    folds: int = 0,
) -> tuple[AgreementModel, int]:
    """Fit the agreement model on training prompts: pairs of known pool models, E = best known by prediction."""
    known = [mm for mm in ctx.pool if mm in set(ctx.known)]
    if len(known) < 3:
        return AgreementModel(), 0
    tr = np.asarray([i for i in ctx.train_idx if kinds_all[i] is not None], dtype=int)
    if len(tr) == 0:
        return AgreementModel(), 0
    cols = [ctx.models.index(mm) for mm in known]
    if folds:
        Qq, Qsd = _oof_quality(ctx, tr, known, folds)
    else:
        P = pred.predict(ctx.features[tr], input_tokens=ctx.tokens_all[tr], models=known)
        Qq, Qsd = P.quality, P.quality_sd

    P = SimpleNamespace(quality=Qq, quality_sd=Qsd)

    Qk = P.quality
    if pol.uncertainty_penalty:
        Qk = np.clip(Qk - pol.uncertainty_penalty * P.quality_sd, _EPS, 1 - _EPS)
    S = ctx.S_all[np.ix_(tr, cols)]
    codes = _answer_codes(A_all[np.ix_(tr, cols)])
    n, m = Qk.shape
    rows = np.arange(n)
    Sfill = np.where(np.isnan(S) | np.isnan(P.quality), -np.inf, P.quality)
    E = Sfill.argmax(axis=1)
    ref = getattr(pol, "escalate_model_", None)
    if pol.escalate_to == "reference" and ref in known:
        E = np.full(n, known.index(ref))
    A_, B_ = _pairs(m)
    swap = P.quality[:, B_] > P.quality[:, A_]
    prim = np.where(swap, B_[None, :], A_[None, :])
    sec = np.where(swap, A_[None, :], B_[None, :])
    pa = np.take_along_axis(Qk, prim, 1)
    pb = np.take_along_axis(Qk, sec, 1)
    pe = np.broadcast_to(P.quality[rows, E][:, None], pa.shape)
    ca, cb = np.take_along_axis(codes, prim, 1), np.take_along_axis(codes, sec, 1)
    agree = (ca >= 0) & (ca == cb)
    ok_a = np.take_along_axis(S, prim, 1)
    ok_e = np.broadcast_to(S[rows, E][:, None], pa.shape)
    valid = ~np.isnan(ok_a) & ~np.isnan(np.take_along_axis(S, sec, 1)) & ~np.isnan(ok_e)
    # pairs whose E is one of them say nothing about escalation
    valid &= (prim != E[:, None]) & (sec != E[:, None])
    kinds_rows = np.broadcast_to(np.asarray([kinds_all[i] for i in tr], dtype=object)[:, None], pa.shape)
    idx = np.flatnonzero(valid.ravel())
    if len(idx) > max_rows:
        idx = np.random.default_rng(ctx.seed).choice(idx, size=max_rows, replace=False)
    model = AgreementModel(chance=(pol.agreement.chance if pol.agreement is not None else None))
    model.fit(
        pa.ravel()[idx],
        pb.ravel()[idx],
        pe.ravel()[idx],
        agree.ravel()[idx],
        ok_a.ravel()[idx],
        ok_e.ravel()[idx],
        kinds=kinds_rows.ravel()[idx],
    )
    return model, len(idx)


def _eval_router(ctx: Any, Y: np.ndarray, C: np.ndarray) -> Any:
    """``EVAL_ROUTERS["zerorouter-cascade"]``: :func:`evaluate_cascade` with the default policy."""
    return evaluate_cascade(ctx, Y, C)


#: Evaluation routers of this module, ``name → fn(ctx, Y=Y, C=C)`` (see ``evaluation.evaluate``).
EVAL_ROUTERS: dict[str, Callable[..., Any]] = {"zerorouter-cascade": _eval_router}
