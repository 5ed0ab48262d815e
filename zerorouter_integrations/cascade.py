"""Cascade mode (answer cheap, check, escalate): see issue 9. Evaluation routers registered here."""
from __future__ import annotations

from typing import Any, Callable

EVAL_ROUTERS: dict[str, Callable[..., Any]] = {}
