"""The two asyncio calls the async twins make, importing asyncio on first use.

``import asyncio`` costs ~30 ms (it brings ``ssl`` and ``concurrent.futures``), a tenth of a first
routing decision, and deciding never needs it: only ``acomplete`` / ``astream`` / ``aroute`` and the
stores' async twins do, and by then a loop is running (so asyncio is imported already).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["sleep", "to_thread"]


async def to_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread(fn, *args, **kwargs)``."""
    import asyncio

    return await asyncio.to_thread(fn, *args, **kwargs)


async def sleep(seconds: float) -> None:
    """``asyncio.sleep(seconds)``."""
    import asyncio

    await asyncio.sleep(seconds)
