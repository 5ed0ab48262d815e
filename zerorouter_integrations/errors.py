"""The one error tree of zerorouter.

::

    ZeroRouterError                      base of everything raised on purpose by this package
    ├── SchemaError (ValueError)         a routing table / artifact / input file is malformed
    ├── NotFittedError (ValueError, AttributeError)   predict before fit
    ├── UnknownModelError (KeyError)     a model name that is not in the pool
    ├── NoAdmissibleModelError           constraints removed every candidate
    ├── InfeasibleError                  an optimizer target / budget that cannot be met
    ├── CallerError (ValueError)         the request itself is malformed: raised before any model is
    │                                    called, never charged to a model's health (``field`` names it)
    ├── ProviderError                    one model's call failed; ``model``, ``status_code``, ``cause``
    │   ├── ConfigurationError           missing credentials, unknown provider: not retried, the
    │   │                                model is marked misconfigured, the next model is tried
    │   ├── RequestRejectedError         this request was refused (context length, content filter,
    │   │                                other 400s): the next model is tried, health is untouched
    │   └── TransientError               429, 5xx, timeout, connection: retried, then the next
    │                                    model; counts towards the model's circuit breaker
    ├── StreamInterruptedError           a stream broke after content was yielded (partial text kept)
    ├── StoreUnavailableError            the profile store cannot answer a read it alone can answer
    ├── AllModelsFailedError             dispatch tried every candidate and each one failed
    ├── OnboardingError                  a live onboarding run could not grade the model
    └── MissingExtraError (ImportError)  a feature needs an optional dependency the base install
                                         leaves out; the message names the ``pip install`` extra

Every message names the bad value and what was expected, so the caller knows what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AllModelsFailedError",
    "CallerError",
    "ConfigurationError",
    "InfeasibleError",
    "MissingExtraError",
    "NoAdmissibleModelError",
    "NotFittedError",
    "OnboardingError",
    "ProviderError",
    "RequestRejectedError",
    "SchemaError",
    "StoreUnavailableError",
    "StreamInterruptedError",
    "TransientError",
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


class MissingExtraError(ZeroRouterError, ImportError):
    """A feature needs an optional dependency that is not installed; ``extra`` is the extra of
    ``zerorouter-integrations`` that installs it (see :mod:`zerorouter_integrations.extras`)."""

    def __init__(self, message: str, *, extra: str, name: str | None = None):
        super().__init__(message, name=name)
        self.extra = extra

    def __reduce__(self) -> Any:  # picklable with its keywords (ImportError's default drops them)
        return (_missing_extra, (str(self), self.extra, self.name))


def _missing_extra(message: str, extra: str, name: str | None) -> MissingExtraError:
    return MissingExtraError(message, extra=extra, name=name)


class CallerError(ZeroRouterError, ValueError):
    """The request is malformed (messages, content, ``tool_calls``, parameters).

    Raised before any model is called; never counted against a model. ``field`` is the path of the
    bad value in the request, e.g. ``"messages[2].content"``.
    """

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


class ProviderError(ZeroRouterError):
    """One model's call failed. Subclasses say what the router does about it.

    Attributes: ``model`` (pool name or ``None``), ``status_code`` (HTTP status when known),
    ``error_type`` (short kind, e.g. ``"rate_limit"``), ``retry_after_s`` (the provider's
    ``Retry-After`` when given) and ``cause`` (the original exception).
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status_code: int | None = None,
        error_type: str = "error",
        retry_after_s: float | None = None,
        cause: BaseException | None = None,
    ):
        self.model = model
        self.status_code = status_code
        self.error_type = error_type
        self.retry_after_s = retry_after_s
        self.cause = cause
        super().__init__(message)


class ConfigurationError(ProviderError):
    """A model cannot be called as configured (missing credentials, unknown provider string).

    Not retried: the next model is tried, and the model is named in later decisions' ``removed``
    list with what to set.
    """


class RequestRejectedError(ProviderError):
    """The provider refused this particular request (context length, content filter, other 400s).

    The next model is tried; the model's health is not touched.
    """


class TransientError(ProviderError):
    """A failure that may pass (429, 5xx, timeout, connection): retried, then the next model;
    counted by the model's circuit breaker."""


class StreamInterruptedError(ZeroRouterError):
    """A stream failed after content had been yielded, so it could not fall back transparently.

    ``partial_text`` is what the caller already received, ``model`` the model that was streaming,
    ``cause`` the original error.
    """

    def __init__(self, partial_text: str, model: str, cause: BaseException | None):
        self.partial_text = partial_text
        self.model = model
        self.cause = cause
        super().__init__(
            f"the stream from {model!r} broke after {len(partial_text)} character(s) of content: "
            f"{type(cause).__name__ if cause is not None else 'error'}: {cause}"
        )


class StoreUnavailableError(ZeroRouterError):
    """The profile store is unreachable and the read cannot be answered from this process's view.

    Writes never raise this: they are queued and retried (see ``ProfileStore.health()``).
    """
