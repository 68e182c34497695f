"""XML forms of the legacy responses, after Nova's ``xmlutil`` templates (Essex to Juno) and the
2014.2 XML samples: resource attributes as XML attributes (``None`` as "None"), no namespace on
the volume extension's elements, the compute v1.1 namespace and Atom links on servers and
flavors, the common v1.0 namespace on extensions and version documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stackvol.http.compute_legacy.xml import XMLNS_ATOM, XMLNS_COMMON, XMLNS_V11, Node

VOLUME_ATTRS = ("id", "status", "size", "availabilityZone", "createdAt", "displayName",
                "displayDescription", "volumeType", "snapshotId")
SNAPSHOT_ATTRS = ("id", "status", "size", "createdAt", "displayName", "displayDescription",
                  "volumeId")
ATTACHMENT_ATTRS = ("id", "serverId", "volumeId", "device")

# Namespaces of the extension prefixes our server and flavor views carry (Juno's).
EXT_NAMESPACES = {
    "OS-DCF": "http://docs.openstack.org/compute/ext/disk_config/api/v1.1",
    "OS-EXT-AZ": "http://docs.openstack.org/compute/ext/extended_availability_zone/api/v2",
    "OS-EXT-IPS": "http://docs.openstack.org/compute/ext/extended_ips/api/v1.1",
    "OS-EXT-IPS-MAC": "http://docs.openstack.org/compute/ext/extended_ips_mac/api/v1.1",
    "OS-EXT-SRV-ATTR": "http://docs.openstack.org/compute/ext/extended_status/api/v1.1",
    "OS-EXT-STS": "http://docs.openstack.org/compute/ext/extended_status/api/v1.1",
    "OS-FLV-DISABLED": "http://docs.openstack.org/compute/ext/flavor_disabled/api/v1.1",
    "OS-FLV-EXT-DATA": "http://docs.openstack.org/compute/ext/flavor_extra_data/api/v1.1",
    "OS-SRV-USG": "http://docs.openstack.org/compute/ext/server_usage/api/v1.1",
    "os-extended-volumes": "http://docs.openstack.org/compute/ext/extended_volumes/api/v1.1",
    "os-flavor-access": "http://docs.openstack.org/compute/ext/flavor_access/api/v2",
}
# XML names that differ from the JSON keys, and the item tag of lists.
_RENAMES = {"tenant_id": "tenantId", "user_id": "userId"}
_ITEMS = {"security_groups": "security_group",
          "os-extended-volumes:volumes_attached": "os-extended-volumes:volume_attached"}


def _attrs(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Only the keys present: a missing key is omitted, a ``None`` value becomes "None"."""
    return {name: data[name] for name in names if name in data}


def meta(data: dict[str, Any] | None) -> Node:
    """``<metadata><meta key="k">v</meta></metadata>`` (Folsom to Juno)."""
    node = Node("metadata")
    for key, value in (data or {}).items():
        node.add(Node("meta", {"key": key}, text=value))
    return node


def _volume_node(data: dict[str, Any]) -> Node:
    node = Node("volume", _attrs(data, VOLUME_ATTRS))
    attachments = node.add(Node("attachments"))
    for item in data.get("attachments", []):
        attachments.add(Node("attachment", _attrs(item, ATTACHMENT_ATTRS)))
    node.add(meta(data.get("metadata")))
    return node


def _collection(root: str, item: Callable[[dict[str, Any]], Node]) -> Callable[[Any], Node]:
    def template(data: dict[str, Any]) -> Node:
        return Node(root, children=[item(i) for i in data[root]])

    return template


def _single(key: str, item: Callable[[dict[str, Any]], Node]) -> Callable[[Any], Node]:
    return lambda data: item(data[key])


def _snapshot_node(data: dict[str, Any]) -> Node:
    return Node("snapshot", _attrs(data, SNAPSHOT_ATTRS))


def _attachment_node(data: dict[str, Any]) -> Node:
    return Node("volumeAttachment", _attrs(data, ATTACHMENT_ATTRS))


volume = _single("volume", _volume_node)
volumes = _collection("volumes", _volume_node)
snapshot = _single("snapshot", _snapshot_node)
snapshots = _collection("snapshots", _snapshot_node)
attachment = _single("volumeAttachment", _attachment_node)
attachments = _collection("volumeAttachments", _attachment_node)


# --- extensions and versions (common v1.0 namespace) ------------------------------------------


def atom_link(link: dict[str, Any]) -> Node:
    return Node("atom:link", {k: link[k] for k in ("rel", "type", "href") if k in link})


def _extension_node(data: dict[str, Any]) -> Node:
    node = Node("extension", _attrs(data, ("name", "namespace", "alias", "updated")))
    node.add(Node("description", text=data["description"]))
    node.children += [atom_link(link) for link in data.get("links", [])]
    return node


def _common_root(node: Node) -> Node:
    node.attrs = {"xmlns": XMLNS_COMMON, "xmlns:atom": XMLNS_ATOM, **node.attrs}
    return node


def extensions(data: dict[str, Any]) -> Node:
    return _common_root(_collection("extensions", _extension_node)(data))


def extension(data: dict[str, Any]) -> Node:
    return _common_root(_extension_node(data["extension"]))


def _version_node(data: dict[str, Any]) -> Node:
    node = Node("version", _attrs(data, ("id", "status", "updated")))
    if "media-types" in data:
        types = node.add(Node("media-types"))
        for item in data["media-types"]:
            types.add(Node("media-type", _attrs(item, ("base", "type"))))
    node.children += [atom_link(link) for link in data.get("links", [])]
    return node


def version(data: dict[str, Any]) -> Node:
    return _common_root(_version_node(data["version"]))


# --- servers and flavors (compute v1.1 namespace, Atom links, extension attributes) -----------


def _addresses(data: dict[str, list[dict[str, Any]]]) -> Node:
    node = Node("addresses")
    for network, items in data.items():
        net = node.add(Node("network", {"id": network}))
        for item in items:
            net.add(Node("ip", dict(item)))
    return node


def _element(tag: str, data: dict[str, Any]) -> Node:
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
            node.add(_addresses(value))
        elif isinstance(value, dict):
            node.add(_element(name, value))
        elif isinstance(value, list):
            items = node.add(Node(name))
            items.children += [_element(_ITEMS.get(key, "item"), i) if isinstance(i, dict)
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


def _compute_root(node: Node) -> Node:
    declared = {f"xmlns:{p}": EXT_NAMESPACES[p] for p in sorted(_prefixes(node, set()))}
    node.attrs = {"xmlns": XMLNS_V11, "xmlns:atom": XMLNS_ATOM, **declared, **node.attrs}
    return node


def _compute_single(key: str) -> Callable[[Any], Node]:
    return lambda data: _compute_root(_element(key, data[key]))


def _compute_collection(key: str, item: str) -> Callable[[Any], Node]:
    def template(data: dict[str, Any]) -> Node:
        node = Node(key, children=[_element(item, i) for i in data[key]])
        node.children += [atom_link(link) for link in data.get(f"{key}_links", [])]
        return _compute_root(node)

    return template


server = _compute_single("server")
servers = _compute_collection("servers", "server")
flavor = _compute_single("flavor")
flavors = _compute_collection("flavors", "flavor")


def server_created(data: dict[str, Any]) -> Node:
    """Juno's ``FullServerTemplate`` on the create answer: id, adminPass, an empty
    ``<metadata/>`` and the links."""
    body = data["server"]
    node = Node("server", _attrs(body, ("id", "adminPass")))
    node.add(meta({}))
    node.children += [atom_link(link) for link in body.get("links", [])]
    return _compute_root(node)


def addresses(data: dict[str, Any]) -> Node:
    return _compute_root(_addresses(data["addresses"]))
