"""Deferral-curve metrics: the numbers that say whether a router beats picking one model.

A router evaluated on test prompts gives operating points ``(mean cost per query, mean quality)`` as
its quality/cost trade-off sweeps. Mixing two operating points at random (per query) achieves any
point on the segment between them, so the achievable curve is the *upper concave hull* of the
points, made non-decreasing in cost. On that curve:

* **AUDC**: the mean of the curve's quality over the cost range ``[c_lo, c_hi]`` (the cheapest and
  the most expensive single model of the pool), i.e. the area under the curve divided by the width.
  Below the router's cheapest point the curve counts as that point's quality; above its dearest it
  stays flat. In [0, 1]; higher is better.
* **QNC**: the least cost at which the curve reaches the best single model's quality, divided by that
  model's cost (``None`` when the curve never gets there).
* **cost at X %**: the same for ``X % ×`` the best single model's quality.
* **APGR** (RouteLLM): the mean, over costs between the cheapest model and the best single model, of
  ``(q(c) − q_cheapest) / (q_best − q_cheapest)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Curve",
    "apgr",
    "audc",
    "cost_to_reach",
    "curve_from_choices",
    "references",
    "sweep_choices",
    "upper_hull",
]


@dataclass
class Curve:
    """Operating points of a router and their achievable upper hull (both sorted by cost)."""

    points: np.ndarray  # (p, 2) raw (cost, quality)
    hull: np.ndarray  # (h, 2) upper concave, non-decreasing hull

    def quality_at(self, cost: np.ndarray | float) -> np.ndarray:
        """Hull quality at ``cost`` (flat beyond both ends)."""
        return np.interp(cost, self.hull[:, 0], self.hull[:, 1])

    @property
    def best_quality(self) -> float:
        return float(self.hull[:, 1].max())


def upper_hull(points: np.ndarray) -> np.ndarray:
    """Upper concave hull of (cost, quality) points, cut where quality stops increasing."""
    pts = np.asarray(points, dtype=float)
    pts = pts[np.lexsort((-pts[:, 1], pts[:, 0]))]
    # Keep, for each cost, the best quality; then only points that improve on every cheaper one.
    keep = [pts[0]]
    for c, q in pts[1:]:
        if q > keep[-1][1] + 1e-15:
            keep.append(np.array([c, q]))
    hull: list[np.ndarray] = []
    for p in keep:
        while len(hull) >= 2:
            (c1, q1), (c2, q2) = hull[-2], hull[-1]
            # Drop the middle point when it lies on or under the segment from hull[-2] to p.
            if (q2 - q1) * (p[0] - c1) <= (p[1] - q1) * (c2 - c1) + 1e-15:
                hull.pop()
            else:
                break
        hull.append(p)
    return np.asarray(hull)


def curve_from_choices(choices: np.ndarray, Y: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Realized (mean cost, mean quality) of each row of ``choices`` (s × n model indices)."""
    rows = np.arange(Y.shape[0])
    return np.array([[C[rows, ch].mean(), Y[rows, ch].mean()] for ch in choices])


def sweep_choices(Q_hat: np.ndarray, C_hat: np.ndarray, *, n_lambdas: int = 161) -> np.ndarray:
    """Per-prompt choices ``argmax_m Q̂ − λ·Ĉ`` over a log grid of λ (plus λ = 0 and λ → ∞).

    Ties prefer the cheaper model. Returns an array (s × n) of model indices.
    """
    Q_hat = np.asarray(Q_hat, dtype=float)
    C_hat = np.maximum(np.asarray(C_hat, dtype=float), 0.0)
    pos = C_hat[C_hat > 0]
    scale = float(np.median(pos)) if pos.size else 1.0
    lambdas = np.concatenate([[0.0], np.geomspace(1e-4, 1e4, n_lambdas) / scale])
    tie = 1e-9 * C_hat / (C_hat.max() + 1e-300)
    out = [np.argmax(Q_hat - lam * C_hat - tie, axis=1) for lam in lambdas]
    out.append(np.argmin(C_hat - 1e-12 * Q_hat, axis=1))
    return np.asarray(out)


def audc(curve: Curve, c_lo: float, c_hi: float, *, n_grid: int = 2001) -> float:
    """Mean hull quality over ``[c_lo, c_hi]`` (see the module docstring)."""
    if c_hi <= c_lo:
        return float(curve.quality_at(c_lo))
    grid = np.linspace(c_lo, c_hi, n_grid)
    return float(np.trapezoid(curve.quality_at(grid), grid) / (c_hi - c_lo))


def cost_to_reach(curve: Curve, quality: float) -> float | None:
    """Least cost at which the hull reaches ``quality`` (linear between hull points), or ``None``."""
    h = curve.hull
    if h[-1, 1] < quality - 1e-12:
        return None
    if h[0, 1] >= quality:
        return float(h[0, 0])
    j = int(np.argmax(h[:, 1] >= quality - 1e-12))
    (c0, q0), (c1, q1) = h[j - 1], h[j]
    return float(c0 + (quality - q0) * (c1 - c0) / (q1 - q0)) if q1 > q0 else float(c1)


def apgr(
    curve: Curve, *, c_weak: float, q_weak: float, c_strong: float, q_strong: float, n_grid: int = 2001
) -> float | None:
    """RouteLLM's average performance gap recovered between the cheapest and the best single model."""
    if q_strong <= q_weak or c_strong <= c_weak:
        return None
    grid = np.linspace(c_weak, c_strong, n_grid)
    gap = (curve.quality_at(grid) - q_weak) / (q_strong - q_weak)
    return float(np.trapezoid(gap, grid) / (c_strong - c_weak))


def references(Y: np.ndarray, C: np.ndarray, models: Sequence[str]) -> dict:
    """Best single, cheapest, oracle and random-mix references on complete (n × m) ``Y``/``C``.

    * best single: highest mean quality, ties to the cheaper;
    * cheapest: lowest mean cost, ties to the better;
    * oracle: per prompt, the cheapest model among those with the highest score;
    * random mix: the segment from the cheapest model to the best single model.
    """
    q = Y.mean(axis=0)
    c = C.mean(axis=0)
    best = int(np.lexsort((c, -q))[0])
    cheap = int(np.lexsort((-q, c))[0])
    rows = np.arange(Y.shape[0])
    top = Y.max(axis=1, keepdims=True)
    masked_cost = np.where(Y >= top - 1e-12, C, np.inf)
    oracle = np.argmin(masked_cost, axis=1)
    return {
        "best_single": {
            "model": models[best],
            "quality": float(q[best]),
            "cost": float(c[best]),
            "index": best,
        },
        "cheapest": {
            "model": models[cheap],
            "quality": float(q[cheap]),
            "cost": float(c[cheap]),
            "index": cheap,
        },
        "oracle": {"quality": float(Y[rows, oracle].mean()), "cost": float(C[rows, oracle].mean())},
        "random_mix": {
            "from": models[cheap],
            "to": models[best],
            "curve": [[float(c[cheap]), float(q[cheap])], [float(c[best]), float(q[best])]],
        },
        "single_models": {
            models[j]: {"quality": float(q[j]), "cost": float(c[j])} for j in range(len(models))
        },
    }
