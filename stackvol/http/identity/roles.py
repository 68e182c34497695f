"""``/roles`` and the grants of roles to users on projects
(``/projects/{p}/users/{u}/roles[/{r}]``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.identity.common import caller, collection, entity, self_link
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import Schema
from stackvol.services.identity.directory import Role

CREATE = Schema({"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": {"type": ["string", "null"]}, "domain_id": {"type": "null"},
    "options": {"type": "object"}}})


def role_view(request: Request, role: Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name, "domain_id": None,
            "description": role.description,
            "options": {"immutable": True} if role.immutable else {},
            "links": self_link(request, f"/roles/{role.id}")}


async def create(request: Request) -> Response:
    ctx = await caller(request)
    data = await entity(request, "role", CREATE)
    role = await services(request).identity.directory.create_role(ctx, data["name"],
                                                                 data.get("description"))
    return json_response({"role": role_view(request, role)}, status=201)


async def index(request: Request) -> Response:
    ctx = await caller(request)
    found = await services(request).identity.directory.list_roles(
        ctx, request.query_params.get("name"))
    return json_response(collection(request, "roles", [role_view(request, r) for r in found]))


async def show(request: Request) -> Response:
    ctx = await caller(request)
    role = await services(request).identity.directory.get_role(ctx,
                                                              request.path_params["role_id"])
    return json_response({"role": role_view(request, role)})


async def delete(request: Request) -> Response:
    ctx = await caller(request)
    await services(request).identity.directory.delete_role(ctx, request.path_params["role_id"])
    return empty_response(204)


def _grant_args(request: Request) -> tuple[str, str, str]:
    params = request.path_params
    return params["user_id"], params["project_id"], params["role_id"]


async def grant(request: Request) -> Response:
    await services(request).identity.directory.grant(await caller(request),
                                                     *_grant_args(request))
    return empty_response(204)


async def check_grant(request: Request) -> Response:
    await services(request).identity.directory.check_grant(await caller(request),
                                                           *_grant_args(request))
    return empty_response(204)


async def revoke_grant(request: Request) -> Response:
    await services(request).identity.directory.revoke_grant(await caller(request),
                                                            *_grant_args(request))
    return empty_response(204)


async def list_grants(request: Request) -> Response:
    ctx = await caller(request)
    params = request.path_params
    found = await services(request).identity.directory.list_grants(
        ctx, params["user_id"], params["project_id"])
    return json_response(collection(request, "roles", [role_view(request, r) for r in found]))


_GRANT = "/v3/projects/{project_id}/users/{user_id}/roles"
routes = [
    Route("/v3/roles", create, methods=["POST"]),
    Route("/v3/roles", index, methods=["GET"]),
    Route("/v3/roles/{role_id}", show, methods=["GET"]),
    Route("/v3/roles/{role_id}", delete, methods=["DELETE"]),
    Route(_GRANT, list_grants, methods=["GET"]),
    Route(_GRANT + "/{role_id}", grant, methods=["PUT"]),
    Route(_GRANT + "/{role_id}", check_grant, methods=["HEAD", "GET"]),
    Route(_GRANT + "/{role_id}", revoke_grant, methods=["DELETE"]),
]
