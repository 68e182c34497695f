"""The extension descriptors of the legacy paths in XML (the common v1.0 namespace)."""

from __future__ import annotations

from typing import Any

from stackvol.http.compute_legacy.views.templates import (
    atom_link,
    attrs,
    collection,
    common_root,
)
from stackvol.http.compute_legacy.xml import Node


def _extension_node(data: dict[str, Any]) -> Node:
    node = Node("extension", attrs(data, ("name", "namespace", "alias", "updated")))
    node.add(Node("description", text=data["description"]))
    node.children += [atom_link(link) for link in data.get("links", [])]
    return node


_extensions_node = collection("extensions", _extension_node)


def extensions_xml(data: dict[str, Any]) -> Node:
    return common_root(_extensions_node(data))


def extension_xml(data: dict[str, Any]) -> Node:
    return common_root(_extension_node(data["extension"]))
