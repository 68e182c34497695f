"""``/os-volumes`` on the legacy paths: the same service and validation as v2.1, the Essex
``createdAt``, XML in and out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import NOVA_BOOL, context, query_bool
from stackvol.http.compute.common import page
from stackvol.http.compute_legacy.common import read_body
from stackvol.http.compute_legacy.rendering import Negotiated
from stackvol.http.compute_legacy.schemas import volumes as schemas
from stackvol.http.compute_legacy.views import volumes as views
from stackvol.http.responses import empty_response
from stackvol.http.state import services
from stackvol.services.volumes.api import VolumeSpec


async def _list(request: Request) -> Response:
    found = await services(request).volumes.list(
        context(request), page(request),
        all_projects=query_bool(request, "all_tenants", NOVA_BOOL, False))
    return Negotiated({"volumes": [views.volume(vol) for vol in found]}, views.volumes_xml)


async def show(request: Request) -> Response:
    vol = await services(request).volumes.get(context(request), request.path_params["volume_id"])
    return Negotiated({"volume": views.volume(vol)}, views.volume_xml)


async def create(request: Request) -> Response:
    body = schemas.create.validate(await read_body(request, schemas.decode_create))
    data = body["volume"]
    spec = VolumeSpec(
        size=int(data["size"]), display_name=data.get("display_name"),
        display_description=data.get("display_description"),
        volume_type=data.get("volume_type"), metadata=data.get("metadata"),
        availability_zone=data.get("availability_zone"), snapshot_id=data.get("snapshot_id"))
    vol = await services(request).volumes.create(context(request), spec)
    location = f"{request.url.replace(query='')}".rstrip("/") + f"/{vol.id}"
    return Negotiated({"volume": views.volume(vol)}, views.volume_xml,
                      headers={"Location": location})


async def delete(request: Request) -> Response:
    await services(request).volumes.delete(context(request), request.path_params["volume_id"])
    return empty_response(202)


routes = [
    Route("/os-volumes", _list, methods=["GET"]),
    Route("/os-volumes", create, methods=["POST"]),
    Route("/os-volumes/detail", _list, methods=["GET"]),
    Route("/os-volumes/{volume_id}", show, methods=["GET"]),
    Route("/os-volumes/{volume_id}", delete, methods=["DELETE"]),
]
