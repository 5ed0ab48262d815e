"""The target parameters that ``Policy`` and ``CascadePolicy`` share, and their scikit-learn plumbing.

Both policies price cost by ``λ`` (``lam``) and latency by ``μ`` (``mu``) and set ``λ`` the same four
ways (given, a budget, an absolute quality target, a fraction of a reference model's quality):
:class:`PolicyParams` holds the constructor-parameter protocol (``get_params``/``set_params``/
``repr``), the validation of those target parameters, and the storing of the calibrated prices.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

import numpy as np

from zerorouter_integrations.policy_calibration import index_uniform, prompt_uniform

__all__ = ["TARGET_PARAMS", "PolicyParams"]

_P = TypeVar("_P", bound="PolicyParams")

#: The constructor parameters that say what a policy's ``λ`` is and what latency costs.
TARGET_PARAMS = ("lam", "mu", "budget_usd_per_1k", "quality_target", "reference", "reference_fraction")


class PolicyParams:
    """Mixin: constructor parameters as in scikit-learn, and the shared target parameters.

    A subclass stores every constructor argument under its own name, including ``lam``, ``mu``,
    ``budget_usd_per_1k``, ``quality_target``, ``reference`` and ``reference_fraction``.
    """

    lam: float | None
    mu: float
    budget_usd_per_1k: float | None
    quality_target: float | None
    reference: str | None
    reference_fraction: float | None

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as in scikit-learn."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self: _P, **params: Any) -> _P:
        """Set constructor parameters (unknown names raise ``ValueError``); returns ``self``."""
        valid = set(self._get_param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"invalid parameter {k!r} for {type(self).__name__}; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if v is not sig.parameters[k].default and v != sig.parameters[k].default
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    def _given_targets(self) -> list[str]:
        """The kinds of target given (``"lam"``, ``"budget"``, ``"quality"``, ``"reference"``), in that order."""
        return [
            k
            for k, v in (
                ("lam", self.lam),
                ("budget", self.budget_usd_per_1k),
                ("quality", self.quality_target),
                ("reference", self.reference_fraction),
            )
            if v is not None
        ]

    def _check_target_values(self) -> None:
        """Raise ``ValueError`` for a reference fraction without a reference or outside (0, 1], a
        negative or non-finite ``lam`` or ``mu``, and a budget that is not a number ≥ 0 (a budget below
        the cheapest mean cost is the calibration's ``InfeasibleError``)."""
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

    def _set_prices(self, lam: float, lam_alt: float | None, mix: float, mu: float) -> None:
        """Store the calibrated prices: ``lam_``, ``lam_alt_`` (None when unmixed), ``mix_``, ``mu_``."""
        self.lam_ = float(lam)
        self.lam_alt_ = None if lam_alt is None else float(lam_alt)
        self.mix_ = float(mix)
        self.mu_ = mu

    @staticmethod
    def _uniforms(n: int, keys: Sequence[Hashable] | None) -> np.ndarray:
        """Each row's uniform in [0, 1) for the calibrated mix: its key's stable hash, else its index."""
        if keys is None:
            return index_uniform(n)
        keys = list(keys)
        if len(keys) != n:
            raise ValueError(f"keys has {len(keys)} entries; Q has {n} rows")
        return np.array([prompt_uniform(k) for k in keys], dtype=float)
