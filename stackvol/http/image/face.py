"""The Image API face (``/image``, Glance v2 compatible): the version document, authentication,
the ``/v2`` routes, and errors in Glance's shape."""

from __future__ import annotations

from http import HTTPStatus

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from stackvol.http.auth import Authenticator
from stackvol.http.faults import COMPUTE_CODES, Fault
from stackvol.http.image import images
from stackvol.http.image.versions import versions_document
from stackvol.http.middleware import FaultMiddleware
from stackvol.http.responses import json_response

VERSION_PREFIX = "v2"


def glance_fault_response(fault: Fault) -> Response:
    """Glance's errors come from webob: ``{"code": "404 Not Found", "title", "message"}``."""
    phrase = HTTPStatus(fault.code).phrase
    return json_response({"code": f"{fault.code} {phrase}", "title": phrase,
                          "message": fault.message}, fault.code, fault.headers)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    raise Fault(404, "The resource could not be found.")


class ImageFace:
    """ASGI app for everything below ``/image``."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self.router = Router(routes=images.routes, default=_not_found, redirect_slashes=False)
        self.app = FaultMiddleware(self._dispatch, glance_fault_response, COMPUTE_CODES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    @staticmethod
    def _face_base(scope: Scope) -> str:
        headers = Headers(scope=scope)
        host = headers.get("host") or f"{scope['server'][0]}:{scope['server'][1]}"
        return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        rest = scope["path"][len(scope.get("root_path", "")):]
        parts = [p for p in rest.strip("/").split("/") if p]
        if not parts or parts == ["versions"] or parts == [VERSION_PREFIX]:
            # Glance answers its root with 300 Multiple Choices, /versions with 200.
            status = 300 if not parts else 200
            body = versions_document(self._face_base(scope))
            await json_response(body, status)(scope, receive, send)
            return
        if parts[0] != VERSION_PREFIX:
            raise Fault(404, "The resource could not be found.")
        state = scope.setdefault("state", {})
        state["context"] = await self.authenticator.context(Headers(scope=scope),
                                                            state.get("request_id"))
        root = f"{scope.get('root_path', '')}/{VERSION_PREFIX}"
        path = scope["path"].rstrip("/")
        await self.router({**scope, "root_path": root, "path": path}, receive, send)
