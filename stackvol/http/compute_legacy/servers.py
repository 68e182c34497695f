"""``/servers`` and ``/os-volumes_boot`` on the legacy paths.

Reads reuse the v2.1 endpoints at microversion 2.1 (the JSON is the same) and only re-point
their bookmark links and draw them in XML on request; create has its own body reader (Juno's
``ServerXMLDeserializer``) and the legacy create answer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import NOVA_BOOL, context, parse_bool
from stackvol.http.compute import servers as v21_servers
from stackvol.http.compute_legacy.common import read_body
from stackvol.http.compute_legacy.rendering import Negotiated, relay
from stackvol.http.compute_legacy.schemas import servers as schemas
from stackvol.http.compute_legacy.views import servers as views
from stackvol.http.state import services


async def create(request: Request) -> Response:
    body = schemas.create.validate(await read_body(request, schemas.decode_create))
    created, admin_pass = await services(request).servers.create(
        context(request), v21_servers.server_spec(body))
    if parse_bool(body["server"].get("return_reservation_id"), NOVA_BOOL):
        return Negotiated({"reservation_id": created[0].reservation_id}, views.reservation_xml,
                          202)
    first = created[0]
    answer = {"server": views.server_created(request, first.id, admin_pass)}
    return Negotiated(answer, views.server_created_xml, 202,
                      headers={"Location": answer["server"]["links"][0]["href"]})


def _server_routes(base: str) -> list[Route]:
    return [
        Route(base, relay(v21_servers.index, views.servers_xml), methods=["GET"]),
        Route(base, create, methods=["POST"]),
        Route(f"{base}/detail", relay(v21_servers.detail, views.servers_xml), methods=["GET"]),
        Route(base + "/{server_id}", relay(v21_servers.show, views.server_xml),
              methods=["GET"]),
        Route(base + "/{server_id}", relay(v21_servers.update, views.server_xml),
              methods=["PUT"]),
        Route(base + "/{server_id}", v21_servers.delete, methods=["DELETE"]),
        Route(base + "/{server_id}/ips", relay(v21_servers.ips, views.addresses_xml),
              methods=["GET"]),
        Route(base + "/{server_id}/action", v21_servers.action, methods=["POST"]),
    ]


routes = [
    *_server_routes("/servers"),
    # The volume extension's boot resource: every server verb, block_device_mapping honoured.
    *_server_routes("/os-volumes_boot"),
]
