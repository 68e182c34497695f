"""The Image API face (``/image``, Glance v2 compatible): the version document, authentication,
the ``/v2`` routes, and errors in Glance's shape."""

from __future__ import annotations

from http import HTTPStatus

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from stackvol.http.auth import Authenticator
from stackvol.http.face import Face, base_url, path_segments
from stackvol.http.faults import Fault
from stackvol.http.image import images
from stackvol.http.image.versions import versions_document
from stackvol.http.responses import json_response

VERSION_PREFIX = "v2"


def glance_fault_response(fault: Fault) -> Response:
    """Glance's errors come from webob: ``{"code": "404 Not Found", "title", "message"}``."""
    phrase = HTTPStatus(fault.code).phrase
    return json_response({"code": f"{fault.code} {phrase}", "title": phrase,
                          "message": fault.message}, fault.code, fault.headers)


class ImageFace(Face):
    """ASGI app for everything below ``/image``."""

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__(authenticator, images.routes, glance_fault_response)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = path_segments(scope)
        if not parts or parts == ["versions"] or parts == [VERSION_PREFIX]:
            # Glance answers its root with 300 Multiple Choices, /versions with 200.
            status = 300 if not parts else 200
            await json_response(versions_document(base_url(scope)), status)(scope, receive, send)
            return
        if parts[0] != VERSION_PREFIX:
            raise Fault(404)
        state = scope.setdefault("state", {})
        state["context"] = await self.authenticator.context(Headers(scope=scope),
                                                            state.get("request_id"))
        root = f"{scope.get('root_path', '')}/{VERSION_PREFIX}"
        await self._to_routes(scope, receive, send, root)
