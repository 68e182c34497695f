"""The version documents of the legacy paths in XML (the common v1.0 namespace)."""

from __future__ import annotations

from typing import Any

from stackvol.http.compute_legacy.views.templates import atom_link, attrs, common_root
from stackvol.http.compute_legacy.xml import Node


def _version_node(data: dict[str, Any]) -> Node:
    node = Node("version", attrs(data, ("id", "status", "updated")))
    if "media-types" in data:
        types = node.add(Node("media-types"))
        for item in data["media-types"]:
            types.add(Node("media-type", attrs(item, ("base", "type"))))
    node.children += [atom_link(link) for link in data.get("links", [])]
    return node


def version_xml(data: dict[str, Any]) -> Node:
    return common_root(_version_node(data["version"]))
