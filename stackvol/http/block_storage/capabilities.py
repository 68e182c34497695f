"""``/capabilities/{host}`` (admins): what a volume backend reports and offers to volume types
(Cinder's get-capabilities)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import context
from stackvol.http.responses import json_response
from stackvol.http.state import services

NAMESPACE = "OS::Storage::Capabilities::"


async def show(request: Request) -> Response:
    host, found = await services(request).cinder_services.capabilities(
        context(request), request.path_params["host"])
    return json_response({"namespace": NAMESPACE + host, **found})


routes = [Route("/capabilities/{host}", show, methods=["GET"])]
