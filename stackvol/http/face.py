"""What every API face shares: one ASGI app below a mount point, its failures rendered in the
face's fault shape, the face's public base URL, and handing a request on to its routes."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Collection

from starlette._utils import get_route_path, is_async_callable
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from stackvol.http.auth import Authenticator
from stackvol.http.faults import COMPUTE_CODES, Fault
from stackvol.http.middleware import FaultMiddleware
from stackvol.services.common.errors import ServiceError


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    raise Fault(404)


def base_url(scope: Scope, mount: str | None = None) -> str:
    """The URL a client reached the face at (its ``Host``), up to ``mount`` (default: the
    face's own mount point): where version documents point."""
    host = Headers(scope=scope).get("host") or f"{scope['server'][0]}:{scope['server'][1]}"
    if mount is None:
        mount = scope.get("root_path", "")
    return f"{scope.get('scheme', 'http')}://{host}{mount}"


def path_segments(scope: Scope) -> list[str]:
    """The non-empty segments of the path below the face's mount point."""
    rest = scope["path"][len(scope.get("root_path", "")):]
    return [part for part in rest.strip("/").split("/") if part]


def project_prefix(segments: list[str], collections: Collection[str], project_id: str,
                   mismatch: Callable[[], Fault]) -> str | None:
    """The project id a path starts with (``/{project_id}/servers``), or ``None`` when it
    starts with one of the face's ``collections`` (both forms are accepted).

    Another project's id before a known collection is the caller's mistake (the fault
    ``mismatch()`` makes, only then: every request came here with one built for nothing);
    any other first segment is not ours at all: 404, as Nova's and Cinder's routers answer.
    """
    if segments[0] in collections:
        return None
    if segments[0] == project_id:
        return project_id
    if len(segments) > 1 and segments[1] in collections:
        raise mismatch()
    raise Fault(404)


Shape = tuple[str, int]  # a path's first segment and how many segments it has


def _shape(path: str) -> Shape:
    return path[1:].partition("/")[0], path.count("/")


def _fixed_shape(route: Route) -> Shape | None:
    """The shape of every path ``route`` matches; None if its first segment is a parameter or
    a parameter may hold a ``/`` (the ``path`` convertor). Other parameters never hold one."""
    shape = _shape(route.path)
    if "{" in shape[0] or ":path}" in route.path:
        return None
    return shape


def _direct(route: Route) -> Route:
    """``route`` calling its endpoint straight, if it is an async function Starlette wrapped.

    Starlette's wrapper (``request_response``) runs the endpoint inside a look-up of the
    application's exception handlers, re-raising what none handles. The faces install none
    (their ``FaultMiddleware`` renders every failure), so the wrapper only added two closures
    and a lookup to every request. The route itself (a copy) matches and refuses methods as
    before.
    """
    endpoint = route.endpoint
    if not (inspect.isfunction(endpoint) and is_async_callable(endpoint)
            and route.app.__qualname__ == "request_response.<locals>.app"):
        return route  # a class, a sync function or a route with middleware: left as it is

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    direct = copy.copy(route)
    direct.app = app
    return direct


class SegmentRouter:
    """Starlette's ``Router`` for a face's routes, one per path shape (first segment and
    number of segments).

    A request is matched only against the routes that can match it, in their order: those
    of its own shape, and those of no fixed shape. A route of another shape never matches,
    so which route answers (the first full match, else the first partial one for a 405, else
    ``default``) does not change; Starlette's one router tried every route before the one
    asked for (a regular expression each: ten before a Cinder volume show).
    """

    def __init__(self, routes: list[Route], default: ASGIApp) -> None:
        routes = [_direct(route) for route in routes]
        shapes = {_fixed_shape(route) for route in routes}
        self.everything = self._router(routes, default)
        self.by_shape = {shape: self._router([r for r in routes
                                              if _fixed_shape(r) in (shape, None)], default)
                         for shape in shapes if shape is not None}
        self.other = self._router([r for r in routes if _fixed_shape(r) is None], default)

    @staticmethod
    def _router(routes: list[Route], default: ASGIApp) -> Router:
        return Router(routes=routes, default=default, redirect_slashes=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = get_route_path(scope)  # what each route matches against
        if not path.startswith("/"):
            await self.everything(scope, receive, send)
            return
        await self.by_shape.get(_shape(path), self.other)(scope, receive, send)


class Face:
    """Base of an API face: ``_dispatch`` (a subclass's) sees each request inside the face's
    ``FaultMiddleware``; ``_to_routes`` hands it to the face's router."""

    def __init__(self, authenticator: Authenticator, routes: list[Route],
                 render: Callable[[Fault], Response],
                 codes: dict[type[ServiceError], int] = COMPUTE_CODES) -> None:
        self.authenticator = authenticator
        self.router = SegmentRouter(routes, not_found)
        self.app = FaultMiddleware(self._dispatch, render, codes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError

    async def _to_routes(self, scope: Scope, receive: Receive, send: Send, root: str) -> None:
        """Route below ``root`` (the prefix the routes do not name). A trailing slash is
        not dropped: Nova's, Cinder's and Glance's routers read ``volumes/`` as a member with
        an empty id, which is no route (404), never the collection."""
        await self.router({**scope, "root_path": root}, receive, send)
