"""Cinder's metadata sub-resource (``.../metadata[/{key}]``), the same for volumes and snapshots.

Each resource supplies one function: ``fetch(request, change)`` applies ``change`` (or none)
and returns the metadata as it now is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.schemas.common import METADATA
from stackvol.http.faults import Fault
from stackvol.http.responses import empty_response, json_response
from stackvol.http.validation import Schema, read_json
from stackvol.services.common.metadata import MetadataChange

Fetch = Callable[[Request, MetadataChange | None], Awaitable[dict[str, str]]]

ALL = Schema({"type": "object", "properties": {"metadata": METADATA},
              "required": ["metadata"], "additionalProperties": False})
ITEM = Schema({"type": "object", "properties": {"meta": {
    **METADATA, "minProperties": 1, "maxProperties": 1}},
    "required": ["meta"], "additionalProperties": False})


def metadata_routes(base: str, fetch: Fetch) -> list[Route]:
    async def index(request: Request) -> Response:
        return json_response({"metadata": await fetch(request, None)})

    async def set_all(request: Request, replace: bool) -> Response:
        body = await read_json(request)
        ALL.validate(body)
        change = MetadataChange(set=body["metadata"], replace=replace)
        return json_response({"metadata": await fetch(request, change)})

    async def create(request: Request) -> Response:
        return await set_all(request, replace=False)

    async def replace(request: Request) -> Response:
        return await set_all(request, replace=True)

    async def show(request: Request) -> Response:
        key = request.path_params["key"]
        found = await fetch(request, None)
        if key not in found:
            raise Fault(404, "Metadata item was not found")
        return json_response({"meta": {key: found[key]}})

    async def update(request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, dict) and isinstance(body.get("meta"), dict) and len(
                body["meta"]) > 1:
            raise Fault(400, "Request body contains too many items")
        ITEM.validate(body)
        if request.path_params["key"] not in body["meta"]:
            raise Fault(400, "Request body and URI mismatch")
        await fetch(request, MetadataChange(set=body["meta"]))
        return json_response({"meta": body["meta"]})

    async def delete(request: Request) -> Response:
        await fetch(request, MetadataChange(delete=request.path_params["key"]))
        return empty_response(200)

    path = base + "/metadata"
    return [
        Route(path, index, methods=["GET"]),
        Route(path, create, methods=["POST"]),
        Route(path, replace, methods=["PUT"]),
        Route(path + "/{key}", show, methods=["GET"]),
        Route(path + "/{key}", update, methods=["PUT"]),
        Route(path + "/{key}", delete, methods=["DELETE"]),
    ]
