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

Calibration
-----------
Per-prompt choices are discrete, so the achieved mean cost (or quality) is a non-increasing *step*
function of ``λ``. :meth:`Policy.fit` brackets the step that crosses the target by geometric
bisection down to a relative width of 1e-12 (so the two ends differ only in the prompts whose
choice flips at that breakpoint), then mixes the two ends: a fraction ``mix_`` of prompts uses the
lower ``λ`` (``lam_alt_``), the rest ``lam_``. Which prompts is decided by a deterministic number
``u ∈ [0, 1)`` per prompt (``u < mix_`` → lower ``λ``):

* a stable hash (BLAKE2b) of a prompt key when keys are given (``keys=`` / ``key=``);
* otherwise, for arrays, the golden-ratio sequence over the row index
  (``u_i = frac((i + 1)·0.618…)``), which is what :meth:`fit` uses, so :meth:`choose` on the
  calibration set reproduces ``calibration_`` exactly;
* otherwise, for one prompt in :meth:`rank`, a seeded random generator (``random_state``).

The calibration lands within one prompt's switch of the target, which is well inside 1 % for
calibration sets of a few hundred prompts; ``calibration_["relative_error"]`` reports it and a
``RuntimeWarning`` is issued above 1 %.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from zerorouter_integrations.errors import (
    InfeasibleError,
    NoAdmissibleModelError,
    NotFittedError,
    UnknownModelError,
)

__all__ = ["Policy", "choose_rows", "prompt_uniform"]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618…


def prompt_uniform(key: Hashable) -> float:
    """A stable number in [0, 1) for a prompt key (BLAKE2b of ``str(key)``, or of the bytes)."""
    data = key if isinstance(key, bytes) else str(key).encode("utf-8")
    h = hashlib.blake2b(data, digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


_INDEX_U_CACHE = 1024  # rows of the golden-ratio sequence kept precomputed (per-request calls)


def index_uniform(n: int) -> np.ndarray:
    """Golden-ratio low-discrepancy sequence: a deterministic, well-spread u per row index."""
    if n <= len(_INDEX_U):
        return _INDEX_U[:n]
    return np.mod((np.arange(n, dtype=float) + 1.0) * _GOLDEN, 1.0)


_INDEX_U = np.mod((np.arange(_INDEX_U_CACHE, dtype=float) + 1.0) * _GOLDEN, 1.0)
_INDEX_U.flags.writeable = False


def choose_rows(base: np.ndarray, C: np.ndarray, admissible: np.ndarray, lam: float) -> np.ndarray:
    """Row-wise argmax of ``base − lam·C`` over admissible columns, ties toward the cheaper column.

    Parameters
    ----------
    base : ndarray, shape (n, m)
        Quality net of the latency term (``Q − μ·L``).
    C : ndarray, shape (n, m)
        Cost per call (USD).
    admissible : ndarray of bool, shape (n, m), or None
        Every row must have at least one ``True``; ``None``: every column is admissible.
    lam : float or ndarray of shape (n, 1)
        Price of one USD in quality units (one per row when an array).

    Returns
    -------
    ndarray of int, shape (n,)
    """
    S = base - lam * C if np.ndim(lam) or lam else base
    if admissible is not None:
        S = np.where(admissible, S, -np.inf)
    best = S.max(axis=1, keepdims=True)
    return np.where(S == best, C, np.inf).argmin(axis=1)


def _as2d(name: str, a: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_prompts × n_models); got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}; expected {shape} like Q")
    return arr


class Policy:
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
        Seed of the generator used by :meth:`rank` to place a key-less prompt on either side of the
        calibrated mix.

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

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as in scikit-learn."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Policy:
        """Set constructor parameters (unknown names raise ``ValueError``); returns ``self``."""
        valid = set(self._get_param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"invalid parameter {k!r} for Policy; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = [f"{k}={v!r}" for k, v in self.get_params().items() if v != sig.parameters[k].default]
        return f"Policy({', '.join(shown)})"

    def _target_kind(self) -> str:
        given = {
            "lam": self.lam is not None,
            "budget": self.budget_usd_per_1k is not None,
            "quality": self.quality_target is not None,
            "reference": self.reference_fraction is not None,
        }
        n_given = sum(given.values())
        if n_given != 1:
            raise ValueError(
                "give exactly one of lam, budget_usd_per_1k, quality_target or reference_fraction; "
                f"got {n_given} ({', '.join(k for k, v in given.items() if v) or 'none'})"
            )
        if self.reference_fraction is not None:
            if self.reference is None:
                raise ValueError("reference_fraction needs reference= (the model whose quality it scales)")
            if not 0.0 < self.reference_fraction <= 1.0:
                raise ValueError(f"reference_fraction must be in (0, 1]; got {self.reference_fraction}")
        if self.lam is not None and not (self.lam >= 0 and math.isfinite(self.lam)):
            raise ValueError(f"lam must be a finite number ≥ 0; got {self.lam}")
        if self.budget_usd_per_1k is not None and not self.budget_usd_per_1k >= 0:
            raise ValueError(f"budget_usd_per_1k must be ≥ 0; got {self.budget_usd_per_1k}")
        if not (self.mu >= 0 and math.isfinite(self.mu)):
            raise ValueError(f"mu must be a finite number ≥ 0; got {self.mu}")
        return next(k for k, v in given.items() if v)

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

        rows = np.arange(n)
        lam_alt: float | None = None
        mix = 0.0
        binding = True
        if kind == "lam":
            lam, target = float(self.lam), None
            binding = False
        else:
            if kind == "budget":
                target = float(self.budget_usd_per_1k) / 1000.0
                vals = Cm
            elif kind == "quality":
                target = float(self.quality_target)
                vals = Qm
            else:
                ref_q = Qm[adm[:, ref_idx], ref_idx]
                target = float(self.reference_fraction) * float(ref_q.mean())
                vals = Qm
            lam, lam_alt, mix, binding = self._calibrate(kind, target, vals, base, Cm, Qm, adm, u)

        self.lam_ = float(lam)
        self.lam_alt_ = None if lam_alt is None else float(lam_alt)
        self.mix_ = float(mix)
        self.mu_ = mu
        self.model_names_ = names
        self.n_models_ = m
        self.rng_ = np.random.default_rng(self.random_state)

        chosen = self._choose_arrays(base, Cm, adm, u)
        mean_cost = float(Cm[rows, chosen].mean())
        mean_q = float(Qm[rows, chosen].mean())
        achieved = None if kind == "lam" else (mean_cost if kind == "budget" else mean_q)
        rel = None
        if achieved is not None and target:
            rel = abs(achieved - target) / abs(target)
        cal: dict[str, Any] = {
            "kind": kind,
            "target": target,
            "achieved": achieved,
            "relative_error": rel,
            "binding": bool(binding),
            "mean_cost_usd": mean_cost,
            "cost_usd_per_1k": mean_cost * 1000.0,
            "mean_quality": mean_q,
            "lam": self.lam_,
            "lam_alt": self.lam_alt_,
            "mix": self.mix_,
            "mu": mu,
            "n_prompts": int(n),
        }
        counts = np.bincount(chosen, minlength=m) / n
        cal["shares"] = {(names[j] if names else str(j)): float(counts[j]) for j in range(m) if counts[j] > 0}
        if ref_idx is not None:
            ok = adm[:, ref_idx]
            cal["reference"] = self.reference
            cal["reference_mean_quality"] = float(Qm[ok, ref_idx].mean())
            ref_cost = float(Cm[ok, ref_idx].mean())
            cal["reference_mean_cost_usd"] = ref_cost
            cal["saving_fraction"] = None if ref_cost <= 0 else 1.0 - mean_cost / ref_cost
        self.calibration_ = cal
        if binding and rel is not None and rel > 0.01:
            unit, k = (" USD per 1k calls", 1000.0) if kind == "budget" else (" mean quality", 1.0)
            warnings.warn(
                f"calibration reached {achieved * k:.6g}{unit} for a target of {target * k:.6g} "
                f"({rel:.2%} off): the calibration set is too small for the per-prompt steps",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def _calibrate(self, kind, target, vals, base, C, Q, adm, u):
        """Bracket λ around the step that crosses ``target`` and mix the two ends."""
        n = base.shape[0]
        rows = np.arange(n)
        budget = kind == "budget"

        def value(j: np.ndarray) -> float:
            return float(vals[rows, j].mean())

        def lo_side(v: float) -> bool:  # the side of small λ: dearer / better
            return v > target if budget else v >= target

        j0 = choose_rows(base, C, adm, 0.0)
        v0 = value(j0)
        Bk = np.where(adm, base, -np.inf)
        Ck = np.where(adm, C, np.inf)
        j_cheap = np.where(Ck <= Ck.min(axis=1, keepdims=True), -Bk, np.inf).argmin(axis=1)
        c_cheap, b_cheap = C[rows, j_cheap], base[rows, j_cheap]
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(
                adm & (C > c_cheap[:, None]), (base - b_cheap[:, None]) / (C - c_cheap[:, None]), -np.inf
            )
        lam_max = max(float(up.max()), 0.0) * (1.0 + 1e-9) + 1e-300
        j_max = choose_rows(base, C, adm, lam_max)
        v_max = value(j_max)

        if budget:
            if not lo_side(v0):  # the best-quality choice is already within budget
                return 0.0, None, 0.0, False
            if lo_side(v_max):
                best = float(c_cheap.mean())
                raise InfeasibleError(
                    f"budget {target * 1000:.6g} USD per 1k calls is below the cheapest possible "
                    f"{best * 1000:.6g} USD per 1k calls (every prompt on its cheapest admissible model)",
                    best_value=best * 1000.0,
                    status="infeasible",
                )
        else:
            if not lo_side(v0):
                best_possible = float(np.where(adm, Q, -np.inf).max(axis=1).mean())
                extra = (
                    f"; with mu={self.mu} the latency term holds it at {v0:.6g}"
                    if best_possible > v0 + 1e-12
                    else ""
                )
                raise InfeasibleError(
                    f"quality target {target:.6g} is above the best achievable mean quality "
                    f"{best_possible:.6g}{extra}",
                    best_value=v0,
                    status="infeasible",
                )
            if lo_side(v_max):  # even the cheapest choice meets the target
                return lam_max, None, 0.0, False

        # smallest positive breakpoint: where the λ=0 choice first loses to a cheaper model
        b0, c0 = base[rows, j0], C[rows, j0]
        with np.errstate(divide="ignore", invalid="ignore"):
            down = np.where(adm & (C < c0[:, None]), (b0[:, None] - base) / (c0[:, None] - C), np.inf)
        lam_lo = float(down.min()) * (1.0 - 1e-9)
        if not (lam_lo > 0 and math.isfinite(lam_lo)) or not lo_side(
            value(choose_rows(base, C, adm, lam_lo))
        ):
            lam_lo = 0.0
        lam_hi = lam_max
        for _ in range(400):
            if lam_lo > 0 and lam_hi <= lam_lo * (1.0 + 1e-12):
                break
            mid = math.sqrt(lam_lo * lam_hi) if lam_lo > 0 else lam_hi / 2.0
            if not (lam_lo < mid < lam_hi):
                break
            if lo_side(value(choose_rows(base, C, adm, mid))):
                lam_lo = mid
            else:
                lam_hi = mid
        # Mix: prompts whose choice differs between the two ends switch to the lower λ in order of
        # their u. Each switch moves the mean by one prompt's step, so besides the tight bracket a
        # few wider ones (a handful of breakpoints apart) are tried: more prompts differ, giving
        # more partial sums to land on. The pair and count closest to the target on its feasible
        # side (≤ budget, ≥ quality target) win.
        los = [lam_lo] + [lam_lo * r for r in (1 - 1e-3, 1 - 1e-2, 0.97, 0.9, 0.75, 0.5, 0.3) if lam_lo > 0]
        his = [lam_hi] + [lam_hi * r for r in (1 + 1e-3, 1.01, 1.03, 1.1, 1.33, 2.0, 3.0)]
        j_los = [choose_rows(base, C, adm, a) for a in los]
        j_his = [choose_rows(base, C, adm, b) for b in his]
        best: tuple[float, float, float, float] | None = None  # (err, lam_hi, lam_lo, mix)
        for a, j_a in zip(los, j_los):
            for b, j_b in zip(his, j_his):
                diff = np.flatnonzero(j_a != j_b)
                if diff.size == 0:
                    continue
                order = diff[np.argsort(u[diff], kind="stable")]
                delta = (vals[order, j_a[order]] - vals[order, j_b[order]]) / n
                means = value(j_b) + np.concatenate([[0.0], np.cumsum(delta)])
                if budget:
                    feasible = means <= target * (1 + 1e-12)
                else:
                    feasible = means >= target * (1 - 1e-12)
                err = np.where(feasible, np.abs(means - target), np.inf)
                k = int(np.argmin(err))
                if not np.isfinite(err[k]) or (best is not None and err[k] >= best[0]):
                    continue
                us = u[order]
                if k == 0:
                    mix = 0.0
                elif k == len(order):
                    mix = 0.5 * (us[-1] + 1.0)
                else:
                    mix = 0.5 * (us[k - 1] + us[k])
                best = (float(err[k]), b, a, mix)
        if best is None:  # pragma: no cover - the bracket always straddles a step
            return lam_hi, None, 0.0, True
        _, lam_b, lam_a, mix = best
        return lam_b, (lam_a if mix > 0 else None), mix, True

    # ------------------------------------------------------------------ prediction

    @staticmethod
    def _uniforms(n: int, keys: Sequence[Hashable] | None) -> np.ndarray:
        if keys is None:
            return index_uniform(n)
        keys = list(keys)
        if len(keys) != n:
            raise ValueError(f"keys has {len(keys)} entries; Q has {n} rows")
        return np.array([prompt_uniform(k) for k in keys], dtype=float)

    def _choose_arrays(self, base, C, adm, u) -> np.ndarray:
        lam, lam_alt, mix, _ = self._fitted_params()
        if lam_alt is not None and mix > 0:  # each row takes one side of the calibrated mix
            lam = (
                (lam_alt if u[0] < mix else lam) if len(u) == 1 else np.where(u < mix, lam_alt, lam)[:, None]
            )
        return choose_rows(base, C, adm, lam)

    def scores(self, Q, C, L=None) -> np.ndarray:
        """``Q − lam_·C − mu_·L`` (quality units; ``C`` in USD per call, ``L`` in seconds).

        Uses ``lam_`` (the upper end of a mixed calibration; :meth:`choose` applies the mix).
        """
        lam, _, _, mu = self._fitted_params()
        Qm = _as2d("Q", Q) if np.ndim(Q) == 2 else np.asarray(Q, dtype=float)
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
            side is drawn from ``rng_`` (seeded by ``random_state``).

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
            if key is not None:
                u = prompt_uniform(key)
            else:
                if not hasattr(self, "rng_"):
                    self.rng_ = np.random.default_rng(self.random_state)
                u = float(self.rng_.random())
            if u < mix:
                lam = lam_alt
        idx = np.flatnonzero(adm)
        if idx.size == 0:
            raise NoAdmissibleModelError("no admissible model for this prompt")
        s = base[idx] - lam * cv[idx] if lam else base[idx]
        if not np.all(np.isfinite(s)):
            raise ValueError("non-finite prediction for an admissible model; mask it out or fill it")
        order = np.lexsort((idx, cv[idx], -s))
        return idx[order]
