"""``/v2/images``: list, create, show, patch and delete images, their data and their tags."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from stackvol.http.common import GLANCE_BOOL, context, glance_int_message, query_bool, query_int
from stackvol.http.faults import Fault
from stackvol.http.image import schemas, views
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json
from stackvol.services.common.listing import parse_sort
from stackvol.services.images.api import SORT_KEYS, VISIBILITIES, ImageQuery, PatchOp

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
# Filters on a column: a value, or ``in:a,b`` for any of several.
COLUMN_FILTERS = ("name", "status", "owner", "disk_format", "container_format", "id")
# Query parameters that are not extra-property filters.
RESERVED_PARAMS = {*COLUMN_FILTERS, "limit", "marker", "sort_key", "sort_dir", "sort",
                   "visibility", "protected", "os_hidden", "size_min", "size_max", "tag",
                   "member_status", "created_at", "updated_at"}
PATCH_TYPES = {"application/openstack-images-v2.1-json-patch": "2.1",
               "application/openstack-images-v2.0-json-patch": "2.0"}
PATCH_OPS = ("add", "replace", "remove")


def _image_id(request: Request) -> str:
    return request.path_params["image_id"]


# --- list ---------------------------------------------------------------------------------


def _int_param(request: Request, name: str) -> int | None:
    """Glance's integer filters: absent is ``None``; even an empty one must be an integer."""
    return query_int(request, name, None, message=glance_int_message, empty_is_absent=False)


def _column_filters(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in COLUMN_FILTERS:
        raw = request.query_params.get(name)
        if raw is None:
            continue
        out[name] = [v.strip() for v in raw[3:].split(",")] if raw.startswith("in:") else raw
    protected = query_bool(request, "protected", GLANCE_BOOL, None)
    if protected is not None:
        out["protected"] = protected
    return out


def _sort(request: Request) -> list[tuple[str, str]]:
    params = request.query_params
    given = {key: ",".join(params.getlist(key)) for key in ("sort", "sort_key", "sort_dir")
             if key in params}
    return parse_sort(given, {key: key for key in SORT_KEYS})


def _query(request: Request) -> ImageQuery:
    params = request.query_params
    visibility = params.get("visibility")
    if visibility is not None and visibility not in (*VISIBILITIES, "all"):
        raise Fault(400, f"Invalid visibility value: {visibility}")
    limit = _int_param(request, "limit")
    return ImageQuery(
        limit=min(DEFAULT_LIMIT if limit is None else limit, MAX_LIMIT),
        marker=params.get("marker"), sort=_sort(request), visibility=visibility,
        filters=_column_filters(request),
        properties={k: v for k, v in params.items() if k not in RESERVED_PARAMS},
        tags=params.getlist("tag"), os_hidden=query_bool(request, "os_hidden", GLANCE_BOOL, False),
        size_min=_int_param(request, "size_min"), size_max=_int_param(request, "size_max"))


async def index(request: Request) -> Response:
    query = _query(request)
    found = await services(request).images.list(context(request), query)
    body: dict[str, Any] = {"images": [views.image(image) for image in found],
                            "schema": "/v2/schemas/images", "first": "/v2/images"}
    if found and len(found) == query.limit:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        body["next"] = "/v2/images?" + urlencode([*params, ("marker", found[-1].id)])
    return json_response(body)


# --- one image ----------------------------------------------------------------------------


async def create(request: Request) -> Response:
    values = schemas.check_create(await read_json(request))
    image = await services(request).images.create(context(request), values)
    body = views.image(image)
    return json_response(body, 201, {"Location": body["self"]})


async def show(request: Request) -> Response:
    image = await services(request).images.get(context(request), _image_id(request))
    return json_response(views.image(image))


def _pointer(path: Any) -> str:
    """The attribute a JSON pointer names; only top-level ones exist on an image."""
    if not isinstance(path, str) or not path.startswith("/") or path.count("/") != 1:
        raise Fault(400, f"Invalid JSON pointer for this resource: '{path}'")
    name = path[1:].replace("~1", "/").replace("~0", "~")
    if not name:
        raise Fault(400, f"Invalid JSON pointer for this resource: '{path}'")
    return name


def _patch_op(change: Any, dialect: str) -> PatchOp:
    if not isinstance(change, dict):
        raise Fault(400, "Operations must be JSON objects.")
    if dialect == "2.1":
        op, path = change.get("op"), change.get("path")
    else:  # 2.0: {"replace": "/name", "value": ...}
        op = next((name for name in PATCH_OPS if name in change), None)
        path = change.get(op) if op else None
    if op not in PATCH_OPS:
        raise Fault(400, f"Unable to find `op` in JSON Schema change. It must be one of the "
                         f"following: {', '.join(PATCH_OPS)}.")
    name = _pointer(path)
    if op == "remove":
        return PatchOp(op, name)
    if "value" not in change:
        raise Fault(400, "Operation objects must contain exactly one member named \"value\".")
    schemas.check_value(name, change["value"])
    return PatchOp(op, name, change["value"])


async def update(request: Request) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    dialect = PATCH_TYPES.get(media)
    if dialect is None:
        raise Fault(415, f"Unsupported Content-Type: {media or 'none'}",
                    {"Accept-Patch": ", ".join(PATCH_TYPES)})
    body = await read_json(request)
    if not isinstance(body, list):
        raise Fault(400, "Request body must be a JSON array of operation objects.")
    ops = [_patch_op(change, dialect) for change in body]
    image = await services(request).images.update(context(request), _image_id(request), ops)
    return json_response(views.image(image))


async def delete(request: Request) -> Response:
    await services(request).images.delete(context(request), _image_id(request))
    return empty_response(204)


# --- data ---------------------------------------------------------------------------------


async def upload(request: Request) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/octet-stream":
        raise Fault(415, f"Content-Type must be application/octet-stream, not "
                         f"{media or 'none'}")
    # Streamed to the store as it arrives: the body is never held whole in memory.
    await services(request).images.upload(context(request), _image_id(request),
                                          request.stream())
    return empty_response(204)


async def download(request: Request) -> Response:
    image, chunks = await services(request).images.download(context(request),
                                                            _image_id(request))
    if chunks is None:
        return empty_response(204)
    headers = {"Content-Length": str(image.size)}
    if image.checksum:
        headers["Content-MD5"] = image.checksum
    return StreamingResponse(chunks, headers=headers, media_type="application/octet-stream")


# --- actions ------------------------------------------------------------------------------


async def deactivate(request: Request) -> Response:
    await services(request).images.deactivate(context(request), _image_id(request))
    return empty_response(204)


async def reactivate(request: Request) -> Response:
    await services(request).images.reactivate(context(request), _image_id(request))
    return empty_response(204)


# --- tags ---------------------------------------------------------------------------------


async def add_tag(request: Request) -> Response:
    tag = request.path_params["tag"]
    if len(tag) > 255:
        raise Fault(400, "Provided object does not match schema 'image': tag is longer than "
                         "255 characters")
    await services(request).images.set_tag(context(request), _image_id(request), tag, True)
    return empty_response(204)


async def delete_tag(request: Request) -> Response:
    await services(request).images.set_tag(context(request), _image_id(request),
                                           request.path_params["tag"], False)
    return empty_response(204)


# --- schemas ------------------------------------------------------------------------------


async def image_schema(request: Request) -> Response:
    return json_response(schemas.IMAGE)


async def images_schema(request: Request) -> Response:
    return json_response(schemas.IMAGES)


routes = [
    Route("/images", index, methods=["GET"]),
    Route("/images", create, methods=["POST"]),
    Route("/images/{image_id}", show, methods=["GET"]),
    Route("/images/{image_id}", update, methods=["PATCH"]),
    Route("/images/{image_id}", delete, methods=["DELETE"]),
    Route("/images/{image_id}/file", upload, methods=["PUT"]),
    Route("/images/{image_id}/file", download, methods=["GET"]),
    Route("/images/{image_id}/actions/deactivate", deactivate, methods=["POST"]),
    Route("/images/{image_id}/actions/reactivate", reactivate, methods=["POST"]),
    Route("/images/{image_id}/tags/{tag}", add_tag, methods=["PUT"]),
    Route("/images/{image_id}/tags/{tag}", delete_tag, methods=["DELETE"]),
    Route("/schemas/image", image_schema, methods=["GET"]),
    Route("/schemas/images", images_schema, methods=["GET"]),
]
