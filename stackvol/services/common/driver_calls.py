"""How the services call a blocking driver method (storage or virt) from the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def driver_call(quick: bool, call: Callable[..., T], *args: Any) -> T:
    """A blocking driver call, in a worker thread; on the event loop when the driver says it
    is quick (a thread hand-off, waiting for the GIL while the loop serves requests, costs
    more than such a call: ~1.5 ms each under load)."""
    if quick:
        return call(*args)
    return await asyncio.to_thread(call, *args)
