"""Volume transfers: ``/os-volume-transfer`` (every microversion) and ``/volume-transfers``
(3.55+, where a transfer may leave the snapshots behind): create, list, show, accept, cancel."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.common import pagination, project_scope, versioned
from stackvol.http.block_storage.schemas import transfers as schemas
from stackvol.http.block_storage.views import transfers as views
from stackvol.http.common import CINDER_BOOL, Endpoint, context, parse_bool, root_url
from stackvol.http.paging import next_links
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json
from stackvol.services.common.listing import Filter, ListQuery, parse_sort
from stackvol.services.volumes.transfers import SORT_KEYS

LEGACY = "os-volume-transfer"
CURRENT = "volume-transfers"
_FILTERS = {"name": "display_name", "volume_id": "volume_id"}


def _list(collection: str, detailed: bool) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        marker, limit, offset = pagination(request)
        filters = [Filter(column, request.query_params[key])
                   for key, column in _FILTERS.items() if key in request.query_params]
        query = ListQuery(project_id=project_scope(request), limit=limit, marker=marker,
                          offset=offset, sort=parse_sort(request.query_params, SORT_KEYS),
                          filters=filters)
        found = await services(request).transfers.query(context(request), query)
        view = views.detail if detailed else views.summary
        items = [view(request, collection, transfer) for transfer in found]
        body = {"transfers": items}
        path = f"{collection}/detail" if detailed else collection
        if following := next_links(request, root_url(request), path, found, limit):
            body["transfers_links"] = following
        return json_response(body)

    return endpoint


def _create(collection: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = await read_json(request)
        (schemas.create_v355 if collection == CURRENT else schemas.create).validate(body)
        data = body["transfer"]
        name = data.get("name")
        transfer = await services(request).transfers.create(
            context(request), data["volume_id"], name.strip() if name is not None else None,
            no_snapshots=parse_bool(data.get("no_snapshots", False), CINDER_BOOL, "no_snapshots"))
        return json_response({"transfer": views.detail(request, collection, transfer)}, 202)

    return endpoint


def _show(collection: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        transfer = await services(request).transfers.get(context(request),
                                                         request.path_params["transfer_id"])
        return json_response({"transfer": views.detail(request, collection, transfer)})

    return endpoint


def _accept(collection: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = await read_json(request)
        schemas.accept.validate(body)
        transfer = await services(request).transfers.accept(
            context(request), request.path_params["transfer_id"], body["accept"]["auth_key"])
        return json_response({"transfer": views.summary(request, collection, transfer)}, 202)

    return endpoint


async def _delete(request: Request) -> Response:
    await services(request).transfers.delete(context(request),
                                             request.path_params["transfer_id"])
    return empty_response(202)


def _routes(collection: str, guard: Callable[[Endpoint], Endpoint]) -> list[Route]:
    base = f"/{collection}"
    item = f"{base}/{{transfer_id}}"
    return [
        Route(base, guard(_list(collection, detailed=False)), methods=["GET"]),
        Route(base, guard(_create(collection)), methods=["POST"]),
        Route(f"{base}/detail", guard(_list(collection, detailed=True)), methods=["GET"]),
        Route(item, guard(_show(collection)), methods=["GET"]),
        Route(item, guard(_delete), methods=["DELETE"]),
        Route(f"{item}/accept", guard(_accept(collection)), methods=["POST"]),
    ]


routes = [*_routes(LEGACY, lambda endpoint: endpoint), *_routes(CURRENT, versioned("3.55"))]
