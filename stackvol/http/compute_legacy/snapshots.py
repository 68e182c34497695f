"""``/os-snapshots`` on the legacy paths (XML bodies read by Nova's generic deserializer)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.compute.common import context, is_true, page, services
from stackvol.http.compute.schemas import snapshots as schemas
from stackvol.http.compute_legacy import templates, views
from stackvol.http.compute_legacy.common import read_body, validate
from stackvol.http.compute_legacy.rendering import Negotiated
from stackvol.http.responses import empty_response


async def _list(request: Request) -> Response:
    found = await services(request).snapshots.list(
        context(request), page(request),
        all_projects=is_true(request.query_params.get("all_tenants")))
    return Negotiated({"snapshots": [views.snapshot(s) for s in found]}, templates.snapshots)


async def show(request: Request) -> Response:
    snap = await services(request).snapshots.get(context(request),
                                                 request.path_params["snapshot_id"])
    return Negotiated({"snapshot": views.snapshot(snap)}, templates.snapshot)


async def create(request: Request) -> Response:
    body = validate(schemas.create, await read_body(request))
    data = body["snapshot"]
    snap = await services(request).snapshots.create(
        context(request), data["volume_id"], force=schemas.to_bool(data.get("force", False)),
        display_name=data.get("display_name"),
        display_description=data.get("display_description"))
    return Negotiated({"snapshot": views.snapshot(snap)}, templates.snapshot)  # 200, as Nova


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
