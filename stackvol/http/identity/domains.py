"""``/domains``: stackvol has one, ``Default``, as far as clients need it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import KEYSTONE_BOOL, query_bool
from stackvol.http.identity.common import caller, collection, self_link
from stackvol.http.responses import json_response
from stackvol.services.common import policy
from stackvol.services.common.errors import NotFound
from stackvol.services.identity.api import DEFAULT_DOMAIN


def domain_view(request: Request) -> dict[str, Any]:
    return {**DEFAULT_DOMAIN, "description": "The default domain", "enabled": True,
            "tags": [], "options": {}, "links": self_link(request, "/domains/default")}


async def index(request: Request) -> Response:
    policy.authorize(await caller(request), "identity:list_domains")
    name = request.query_params.get("name")
    enabled = query_bool(request, "enabled", KEYSTONE_BOOL, None)
    matches = name in (None, DEFAULT_DOMAIN["name"]) and enabled in (None, True)
    found = [domain_view(request)] if matches else []
    return json_response(collection(request, "domains", found))


async def show(request: Request) -> Response:
    policy.authorize(await caller(request), "identity:get_domain")
    if request.path_params["domain_id"] != DEFAULT_DOMAIN["id"]:
        raise NotFound(f"Could not find domain: {request.path_params['domain_id']}.")
    return json_response({"domain": domain_view(request)})


routes = [
    Route("/v3/domains", index, methods=["GET"]),
    Route("/v3/domains/{domain_id}", show, methods=["GET"]),
]
