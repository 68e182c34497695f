"""Servers on the legacy paths: the v2.1 views (their bookmarks re-pointed, see ``relink``), the
legacy create answer, and Juno's XML of each."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from stackvol.http.compute_legacy.views.common import links
from stackvol.http.compute_legacy.views.templates import (
    addresses_node,
    atom_link,
    attrs,
    compute_collection,
    compute_root,
    compute_single,
    meta,
)
from stackvol.http.compute_legacy.xml import Node


def server_created(request: Request, server_id: str, admin_pass: str | None) -> dict[str, Any]:
    """The create answer of the legacy API with the volume extensions: id, links, password."""
    body: dict[str, Any] = {"id": server_id, "links": links(request, "servers", server_id)}
    if admin_pass is not None:
        body["adminPass"] = admin_pass
    return body


server_xml = compute_single("server")
servers_xml = compute_collection("servers", "server")


def server_created_xml(data: dict[str, Any]) -> Node:
    """Juno's ``FullServerTemplate`` on the create answer: id, adminPass, an empty
    ``<metadata/>`` and the links."""
    body = data["server"]
    node = Node("server", attrs(body, ("id", "adminPass")))
    node.add(meta({}))
    node.children += [atom_link(link) for link in body.get("links", [])]
    return compute_root(node)


def reservation_xml(data: dict[str, Any]) -> Node:
    """``<reservation_id>r-...</reservation_id>`` (a create with ``return_reservation_id``)."""
    return Node("reservation_id", text=data["reservation_id"])


def addresses_xml(data: dict[str, Any]) -> Node:
    return compute_root(addresses_node(data["addresses"]))
