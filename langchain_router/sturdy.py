"""What makes ``ZeroRouterChat`` sturdy (a mixin): unreadable input is a ``CallerError``, and pickles and
deep copies keep the router (locks rebuilt)."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["SturdyChat"]


class SturdyChat:
    """Input conversion and copies of a LangChain chat model holding a ``_lock`` private attribute."""

    def _convert_input(self, model_input: Any) -> Any:
        """LangChain's input conversion; input it cannot read is a ``CallerError`` (a ``ValueError``)
        naming what was wrong, never a raw ``KeyError`` / ``TypeError`` from deep inside."""
        from zerorouter_integrations.errors import CallerError

        try:
            return super()._convert_input(model_input)  # type: ignore[misc]
        except CallerError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, NotImplementedError) as exc:
            raise CallerError(
                f"the input cannot be read as chat messages: {type(exc).__name__}: {exc}", "input"
            ) from exc

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle / deep copy: the fields and the router (rebuilt locks, same pool and endpoints)."""
        state: dict[Any, Any] = super().__getstate__()  # type: ignore[assignment]
        state["__pydantic_private__"] = {
            k: v for k, v in (state.get("__pydantic_private__") or {}).items() if k != "_lock"
        }
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)  # type: ignore[misc]
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        import copy

        new = type(self).__new__(type(self))
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new
