"""XML for the legacy Compute API: a small element model rendered the way Nova's ``xmlutil``
templates did, and a hardened parser for request bodies.

The parser refuses any DTD (hence every entity, internal or external: billion laughs and XXE
fail at the ``<!DOCTYPE``), caps the body size, element count and nesting depth, and turns
every failure into a 400 fault, so a hostile body costs microseconds and no memory.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from stackvol.http.faults import Fault

DECLARATION = b"<?xml version='1.0' encoding='UTF-8'?>\n"
XMLNS_V11 = "http://docs.openstack.org/compute/api/v1.1"
XMLNS_COMMON = "http://docs.openstack.org/common/api/v1.0"
XMLNS_ATOM = "http://www.w3.org/2005/Atom"
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

MAX_XML_BYTES = 112 * 1024  # Nova's osapi_max_request_body_size
MAX_DEPTH = 32
MAX_ELEMENTS = 10_000

_ATTR_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
# Characters XML 1.0 cannot carry at all; a JSON string may hold them.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class Node:
    """One element: a tag (``prefix:name`` for namespaced ones), attributes, children, text."""

    tag: str
    attrs: dict[str, Any] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    text: str | None = None

    def add(self, child: Node) -> Node:
        self.children.append(child)
        return child


def text_value(value: Any) -> str:
    """As ``unicode(value)`` in Nova's templates: ``None`` is "None", booleans "True"/"False"."""
    return _INVALID.sub("\ufffd", str(value))


def _write(node: Node, out: list[str]) -> None:
    out.append(f"<{node.tag}")
    for name, value in node.attrs.items():
        out.append(f' {name}="{escape(text_value(value), _ATTR_ESCAPES)}"')
    if not node.children and node.text is None:
        out.append("/>")
        return
    out.append(">")
    if node.text is not None:
        out.append(escape(text_value(node.text)))
    for child in node.children:
        _write(child, out)
    out.append(f"</{node.tag}>")


def render(node: Node, declaration: bool = True) -> bytes:
    out: list[str] = []
    _write(node, out)
    body = "".join(out).encode()
    return DECLARATION + body if declaration else body


# --- parsing ---------------------------------------------------------------------------------


def parse(data: bytes) -> ET.Element:
    """The root element of a request body, or a 400 fault; never expands anything."""
    if len(data) > MAX_XML_BYTES:
        raise Fault(400, f"XML request body is larger than {MAX_XML_BYTES} bytes")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise Fault(400, "Cannot understand XML: DTDs and entities are not allowed") from None
    except (ET.ParseError, ValueError, LookupError):  # LookupError: an unknown encoding
        raise Fault(400, "Cannot understand XML") from None
    _check_size(root)
    return root


def _check_size(root: ET.Element) -> None:
    stack = [(root, 1)]
    count = 0
    while stack:
        element, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_ELEMENTS:
            raise Fault(400, "Cannot understand XML: the document is too deeply nested or "
                             "too large")
        stack.extend((child, depth + 1) for child in element)


def local(name: str) -> str:
    """A tag or attribute name without its ``{namespace}``."""
    return name.rsplit("}", 1)[-1]


def to_dict(element: ET.Element) -> Any:
    """Nova's generic ``XMLDeserializer``: text-only elements become their text; others a dict
    of their attributes and one entry per child element (all values strings)."""
    if len(element) == 0 and element.text is not None:
        return element.text
    out: dict[str, Any] = {local(k): v for k, v in element.attrib.items()}
    for child in element:
        out[local(child.tag)] = to_dict(child)
    return out


def generic(root: ET.Element) -> dict[str, Any]:
    return {local(root.tag): to_dict(root)}


def child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if local(c.tag) == name), None)


def children(element: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if element is None else [c for c in element if local(c.tag) == name]


def metadata(element: ET.Element | None) -> dict[str, str]:
    """``<metadata><meta key="k">v</meta>...</metadata>`` as a dict."""
    return {m.get("key", ""): m.text or "" for m in children(element, "meta")}


def attributes(element: ET.Element, names: tuple[str, ...]) -> dict[str, str]:
    """The named attributes that are present and not empty (as Nova's deserializers read)."""
    found = {local(k): v for k, v in element.attrib.items()}
    return {name: found[name] for name in names if found.get(name)}
