"""``/volumes``: create, list, show, update and delete volumes, and their metadata."""

from __future__ import annotations

from typing import Any

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
    time_filter,
    wants_count,
)
from stackvol.http.block_storage.metadata import metadata_routes
from stackvol.http.block_storage.schemas import volumes as schemas
from stackvol.http.block_storage.views import volumes as views
from stackvol.http.common import (
    CINDER_BOOL,
    CINDER_BOOL_BEFORE_3_2,
    context,
    parse_bool,
    query_bool,
    root_url,
)
from stackvol.http.faults import Fault
from stackvol.http.paging import list_body
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json
from stackvol.services.common.listing import Filter, ListQuery, parse_sort
from stackvol.services.common.metadata import MetadataChange
from stackvol.services.volumes.api import SORT_KEYS, VolumeSpec

# Filters a non-admin may use (Cinder's default resource_filters.json for volumes).
USER_FILTERS = {"name", "status", "metadata", "bootable", "migration_status",
                "availability_zone", "group_id", "size", "created_at", "updated_at",
                "consumes_quota"}
_COLUMNS = {"name": "display_name", "status": "status", "availability_zone":
            "availability_zone", "project_id": "project_id", "user_id": "user_id",
            "volume_type": "volume_type", "id": "id", "description": "display_description"}
NOTHING = Filter("id", [])  # a filter no volume passes (groups, migrations, images...)


def _filters(request: Request) -> tuple[list[Filter], dict[str, str]]:
    given = reject_filters(request, filter_keys(request), USER_FILTERS)
    out: list[Filter] = []
    metadata: dict[str, str] = {}
    for key, raw in given.items():
        name, like = filter_name(request, key)
        if name in _COLUMNS:
            out.append(Filter(_COLUMNS[name], raw, "like" if like else "eq"))
        elif name == "metadata":
            metadata = parse_metadata(raw)
        elif name == "bootable":
            words = CINDER_BOOL if at_least(request, "3.2") else CINDER_BOOL_BEFORE_3_2
            out.append(Filter("bootable", parse_bool(raw, words, name)))
        elif name == "size":
            try:
                out.append(Filter("size", int(raw)))
            except ValueError:
                raise Fault(400, f"Invalid input received: Invalid filter size={raw}") from None
        elif name in ("created_at", "updated_at") and at_least(request, "3.60"):
            out.append(time_filter(name, raw))
        elif name == "consumes_quota":
            if not parse_bool(raw, CINDER_BOOL, name):
                out.append(NOTHING)
        elif name in ("group_id", "migration_status", "glance_metadata"):
            out.append(NOTHING)  # stackvol has no groups, migrations or image metadata
    return out, metadata


def list_query(request: Request) -> tuple[ListQuery, int]:
    marker, limit, offset = pagination(request)
    project = project_scope(request)
    filters, metadata = _filters(request)
    query = ListQuery(project_id=project, limit=limit, marker=marker, offset=offset,
                      sort=parse_sort(request.query_params, SORT_KEYS),
                      filters=[f for f in filters if f.column != "project_id"],
                      metadata=metadata, with_count=wants_count(request))
    return query, limit


async def _list(request: Request, detailed: bool) -> Response:
    query, limit = list_query(request)
    found, count = await services(request).volumes.query(context(request), query)
    if detailed:
        types = await views.types_for_detail(request)
        items = views.DetailView.of(request, types).render_all(found)
    else:
        items = list(map(views.summaries(request), found))
    return json_response(list_body(request, root_url(request), "volumes", items, found, limit,
                                   detailed, count))


async def index(request: Request) -> Response:
    return await _list(request, detailed=False)


async def detail(request: Request) -> Response:
    return await _list(request, detailed=True)


async def summary(request: Request) -> Response:
    """``GET /volumes/summary`` (3.12; metadata since 3.36)."""
    if not at_least(request, "3.12"):
        raise Fault(404, "The resource could not be found.")
    count, total, metadata = await services(request).volumes.summary(
        context(request), project_scope(request))
    body: dict[str, Any] = {"total_count": count, "total_size": total}
    if at_least(request, "3.36"):
        body["metadata"] = metadata
    return json_response({"volume-summary": body})


async def render(request: Request, volume_id: str, extended: bool = True) -> Response:
    vol = await services(request).volumes.get(context(request), volume_id)
    types = await views.types_for_detail(request)
    return json_response({"volume": views.detail(request, vol, types, extended)})


async def show(request: Request) -> Response:
    return await render(request, request.path_params["volume_id"])


def _refuse_unsupported(data: dict[str, Any]) -> None:
    if data.get("backup_id") or data.get("group_id") or data.get("consistencygroup_id"):
        raise Fault(400, "Invalid input received: This cloud has no backups or groups.")
    multiattach = data.get("multiattach")
    if multiattach is not None and parse_bool(multiattach, CINDER_BOOL, "multiattach"):
        raise Fault(400, "Invalid input received: Multiattach volumes are not supported.")


async def create(request: Request) -> Response:
    body = await read_json(request)
    (schemas.create_v353 if at_least(request, "3.53") else schemas.create).validate(body)
    data = body["volume"]
    _refuse_unsupported(data)
    ctx = context(request)
    size = data.get("size")
    if size is None and data.get("snapshot_id"):
        size = (await services(request).snapshots.get(ctx, data["snapshot_id"])).size
    if size is None and data.get("source_volid"):  # a clone is its source's size by default
        size = (await services(request).volumes.get(ctx, data["source_volid"])).size
    if size is None:
        raise Fault(400, "Invalid input received: Volume size must be specified")
    spec = VolumeSpec(
        size=int(size),
        display_name=data.get("name", data.get("display_name")),
        display_description=data.get("description", data.get("display_description")),
        volume_type=data.get("volume_type") or None,
        metadata=data.get("metadata"),
        availability_zone=data.get("availability_zone"),
        snapshot_id=data.get("snapshot_id"),
        image_id=data.get("imageRef") or data.get("image_id") or None,
        source_volid=data.get("source_volid") or None,
    )
    vol = await services(request).volumes.create(ctx, spec)
    types = await views.types_for_detail(request)
    return json_response({"volume": views.detail(request, vol, types, extended=False)}, 202)


async def update(request: Request) -> Response:
    body = await read_json(request)
    (schemas.update_v353 if at_least(request, "3.53") else schemas.update).validate(body)
    data = body["volume"]
    volume_id = request.path_params["volume_id"]
    await services(request).volumes.update(context(request), volume_id, display_fields(data),
                                           data.get("metadata"))
    return await render(request, volume_id, extended=False)


async def delete(request: Request) -> Response:
    cascade = query_bool(request, "cascade", CINDER_BOOL, False)
    force = at_least(request, "3.23") and query_bool(request, "force", CINDER_BOOL, False)
    await services(request).volumes.delete(context(request), request.path_params["volume_id"],
                                           cascade=cascade, force=force)
    return empty_response(202)


# --- metadata -------------------------------------------------------------------------------


async def _metadata(request: Request, change: MetadataChange | None) -> dict[str, str]:
    volume_id = request.path_params["volume_id"]
    if change is None:
        return (await services(request).volumes.get(context(request), volume_id)).metadata or {}
    return await services(request).volumes.change_metadata(context(request), volume_id, change)


routes = [
    *metadata_routes("/volumes/{volume_id}", _metadata),
    Route("/volumes", index, methods=["GET"]),
    Route("/volumes", create, methods=["POST"]),
    Route("/volumes/detail", detail, methods=["GET"]),
    Route("/volumes/summary", summary, methods=["GET"]),
    Route("/volumes/{volume_id}", show, methods=["GET"]),
    Route("/volumes/{volume_id}", update, methods=["PUT"]),
    Route("/volumes/{volume_id}", delete, methods=["DELETE"]),
]
