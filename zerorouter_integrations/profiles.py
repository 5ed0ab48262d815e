"""Model profiles: everything the router knows about one model, as plain JSON.

A :class:`ModelProfile` holds the model's ability in the latent space (with its uncertainty), how it
is priced and what a call is expected to cost (:class:`CostModel`), a latency prior, how to call it
(LiteLLM name and parameters) and its capabilities. Observed figures (latency, cost, errors) live in
a profile store (:mod:`zerorouter_integrations.stores`) and are merged in at decision time.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zerorouter_integrations._io import atomic_write_json
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.latent.base import Ability

__all__ = [
    "CostModel",
    "ModelProfile",
    "ProfileDict",
    "check_money",
    "estimate_tokens",
    "kneed_line_cost",
    "load_profiles",
    "nnls_line",
    "profiles_version",
    "save_profiles",
]

# Prediction caches (the predictor's stacked pool) are keyed by this version: it changes whenever a
# profile's ability or cost model is replaced or a ProfileDict gains, loses or replaces a profile.
# ``next`` on a count is atomic under the GIL and the bump follows the change, so a cache built at
# any version has seen every change made before that version was set.
_COUNTER = itertools.count(1)
_VERSION = 0


def _bump() -> None:
    global _VERSION
    _VERSION = next(_COUNTER)


def profiles_version() -> int:
    """A number that changes whenever any profile's ability or cost model, or any pool, changes."""
    return _VERSION


def check_money(name: str, value: Any, *, allow_none: bool = True) -> float | None:
    """``value`` as a float when it is a finite amount >= 0 (USD, tokens, seconds), else ``ValueError``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={value!r}; expected a finite number >= 0")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}={value!r}; expected a finite number >= 0")
    return v


def estimate_tokens(text_or_chars: str | int) -> int:
    """Token estimate used everywhere in the package: ``ceil(chars / 4)`` (the data's own convention)."""
    n = text_or_chars if isinstance(text_or_chars, int) else len(text_or_chars)
    return int(math.ceil(n / 4))


def nnls_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``argmin ‖a + b·x − y‖²`` over ``a, b ≥ 0``: what ``scipy.optimize.nnls`` gives for the
    design ``[1, x]`` (``tests/test_special.py`` compares them), in closed form with NumPy.

    With two unknowns the optimum is the unconstrained least-squares line when both coefficients are
    ≥ 0, else the best of the three faces of the constraint set: ``b = 0`` (``a`` = the mean of
    ``y``, clipped at 0), ``a = 0`` (``b = x·y / x·x``, clipped at 0) and ``a = b = 0``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    A = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
    if a >= 0 and b >= 0:
        return float(a), float(b)
    xx = float(x @ x)
    faces = [(max(float(np.mean(y)), 0.0), 0.0), (0.0, max(float(x @ y) / xx, 0.0) if xx > 0 else 0.0)]
    return min(faces, key=lambda ab: float(np.sum((ab[0] + ab[1] * x - y) ** 2)))


def kneed_line_cost(tokens: Any, intercept: Any, per_token: Any, knee: Any, tail: Any) -> np.ndarray:
    """``intercept + per_token·tokens + tail·max(tokens − knee, 0)``, broadcast (a :class:`CostModel`'s
    cost; the predictor applies it to a pool's stacked coefficients, ``knee = inf`` where there is none)."""
    return intercept + tokens * per_token + tail * np.maximum(tokens - knee, 0.0)


@dataclass
class CostModel:
    """Expected USD cost of one call: ``intercept_usd + per_input_token_usd × input_tokens``, plus
    ``tail_per_input_token_usd × (input_tokens − knee_input_tokens)`` beyond the knee.

    The intercept covers the output (expected output tokens × output price); the slope is the input
    price. Fit from observed ``(input_tokens, cost)`` pairs (:meth:`fit`) or built from prices
    (:meth:`from_prices`). A line fitted on benchmark prompts (whose lengths barely vary) can have a
    slope far under the list input price, even 0; past the longest prompt it was fitted on (the knee)
    every further token then costs at least the list input price (the tail slope tops it up), so a
    20k-token RAG prompt is not priced like a 300-token question.
    """

    intercept_usd: float = 0.0
    per_input_token_usd: float = 0.0
    n_obs: int = 0
    knee_input_tokens: float | None = None
    tail_per_input_token_usd: float = 0.0

    def __post_init__(self) -> None:
        check_money("CostModel.intercept_usd", self.intercept_usd, allow_none=False)
        check_money("CostModel.per_input_token_usd", self.per_input_token_usd, allow_none=False)
        check_money("CostModel.tail_per_input_token_usd", self.tail_per_input_token_usd, allow_none=False)
        check_money("CostModel.knee_input_tokens", self.knee_input_tokens)

    @classmethod
    def from_prices(
        cls, input_usd_per_token: float, output_usd_per_token: float, expected_output_tokens: float
    ) -> CostModel:
        return cls(
            intercept_usd=float(output_usd_per_token * expected_output_tokens),
            per_input_token_usd=float(input_usd_per_token),
        )

    @classmethod
    def fit(
        cls, input_tokens: Iterable[float], costs: Iterable[float], *, min_per_input_token_usd: float = 0.0
    ) -> CostModel:
        """Non-negative least squares fit of cost on input tokens (NaN pairs ignored).

        ``min_per_input_token_usd`` (a known list input price) is the least slope past the longest
        observed prompt: the knee and the tail slope of the model (see the class docstring). Within
        the observed lengths the fitted line is kept as it is.
        """
        x = np.asarray(list(input_tokens), dtype=float)
        y = np.asarray(list(costs), dtype=float)
        ok = ~(np.isnan(x) | np.isnan(y))
        x, y = x[ok], y[ok]
        if len(y) == 0:
            raise ValueError("CostModel.fit needs at least one (input_tokens, cost) pair without NaN")
        floor = check_money("min_per_input_token_usd", float(min_per_input_token_usd), allow_none=False)
        if len(y) < 3 or np.ptp(x) == 0:
            a, b = float(np.mean(y)), 0.0
        else:
            a, b = nnls_line(x, y)
        tail = max(float(floor or 0.0) - b, 0.0)
        return cls(
            intercept_usd=a,
            per_input_token_usd=b,
            n_obs=len(y),
            knee_input_tokens=float(x.max()) if tail > 0 else None,
            tail_per_input_token_usd=tail,
        )

    def predict(self, input_tokens: np.ndarray | float) -> np.ndarray:
        knee = np.inf if self.knee_input_tokens is None else self.knee_input_tokens
        return kneed_line_cost(
            np.asarray(input_tokens, dtype=float),
            self.intercept_usd,
            self.per_input_token_usd,
            knee,
            self.tail_per_input_token_usd,
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "intercept_usd": self.intercept_usd,
            "per_input_token_usd": self.per_input_token_usd,
            "n_obs": self.n_obs,
        }
        if self.knee_input_tokens is not None:
            d["knee_input_tokens"] = self.knee_input_tokens
            d["tail_per_input_token_usd"] = self.tail_per_input_token_usd
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostModel:
        knee = d.get("knee_input_tokens")
        return cls(
            float(d.get("intercept_usd", 0.0)),
            float(d.get("per_input_token_usd", 0.0)),
            int(d.get("n_obs", 0)),
            float(knee) if knee is not None else None,
            float(d.get("tail_per_input_token_usd", 0.0)),
        )


@dataclass
class ModelProfile:
    """One model of the pool.

    Attributes
    ----------
    name : str
        The pool name (what decisions and responses report).
    ability : Ability
        Position in the router's latent space, with uncertainty.
    cost : CostModel
        Expected cost per call.
    litellm_model : str or None
        LiteLLM model string used for dispatch (``None``: not callable, e.g. an offline table model).
    input_usd_per_token, output_usd_per_token : float or None
        List prices when known.
    expected_output_tokens : float or None
    latency_prior : dict
        ``{"ttft_s": …, "tokens_per_s": …}`` used until feedback has observed the model.
    capabilities : dict
        Overrides of :class:`~zerorouter_integrations.constraints.ModelCapabilities` fields.
    dispatch : dict
        Extra LiteLLM parameters (``api_base``, ``api_key_env``, …).
    capability : float or None
        A scalar summary of ability (mean predicted quality on the anchor set), used for
        escalate-only stickiness.
    source : str
        How the profile was made (``"fit"``, ``"onboard:100 anchors"``, …).
    """

    name: str
    ability: Ability
    cost: CostModel = field(default_factory=CostModel)
    litellm_model: str | None = None
    input_usd_per_token: float | None = None
    output_usd_per_token: float | None = None
    expected_output_tokens: float | None = None
    latency_prior: dict[str, float] = field(default_factory=lambda: {"ttft_s": 0.5, "tokens_per_s": 50.0})
    capabilities: dict[str, Any] = field(default_factory=dict)
    dispatch: dict[str, Any] = field(default_factory=dict)
    capability: float | None = None
    source: str = "fit"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ModelProfile.name={self.name!r}; expected a non-empty string")
        for key in ("input_usd_per_token", "output_usd_per_token", "expected_output_tokens"):
            check_money(f"{self.name}: {key}", getattr(self, key))
        if not isinstance(self.latency_prior, Mapping):
            raise ValueError(f"{self.name}: latency_prior={self.latency_prior!r}; expected a dict")
        for key, value in self.latency_prior.items():
            check_money(f"{self.name}: latency_prior.{key}", value, allow_none=False)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in ("ability", "cost"):  # what predictions read: replace them, never edit in place
            _bump()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ability": self.ability.to_dict(),
            "cost": self.cost.to_dict(),
            "litellm_model": self.litellm_model,
            "input_usd_per_token": self.input_usd_per_token,
            "output_usd_per_token": self.output_usd_per_token,
            "expected_output_tokens": self.expected_output_tokens,
            "latency_prior": dict(self.latency_prior),
            "capabilities": dict(self.capabilities),
            "dispatch": dict(self.dispatch),
            "capability": self.capability,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelProfile:
        try:
            return cls(
                name=str(d["name"]),
                ability=Ability.from_dict(d["ability"]),
                cost=CostModel.from_dict(d.get("cost", {})),
                litellm_model=d.get("litellm_model"),
                input_usd_per_token=d.get("input_usd_per_token"),
                output_usd_per_token=d.get("output_usd_per_token"),
                expected_output_tokens=d.get("expected_output_tokens"),
                latency_prior=dict(d.get("latency_prior") or {"ttft_s": 0.5, "tokens_per_s": 50.0}),
                capabilities=dict(d.get("capabilities") or {}),
                dispatch=dict(d.get("dispatch") or {}),
                capability=d.get("capability"),
                source=str(d.get("source", "fit")),
            )
        except KeyError as exc:
            raise SchemaError(f"model profile is missing key {exc.args[0]!r}: {dict(d)!r:.160}") from exc

    @property
    def price_known(self) -> bool:
        """Whether the profile knows what a call costs (list prices, or a cost model fit on observed costs).

        A model with neither is "price unknown": the router leaves it out unless its endpoint has prices.
        """
        return (
            self.input_usd_per_token is not None
            or self.output_usd_per_token is not None
            or self.cost.n_obs > 0
            or self.cost.intercept_usd > 0
            or self.cost.per_input_token_usd > 0
        )

    def expected_latency_s(self, output_tokens: float | None = None) -> float:
        """Prior expected latency: TTFT + output tokens ÷ tokens per second."""
        out = output_tokens if output_tokens is not None else (self.expected_output_tokens or 200.0)
        tps = max(float(self.latency_prior.get("tokens_per_s", 50.0)), 1e-6)
        return float(self.latency_prior.get("ttft_s", 0.5)) + out / tps


class ProfileDict(dict):
    """A pool of profiles by name (a ``dict``) whose changes bump :func:`profiles_version`."""

    def __setitem__(self, key: str, value: ModelProfile) -> None:
        super().__setitem__(key, value)
        _bump()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        _bump()

    def _mutating(name: str):  # type: ignore[misc]
        def method(self: ProfileDict, *args: Any, **kwargs: Any) -> Any:
            out = getattr(dict, name)(self, *args, **kwargs)
            _bump()
            return out

        method.__name__ = name
        return method

    pop = _mutating("pop")
    popitem = _mutating("popitem")
    clear = _mutating("clear")
    update = _mutating("update")
    setdefault = _mutating("setdefault")
    __ior__ = _mutating("__ior__")
    del _mutating

    def __reduce__(self) -> tuple:
        return (ProfileDict, (dict(self),))


def save_profiles(path: str | Path, profiles: Iterable[ModelProfile]) -> Path:
    """Write profiles to a JSON file atomically."""
    return atomic_write_json(path, {"profiles": [p.to_dict() for p in profiles]}, indent=1)


def load_profiles(path: str | Path) -> list[ModelProfile]:
    f = Path(path)
    try:
        data = json.loads(f.read_text())
    except FileNotFoundError as exc:
        raise SchemaError(f"{f}: profile file not found") from exc
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{f}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), list):
        raise SchemaError(f"{f}: expected a JSON object with a 'profiles' list")
    return [ModelProfile.from_dict(p) for p in data["profiles"]]
