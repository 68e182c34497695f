"""stackvol's own operator API, under ``/admin`` (no OpenStack API uses that prefix):
``POST /admin/reset`` returns the cloud to its bootstrap state (services/reset), for developers
testing their tools. Admin role only; faults in the Compute shape."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stackvol.http.auth import Authenticator
from stackvol.http.face import Face
from stackvol.http.faults import compute_fault_response
from stackvol.http.responses import json_response
from stackvol.http.state import services

PATH = "/admin"


async def reset(request: Request) -> Response:
    removed = await services(request).reset.reset(request.state.context)
    return json_response({"reset": {"removed": removed}})


class AdminFace(Face):
    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__(authenticator, [Route("/reset", reset, methods=["POST"])],
                         compute_fault_response)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        state["context"] = await self.authenticator.context(Headers(scope=scope),
                                                            state.get("request_id"))
        await self._to_routes(scope, receive, send, scope.get("root_path", ""))
