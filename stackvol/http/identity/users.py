"""``/users``: create, list, show, update (an admin sets passwords), delete; a user's own
password change and project list."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.identity.common import caller, collection, entity, list_filters, self_link
from stackvol.http.identity.projects import project_view
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import Schema
from stackvol.services.identity.directory import DEFAULT_DOMAIN_ID, User

# Keystone's max_password_length: longer passwords are refused where they are set.
MAX_PASSWORD = 4096
_FIELDS = {"name": {"type": "string", "minLength": 1, "maxLength": 255},
           "password": {"type": ["string", "null"], "maxLength": MAX_PASSWORD},
           "enabled": {"type": "boolean"},
           "domain_id": {"type": ["string", "null"]},
           "default_project_id": {"type": ["string", "null"]},
           "description": {"type": ["string", "null"]}, "email": {"type": ["string", "null"]},
           "options": {"type": "object"}}
CREATE = Schema({"type": "object", "required": ["name"], "properties": _FIELDS})
UPDATE = Schema({"type": "object", "properties": _FIELDS})
PASSWORD = Schema({"type": "object", "required": ["password", "original_password"],
                   "properties": {"password": {"type": "string", "maxLength": MAX_PASSWORD},
                                  "original_password": {"type": "string"}}})
_EXTRA_SKIP = {"name", "password", "enabled", "domain_id", "default_project_id", "options"}


def user_view(request: Request, user: User) -> dict[str, Any]:
    view: dict[str, Any] = {**user.extra, "id": user.id, "name": user.name,
                            "domain_id": user.domain_id, "enabled": user.enabled,
                            "password_expires_at": None, "options": {},
                            "links": self_link(request, f"/users/{user.id}")}
    if user.default_project_id:
        view["default_project_id"] = user.default_project_id
    return view


def _one(request: Request, user: User, status: int = 200) -> Response:
    return json_response({"user": user_view(request, user)}, status=status)


async def create(request: Request) -> Response:
    ctx = await caller(request)
    data = await entity(request, "user", CREATE)
    extra = {k: v for k, v in data.items() if k not in _EXTRA_SKIP}
    user = await services(request).identity.directory.create_user(
        ctx, data["name"], data.get("password"), data.get("default_project_id"),
        data.get("enabled", True), extra, data.get("domain_id") or DEFAULT_DOMAIN_ID)
    return _one(request, user, 201)


async def index(request: Request) -> Response:
    ctx = await caller(request)
    found = await services(request).identity.directory.list_users(ctx, **list_filters(request))
    return json_response(collection(request, "users", [user_view(request, u) for u in found]))


async def show(request: Request) -> Response:
    ctx = await caller(request)
    return _one(request, await services(request).identity.directory.get_user(
        ctx, request.path_params["user_id"]))


async def update(request: Request) -> Response:
    ctx = await caller(request)
    data = await entity(request, "user", UPDATE)
    return _one(request, await services(request).identity.directory.update_user(
        ctx, request.path_params["user_id"], data))


async def delete(request: Request) -> Response:
    ctx = await caller(request)
    await services(request).identity.directory.delete_user(ctx, request.path_params["user_id"])
    return empty_response(204)


async def change_password(request: Request) -> Response:
    data = await entity(request, "user", PASSWORD)
    await services(request).identity.directory.change_password(
        request.path_params["user_id"], data["original_password"], data["password"])
    return empty_response(204)


async def user_projects(request: Request) -> Response:
    ctx = await caller(request)
    found = await services(request).identity.directory.list_user_projects(
        ctx, request.path_params["user_id"])
    return json_response(collection(request, "projects",
                                    [project_view(request, p) for p in found]))


routes = [
    Route("/v3/users", create, methods=["POST"]),
    Route("/v3/users", index, methods=["GET"]),
    Route("/v3/users/{user_id}", show, methods=["GET"]),
    Route("/v3/users/{user_id}", update, methods=["PATCH"]),
    Route("/v3/users/{user_id}", delete, methods=["DELETE"]),
    Route("/v3/users/{user_id}/password", change_password, methods=["POST"]),
    Route("/v3/users/{user_id}/projects", user_projects, methods=["GET"]),
]
