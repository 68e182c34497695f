"""``/servers/{server_id}/os-volume_attachments`` on the legacy paths: attach, list, show,
swap (Havana's ``os-volume-attachment-update``) and detach, with XML bodies."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from stackvol.http.common import context
from stackvol.http.compute.common import page
from stackvol.http.compute.volume_attachments import attachment_ids, attachment_routes
from stackvol.http.compute_legacy.common import read_body
from stackvol.http.compute_legacy.rendering import Negotiated
from stackvol.http.compute_legacy.schemas import volume_attachments as schemas
from stackvol.http.compute_legacy.views import volume_attachments as views
from stackvol.http.responses import empty_response
from stackvol.http.state import services
from stackvol.services.attachments.nova_api import AttachRequest


async def index(request: Request) -> Response:
    server_id, _ = attachment_ids(request)
    found = await services(request).attachments.list(context(request), server_id, page(request))
    return Negotiated({"volumeAttachments": [views.attachment(a) for a in found]},
                      views.attachments_xml)


async def show(request: Request) -> Response:
    server_id, volume_id = attachment_ids(request)
    found = await services(request).attachments.get(context(request), server_id, volume_id)
    return Negotiated({"volumeAttachment": views.attachment(found)}, views.attachment_xml)


async def create(request: Request) -> Response:
    body = schemas.create.validate(await read_body(request))
    data = body["volumeAttachment"]
    server_id, _ = attachment_ids(request)
    attach = AttachRequest(server_id=server_id, volume_id=data["volumeId"],
                           device=data.get("device"))
    found = await services(request).attachments.attach(context(request), attach)
    return Negotiated({"volumeAttachment": views.attachment(found, created=True)},
                      views.attachment_xml)


async def update(request: Request) -> Response:
    body = schemas.update.validate(await read_body(request))
    server_id, volume_id = attachment_ids(request)
    await services(request).attachments.update(
        context(request), server_id, volume_id, body["volumeAttachment"]["volumeId"], None)
    return empty_response(202)


async def delete(request: Request) -> Response:
    server_id, volume_id = attachment_ids(request)
    await services(request).attachments.detach(context(request), server_id, volume_id)
    return empty_response(202)


routes = attachment_routes(index, create, show, update, delete)
