"""The one error tree of zerorouter.

::

    ZeroRouterError                      base of everything raised on purpose by this package
    ├── SchemaError (ValueError)         a routing table / artifact / input file is malformed
    ├── NotFittedError (ValueError, AttributeError)   predict before fit
    ├── UnknownModelError (KeyError)     a model name that is not in the pool
    ├── NoAdmissibleModelError           constraints removed every candidate
    ├── InfeasibleError                  an optimizer target / budget that cannot be met
    ├── AllModelsFailedError             dispatch tried every candidate and each one failed
    └── OnboardingError                  a live onboarding run could not grade the model

Every message names the bad value and what was expected, so the caller knows what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AllModelsFailedError",
    "InfeasibleError",
    "NoAdmissibleModelError",
    "NotFittedError",
    "OnboardingError",
    "SchemaError",
    "UnknownModelError",
    "ZeroRouterError",
]


class ZeroRouterError(Exception):
    """Base class of every error this package raises on purpose."""


class SchemaError(ZeroRouterError, ValueError):
    """A routing table, artifact or input file does not follow the expected schema."""


class NotFittedError(ZeroRouterError, ValueError, AttributeError):
    """An estimator was used before ``fit`` (mirrors ``sklearn.exceptions.NotFittedError``)."""


class UnknownModelError(ZeroRouterError, KeyError):
    """A model name is not in the router's pool."""

    def __init__(self, model: str, known: Sequence[str], hint: str | None = None):
        from zerorouter_integrations.names import closest_matches

        self.model = model
        self.known = list(known)
        self.hint = hint
        #: The known names ``model`` most resembles, best first (difflib).
        self.suggestions = closest_matches(str(model), self.known)
        if self.suggestions:
            shown = f"closest: {', '.join(self.suggestions)} (of {len(self.known)} known)"
        elif len(self.known) <= 10:
            shown = f"known: {', '.join(sorted(self.known)) or 'none'}"
        else:
            shown = f"no known name resembles it ({len(self.known)} known)"
        super().__init__(f"unknown model {model!r}; {shown}" + (f"; {hint}" if hint else ""))

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:  # picklable although __init__ takes other arguments than args
        return (self.__class__, (self.model, self.known, self.hint), self.__dict__)


class NoAdmissibleModelError(ZeroRouterError):
    """Every candidate model was removed by a constraint; ``removed`` maps model → reason."""

    def __init__(self, message: str, removed: dict[str, str] | None = None):
        self.removed = dict(removed or {})
        detail = "; ".join(f"{m}: {r}" for m, r in self.removed.items())
        super().__init__(f"{message}" + (f" (removed: {detail})" if detail else ""))


class InfeasibleError(ZeroRouterError):
    """An optimizer target or budget cannot be met; ``best_value`` is the best achievable value."""

    def __init__(self, message: str, best_value: float | None = None, status: Any = None):
        self.best_value = best_value
        self.status = status
        super().__init__(message)


class AllModelsFailedError(ZeroRouterError):
    """Dispatch tried every candidate and each failed; ``attempts`` lists each try and its error."""

    def __init__(self, attempts: Sequence[Any]):
        self.attempts = list(attempts)
        lines = [
            f"  {getattr(a, 'model', '?')}: {getattr(a, 'error_type', '')}: {getattr(a, 'message', a)}"
            for a in self.attempts
        ]
        super().__init__(f"all {len(self.attempts)} attempt(s) failed; tried in order:\n" + "\n".join(lines))


class OnboardingError(ZeroRouterError):
    """A live onboarding run could not grade the model (e.g. its first calls all failed alike)."""
