"""The pieces the legacy XML templates are made of, after Nova's ``xmlutil`` templates (Essex to
Juno) and the 2014.2 XML samples: resource attributes as XML attributes (``None`` as "None"), no
namespace on the volume extension's elements, the compute v1.1 namespace and Atom links on
servers and flavors, the common v1.0 namespace on extensions and version documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stackvol.http.compute_legacy.xml import (
    EXT_NAMESPACES,
    XMLNS_ATOM,
    XMLNS_COMMON,
    XMLNS_V11,
    Node,
)

# A template: the JSON body of a response -> its XML root element.
Template = Callable[[Any], Node]
ItemNode = Callable[[dict[str, Any]], Node]

# XML names that differ from the JSON keys, and the item tag of lists.
_RENAMES = {"tenant_id": "tenantId", "user_id": "userId"}
_ITEMS = {"security_groups": "security_group",
          "os-extended-volumes:volumes_attached": "os-extended-volumes:volume_attached"}


def attrs(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Only the keys present: a missing key is omitted, a ``None`` value becomes "None"."""
    return {name: data[name] for name in names if name in data}


def meta(data: dict[str, Any] | None) -> Node:
    """``<metadata><meta key="k">v</meta></metadata>`` (Folsom to Juno)."""
    node = Node("metadata")
    for key, value in (data or {}).items():
        node.add(Node("meta", {"key": key}, text=value))
    return node


def collection(root: str, item: ItemNode) -> Template:
    """``<root>`` holding one ``item`` element per entry of ``data[root]``."""
    def template(data: dict[str, Any]) -> Node:
        return Node(root, children=[item(i) for i in data[root]])

    return template


def single(key: str, item: ItemNode) -> Template:
    return lambda data: item(data[key])


def atom_link(link: dict[str, Any]) -> Node:
    return Node("atom:link", {k: link[k] for k in ("rel", "type", "href") if k in link})


def common_root(node: Node) -> Node:
    """The root of an extension or version document: the common v1.0 namespace."""
    node.attrs = {"xmlns": XMLNS_COMMON, "xmlns:atom": XMLNS_ATOM, **node.attrs}
    return node


# --- servers and flavors (compute v1.1 namespace, Atom links, extension attributes) -----------


def addresses_node(data: dict[str, list[dict[str, Any]]]) -> Node:
    node = Node("addresses")
    for network, items in data.items():
        net = node.add(Node("network", {"id": network}))
        for item in items:
            net.add(Node("ip", dict(item)))
    return node


def element(tag: str, data: dict[str, Any]) -> Node:
    """A view dict as Juno's templates drew it: scalars as attributes, links as Atom links,
    ``metadata`` as ``<meta>``s, nested objects as child elements, lists as item elements."""
    node = Node(tag)
    links: list[Node] = []
    for key, value in data.items():
        name = _RENAMES.get(key, key)
        if key.endswith("links"):
            links += [atom_link(link) for link in value]
        elif key == "metadata":
            node.add(meta(value))
        elif key == "addresses":
            node.add(addresses_node(value))
        elif isinstance(value, dict):
            node.add(element(name, value))
        elif isinstance(value, list):
            items = node.add(Node(name))
            items.children += [element(_ITEMS.get(key, "item"), i) if isinstance(i, dict)
                               else Node(_ITEMS.get(key, "item"), text=i) for i in value]
        else:
            node.attrs[name] = value
    node.children += links
    return node


def _prefixes(node: Node, found: set[str]) -> set[str]:
    for name in (node.tag, *node.attrs):
        prefix, sep, _ = name.partition(":")
        if sep and prefix in EXT_NAMESPACES:
            found.add(prefix)
    for item in node.children:
        _prefixes(item, found)
    return found


def compute_root(node: Node) -> Node:
    """The root of a server or flavor document: the compute v1.1 namespace, Atom, and the
    namespace of each extension prefix used below it."""
    declared = {f"xmlns:{p}": EXT_NAMESPACES[p] for p in sorted(_prefixes(node, set()))}
    node.attrs = {"xmlns": XMLNS_V11, "xmlns:atom": XMLNS_ATOM, **declared, **node.attrs}
    return node


def compute_single(key: str) -> Template:
    return lambda data: compute_root(element(key, data[key]))


def compute_collection(key: str, item: str) -> Template:
    def template(data: dict[str, Any]) -> Node:
        node = Node(key, children=[element(item, i) for i in data[key]])
        node.children += [atom_link(link) for link in data.get(f"{key}_links", [])]
        return compute_root(node)

    return template
