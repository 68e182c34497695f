"""The Identity face (Keystone v3 at ``/identity``): version discovery, then one module per
resource: tokens, projects, users, roles and grants, role assignments, domains, application
credentials and the catalog. Errors are Keystone's ``{"error": {...}}``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from stackvol.http.faults import COMPUTE_CODES, Fault, keystone_error_response
from stackvol.http.identity import (
    application_credentials,
    catalog,
    domains,
    projects,
    role_assignments,
    roles,
    tokens,
    users,
)
from stackvol.http.identity.common import public_base
from stackvol.http.middleware import FaultMiddleware
from stackvol.http.responses import json_response
from stackvol.services.common.errors import NotAuthenticated, NotFound, OverQuota

V3 = {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z"}
MEDIA = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def _version(request: Request) -> dict[str, Any]:
    href = f"{public_base(request)}/identity/v3/"
    return {**V3, "links": [{"rel": "self", "href": href}], "media-types": MEDIA}


async def versions(request: Request) -> Response:
    return json_response({"versions": {"values": [_version(request)]}}, status=300)


async def version(request: Request) -> Response:
    return json_response({"version": _version(request)})


async def _not_found(scope: Any, receive: Any, send: Any) -> None:
    raise Fault(404, "The resource could not be found.")


routes = [
    Route("/", versions, methods=["GET"]),
    Route("/v3", version, methods=["GET"]),
    Route("/v3/", version, methods=["GET"]),
    *tokens.routes,
    *projects.routes,
    *users.routes,
    *roles.routes,
    *role_assignments.routes,
    *domains.routes,
    *application_credentials.routes,
    *catalog.routes,
]

KEYSTONE_CODES = {NotAuthenticated: 401, NotFound: 404, OverQuota: 413}


def identity_face() -> FaultMiddleware:
    router = Router(routes=routes, default=_not_found, redirect_slashes=False)
    return FaultMiddleware(router, keystone_error_response, {**COMPUTE_CODES, **KEYSTONE_CODES})
