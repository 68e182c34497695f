"""``/os-snapshots`` on the legacy paths (XML bodies read by Nova's generic deserializer)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import NOVA_BOOL, context, parse_bool, query_bool
from stackvol.http.compute.common import page
from stackvol.http.compute_legacy.common import read_body
from stackvol.http.compute_legacy.rendering import Negotiated
from stackvol.http.compute_legacy.schemas import snapshots as schemas
from stackvol.http.compute_legacy.views import snapshots as views
from stackvol.http.responses import empty_response
from stackvol.http.state import services


async def _list(request: Request) -> Response:
    found = await services(request).snapshots.list(
        context(request), page(request),
        all_projects=query_bool(request, "all_tenants", NOVA_BOOL, False))
    return Negotiated({"snapshots": [views.snapshot(s) for s in found]}, views.snapshots_xml)


async def show(request: Request) -> Response:
    snap = await services(request).snapshots.get(context(request),
                                                 request.path_params["snapshot_id"])
    return Negotiated({"snapshot": views.snapshot(snap)}, views.snapshot_xml)


async def create(request: Request) -> Response:
    body = schemas.create.validate(await read_body(request))
    data = body["snapshot"]
    snap = await services(request).snapshots.create(
        context(request), data["volume_id"],
        force=parse_bool(data.get("force", False), NOVA_BOOL),
        display_name=data.get("display_name"),
        display_description=data.get("display_description"))
    return Negotiated({"snapshot": views.snapshot(snap)}, views.snapshot_xml)  # 200, as Nova


async def delete(request: Request) -> Response:
    await services(request).snapshots.delete(context(request), request.path_params["snapshot_id"])
    return empty_response(202)


routes = [
    Route("/os-snapshots", _list, methods=["GET"]),
    Route("/os-snapshots", create, methods=["POST"]),
    Route("/os-snapshots/detail", _list, methods=["GET"]),
    Route("/os-snapshots/{snapshot_id}", show, methods=["GET"]),
    Route("/os-snapshots/{snapshot_id}", delete, methods=["DELETE"]),
]
