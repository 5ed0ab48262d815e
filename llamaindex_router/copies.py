"""Faithful pickles and deep copies of ``ZeroRouterLLM`` (a mixin): LlamaIndex's default rebuilds a
component from its public fields only, which loses the router and the spec it is built from."""

from __future__ import annotations

from typing import Any

__all__ = ["CopiesLLM"]


class CopiesLLM:
    """Copies keep the fields, the router (same pool, endpoints and encoder) or its spec."""

    if False:  # attributes of the LLM this is mixed into
        _router: Any
        _router_spec: dict[str, Any]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle / deep copy: the fields, the router (same pool, endpoints and encoder) or the spec
        it is built from (LlamaIndex's default rebuilds from public fields only)."""
        fields = {k: v for k, v in self.__dict__.items() if k != "callback_manager"}
        return {"fields": fields, "router": self._router, "spec": dict(self._router_spec)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state["router"] is not None:
            self.__init__(state["router"], **state["fields"])  # type: ignore[misc]
        else:
            self.__init__(**state["spec"], **state["fields"])  # type: ignore[misc]

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        import copy

        new = type(self).__new__(type(self))
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new
