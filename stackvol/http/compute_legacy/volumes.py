"""``/os-volumes`` on the legacy paths: the same service and validation as v2.1, the Essex
``createdAt``, XML in and out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.compute.common import context, is_true, page, services
from stackvol.http.compute.schemas import volumes as schemas
from stackvol.http.compute_legacy import templates, views
from stackvol.http.compute_legacy import xml as xmlutil
from stackvol.http.compute_legacy.common import read_body, validate
from stackvol.http.compute_legacy.rendering import Negotiated
from stackvol.http.responses import empty_response
from stackvol.services.volumes.api import VolumeSpec

# Folsom-Juno ``CreateDeserializer``: only these snake_case attributes, plus <metadata>.
_CREATE_ATTRS = ("display_name", "display_description", "size", "volume_type",
                 "availability_zone")


def decode_create(root: ET.Element) -> dict[str, Any]:
    if xmlutil.local(root.tag) != "volume":
        return {}
    volume: dict[str, Any] = xmlutil.attributes(root, _CREATE_ATTRS)
    found = xmlutil.child(root, "metadata")
    if found is not None:
        volume["metadata"] = xmlutil.metadata(found)
    return {"volume": volume}


async def _list(request: Request) -> Response:
    found = await services(request).volumes.list(
        context(request), page(request),
        all_projects=is_true(request.query_params.get("all_tenants")))
    return Negotiated({"volumes": [views.volume(vol) for vol in found]}, templates.volumes)


async def show(request: Request) -> Response:
    vol = await services(request).volumes.get(context(request), request.path_params["volume_id"])
    return Negotiated({"volume": views.volume(vol)}, templates.volume)


async def create(request: Request) -> Response:
    body = validate(schemas.create, await read_body(request, decode_create))
    data = body["volume"]
    spec = VolumeSpec(
        size=int(data["size"]), display_name=data.get("display_name"),
        display_description=data.get("display_description"),
        volume_type=data.get("volume_type"), metadata=data.get("metadata"),
        availability_zone=data.get("availability_zone"), snapshot_id=data.get("snapshot_id"))
    vol = await services(request).volumes.create(context(request), spec)
    location = f"{request.url.replace(query='')}".rstrip("/") + f"/{vol.id}"
    return Negotiated({"volume": views.volume(vol)}, templates.volume,
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
