"""``/os-snapshots``: volume snapshots through the Compute API (microversions 2.1 to 2.35)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import NOVA_BOOL, context, parse_bool, query_bool
from stackvol.http.compute.common import page, versioned
from stackvol.http.compute.schemas import snapshots as schemas
from stackvol.http.compute.views import snapshots as views
from stackvol.http.compute.volumes import PROXY_MAX
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json


@versioned(maximum=PROXY_MAX)
async def index(request: Request) -> Response:
    """The list and ``/detail`` alike: Nova's proxy shows the full snapshot in both."""
    found = await services(request).snapshots.list(
        context(request), page(request),
        all_projects=query_bool(request, "all_tenants", NOVA_BOOL, False))
    return json_response({"snapshots": [views.snapshot(s) for s in found]})


@versioned(maximum=PROXY_MAX)
async def show(request: Request) -> Response:
    snap = await services(request).snapshots.get(context(request),
                                                 request.path_params["snapshot_id"])
    return json_response({"snapshot": views.snapshot(snap)})


@versioned(maximum=PROXY_MAX)
async def create(request: Request) -> Response:
    body = await read_json(request)
    schemas.create.validate(body)
    data = body["snapshot"]
    snap = await services(request).snapshots.create(
        context(request),
        data["volume_id"],
        force=parse_bool(data.get("force", False), NOVA_BOOL),
        display_name=data.get("display_name"),
        display_description=data.get("display_description"),
    )
    return json_response({"snapshot": views.snapshot(snap)})  # 200, as Nova answers


@versioned(maximum=PROXY_MAX)
async def delete(request: Request) -> Response:
    await services(request).snapshots.delete(context(request), request.path_params["snapshot_id"])
    return empty_response(202)


routes = [
    Route("/os-snapshots", index, methods=["GET"]),
    Route("/os-snapshots", create, methods=["POST"]),
    Route("/os-snapshots/detail", index, methods=["GET"]),
    Route("/os-snapshots/{snapshot_id}", show, methods=["GET"]),
    Route("/os-snapshots/{snapshot_id}", delete, methods=["DELETE"]),
]
