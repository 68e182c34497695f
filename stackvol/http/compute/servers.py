"""``/servers``: create, list, show, update, delete, addresses and the power actions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import NOVA_BOOL, context, parse_bool, root_url, version
from stackvol.http.compute import console
from stackvol.http.compute.common import list_limit, reject_unknown_query
from stackvol.http.compute.schemas import servers as schemas
from stackvol.http.compute.views import servers as views
from stackvol.http.faults import Fault
from stackvol.http.microversion import v
from stackvol.http.paging import list_body
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_action, read_json
from stackvol.services.servers.api import ServerQuery, ServerSpec

FULL_UPDATE = v("2.75")  # PUT answers with the whole server from here on


def _flavor_id(ref: Any) -> str:
    """``flavorRef`` is an id or a link to one (Nova's ``get_id_from_href``)."""
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


def server_spec(body: dict[str, Any]) -> ServerSpec:
    """What a validated create body asks for (the legacy paths create servers with it too)."""
    data = body["server"]
    count = {k: int(data.get(k, 1)) for k in ("min_count", "max_count")}
    if "max_count" not in data:
        count["max_count"] = count["min_count"]
    networks = data.get("networks")
    return ServerSpec(
        name=data["name"], flavor_id=_flavor_id(data["flavorRef"]),
        image_ref=data.get("imageRef") or None, metadata=data.get("metadata") or {},
        availability_zone=data.get("availability_zone"), key_name=data.get("key_name"),
        networks=networks if networks is not None else "auto",
        description=data.get("description"), tags=data.get("tags") or [],
        block_device_mapping=data.get("block_device_mapping_v2") or [],
        legacy_block_device_mapping=data.get("block_device_mapping") or [],
        security_groups=[g.get("name", "default") for g in data.get("security_groups")
                         or [{"name": "default"}]],
        user_data=data.get("user_data"),
        config_drive=parse_bool(data.get("config_drive"), NOVA_BOOL),
        access_ipv4=data.get("accessIPv4"), access_ipv6=data.get("accessIPv6"),
        auto_disk_config=data.get("OS-DCF:diskConfig") == "AUTO",
        admin_pass=data.get("adminPass"),
        scheduler_hints=body.get("os:scheduler_hints")
        or body.get("OS-SCH-HNT:scheduler_hints") or {},
        trusted_certs=data.get("trusted_image_certificates"), hostname=data.get("hostname"),
        **count)


async def create(request: Request) -> Response:
    body = await read_json(request)
    schemas.create(version(request)).validate(body)
    created, admin_pass = await services(request).servers.create(context(request),
                                                                 server_spec(body))
    if parse_bool(body["server"].get("return_reservation_id"), NOVA_BOOL):
        return json_response({"reservation_id": created[0].reservation_id}, 202)
    first = created[0]
    location = f"{root_url(request)}/servers/{first.id}"
    return json_response({"server": views.create(request, first, admin_pass)}, 202,
                         headers={"Location": location})


def _query(request: Request) -> ServerQuery:
    params = request.query_params
    current = version(request)
    reject_unknown_query(request, schemas.LIST_QUERY)
    limit = list_limit(request)
    all_tenants = "all_tenants" in params and (params["all_tenants"] == ""
                                               or parse_bool(params["all_tenants"], NOVA_BOOL))
    filters = {k: val for k, val in params.items()
               if k not in ("limit", "marker", "all_tenants", "sort_key", "sort_dir")}
    return ServerQuery(filters=filters, user_filters=schemas.user_filters(current),
                       all_projects=all_tenants, limit=limit,
                       marker=params.get("marker"), strict_status=current >= v("2.38"))


async def _list(request: Request, detailed: bool) -> Response:
    query = _query(request)
    service = services(request).servers
    ctx = context(request)
    found = await service.list(ctx, query)
    if detailed:
        seen = service.visibility(ctx)
        items = [views.show(request, s, seen) for s in found]
    else:
        items = [views.basic(request, s) for s in found]
    return json_response(list_body(request, root_url(request), "servers", items, found,
                                   query.limit, detailed))


async def index(request: Request) -> Response:
    return await _list(request, detailed=False)


async def detail(request: Request) -> Response:
    return await _list(request, detailed=True)


async def show(request: Request) -> Response:
    service = services(request).servers
    server = await service.get(context(request), request.path_params["server_id"])
    seen = service.visibility(context(request))
    return json_response({"server": views.show(request, server, seen, views.SHOW)})


async def update(request: Request) -> Response:
    body = await read_json(request)
    current = version(request)
    schemas.update(current).validate(body)
    service = services(request).servers
    ctx = context(request)
    server = await service.update(ctx, request.path_params["server_id"], body["server"])
    shape = views.Shape(full=current >= FULL_UPDATE, server_groups=True)
    return json_response({"server": views.show(request, server, service.visibility(ctx),
                                               shape)})


async def delete(request: Request) -> Response:
    await services(request).servers.delete(context(request), request.path_params["server_id"])
    return empty_response(204)


async def ips(request: Request) -> Response:
    server = await services(request).servers.get(context(request),
                                                 request.path_params["server_id"])
    return json_response({"addresses": views.addresses(server, extended=False)})


def _reboot_op(body: dict[str, Any]) -> str:
    schemas.reboot.validate(body)
    return "reboot_hard" if body["reboot"]["type"].upper() == "HARD" else "reboot"


# Action name → how to read its body into one of the service's power operations.
ACTIONS = {
    "os-stop": lambda body: "stop",
    "os-start": lambda body: "start",
    "reboot": _reboot_op,
}


async def action(request: Request) -> Response:
    name, body = await read_action(request)
    if name in console.ACTIONS:
        return await console.ACTIONS[name](request, body)
    if name not in ACTIONS:
        raise Fault(400, f"There is no such action: {name}")
    op = ACTIONS[name](body)
    await services(request).servers.act(context(request), request.path_params["server_id"], op)
    return empty_response(202)


routes = [
    Route("/servers", index, methods=["GET"]),
    Route("/servers", create, methods=["POST"]),
    Route("/servers/detail", detail, methods=["GET"]),
    Route("/servers/{server_id}", show, methods=["GET"]),
    Route("/servers/{server_id}", update, methods=["PUT"]),
    Route("/servers/{server_id}", delete, methods=["DELETE"]),
    Route("/servers/{server_id}/ips", ips, methods=["GET"]),
    Route("/servers/{server_id}/action", action, methods=["POST"]),
]
