"""NumPy versions of the two :mod:`scipy.special` functions the routing path uses.

Importing :mod:`scipy.special` costs ~0.2 s (it loads SciPy's array-API layer), more than the rest of
a routing decision, and SciPy is not part of the base install (it comes with the ``fit`` extra). The
formulas are SciPy's own: :func:`expit` is ``1 / (1 + exp(-x))`` (what ``scipy.special.expit``
computes; the two differ by at most one float64 epsilon, NumPy's ``exp`` being another
implementation of the same function), :func:`softmax` is ``scipy.special.softmax`` step by step (bit-identical).
``tests/test_special.py`` compares both with SciPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["expit", "softmax"]


def expit(x: Any) -> Any:
    """The logistic sigmoid ``1 / (1 + exp(-x))``, elementwise; keeps a floating dtype (float32 stays
    float32), integers become float64; ``expit(-inf) = 0``, ``expit(inf) = 1``, no overflow warning."""
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    with np.errstate(over="ignore"):
        out = 1.0 / (1.0 + np.exp(-a))
    return out[()] if out.ndim == 0 else out


def softmax(x: Any, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` over ``axis`` (all elements when None), shifted by the maximum first
    (as ``scipy.special.softmax``) so that large inputs do not overflow."""
    a = np.asarray(x)
    x_max = np.amax(a, axis=axis, keepdims=True)
    e = np.exp(a - x_max)
    return e / np.sum(e, axis=axis, keepdims=True)
