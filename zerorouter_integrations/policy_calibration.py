"""Calibrating a per-query policy's λ to a budget or a quality target, and the deterministic mix.

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
* otherwise, for one prompt in :meth:`rank`, a stable hash of the prompt's own predictions (its
  quality, cost, latency and admissibility vectors, salted with ``random_state``): the same request
  against the same pool always takes the same side, never a random draw. :meth:`scores` with the
  same keys uses the λ each prompt actually takes; :meth:`lam_for` says which.

The calibration lands within one prompt's switch of the target, which is well inside 1 % for
calibration sets of a few hundred prompts; ``calibration_["relative_error"]`` reports it and a
``RuntimeWarning`` is issued above 1 %.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import numpy as np

from zerorouter_integrations.errors import InfeasibleError
from zerorouter_integrations.stable_hash import stable_uniform

__all__ = [
    "calibrate_lam",
    "calibration_report",
    "choose_rows",
    "content_key",
    "index_uniform",
    "prompt_uniform",
    "reference_summary",
]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618…


def content_key(salt: Any, *arrays: np.ndarray | None) -> bytes:
    """Bytes identifying a prompt by its prediction vectors (a key for :func:`prompt_uniform`)."""
    parts = [repr(salt).encode()]
    parts += [b"-" if a is None else np.ascontiguousarray(a, dtype=float).tobytes() for a in arrays]
    return b"|".join(parts)


def prompt_uniform(key: Hashable) -> float:
    """A stable number in [0, 1) for a prompt key (:func:`~zerorouter_integrations.stable_hash.stable_uniform`
    of ``str(key)``, or of the bytes; any text, lone surrogates included, has one)."""
    return stable_uniform(key if isinstance(key, bytes) else str(key))


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


def calibrate_lam(
    kind: str,
    target: float,
    vals: np.ndarray,
    base: np.ndarray,
    C: np.ndarray,
    Q: np.ndarray,
    adm: np.ndarray,
    u: np.ndarray,
    mu: float = 0.0,
) -> tuple[float, float | None, float, bool]:
    """Bracket λ around the step that crosses ``target`` and mix the two ends.

    ``kind`` is ``"budget"`` (``vals`` = costs) or a quality kind (``vals`` = qualities); ``base`` is the
    quality net of latency, ``adm`` the admissible cells, ``u`` each prompt's uniform. Returns
    ``(λ, λ_alt, mix, binding)``; raises ``InfeasibleError`` when no λ meets the target.
    """
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
            cheapest = float(c_cheap.mean())
            raise InfeasibleError(
                f"budget {target * 1000:.6g} USD per 1k calls is below the cheapest possible "
                f"{cheapest * 1000:.6g} USD per 1k calls (every prompt on its cheapest admissible model)",
                best_value=cheapest * 1000.0,
                status="infeasible",
            )
    else:
        if not lo_side(v0):
            best_possible = float(np.where(adm, Q, -np.inf).max(axis=1).mean())
            extra = (
                f"; with mu={mu} the latency term holds it at {v0:.6g}" if best_possible > v0 + 1e-12 else ""
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
    if not (lam_lo > 0 and math.isfinite(lam_lo)) or not lo_side(value(choose_rows(base, C, adm, lam_lo))):
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


def calibration_report(
    Q: np.ndarray,
    C: np.ndarray,
    adm: np.ndarray,
    chosen: np.ndarray,
    names: list[str] | None,
    kind: str,
    target: float | None,
    binding: bool,
    fitted: tuple[float, float | None, float, float],
) -> dict[str, Any]:
    """A policy's ``calibration_``: target, achieved value, relative error, means and model shares of
    the ``chosen`` column per calibration prompt (``fitted`` = ``(lam, lam_alt, mix, mu)``)."""
    n, m = Q.shape
    rows = np.arange(n)
    lam, lam_alt, mix, mu = fitted
    mean_cost = float(C[rows, chosen].mean())
    mean_q = float(Q[rows, chosen].mean())
    achieved = None if kind == "lam" else (mean_cost if kind == "budget" else mean_q)
    rel = None
    if achieved is not None and target:
        rel = abs(achieved - target) / abs(target)
    counts = np.bincount(chosen, minlength=m) / n
    return {
        "kind": kind,
        "target": target,
        "achieved": achieved,
        "relative_error": rel,
        "binding": bool(binding),
        "mean_cost_usd": mean_cost,
        "cost_usd_per_1k": mean_cost * 1000.0,
        "mean_quality": mean_q,
        "lam": lam,
        "lam_alt": lam_alt,
        "mix": mix,
        "mu": mu,
        "n_prompts": int(n),
        "shares": {(names[j] if names else str(j)): float(counts[j]) for j in range(m) if counts[j] > 0},
    }


def reference_summary(
    Q: np.ndarray, C: np.ndarray, adm: np.ndarray, ref_idx: int, reference: str, mean_cost: float
) -> dict[str, Any]:
    """The reference model's mean quality and cost on the prompts where it is admissible, and the saving."""
    ok = adm[:, ref_idx]
    ref_cost = float(C[ok, ref_idx].mean())
    return {
        "reference": reference,
        "reference_mean_quality": float(Q[ok, ref_idx].mean()),
        "reference_mean_cost_usd": ref_cost,
        "saving_fraction": None if ref_cost <= 0 else 1.0 - mean_cost / ref_cost,
    }
