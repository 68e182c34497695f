"""``/os-volumes``: the Volumes extension's own resource (microversions 2.1 to 2.35)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import NOVA_BOOL, context, query_bool
from stackvol.http.compute.common import page, versioned
from stackvol.http.compute.schemas import volumes as schemas
from stackvol.http.compute.views import volumes as views
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json
from stackvol.services.volumes.api import VolumeSpec

# Nova stopped proxying volumes at 2.36 (MAX_PROXY_API_SUPPORT_VERSION).
PROXY_MAX = "2.35"


@versioned(maximum=PROXY_MAX)
async def index(request: Request) -> Response:
    """The list and ``/detail`` alike: Nova's proxy shows the full volume in both."""
    found = await services(request).volumes.list(
        context(request), page(request),
        all_projects=query_bool(request, "all_tenants", NOVA_BOOL, False))
    return json_response({"volumes": [views.volume(v) for v in found]})


@versioned(maximum=PROXY_MAX)
async def show(request: Request) -> Response:
    vol = await services(request).volumes.get(context(request), request.path_params["volume_id"])
    return json_response({"volume": views.volume(vol)})


@versioned(maximum=PROXY_MAX)
async def create(request: Request) -> Response:
    body = await read_json(request)
    schemas.create.validate(body)
    data = body["volume"]
    spec = VolumeSpec(
        size=int(data["size"]),
        display_name=data.get("display_name"),
        display_description=data.get("display_description"),
        volume_type=data.get("volume_type"),
        metadata=data.get("metadata"),
        availability_zone=data.get("availability_zone"),
        snapshot_id=data.get("snapshot_id"),
    )
    vol = await services(request).volumes.create(context(request), spec)
    location = f"{request.url.replace(query='')}".rstrip("/") + f"/{vol.id}"
    return json_response({"volume": views.volume(vol)}, headers={"Location": location})


@versioned(maximum=PROXY_MAX)
async def delete(request: Request) -> Response:
    await services(request).volumes.delete(context(request), request.path_params["volume_id"])
    return empty_response(202)


routes = [
    Route("/os-volumes", index, methods=["GET"]),
    Route("/os-volumes", create, methods=["POST"]),
    Route("/os-volumes/detail", index, methods=["GET"]),
    Route("/os-volumes/{volume_id}", show, methods=["GET"]),
    Route("/os-volumes/{volume_id}", delete, methods=["DELETE"]),
]
