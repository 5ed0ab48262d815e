"""The agreement model of a cascade: how likely two cheap answers agree, and how right each side is.

For a pair of cheap models ``a``, ``b`` and an escalation target ``E`` with predicted probabilities of
success ``p_a``, ``p_b``, ``p_e``, :class:`AgreementModel` gives P(agree), P(a right | agree / disagree)
and P(E right | agree / disagree): a closed-form prior (correlated errors ρ, shared difficulty β, a
chance rate of two wrong answers agreeing per answer kind), whose three parameters per kind can be fit
on recorded answers. See :mod:`zerorouter_integrations.cascade` for the formulation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from zerorouter_integrations.extras import need

__all__ = ["EPS", "OUTPUTS", "AgreementModel", "expit", "logit"]

#: Probabilities are clipped to [EPS, 1 − EPS] before taking log-odds.
EPS = 1e-4


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 − p)), with p clipped to [EPS, 1 − EPS]."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function (numerically stable form)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


#: The five probabilities an agreement model gives for a pair (a, b) and an escalation target E.
OUTPUTS = ("agree", "a_ok_agree", "a_ok_dis", "e_ok_agree", "e_ok_dis")


def _structural(
    pa: np.ndarray, pb: np.ndarray, pe: np.ndarray, r: float, rho: float, beta: float
) -> dict[str, np.ndarray]:
    """The five first-stage probabilities of the agreement model (see :class:`AgreementModel`)."""
    s = np.sqrt(pa * (1 - pa) * pb * (1 - pb))
    both = np.clip(pa * pb + rho * s, np.maximum(0.0, pa + pb - 1), np.minimum(pa, pb))
    both_wrong = np.clip(1 - pa - pb + both, 0.0, 1.0)
    agree = np.clip(both + r * both_wrong, EPS, 1 - EPS)
    a_ok_agree = np.clip(both / agree, EPS, 1 - EPS)
    a_ok_dis = np.clip((pa - both) / (1 - agree), 0.0, 1.0)
    # E's log-odds move by β times the primary's shift on each side, around a level ℓ that keeps E's
    # marginal: agree·expit(ℓ + β·δ_agree) + (1 − agree)·expit(ℓ + β·δ_dis) = p_E (Newton, bracketed).
    d_ag = beta * (logit(a_ok_agree) - logit(pa))
    d_dis = beta * (logit(a_ok_dis) - logit(pa))
    le = logit(pe)
    lo, hi = le - np.maximum(d_ag, d_dis), le - np.minimum(d_ag, d_dis)
    ell = np.clip(le, lo, hi)
    for _ in range(30):
        s_ag, s_dis = expit(ell + d_ag), expit(ell + d_dis)
        f = agree * s_ag + (1 - agree) * s_dis - pe
        if np.all(np.abs(f) < 1e-7):
            break
        lo, hi = np.where(f < 0, ell, lo), np.where(f > 0, ell, hi)
        df = agree * s_ag * (1 - s_ag) + (1 - agree) * s_dis * (1 - s_dis)
        step = ell - f / np.maximum(df, 1e-12)
        ell = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
    e_ok_agree = np.clip(expit(ell + d_ag), EPS, 1 - EPS)
    e_ok_dis = np.clip(expit(ell + d_dis), 0.0, 1.0)
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
    r = float(expit(theta[0]))
    rho = float(-0.5 + 1.5 * expit(theta[1]))
    beta = float(4.0 * expit(theta[2]))
    return r, rho, beta


def _pack(r: float, rho: float, beta: float) -> np.ndarray:
    return np.array(
        [logit(np.array(r))[()], logit(np.array((rho + 0.5) / 1.5))[()], logit(np.array(beta / 4.0))[()]],
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
        need("fit", "fitting a cascade's agreement model (AgreementModel.fit)")
        from scipy.optimize import minimize

        pa, pb, pe = (np.clip(np.asarray(v, dtype=float).ravel(), EPS, 1 - EPS) for v in (pa, pb, pe))
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
            *(np.clip(np.asarray(v, dtype=float), EPS, 1 - EPS) for v in (pa, pb, pe))
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
