"""``/os-quota-sets``: a project's block storage limits (and usage), and setting them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.schemas import quotas as schemas
from stackvol.http.common import CINDER_BOOL, context, query_bool
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json


def _project(request: Request) -> str:
    return request.path_params["project_id"]


async def show(request: Request) -> Response:
    ctx = context(request)
    project = _project(request)
    quota = services(request).quotas
    limits = await quota.limits(ctx, project)
    body: dict[str, Any] = dict(limits)
    if query_bool(request, "usage", CINDER_BOOL, False):
        usage = await quota.usage(ctx, project)
        body = {name: {"limit": limit, "in_use": usage.get(name), "reserved": 0}
                for name, limit in limits.items()}
    return json_response({"quota_set": {"id": project, **body}})


async def defaults(request: Request) -> Response:
    limits = await services(request).quotas.limits(context(request), _project(request),
                                                    defaults=True)
    return json_response({"quota_set": {"id": _project(request), **limits}})


async def update(request: Request) -> Response:
    body = await read_json(request)
    schemas.update.validate(body)
    values = {k: int(val) for k, val in body["quota_set"].items()
              if k not in ("tenant_id", "id")}
    limits = await services(request).quotas.update(context(request), _project(request), values)
    return json_response({"quota_set": limits})


async def delete(request: Request) -> Response:
    await services(request).quotas.reset(context(request), _project(request))
    return empty_response(200)


routes = [
    Route("/os-quota-sets/{project_id}", show, methods=["GET"]),
    Route("/os-quota-sets/{project_id}", update, methods=["PUT"]),
    Route("/os-quota-sets/{project_id}", delete, methods=["DELETE"]),
    Route("/os-quota-sets/{project_id}/defaults", defaults, methods=["GET"]),
]
