"""The outermost ASGI application: the lifespan protocol, shared state, then the faces.

Starlette's application class would add an error middleware, an exception middleware and a
router in front of our own dispatcher on every request; the faces already map every failure to
a fault, so this keeps only what is needed: ``scope["app"].state`` for the endpoints, and
start-up/shut-down hooks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

Lifespan = Callable[[], AbstractAsyncContextManager[None]]


class Application:
    def __init__(self, dispatch: ASGIApp, lifespan: Lifespan) -> None:
        self.dispatch = dispatch
        self.lifespan = lifespan
        self.state = State()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        scope["app"] = self
        await self.dispatch(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        context = self.lifespan()
        try:
            await context.__aenter__()
        except BaseException as exc:
            log.exception("start-up failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            await context.__aexit__(None, None, None)
        except BaseException as exc:
            log.exception("shut-down failed")
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})
