"""``/snapshots``: create, list, show, update and delete snapshots, and their metadata."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.faults import Fault
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json
from stackvol.http.volume.common import (
    at_least,
    context,
    filter_keys,
    is_true,
    next_links,
    pagination,
    parse_bool,
    parse_metadata,
    reject_filters,
)
from stackvol.http.volume.metadata import metadata_routes
from stackvol.http.volume.schemas import snapshots as schemas
from stackvol.http.volume.views import snapshots as views
from stackvol.services.listing import Filter, ListQuery, parse_sort
from stackvol.services.metadata import MetadataChange

USER_FILTERS = {"name", "status", "volume_id", "metadata", "availability_zone"}
_COLUMNS = {"name": "display_name", "status": "status", "volume_id": "volume_id",
            "project_id": "project_id", "id": "id"}
SORT_KEYS = {"id": "id", "created_at": "created_at", "updated_at": "updated_at",
             "status": "status", "size": "size", "volume_id": "volume_id",
             "project_id": "project_id", "name": "display_name", "display_name": "display_name"}


def _query(request: Request) -> tuple[ListQuery, int]:
    ctx = context(request)
    marker, limit, offset = pagination(request)
    given = reject_filters(request, filter_keys(request), USER_FILTERS)
    filters: list[Filter] = []
    metadata: dict[str, str] = {}
    for key, raw in given.items():
        like = key.endswith("~") and at_least(request, "3.34")
        name = key[:-1] if like else key
        if name in _COLUMNS and name != "project_id":
            filters.append(Filter(_COLUMNS[name], raw, "like" if like else "eq"))
        elif name == "metadata" and at_least(request, "3.22"):
            metadata = parse_metadata(raw)
    sort_keys = SORT_KEYS if at_least(request, "3.30") else {
        k: val for k, val in SORT_KEYS.items() if k not in ("name", "display_name")}
    everyone = is_true(request, "all_tenants") and ctx.is_admin
    project = None if everyone else ctx.project_id
    if everyone and "project_id" in request.query_params:
        project = request.query_params["project_id"]
    return ListQuery(project_id=project, limit=limit, marker=marker, offset=offset,
                     sort=parse_sort(request.query_params, sort_keys), filters=filters,
                     metadata=metadata,
                     with_count=at_least(request, "3.45") and is_true(request, "with_count")
                     ), limit


async def _list(request: Request, detailed: bool) -> Response:
    query, limit = _query(request)
    found, count = await services(request).snapshots.query(context(request), query)
    body: dict[str, Any] = {"snapshots": [views.snapshot(request, s, extended=detailed)
                                          for s in found]}
    link = next_links(request, found, "snapshots/detail" if detailed else "snapshots", limit)
    if link:
        body["snapshots_links"] = link
    if count is not None:
        body["count"] = count
    return json_response(body)


async def index(request: Request) -> Response:
    return await _list(request, detailed=False)


async def detail(request: Request) -> Response:
    return await _list(request, detailed=True)


async def show(request: Request) -> Response:
    snap = await services(request).snapshots.get(context(request),
                                                 request.path_params["snapshot_id"])
    return json_response({"snapshot": views.snapshot(request, snap)})


def _names(data: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for column, names in (("display_name", ("name", "display_name")),
                          ("display_description", ("description", "display_description"))):
        for name in names:
            if name in data:
                out[column] = data[name]
    return out


async def create(request: Request) -> Response:
    body = await read_json(request)
    schemas.create.validate(body)
    data = body["snapshot"]
    force = parse_bool(data.get("force", False), "force")
    if at_least(request, "3.66"):
        if "force" in data and not force:
            raise Fault(400, "Invalid input received: The 'force' flag is deprecated from "
                             "microversion 3.66 and may only be true (or absent).")
        force = True  # 3.66: snapshots of in-use volumes need no flag
    names = _names(data)
    ctx = context(request)
    snaps = services(request).snapshots
    snap = await snaps.create(ctx, data["volume_id"], force=force,
                              display_name=names.get("display_name"),
                              display_description=names.get("display_description"))
    if data.get("metadata"):
        snap = await snaps.update(ctx, snap.id, {}, MetadataChange(set=data["metadata"]))
    return json_response({"snapshot": views.snapshot(request, snap, extended=False)}, 202)


async def update(request: Request) -> Response:
    body = await read_json(request)
    schemas.update.validate(body)
    snap = await services(request).snapshots.update(
        context(request), request.path_params["snapshot_id"], _names(body["snapshot"]))
    return json_response({"snapshot": views.snapshot(request, snap, extended=False)})


async def delete(request: Request) -> Response:
    await services(request).snapshots.delete(context(request),
                                             request.path_params["snapshot_id"])
    return empty_response(202)


# --- metadata -------------------------------------------------------------------------------


async def _metadata(request: Request, change: MetadataChange | None) -> dict[str, str]:
    snapshot_id = request.path_params["snapshot_id"]
    snaps = services(request).snapshots
    if change is None:
        found = await snaps.get(context(request), snapshot_id)
    else:
        found = await snaps.update(context(request), snapshot_id, {}, change)
    return found.metadata or {}


routes = [
    *metadata_routes("/snapshots/{snapshot_id}", _metadata),
    Route("/snapshots", index, methods=["GET"]),
    Route("/snapshots", create, methods=["POST"]),
    Route("/snapshots/detail", detail, methods=["GET"]),
    Route("/snapshots/{snapshot_id}", show, methods=["GET"]),
    Route("/snapshots/{snapshot_id}", update, methods=["PUT"]),
    Route("/snapshots/{snapshot_id}", delete, methods=["DELETE"]),
]
