"""``/servers``, ``/os-volumes_boot`` and ``/flavors`` on the legacy paths.

Reads reuse the v2.1 endpoints at microversion 2.1 (the JSON is the same) and only re-point
their bookmark links and draw them in XML on request; create has its own body reader (Juno's
``ServerXMLDeserializer``) and the legacy create answer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.compute import flavors as v21_flavors
from stackvol.http.compute import servers as v21_servers
from stackvol.http.compute.common import Endpoint, context, is_true, services, version
from stackvol.http.compute.schemas import servers as schemas
from stackvol.http.compute_legacy import templates, views
from stackvol.http.compute_legacy import xml as xmlutil
from stackvol.http.compute_legacy.common import read_body, validate
from stackvol.http.compute_legacy.rendering import Negotiated, Template

_SERVER_ATTRS = ("name", "imageRef", "flavorRef", "adminPass", "accessIPv4", "accessIPv6",
                 "key_name", "availability_zone", "min_count", "max_count", "config_drive",
                 "return_reservation_id", "user_data")
_DISK_CONFIG = f"{{{templates.EXT_NAMESPACES['OS-DCF']}}}diskConfig"


def _items(parent: ET.Element | None, name: str) -> list[dict[str, str]]:
    return [{xmlutil.local(k): v for k, v in item.attrib.items()}
            for item in xmlutil.children(parent, name)]


def decode_create(root: ET.Element) -> dict[str, Any]:
    """``<server name imageRef flavorRef ...>`` with ``<metadata>``, ``<personality>``,
    ``<networks>``, ``<security_groups>`` and ``<block_device_mapping>`` children."""
    if xmlutil.local(root.tag) != "server":
        return {}
    server: dict[str, Any] = xmlutil.attributes(root, _SERVER_ATTRS)
    if root.get(_DISK_CONFIG):
        server["OS-DCF:diskConfig"] = root.get(_DISK_CONFIG)
    found = xmlutil.child(root, "metadata")
    if found is not None:
        server["metadata"] = xmlutil.metadata(found)
    found = xmlutil.child(root, "personality")
    if found is not None:
        server["personality"] = [{"path": f.get("path"), "contents": f.text or ""}
                                 for f in xmlutil.children(found, "file")]
    for name, item in (("networks", "network"), ("security_groups", "security_group"),
                       ("block_device_mapping", "mapping")):
        found = xmlutil.child(root, name)
        if found is not None:
            server[name] = _items(found, item)
    return {"server": server}


async def create(request: Request) -> Response:
    body = validate(schemas.create(version(request)), await read_body(request, decode_create))
    created, admin_pass = await services(request).servers.create(
        context(request), v21_servers._spec(body))
    if is_true(str(body["server"].get("return_reservation_id"))):
        return Negotiated({"reservation_id": created[0].reservation_id},
                          lambda data: xmlutil.Node("reservation_id",
                                                    text=data["reservation_id"]), 202)
    first = created[0]
    answer = {"server": views.server_created(request, first.id, admin_pass)}
    return Negotiated(answer, templates.server_created, 202,
                      headers={"Location": answer["server"]["links"][0]["href"]})


def relay(endpoint: Endpoint, template: Template) -> Endpoint:
    """A v2.1 endpoint whose JSON answer is served as the legacy one."""

    async def legacy(request: Request) -> Response:
        response = await endpoint(request)
        if not response.body:
            return response
        data = views.relink(orjson.loads(response.body), request)
        headers = {k: val for k, val in response.headers.items() if k == "location"}
        return Negotiated(data, template, response.status_code, headers)  # type: ignore[return-value]

    return legacy


def _server_routes(base: str) -> list[Route]:
    return [
        Route(base, relay(v21_servers.index, templates.servers), methods=["GET"]),
        Route(base, create, methods=["POST"]),
        Route(f"{base}/detail", relay(v21_servers.detail, templates.servers), methods=["GET"]),
        Route(base + "/{server_id}", relay(v21_servers.show, templates.server),
              methods=["GET"]),
        Route(base + "/{server_id}", relay(v21_servers.update, templates.server),
              methods=["PUT"]),
        Route(base + "/{server_id}", v21_servers.delete, methods=["DELETE"]),
        Route(base + "/{server_id}/ips", relay(v21_servers.ips, templates.addresses),
              methods=["GET"]),
        Route(base + "/{server_id}/action", v21_servers.action, methods=["POST"]),
    ]


routes = [
    *_server_routes("/servers"),
    # The volume extension's boot resource: every server verb, block_device_mapping honoured.
    *_server_routes("/os-volumes_boot"),
    Route("/flavors", relay(v21_flavors.index, templates.flavors), methods=["GET"]),
    Route("/flavors/detail", relay(v21_flavors.detail, templates.flavors), methods=["GET"]),
    Route("/flavors/{flavor_id}", relay(v21_flavors.show, templates.flavor), methods=["GET"]),
]
