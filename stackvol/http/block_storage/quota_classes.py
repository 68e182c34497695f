"""``/os-quota-class-sets/{class}`` (admins): a quota class's limits; the ``default`` class's
are every project's defaults (Cinder's)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.schemas import quotas as schemas
from stackvol.http.common import context
from stackvol.http.faults import Fault
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json

NAME_MAX = 255


def _class(request: Request) -> str:
    name = request.path_params["class_name"]
    if len(name) > NAME_MAX:
        raise Fault(400, f"Invalid input received: quota_class_name has more than {NAME_MAX} "
                         f"characters.")
    return name


async def show(request: Request) -> Response:
    name = _class(request)
    limits = await services(request).quotas.class_limits(context(request), name)
    return json_response({"quota_class_set": {"id": name, **limits}})


async def update(request: Request) -> Response:
    name = _class(request)
    body = await read_json(request)
    schemas.update_class.validate(body)
    values = {k: int(val) for k, val in body["quota_class_set"].items()}
    limits = await services(request).quotas.update_class(context(request), name, values)
    return json_response({"quota_class_set": limits})


routes = [
    Route("/os-quota-class-sets/{class_name}", show, methods=["GET"]),
    Route("/os-quota-class-sets/{class_name}", update, methods=["PUT"]),
]
