"""Request bodies of ``/servers`` (and ``/os-volumes_boot``) on the legacy paths: the v2.1
create schema, and the XML of Juno's ``ServerXMLDeserializer``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from stackvol.http.compute.schemas import servers as v21
from stackvol.http.compute_legacy import xml as xmlutil
from stackvol.http.compute_legacy.common import V2_1
from stackvol.http.compute_legacy.schemas.common import LegacySchema

create = LegacySchema(v21.create(V2_1))

_SERVER_ATTRS = ("name", "imageRef", "flavorRef", "adminPass", "accessIPv4", "accessIPv6",
                 "key_name", "availability_zone", "min_count", "max_count", "config_drive",
                 "return_reservation_id", "user_data")
_DISK_CONFIG = f"{{{xmlutil.EXT_NAMESPACES['OS-DCF']}}}diskConfig"


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
