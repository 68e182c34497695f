"""``/flavors``: list, detail and show, with Nova's filters, sorting and paging, and the
flavors' extra specs (read-only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import context, root_url
from stackvol.http.compute.common import list_limit, reject_unknown_query
from stackvol.http.compute.schemas import flavors as schemas
from stackvol.http.compute.views import flavors as views
from stackvol.http.faults import Fault
from stackvol.http.paging import list_body
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.services.flavors.api import FlavorQuery


def _query(request: Request) -> FlavorQuery:
    params = request.query_params
    reject_unknown_query(request, schemas.LIST_QUERY)
    sort_key = params.get("sort_key", "flavorid")
    sort_dir = params.get("sort_dir", "asc")
    if sort_key not in schemas.SORT_KEY_VALUES or sort_dir not in schemas.SORT_DIRS:
        raise Fault(400, "Invalid sort key or direction")
    limit = list_limit(request)
    return FlavorQuery(
        min_ram=_min_filter(request, "minRam"), min_disk=_min_filter(request, "minDisk"),
        is_public=_is_public(params.get("is_public")), sort_key=sort_key, sort_dir=sort_dir,
        limit=limit, marker=params.get("marker"))


def _min_filter(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise Fault(400, f"Invalid {name} filter [{raw}]")
    return int(raw)


def _is_public(raw: str | None) -> bool | None:
    """Nova: absent means public only; ``none`` means both (for admins); else a boolean."""
    if raw is None:
        return True
    text = raw.strip().lower()
    if text == "none":
        return None
    if text in {"1", "true", "t", "yes", "y", "on"}:
        return True
    if text in {"0", "false", "f", "no", "n", "off"}:
        return False
    raise Fault(400, f"Invalid is_public filter [{raw}]")


async def _list(request: Request, detailed: bool) -> Response:
    query = _query(request)
    found = await services(request).flavors.list(context(request), query)
    render = views.detail if detailed else views.summary
    return json_response(list_body(request, root_url(request), "flavors",
                                   [render(request, f) for f in found], found, query.limit,
                                   detailed))


async def index(request: Request) -> Response:
    return await _list(request, detailed=False)


async def detail(request: Request) -> Response:
    return await _list(request, detailed=True)


async def show(request: Request) -> Response:
    flavor = await services(request).flavors.get(context(request),
                                                 request.path_params["flavor_id"])
    return json_response({"flavor": views.detail(request, flavor)})


async def extra_specs(request: Request) -> Response:
    flavor = await services(request).flavors.get(context(request),
                                                 request.path_params["flavor_id"])
    return json_response({"extra_specs": dict(flavor.extra_specs)})


async def extra_spec(request: Request) -> Response:
    flavor = await services(request).flavors.get(context(request),
                                                 request.path_params["flavor_id"])
    key = request.path_params["key"]
    if key not in flavor.extra_specs:
        raise Fault(404, f"Flavor {flavor.id} has no extra specs with key {key}.")
    return json_response({key: flavor.extra_specs[key]})


routes = [
    Route("/flavors", index, methods=["GET"]),
    Route("/flavors/detail", detail, methods=["GET"]),
    Route("/flavors/{flavor_id}", show, methods=["GET"]),
    Route("/flavors/{flavor_id}/os-extra_specs", extra_specs, methods=["GET"]),
    Route("/flavors/{flavor_id}/os-extra_specs/{key}", extra_spec, methods=["GET"]),
]
