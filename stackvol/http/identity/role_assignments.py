"""``GET /role_assignments`` with the filters openstackclient sends."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import KEYSTONE_BOOL, query_bool
from stackvol.http.identity.common import caller, collection, v3_url
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.services.identity.api import DEFAULT_DOMAIN
from stackvol.services.identity.directory import Assignment

# Filters naming what stackvol does not have (groups, domain or system scope) match nothing.
_NOTHING = ("group.id", "scope.domain.id", "scope.system")


def assignment_view(request: Request, a: Assignment, names: bool) -> dict[str, Any]:
    role: dict[str, Any] = {"id": a.role_id}
    user: dict[str, Any] = {"id": a.user_id}
    project: dict[str, Any] = {"id": a.project_id}
    if names:
        role["name"] = a.role_name
        user.update(name=a.user_name, domain=DEFAULT_DOMAIN)
        project.update(name=a.project_name, domain=DEFAULT_DOMAIN)
    source = a.inherited_from or a.role_id
    links = {"assignment": v3_url(request,
                                  f"/projects/{a.project_id}/users/{a.user_id}/roles/{source}")}
    if a.inherited_from:
        links["prior_role"] = v3_url(request, f"/roles/{a.inherited_from}")
    return {"role": role, "user": user, "scope": {"project": project}, "links": links}


async def index(request: Request) -> Response:
    ctx = await caller(request)
    query = request.query_params
    found: list[Assignment] = []
    if not any(key in query for key in _NOTHING):
        found = await services(request).identity.directory.list_assignments(
            ctx, user_id=query.get("user.id"), project_id=query.get("scope.project.id"),
            role_id=query.get("role.id"),
            effective=query_bool(request, "effective", KEYSTONE_BOOL, False))
    names = query_bool(request, "include_names", KEYSTONE_BOOL, False)
    return json_response(collection(request, "role_assignments",
                                    [assignment_view(request, a, names) for a in found]))


routes = [Route("/v3/role_assignments", index, methods=["GET"])]
