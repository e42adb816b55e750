"""Fetching the parts of a page concurrently, each failing on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from driftloop_console.adapters.upstream import UpstreamError
from driftloop_console.domain.values import Panel

__all__ = ["gather_panels", "panel"]

T = TypeVar("T")


async def panel(call: Awaitable[T]) -> Panel[T]:
    """The result of ``call`` as a panel; a failed upstream call as its message."""
    try:
        return Panel(value=await call)
    except UpstreamError as error:
        return Panel(error=str(error), denied=error.denied)


async def gather_panels(calls: Mapping[str, Awaitable[Any]]) -> dict[str, Panel[Any]]:
    """Run ``calls`` at once; each one's panel by name. One failing fails none of the others."""
    names = list(calls)
    results = await asyncio.gather(*(panel(calls[name]) for name in names))
    return dict(zip(names, results, strict=True))
