"""``/projects``: create, list, show, update, delete (Keystone v3)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.identity.common import caller, collection, entity, list_filters, self_link
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import Schema
from stackvol.services.identity.directory import DEFAULT_DOMAIN_ID, Project

_NAME = {"type": "string", "minLength": 1, "maxLength": 64}
_FIELDS = {"name": _NAME, "description": {"type": ["string", "null"]},
           "enabled": {"type": "boolean"}, "domain_id": {"type": ["string", "null"]},
           "parent_id": {"type": ["string", "null"]}, "is_domain": {"type": "boolean"},
           "tags": {"type": "array"}, "options": {"type": "object"}}
CREATE = Schema({"type": "object", "required": ["name"], "properties": _FIELDS})
UPDATE = Schema({"type": "object", "minProperties": 1, "properties": _FIELDS})


def project_view(request: Request, project: Project) -> dict[str, Any]:
    return {"id": project.id, "name": project.name, "domain_id": project.domain_id,
            "description": project.description or "", "enabled": project.enabled,
            "parent_id": project.domain_id, "is_domain": False, "tags": [], "options": {},
            "links": self_link(request, f"/projects/{project.id}")}


def _one(request: Request, project: Project, status: int = 200) -> Response:
    return json_response({"project": project_view(request, project)}, status=status)


async def create(request: Request) -> Response:
    ctx = await caller(request)
    data = await entity(request, "project", CREATE)
    project = await services(request).identity.directory.create_project(
        ctx, data["name"], data.get("description"), data.get("enabled", True),
        data.get("domain_id") or DEFAULT_DOMAIN_ID)
    return _one(request, project, 201)


async def index(request: Request) -> Response:
    ctx = await caller(request)
    found = await services(request).identity.directory.list_projects(ctx, **list_filters(request))
    return json_response(collection(request, "projects",
                                    [project_view(request, p) for p in found]))


async def show(request: Request) -> Response:
    ctx = await caller(request)
    return _one(request, await services(request).identity.directory.get_project(
        ctx, request.path_params["project_id"]))


async def update(request: Request) -> Response:
    ctx = await caller(request)
    data = await entity(request, "project", UPDATE)
    return _one(request, await services(request).identity.directory.update_project(
        ctx, request.path_params["project_id"], data))


async def delete(request: Request) -> Response:
    ctx = await caller(request)
    await services(request).identity.directory.delete_project(
        ctx, request.path_params["project_id"])
    return empty_response(204)


routes = [
    Route("/v3/projects", create, methods=["POST"]),
    Route("/v3/projects", index, methods=["GET"]),
    Route("/v3/projects/{project_id}", show, methods=["GET"]),
    Route("/v3/projects/{project_id}", update, methods=["PATCH"]),
    Route("/v3/projects/{project_id}", delete, methods=["DELETE"]),
]
