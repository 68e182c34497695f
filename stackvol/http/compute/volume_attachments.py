"""``/servers/{server_id}/os-volume_attachments``: attach, list, show, update and detach."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import NOVA_BOOL, Endpoint, context, parse_bool, version
from stackvol.http.compute.common import page
from stackvol.http.compute.schemas import volume_attachments as schemas
from stackvol.http.compute.views import volume_attachments as views
from stackvol.http.faults import Fault
from stackvol.http.microversion import v
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json
from stackvol.services.attachments.nova_api import AttachRequest

V2_20, V2_49, V2_75, V2_79, V2_85, V2_101 = (
    v("2.20"), v("2.49"), v("2.75"), v("2.79"), v("2.85"), v("2.101"))
_LIST_QUERY = {"limit", "offset"}


def attachment_ids(request: Request) -> tuple[str, str]:
    """The server and (on one attachment's URL) the volume the path names."""
    return request.path_params["server_id"], request.path_params.get("volume_id", "")


def attachment_routes(index: Endpoint, create: Endpoint, show: Endpoint, update: Endpoint,
                      delete: Endpoint) -> list[Route]:
    """The resource's URLs, the same on the v2.1 and the legacy faces."""
    base = "/servers/{server_id}/os-volume_attachments"
    return [
        Route(base, index, methods=["GET"]),
        Route(base, create, methods=["POST"]),
        Route(base + "/{volume_id}", show, methods=["GET"]),
        Route(base + "/{volume_id}", update, methods=["PUT"]),
        Route(base + "/{volume_id}", delete, methods=["DELETE"]),
    ]


async def index(request: Request) -> Response:
    if version(request) >= V2_75:
        unknown = set(request.query_params) - _LIST_QUERY
        if unknown:
            raise Fault(400, f"Invalid input for query parameters {sorted(unknown)[0]}. "
                             f"Additional properties are not allowed ({', '.join(sorted(unknown))}"
                             f" {'was' if len(unknown) == 1 else 'were'} unexpected)")
    server_id, _ = attachment_ids(request)
    found = await services(request).attachments.list(context(request), server_id, page(request))
    return json_response({"volumeAttachments": [views.attachment(a, version(request))
                                                for a in found]})


async def show(request: Request) -> Response:
    server_id, volume_id = attachment_ids(request)
    found = await services(request).attachments.get(context(request), server_id, volume_id)
    return json_response({"volumeAttachment": views.attachment(found, version(request))})


def _create_schema(request: Request) -> Any:
    current = version(request)
    if current >= V2_79:
        return schemas.create_v279
    return schemas.create_v249 if current >= V2_49 else schemas.create_v21


async def create(request: Request) -> Response:
    body = await read_json(request)
    _create_schema(request).validate(body)
    data = body["volumeAttachment"]
    server_id, _ = attachment_ids(request)
    attach = AttachRequest(
        server_id=server_id,
        volume_id=data["volumeId"],
        device=data.get("device"),
        tag=data.get("tag"),
        delete_on_termination=parse_bool(data.get("delete_on_termination", False), NOVA_BOOL),
        allow_shelved=version(request) >= V2_20,
    )
    attachment = await services(request).attachments.attach(context(request), attach)
    if version(request) >= V2_101:
        return empty_response(202)
    return json_response({"volumeAttachment": views.attachment(
        attachment, version(request), created=True)})


_IMMUTABLE = (("id", "volume_id"), ("serverId", "server_id"), ("device", "device"),
              ("tag", "tag"))


async def update(request: Request) -> Response:
    body = await read_json(request)
    current = version(request)
    (schemas.update_v285 if current >= V2_85 else schemas.update_v21).validate(body)
    data = body["volumeAttachment"]
    server_id, volume_id = attachment_ids(request)
    service = services(request).attachments
    ctx = context(request)
    delete_flag = None
    if current >= V2_85:
        existing = await service.get(ctx, server_id, volume_id)
        for field, attr in _IMMUTABLE:
            if field in data and data[field] != getattr(existing, attr):
                raise Fault(400, f"The {field} property is not mutable")
        if "delete_on_termination" in data:
            delete_flag = parse_bool(data["delete_on_termination"], NOVA_BOOL)
    await service.update(ctx, server_id, volume_id, data["volumeId"], delete_flag)
    return empty_response(202)


async def delete(request: Request) -> Response:
    server_id, volume_id = attachment_ids(request)
    await services(request).attachments.detach(context(request), server_id, volume_id,
                                               allow_shelved=version(request) >= V2_20)
    return empty_response(202)


routes = attachment_routes(index, create, show, update, delete)
