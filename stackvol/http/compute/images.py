"""``/images``: Compute's proxy to the Image service (list, detail, show, delete), served up to
microversion 2.35 as in Nova, which removed the proxy APIs at 2.36."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import context, root_url
from stackvol.http.compute.common import list_limit, versioned
from stackvol.http.compute.views import images as views
from stackvol.http.faults import Fault
from stackvol.http.paging import list_body
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.services.common.errors import NotFound
from stackvol.services.images.api import ImageQuery

LAST_VERSION = "2.35"
# Nova's status names back to the Image service's (a filter may use either spelling).
STATUS_FILTER = {"ACTIVE": ["active"], "SAVING": ["queued", "saving"],
                 "DELETED": ["deleted", "pending_delete"], "ERROR": ["killed", "deactivated"]}


def _query(request: Request) -> ImageQuery:
    params = request.query_params
    filters: dict[str, object] = {}
    if params.get("name"):
        filters["name"] = params["name"]
    status = params.get("status")
    if status:
        filters["status"] = STATUS_FILTER.get(status.upper(), [status.lower()])
    return ImageQuery(limit=list_limit(request), marker=params.get("marker"), filters=filters)


async def _list(request: Request, detailed: bool) -> Response:
    query = _query(request)
    found = await services(request).images.list(context(request), query)
    render = views.detail if detailed else views.summary
    return json_response(list_body(request, root_url(request), "images",
                                   [render(request, image) for image in found], found,
                                   query.limit, detailed))


@versioned(maximum=LAST_VERSION)
async def index(request: Request) -> Response:
    return await _list(request, detailed=False)


@versioned(maximum=LAST_VERSION)
async def detail(request: Request) -> Response:
    return await _list(request, detailed=True)


@versioned(maximum=LAST_VERSION)
async def show(request: Request) -> Response:
    try:
        image = await services(request).images.get(context(request),
                                                   request.path_params["image_id"])
    except NotFound:
        raise Fault(404, "Image not found.") from None
    return json_response({"image": views.detail(request, image)})


@versioned(maximum=LAST_VERSION)
async def delete(request: Request) -> Response:
    try:
        await services(request).images.delete(context(request), request.path_params["image_id"])
    except NotFound:
        raise Fault(404, "Image not found.") from None
    return empty_response(204)


routes = [
    Route("/images", index, methods=["GET"]),
    Route("/images/detail", detail, methods=["GET"]),
    Route("/images/{image_id}", show, methods=["GET"]),
    Route("/images/{image_id}", delete, methods=["DELETE"]),
]
