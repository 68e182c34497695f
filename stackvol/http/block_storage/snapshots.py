"""``/snapshots``: create, list, show, update and delete snapshots, their metadata, and their
actions (reset status, update status, force delete)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.common import (
    at_least,
    display_fields,
    filter_keys,
    filter_name,
    pagination,
    parse_metadata,
    project_scope,
    reject_filters,
    wants_count,
)
from stackvol.http.block_storage.metadata import metadata_routes
from stackvol.http.block_storage.schemas import snapshots as schemas
from stackvol.http.block_storage.views import snapshots as views
from stackvol.http.common import CINDER_BOOL, context, parse_bool, root_url
from stackvol.http.faults import Fault
from stackvol.http.paging import list_body
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_action, read_json
from stackvol.services.common.listing import Filter, ListQuery, parse_sort
from stackvol.services.common.metadata import MetadataChange

USER_FILTERS = {"name", "status", "volume_id", "metadata", "availability_zone"}
_COLUMNS = {"name": "display_name", "status": "status", "volume_id": "volume_id",
            "project_id": "project_id", "id": "id"}
# Cinder sorts snapshots by any column of its snapshots table; these are ours by its names.
SORT_KEYS = {"id": "id", "created_at": "created_at", "updated_at": "updated_at",
             "status": "status", "size": "size", "volume_size": "size",
             "volume_id": "volume_id", "project_id": "project_id", "user_id": "user_id",
             "display_name": "display_name", "display_description": "display_description",
             "provider_location": "provider_location"}
# Cinder columns that hold one value for every stackvol snapshot (no soft delete, groups,
# encryption or provider ids): sorting by them leaves Cinder's own tie-break, created_at.
SORT_KEYS.update(dict.fromkeys(("deleted", "deleted_at", "cgsnapshot_id", "group_snapshot_id",
                                "encryption_key_id", "provider_id", "provider_auth",
                                "use_quota"), "created_at"))


def _filters(request: Request) -> tuple[list[Filter], dict[str, str]]:
    given = reject_filters(request, filter_keys(request), USER_FILTERS)
    filters: list[Filter] = []
    metadata: dict[str, str] = {}
    for key, raw in given.items():
        name, like = filter_name(request, key)
        if name in _COLUMNS and name != "project_id":
            filters.append(Filter(_COLUMNS[name], raw, "like" if like else "eq"))
        elif name == "metadata" and at_least(request, "3.22"):
            metadata = parse_metadata(raw)
    return filters, metadata


def _query(request: Request) -> tuple[ListQuery, int]:
    marker, limit, offset = pagination(request)
    filters, metadata = _filters(request)
    # ``name`` is a sort key from 3.30 (Cinder's column is display_name, valid at any version).
    sort_keys = {**SORT_KEYS, "name": "display_name"} if at_least(request, "3.30") else SORT_KEYS
    project = project_scope(request)
    return ListQuery(project_id=project, limit=limit, marker=marker, offset=offset,
                     sort=parse_sort(request.query_params, sort_keys), filters=filters,
                     metadata=metadata, with_count=wants_count(request)), limit


async def _list(request: Request, detailed: bool) -> Response:
    query, limit = _query(request)
    found, count = await services(request).snapshots.query(context(request), query)
    items = [views.snapshot(request, s, extended=detailed) for s in found]
    return json_response(list_body(request, root_url(request), "snapshots", items, found,
                                   limit, detailed, count))


async def index(request: Request) -> Response:
    return await _list(request, detailed=False)


async def detail(request: Request) -> Response:
    return await _list(request, detailed=True)


async def show(request: Request) -> Response:
    snap = await services(request).snapshots.get(context(request),
                                                 request.path_params["snapshot_id"])
    return json_response({"snapshot": views.snapshot(request, snap)})


async def create(request: Request) -> Response:
    body = await read_json(request)
    schemas.create.validate(body)
    data = body["snapshot"]
    force = parse_bool(data.get("force", False), CINDER_BOOL, "force")
    if at_least(request, "3.66"):
        if "force" in data and not force:
            raise Fault(400, "Invalid input received: The 'force' flag is deprecated from "
                             "microversion 3.66 and may only be true (or absent).")
        force = True  # 3.66: snapshots of in-use volumes need no flag
    names = display_fields(data)
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
        context(request), request.path_params["snapshot_id"], display_fields(body["snapshot"]))
    return json_response({"snapshot": views.snapshot(request, snap, extended=False)})


async def delete(request: Request) -> Response:
    await services(request).snapshots.delete(context(request),
                                             request.path_params["snapshot_id"])
    return empty_response(202)


# --- actions --------------------------------------------------------------------------------


async def action(request: Request) -> Response:
    name, body = await read_action(request, schemas.ACTIONS)
    args = body[name] or {}
    snapshot_id = request.path_params["snapshot_id"]
    snaps = services(request).snapshots
    if name == "os-reset_status":
        await snaps.reset_status(context(request), snapshot_id, args["status"])
    elif name == "os-update_snapshot_status":
        await snaps.update_status(context(request), snapshot_id, args["status"],
                                  args.get("progress"))
    else:
        await snaps.delete(context(request), snapshot_id, force=True)
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
    Route("/snapshots/{snapshot_id}/action", action, methods=["POST"]),
]
