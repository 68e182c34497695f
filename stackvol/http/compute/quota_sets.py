"""``/os-quota-sets/{project_id}``: a project's compute limits (show, detail with usage,
defaults), setting them (admins) and resetting them to the defaults."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import NOVA_BOOL, context, parse_bool, version
from stackvol.http.compute.schemas import quota_sets as schemas
from stackvol.http.compute.views import quota_sets as views
from stackvol.http.faults import Fault
from stackvol.http.microversion import v
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import Schema, read_json
from stackvol.services.quotas.api import COMPUTE

V2_36 = v("2.36")
V2_57 = v("2.57")


def _project(request: Request) -> str:
    return request.path_params["project_id"]


async def show(request: Request) -> Response:
    # ``user_id`` (per-user quotas) is accepted and answered with the project's limits.
    limits = await services(request).quotas.limits(context(request), _project(request),
                                                    scope=COMPUTE)
    return json_response(views.quota_set(version(request), _project(request), limits))


async def detail(request: Request) -> Response:
    quota = services(request).quotas
    ctx, project = context(request), _project(request)
    limits = await quota.limits(ctx, project, scope=COMPUTE)
    in_use = await quota.compute_usage(ctx, project)
    return json_response(views.detail(version(request), project, limits, in_use))


async def defaults(request: Request) -> Response:
    limits = await services(request).quotas.limits(context(request), _project(request),
                                                    defaults=True, scope=COMPUTE)
    return json_response(views.quota_set(version(request), _project(request), limits))


def _schema(request: Request) -> Schema:
    if version(request) >= V2_57:
        return schemas.update_v257
    return schemas.update_v236 if version(request) >= V2_36 else schemas.update


async def update(request: Request) -> Response:
    body = await read_json(request)
    _schema(request).validate(body)
    wanted = body["quota_set"]
    if "networks" in wanted:
        raise Fault(400, "The networks quota is disabled")
    force = parse_bool(wanted.get("force", False), NOVA_BOOL)
    values = {name: int(value) for name, value in wanted.items() if name != "force"}
    limits = await services(request).quotas.update(context(request), _project(request), values,
                                                    scope=COMPUTE, force=force)
    return json_response(views.quota_set(version(request), None, limits))


async def delete(request: Request) -> Response:
    await services(request).quotas.reset(context(request), _project(request), scope=COMPUTE)
    return empty_response(202)


routes = [
    Route("/os-quota-sets/{project_id}", show, methods=["GET"]),
    Route("/os-quota-sets/{project_id}", update, methods=["PUT"]),
    Route("/os-quota-sets/{project_id}", delete, methods=["DELETE"]),
    Route("/os-quota-sets/{project_id}/detail", detail, methods=["GET"]),
    Route("/os-quota-sets/{project_id}/defaults", defaults, methods=["GET"]),
]
