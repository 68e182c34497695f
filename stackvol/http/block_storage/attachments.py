"""``/attachments`` (3.27+): reserve, connect, complete, list, show and delete attachments."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.common import at_least, pagination, versioned
from stackvol.http.block_storage.schemas import attachments as schemas
from stackvol.http.block_storage.views import attachments as views
from stackvol.http.common import CINDER_BOOL, context, query_bool
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json
from stackvol.services.attachments.cinder_api import AttachmentFilter


async def _list(request: Request, detailed: bool) -> Response:
    params = request.query_params
    flt = AttachmentFilter(volume_id=params.get("volume_id"),
                           status=params.get("status") or params.get("attach_status"),
                           instance_id=params.get("instance_id"),
                           all_projects=query_bool(request, "all_tenants", CINDER_BOOL, False))
    found = await services(request).volume_attach.list(context(request), flt)
    marker, limit, offset = pagination(request)
    if marker:
        ids = [a.id for a in found]
        found = found[ids.index(marker) + 1:] if marker in ids else []
    found = found[offset:offset + limit]
    render = views.detail if detailed else views.summary
    return json_response({"attachments": [render(a) for a in found]})


@versioned("3.27")
async def index(request: Request) -> Response:
    return await _list(request, detailed=False)


@versioned("3.27")
async def detail(request: Request) -> Response:
    return await _list(request, detailed=True)


@versioned("3.27")
async def show(request: Request) -> Response:
    found = await services(request).volume_attach.get(context(request),
                                                      request.path_params["attachment_id"])
    return json_response({"attachment": views.detail(found)})


@versioned("3.27")
async def create(request: Request) -> Response:
    body = await read_json(request)
    (schemas.create_v354 if at_least(request, "3.54") else schemas.create).validate(body)
    data = body["attachment"]
    found = await services(request).volume_attach.create(
        context(request), data["volume_uuid"], data.get("instance_uuid"),
        data.get("connector"), data.get("mode"))
    return json_response({"attachment": views.detail(found)})


@versioned("3.27")
async def update(request: Request) -> Response:
    body = await read_json(request)
    schemas.update.validate(body)
    found = await services(request).volume_attach.update(
        context(request), request.path_params["attachment_id"], body["attachment"]["connector"])
    return json_response({"attachment": views.detail(found)})


@versioned("3.44")
async def complete(request: Request) -> Response:
    schemas.complete.validate(await read_json(request))
    await services(request).volume_attach.complete(context(request),
                                                   request.path_params["attachment_id"])
    return empty_response(204)


@versioned("3.27")
async def delete(request: Request) -> Response:
    await services(request).volume_attach.delete(context(request),
                                                 request.path_params["attachment_id"])
    return json_response({"attachments": []})


routes = [
    Route("/attachments", index, methods=["GET"]),
    Route("/attachments", create, methods=["POST"]),
    Route("/attachments/detail", detail, methods=["GET"]),
    Route("/attachments/{attachment_id}", show, methods=["GET"]),
    Route("/attachments/{attachment_id}", update, methods=["PUT"]),
    Route("/attachments/{attachment_id}", delete, methods=["DELETE"]),
    Route("/attachments/{attachment_id}/action", complete, methods=["POST"]),
]
