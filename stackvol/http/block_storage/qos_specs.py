"""``/qos-specs``: QoS specs and their associations with volume types (admins; Cinder's)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.common import links
from stackvol.http.block_storage.schemas import qos_specs as schemas
from stackvol.http.common import CINDER_BOOL, context, query_bool
from stackvol.http.faults import Fault
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json
from stackvol.services.volumes.qos_specs import QosSpec


def _view(spec: QosSpec) -> dict[str, Any]:
    return {"id": spec.id, "name": spec.name, "consumer": spec.consumer, "specs": spec.specs}


def _detail(request: Request, spec: QosSpec) -> Response:
    return json_response({"qos_specs": _view(spec),
                          "links": links(request, "qos-specs", spec.id)})


def _specs_id(request: Request) -> str:
    return request.path_params["specs_id"]


def _type_id(request: Request) -> str:
    type_id = request.query_params.get("vol_type_id")
    if not type_id:
        raise Fault(400, "Volume Type id must not be None.")
    return type_id


async def index(request: Request) -> Response:
    found = await services(request).qos_specs.list(context(request))
    return json_response({"qos_specs": [_view(spec) for spec in found]})


async def create(request: Request) -> Response:
    body = await read_json(request)
    schemas.create.validate(body)
    data = body["qos_specs"]
    spec = await services(request).qos_specs.create(context(request), data["name"].strip(),
                                                    data)
    return _detail(request, spec)


async def show(request: Request) -> Response:
    return _detail(request, await services(request).qos_specs.get(context(request),
                                                                  _specs_id(request)))


async def update(request: Request) -> Response:
    body = await read_json(request)
    schemas.update.validate(body)
    await services(request).qos_specs.set_keys(context(request), _specs_id(request),
                                               body["qos_specs"])
    return json_response(body)


async def delete(request: Request) -> Response:
    await services(request).qos_specs.delete(context(request), _specs_id(request),
                                             query_bool(request, "force", CINDER_BOOL, False))
    return empty_response(202)


async def delete_keys(request: Request) -> Response:
    body = await read_json(request)
    schemas.delete_keys.validate(body)
    await services(request).qos_specs.delete_keys(context(request), _specs_id(request),
                                                  body["keys"])
    return empty_response(202)


async def associations(request: Request) -> Response:
    found = await services(request).qos_specs.associations(context(request),
                                                           _specs_id(request))
    return json_response({"qos_associations": [
        {"association_type": "volume_type", "name": a.name, "id": a.id} for a in found]})


async def associate(request: Request) -> Response:
    await services(request).qos_specs.associate(context(request), _specs_id(request),
                                                _type_id(request))
    return empty_response(202)


async def disassociate(request: Request) -> Response:
    await services(request).qos_specs.disassociate(context(request), _specs_id(request),
                                                   _type_id(request))
    return empty_response(202)


async def disassociate_all(request: Request) -> Response:
    await services(request).qos_specs.disassociate(context(request), _specs_id(request))
    return empty_response(202)


_ONE = "/qos-specs/{specs_id}"
routes = [
    Route("/qos-specs", index, methods=["GET"]),
    Route("/qos-specs", create, methods=["POST"]),
    Route(_ONE, show, methods=["GET"]),
    Route(_ONE, update, methods=["PUT"]),
    Route(_ONE, delete, methods=["DELETE"]),
    Route(_ONE + "/delete_keys", delete_keys, methods=["PUT"]),
    Route(_ONE + "/associations", associations, methods=["GET"]),
    Route(_ONE + "/associate", associate, methods=["GET"]),
    Route(_ONE + "/disassociate", disassociate, methods=["GET"]),
    Route(_ONE + "/disassociate_all", disassociate_all, methods=["GET"]),
]
