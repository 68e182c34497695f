"""``/types``: volume types, their extra specs and who may use the private ones (reading for
all, changes and access lists for admins)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.common import at_least, parse_metadata
from stackvol.http.block_storage.schemas import types as schemas
from stackvol.http.block_storage.views.types import volume_type
from stackvol.http.common import CINDER_BOOL, context, parse_bool
from stackvol.http.faults import Fault
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_action, read_json


def _type_id(request: Request) -> str:
    return request.path_params["type_id"]


async def index(request: Request) -> Response:
    params = request.query_params
    raw = params.get("is_public") or "none"
    public = None if raw.lower() == "none" else parse_bool(raw, CINDER_BOOL, "is_public")
    specs = parse_metadata(params["extra_specs"]) if (
        "extra_specs" in params and at_least(request, "3.52")) else None
    found = await services(request).volume_types.list(context(request), public, specs)
    return json_response({"volume_types": [volume_type(request, t) for t in found]})


async def show(request: Request) -> Response:
    found = await services(request).volume_types.get(context(request), _type_id(request))
    return json_response({"volume_type": volume_type(request, found)})


async def create(request: Request) -> Response:
    body = await read_json(request)
    schemas.create.validate(body)
    data = body["volume_type"]
    public = parse_bool(data.get("os-volume-type-access:is_public", True), CINDER_BOOL, "is_public")
    found = await services(request).volume_types.create(
        context(request), data["name"].strip(), data.get("description"), public,
        data.get("extra_specs"))
    return json_response({"volume_type": volume_type(request, found, qos=False)})


async def update(request: Request) -> Response:
    body = await read_json(request)
    schemas.update.validate(body)
    data = body["volume_type"]
    if not any(data.get(k) is not None for k in ("name", "description", "is_public")):
        raise Fault(400, "Specify volume type name, description, is_public or a combination "
                         "thereof.")
    public = (parse_bool(data["is_public"], CINDER_BOOL, "is_public") if "is_public" in data
              else None)
    found = await services(request).volume_types.update(
        context(request), _type_id(request), data.get("name"), data.get("description"), public)
    return json_response({"volume_type": volume_type(request, found, qos=False, access=False)})


async def delete(request: Request) -> Response:
    await services(request).volume_types.delete(context(request), _type_id(request))
    return empty_response(202)


# --- type access (Cinder's os-volume-type-access) -------------------------------------------


async def access_action(request: Request) -> Response:
    name, body = await read_action(request, schemas.access)
    change = (services(request).volume_types.add_access if name == "addProjectAccess"
              else services(request).volume_types.remove_access)
    await change(context(request), _type_id(request), body[name]["project"])
    return empty_response(202)


async def access_index(request: Request) -> Response:
    type_id, projects = await services(request).volume_types.access(context(request),
                                                                    _type_id(request))
    return json_response({"volume_type_access": [
        {"volume_type_id": type_id, "project_id": project} for project in projects]})


# --- extra specs ----------------------------------------------------------------------------


async def _specs(request: Request) -> dict[str, str]:
    found = await services(request).volume_types.get(context(request), _type_id(request))
    return volume_type(request, found)["extra_specs"]


async def specs_index(request: Request) -> Response:
    return json_response({"extra_specs": await _specs(request)})


async def specs_create(request: Request) -> Response:
    body = await read_json(request)
    schemas.extra_specs.validate(body)
    await services(request).volume_types.set_specs(context(request), _type_id(request),
                                                   body["extra_specs"])
    return json_response({"extra_specs": body["extra_specs"]})


async def spec_show(request: Request) -> Response:
    key = request.path_params["key"]
    specs = await _specs(request)
    if key not in specs:
        raise Fault(404, f"Volume Type {_type_id(request)} has no extra specs with key {key}.")
    return json_response({key: specs[key]})


async def spec_update(request: Request) -> Response:
    body = await read_json(request)
    schemas.spec_item.validate(body)
    if request.path_params["key"] not in body:
        raise Fault(400, "Request body and URI mismatch")
    await services(request).volume_types.set_specs(context(request), _type_id(request), body)
    return json_response(body)


async def spec_delete(request: Request) -> Response:
    await services(request).volume_types.delete_spec(context(request), _type_id(request),
                                                     request.path_params["key"])
    return empty_response(202)


_SPECS = "/types/{type_id}/extra_specs"
routes = [
    Route("/types", index, methods=["GET"]),
    Route("/types", create, methods=["POST"]),
    Route("/types/{type_id}", show, methods=["GET"]),
    Route("/types/{type_id}", update, methods=["PUT"]),
    Route("/types/{type_id}", delete, methods=["DELETE"]),
    Route("/types/{type_id}/action", access_action, methods=["POST"]),
    Route("/types/{type_id}/os-volume-type-access", access_index, methods=["GET"]),
    Route(_SPECS, specs_index, methods=["GET"]),
    Route(_SPECS, specs_create, methods=["POST"]),
    Route(_SPECS + "/{key}", spec_show, methods=["GET"]),
    Route(_SPECS + "/{key}", spec_update, methods=["PUT"]),
    Route(_SPECS + "/{key}", spec_delete, methods=["DELETE"]),
]
