"""The service catalog: in tokens, and as ``/services``, ``/endpoints`` and ``/regions``."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.identity.common import caller, collection, public_base, self_link
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.services.common import policy
from stackvol.services.common.errors import NotFound

INTERFACES = ("public", "internal", "admin")

# (type, name, path below the public base; {project_id} filled in per token)
SERVICES = [
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("block-storage", "cinder", "/volume/v3/{project_id}"),
    ("volumev3", "cinderv3", "/volume/v3/{project_id}"),
    ("image", "glance", "/image"),
]
_NAMES = {"keystone": "Identity", "nova": "Compute", "cinder": "Block Storage",
          "cinderv3": "Block Storage (v3 alias)", "glance": "Image"}


def stable_id(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "stackvol:" + ":".join(parts)).hex


def _endpoints(request: Request, kind: str, path: str, project_id: str) -> list[dict[str, Any]]:
    base = public_base(request)
    region = services(request).settings.region
    return [{"id": stable_id(kind, interface), "interface": interface, "region": region,
             "region_id": region, "url": base + path.replace("{project_id}", project_id)}
            for interface in INTERFACES]


def catalog(request: Request, project_id: str) -> list[dict[str, Any]]:
    return [{"id": stable_id(kind), "type": kind, "name": name,
             "endpoints": _endpoints(request, kind, path, project_id)}
            for kind, name, path in SERVICES]


def _service(request: Request, kind: str, name: str) -> dict[str, Any]:
    sid = stable_id(kind)
    return {"id": sid, "type": kind, "name": name, "enabled": True,
            "description": f"stackvol {_NAMES[name]}", "links": self_link(request,
                                                                          f"/services/{sid}")}


def _all_endpoints(request: Request) -> list[dict[str, Any]]:
    # Outside a token there is no project: Keystone shows the template, as registered.
    out = []
    for kind, _name, path in SERVICES:
        for ep in _endpoints(request, kind, path.replace("{project_id}", "$(project_id)s"), ""):
            out.append({**ep, "service_id": stable_id(kind), "enabled": True,
                        "links": self_link(request, f"/endpoints/{ep['id']}")})
    return out


def _region(request: Request) -> dict[str, Any]:
    region = services(request).settings.region
    return {"id": region, "description": "", "parent_region_id": None,
            "links": self_link(request, f"/regions/{region}")}


def _one(found: list[dict[str, Any]], what: str, wanted: str) -> dict[str, Any]:
    for item in found:
        if item["id"] == wanted:
            return item
    raise NotFound(f"Could not find {what}: {wanted}.")


def _filtered(request: Request, found: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    for key in keys:
        wanted = request.query_params.get(key)
        if wanted is not None:
            found = [item for item in found if item.get(key) == wanted]
    return found


async def list_services(request: Request) -> Response:
    policy.authorize(await caller(request), "identity:list_services")
    found = [_service(request, kind, name) for kind, name, _ in SERVICES]
    return json_response(collection(request, "services",
                                    _filtered(request, found, "type", "name")))


async def get_service(request: Request) -> Response:
    policy.authorize(await caller(request), "identity:get_service")
    found = [_service(request, kind, name) for kind, name, _ in SERVICES]
    return json_response({"service": _one(found, "service", request.path_params["id"])})


async def list_endpoints(request: Request) -> Response:
    policy.authorize(await caller(request), "identity:list_endpoints")
    found = _filtered(request, _all_endpoints(request), "interface", "service_id", "region_id")
    return json_response(collection(request, "endpoints", found))


async def get_endpoint(request: Request) -> Response:
    policy.authorize(await caller(request), "identity:get_endpoint")
    return json_response({"endpoint": _one(_all_endpoints(request), "endpoint",
                                           request.path_params["id"])})


async def list_regions(request: Request) -> Response:
    policy.authorize(await caller(request), "identity:list_regions")
    return json_response(collection(request, "regions", [_region(request)]))


async def get_region(request: Request) -> Response:
    policy.authorize(await caller(request), "identity:get_region")
    return json_response({"region": _one([_region(request)], "region",
                                         request.path_params["id"])})


routes = [
    Route("/v3/services", list_services, methods=["GET"]),
    Route("/v3/services/{id}", get_service, methods=["GET"]),
    Route("/v3/endpoints", list_endpoints, methods=["GET"]),
    Route("/v3/endpoints/{id}", get_endpoint, methods=["GET"]),
    Route("/v3/regions", list_regions, methods=["GET"]),
    Route("/v3/regions/{id}", get_region, methods=["GET"]),
]
