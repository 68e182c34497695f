"""What every API face shares: one ASGI app below a mount point, its failures rendered in the
face's fault shape, the face's public base URL, and handing a request on to its routes."""

from __future__ import annotations

from collections.abc import Callable, Collection

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

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
                   mismatch: Fault) -> str | None:
    """The project id a path starts with (``/{project_id}/servers``), or ``None`` when it
    starts with one of the face's ``collections`` (both forms are accepted).

    Another project's id before a known collection is the caller's mistake (``mismatch``);
    any other first segment is not ours at all: 404, as Nova's and Cinder's routers answer.
    """
    if segments[0] in collections:
        return None
    if segments[0] == project_id:
        return project_id
    if len(segments) > 1 and segments[1] in collections:
        raise mismatch
    raise Fault(404)


class Face:
    """Base of an API face: ``_dispatch`` (a subclass's) sees each request inside the face's
    ``FaultMiddleware``; ``_to_routes`` hands it to the face's router."""

    def __init__(self, authenticator: Authenticator, routes: list[Route],
                 render: Callable[[Fault], Response],
                 codes: dict[type[ServiceError], int] = COMPUTE_CODES) -> None:
        self.authenticator = authenticator
        self.router = Router(routes=routes, default=not_found, redirect_slashes=False)
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
