"""Per-query routing policy: pick the model with the best quality net of priced cost and latency.

For one prompt with predicted quality ``q_j``, cost ``c_j`` (USD per call) and latency ``l_j``
(seconds) of model ``j``, the policy picks

    argmax_j  q_j − λ·c_j − μ·l_j

over the admissible models, ties broken toward the cheaper model (then the lower index).
``λ`` is the price of one USD in quality units (quality per USD); ``μ`` the price of one second.

``λ`` is set in one of three ways: given directly (``lam=``), calibrated so that the mean cost on a
calibration set meets a budget (``budget_usd_per_1k=``, USD per 1,000 calls), or calibrated so that
the mean predicted quality meets a target (``quality_target=`` absolute, or ``reference_fraction=``
× the mean predicted quality of the ``reference`` model).

``λ``'s calibration and the deterministic per-prompt mix are in
:mod:`zerorouter_integrations.policy_calibration`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from typing import Any, cast

import numpy as np

from zerorouter_integrations.errors import NoAdmissibleModelError, NotFittedError, UnknownModelError
from zerorouter_integrations.policy_calibration import (
    calibrate_lam,
    calibration_report,
    choose_rows,
    content_key,
    index_uniform,
    prompt_uniform,
    reference_summary,
)
from zerorouter_integrations.policy_params import PolicyParams

__all__ = ["Policy", "choose_rows", "index_uniform", "prompt_uniform"]


def _as2d(name: str, a: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_prompts × n_models); got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}; expected {shape} like Q")
    return arr


class Policy(PolicyParams):
    """Per-query cost/quality/latency trade-off, calibrated to a budget or a quality target.

    Parameters
    ----------
    lam : float, optional
        Price of cost: quality units per USD (scores are ``Q − lam·C − mu·L`` with ``C`` in USD per
        call). Give exactly one of ``lam``, ``budget_usd_per_1k``, ``quality_target`` or
        ``reference_fraction``.
    mu : float, default=0.0
        Price of latency: quality units per second. Needs ``L`` whenever it is not 0.
    budget_usd_per_1k : float, optional
        Calibrate ``lam`` so that the mean predicted cost on the calibration set is this many USD
        per 1,000 calls.
    quality_target : float, optional
        Calibrate ``lam`` so that the mean predicted quality on the calibration set is this value
        (absolute, same scale as ``Q``).
    reference : str, optional
        A model name; with ``reference_fraction`` the target is that fraction of its mean predicted
        quality. Without it, the reference is only reported in ``calibration_`` (savings).
    reference_fraction : float, optional
        Fraction in (0, 1] of the reference model's mean predicted quality to reach.
    random_state : int or None, default=0
        Salt of the hash by which :meth:`rank` places a key-less prompt on either side of the
        calibrated mix (the hash of its predictions: identical inputs, identical side).

    Attributes
    ----------
    lam_ : float
        Calibrated price of cost (the upper end of the calibrated bracket).
    lam_alt_ : float or None
        The lower end of the bracket, used by a fraction ``mix_`` of prompts; None when unmixed.
    mix_ : float
        Fraction of prompts (by their ``u``) that use ``lam_alt_``.
    mu_ : float
        Price of latency in use.
    calibration_ : dict
        What the calibration achieved on its data: ``kind``, ``target``, ``achieved``,
        ``relative_error``, ``binding``, ``mean_cost_usd``, ``cost_usd_per_1k``, ``mean_quality``,
        ``lam``, ``lam_alt``, ``mix``, ``n_prompts``, ``shares`` and, with a reference,
        ``reference_mean_quality``, ``reference_mean_cost_usd``, ``saving_fraction``.
    model_names_ : list of str or None
        Column names seen in :meth:`fit`.
    n_models_ : int
        Number of columns seen in :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> Q = np.array([[0.9, 0.6], [0.8, 0.79]]); C = np.array([[1e-2, 1e-4], [1e-2, 1e-4]])
    >>> Policy(lam=10.0).choose(Q, C).tolist()
    [0, 1]
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
        random_state: int | None = 0,
    ):
        self.lam = lam
        self.mu = mu
        self.budget_usd_per_1k = budget_usd_per_1k
        self.quality_target = quality_target
        self.reference = reference
        self.reference_fraction = reference_fraction
        self.random_state = random_state

    # ------------------------------------------------------------------ constructors and params

    @classmethod
    def for_budget(cls, usd_per_1k: float, *, mu: float = 0.0) -> Policy:
        """A policy calibrated to spend ``usd_per_1k`` USD per 1,000 calls on average."""
        return cls(budget_usd_per_1k=usd_per_1k, mu=mu)

    @classmethod
    def for_quality_target(cls, target: float, *, reference: str | None = None, mu: float = 0.0) -> Policy:
        """A policy calibrated to a mean predicted quality.

        With ``reference``, ``target`` (in (0, 1]) is a fraction of the reference model's mean
        predicted quality, e.g. ``for_quality_target(0.95, reference="gpt-4o")``; without it,
        ``target`` is the absolute mean quality.
        """
        if reference is not None:
            if not 0.0 < target <= 1.0:
                raise ValueError(
                    f"with reference={reference!r}, target is a fraction of its quality and must be in "
                    f"(0, 1]; got {target}"
                )
            return cls(reference=reference, reference_fraction=target, mu=mu)
        return cls(quality_target=target, mu=mu)

    def _target_kind(self) -> str:
        given = self._given_targets()
        if len(given) != 1:
            raise ValueError(
                "give exactly one of lam, budget_usd_per_1k, quality_target or reference_fraction; "
                f"got {len(given)} ({', '.join(given) or 'none'})"
            )
        self._check_target_values()
        return given[0]

    # ------------------------------------------------------------------ input handling

    def _prepare(self, Q, C, L, mask, mu: float):
        Qm = _as2d("Q", Q)
        shape = Qm.shape
        Cm = _as2d("C", C, shape)
        adm = np.ones(shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if adm.shape != shape:
            raise ValueError(f"mask has shape {adm.shape}; expected {shape} like Q")
        if mu != 0.0:
            if L is None:
                raise ValueError(f"mu={mu} prices latency, so L= (predicted latency, seconds) is required")
            Lm = _as2d("L", L, shape)
        else:
            Lm = None
        bad = adm & ~(np.isfinite(Qm) & np.isfinite(Cm))
        if Lm is not None:
            bad |= adm & ~np.isfinite(Lm)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"non-finite prediction at prompt {i}, model {j} that the mask admits; mask it out or fill it"
            )
        if np.any(adm & (Cm < 0)):
            raise ValueError("C (predicted cost, USD per call) must be ≥ 0")
        empty = np.flatnonzero(~adm.any(axis=1))
        if empty.size:
            raise NoAdmissibleModelError(
                f"{empty.size} prompt(s) have no admissible model (first rows: {empty[:10].tolist()})"
            )
        base = Qm if Lm is None else Qm - mu * Lm
        return Qm, Cm, Lm, adm, base

    def _check_names(self, model_names, m: int) -> list[str] | None:
        if model_names is None:
            return None
        names = list(model_names)
        if len(names) != m:
            raise ValueError(f"model_names has {len(names)} names; Q has {m} columns")
        return names

    def _fitted_params(self) -> tuple[float, float | None, float, float]:
        if hasattr(self, "lam_"):
            return self.lam_, self.lam_alt_, self.mix_, self.mu_
        if self.lam is not None:  # an explicit λ needs no calibration
            self._target_kind()
            return float(self.lam), None, 0.0, float(self.mu)
        raise NotFittedError(
            "this Policy is calibrated to a budget or quality target; call fit(Q, C, ...) on a "
            "calibration set first (or construct it with lam=)"
        )

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        Q,
        C,
        L=None,
        *,
        model_names: Sequence[str] | None = None,
        mask=None,
        keys: Sequence[Hashable] | None = None,
    ) -> Policy:
        """Calibrate ``lam_`` on a calibration set.

        Parameters
        ----------
        Q : array-like, shape (n_prompts, n_models)
            Predicted quality.
        C : array-like, shape (n_prompts, n_models)
            Predicted cost per call, USD.
        L : array-like, shape (n_prompts, n_models), optional
            Predicted latency, seconds (required when ``mu`` ≠ 0).
        model_names : sequence of str, optional
            Column names (required with ``reference``).
        mask : array-like of bool, optional
            Admissible (prompt, model) pairs.
        keys : sequence of hashable, optional
            Prompt keys; when given, the mix uses their stable hashes (as :meth:`choose` and
            :meth:`rank` do with keys) instead of the row index.

        Returns
        -------
        self

        Raises
        ------
        InfeasibleError
            A budget below the cheapest possible mean cost (``best_value``: that cost in USD per
            1,000 calls, the unit of ``budget_usd_per_1k``), or a quality target above the best
            achievable mean quality (``best_value``: that mean quality).
        UnknownModelError
            ``reference`` is not among ``model_names``.
        """
        kind = self._target_kind()
        mu = float(self.mu)
        Qm, Cm, _Lm, adm, base = self._prepare(Q, C, L, mask, mu)
        n, m = Qm.shape
        names = self._check_names(model_names, m)
        u = self._uniforms(n, keys)

        ref_idx = None
        if self.reference is not None:
            if names is None:
                raise ValueError(f"reference={self.reference!r} needs model_names= to find its column")
            if self.reference not in names:
                raise UnknownModelError(self.reference, names)
            ref_idx = names.index(self.reference)
            if not adm[:, ref_idx].any():
                raise ValueError(f"the reference {self.reference!r} is admissible for no calibration prompt")

        lam_alt: float | None = None
        mix = 0.0
        binding = True
        if kind == "lam":
            lam, target = float(cast(float, self.lam)), None
            binding = False
        else:
            if kind == "budget":
                target = float(cast(float, self.budget_usd_per_1k)) / 1000.0
                vals = Cm
            elif kind == "quality":
                target = float(cast(float, self.quality_target))
                vals = Qm
            else:
                ref_q = Qm[adm[:, ref_idx], ref_idx]
                target = float(cast(float, self.reference_fraction)) * float(ref_q.mean())
                vals = Qm
            lam, lam_alt, mix, binding = calibrate_lam(kind, target, vals, base, Cm, Qm, adm, u, self.mu)

        self._set_prices(lam, lam_alt, mix, mu)
        self.model_names_ = names
        self.n_models_ = m

        chosen = self._choose_arrays(base, Cm, adm, u)
        cal = calibration_report(
            Qm, Cm, adm, chosen, names, kind, target, binding, (self.lam_, self.lam_alt_, self.mix_, mu)
        )
        if ref_idx is not None:
            cal.update(reference_summary(Qm, Cm, adm, ref_idx, str(self.reference), cal["mean_cost_usd"]))
        achieved, rel = cal["achieved"], cal["relative_error"]
        self.calibration_ = cal
        if binding and rel is not None and rel > 0.01 and achieved is not None and target is not None:
            unit, k = (" USD per 1k calls", 1000.0) if kind == "budget" else (" mean quality", 1.0)
            warnings.warn(
                f"calibration reached {achieved * k:.6g}{unit} for a target of {target * k:.6g} "
                f"({rel:.2%} off): the calibration set is too small for the per-prompt steps",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    # ------------------------------------------------------------------ prediction

    def _choose_arrays(self, base, C, adm, u) -> np.ndarray:
        lam: Any
        lam, lam_alt, mix, _ = self._fitted_params()
        if lam_alt is not None and mix > 0:  # each row takes one side of the calibrated mix
            lam = (
                (lam_alt if u[0] < mix else lam) if len(u) == 1 else np.where(u < mix, lam_alt, lam)[:, None]
            )
        return choose_rows(base, C, adm, lam)

    def lam_for(self, key: Hashable) -> float:
        """The price of cost ``λ`` that a prompt with ``key`` takes (``lam_`` or, in the mix, ``lam_alt_``)."""
        lam, lam_alt, mix, _ = self._fitted_params()
        return lam_alt if lam_alt is not None and mix > 0 and prompt_uniform(key) < mix else lam

    def scores(self, Q, C, L=None, *, keys: Sequence[Hashable] | None = None) -> np.ndarray:
        """``Q − λ·C − mu_·L`` (quality units; ``C`` in USD per call, ``L`` in seconds).

        With ``keys`` (one per row), each row uses the ``λ`` its key takes in a mixed calibration
        (:meth:`lam_for`), as :meth:`choose` and :meth:`rank` do with the same keys; without keys,
        ``lam_`` (the upper end of the mix).
        """
        lam, _, _, mu = self._fitted_params()
        Qm = _as2d("Q", Q) if np.ndim(Q) == 2 else np.asarray(Q, dtype=float)
        if keys is not None:
            if len(keys) != (rows := Qm.shape[0] if Qm.ndim == 2 else 1):
                raise ValueError(f"keys has {len(keys)} entries; Q has {rows} rows")
            lams = np.array([self.lam_for(k) for k in keys], dtype=float)
            lam = cast(float, lams[:, None] if Qm.ndim == 2 else lams[0])  # a column: one λ per row
        S = Qm - lam * np.asarray(C, dtype=float)
        if mu:
            if L is None:
                raise ValueError(f"mu={mu} prices latency, so L= is required")
            S = S - mu * np.asarray(L, dtype=float)
        return S

    def choose(self, Q, C, L=None, mask=None, *, keys: Sequence[Hashable] | None = None) -> np.ndarray:
        """Index of the chosen model per prompt.

        Parameters
        ----------
        Q, C, L, mask : array-like, shape (n_prompts, n_models)
            As in :meth:`fit`; inadmissible models (``mask`` False) are never chosen.
        keys : sequence of hashable, optional
            Prompt keys: which side of a mixed calibration a prompt takes follows their stable
            hash. Without keys, the row index decides (golden-ratio sequence), as in :meth:`fit`.

        Returns
        -------
        ndarray of int, shape (n_prompts,)

        Raises
        ------
        NoAdmissibleModelError
            A prompt has no admissible model.
        """
        _lam, lam_alt, mix, mu = self._fitted_params()
        if (
            mask is None
            and mu == 0.0
            and type(Q) is np.ndarray
            and type(C) is np.ndarray
            and Q.ndim == 2
            and Q.shape == C.shape
            and Q.size
            and Q.dtype == np.float64
            and C.dtype == np.float64
            and math.isfinite(Q.sum() + C.sum())
            and C.min() >= 0.0
        ):
            # The common per-request case (no mask, no latency price, clean float arrays): the checks of
            # ``_prepare`` in three reductions (a finite sum means no NaN or inf); anything else takes
            # the full path and its errors.
            self._check_width(C.shape[1])
            if lam_alt is not None and mix > 0:
                u = self._uniforms(Q.shape[0], keys)
            else:  # no mix to split: keys are only checked
                if keys is not None and len(keys) != Q.shape[0]:
                    raise ValueError(f"keys has {len(keys)} entries; Q has {Q.shape[0]} rows")
                u = None
            return self._choose_arrays(Q, C, None, u)
        _, Cm, _, adm, base = self._prepare(Q, C, L, mask, mu)
        self._check_width(Cm.shape[1])
        return self._choose_arrays(base, Cm, adm, self._uniforms(Cm.shape[0], keys))

    def choice_probabilities(self, Q, C, L=None, mask=None) -> np.ndarray:
        """Probability of each (prompt, model) being chosen when a prompt's side of the calibrated mix is
        drawn at random (``lam_alt_`` with probability ``mix_``): what a deployment logs as the propensity
        of its choice for inverse-propensity estimates.

        Parameters
        ----------
        Q, C, L, mask : array-like, shape (n_prompts, n_models)
            As in :meth:`choose`.

        Returns
        -------
        ndarray of float, shape (n_prompts, n_models)
            Rows sum to 1: a single 1 without a mix (or where both prices choose the same model),
            else ``1 − mix_`` on the choice under ``lam_`` and ``mix_`` on the choice under ``lam_alt_``.
        """
        lam, lam_alt, mix, mu = self._fitted_params()
        _, Cm, _, adm, base = self._prepare(Q, C, L, mask, mu)
        self._check_width(Cm.shape[1])
        rows = np.arange(Cm.shape[0])
        out = np.zeros(Cm.shape)
        if lam_alt is None or mix <= 0.0:
            out[rows, choose_rows(base, Cm, adm, lam)] = 1.0
            return out
        out[rows, choose_rows(base, Cm, adm, lam)] += 1.0 - mix
        out[rows, choose_rows(base, Cm, adm, lam_alt)] += mix
        return out

    def _check_width(self, m: int) -> None:
        n_models = getattr(self, "n_models_", None)
        if n_models is not None and m != n_models:
            raise ValueError(f"got {m} model columns; this Policy was fitted on {n_models}")

    def rank(self, q, c, l=None, mask=None, *, key: Hashable | None = None) -> np.ndarray:
        """Admissible model indices for one prompt, best first.

        Parameters
        ----------
        q, c, l, mask : array-like, shape (n_models,)
            Predicted quality, cost (USD), latency (s) and admissibility of each model.
        key : hashable, optional
            Prompt key; decides the side of a mixed calibration by a stable hash. Without a key the
            hash is of the prompt's own ``q, c, l, mask`` (salted with ``random_state``), so the same
            inputs always give the same ranking.

        Returns
        -------
        ndarray of int
            Indices of the admissible models, by descending score, ties toward the cheaper model
            (then the lower index).
        """
        lam, lam_alt, mix, mu = self._fitted_params()
        qv = np.asarray(q, dtype=float).reshape(-1)
        cv = np.asarray(c, dtype=float).reshape(-1)
        m = qv.size
        if cv.shape != (m,):
            raise ValueError(f"c has shape {cv.shape}; expected ({m},) like q")
        self._check_width(m)
        adm = np.ones(m, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).reshape(-1)
        if adm.shape != (m,):
            raise ValueError(f"mask has shape {adm.shape}; expected ({m},) like q")
        base = qv
        if mu:
            if l is None:
                raise ValueError(f"mu={mu} prices latency, so l= is required")
            base = qv - mu * np.asarray(l, dtype=float).reshape(-1)
        if lam_alt is not None and mix > 0:
            if key is None:
                key = content_key(self.random_state, qv, cv, None if l is None else base, adm)
            if prompt_uniform(key) < mix:
                lam = lam_alt
        idx = np.flatnonzero(adm)
        if idx.size == 0:
            raise NoAdmissibleModelError("no admissible model for this prompt")
        s = base[idx] - lam * cv[idx] if lam else base[idx]
        if not np.all(np.isfinite(s)):
            raise ValueError("non-finite prediction for an admissible model; mask it out or fill it")
        order = np.lexsort((idx, cv[idx], -s))
        return idx[order]
