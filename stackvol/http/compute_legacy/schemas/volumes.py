"""Request bodies of ``/os-volumes`` on the legacy paths: the v2.1 schema, and the XML of
Folsom-Juno's ``CreateDeserializer``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from stackvol.http.compute.schemas import volumes as v21
from stackvol.http.compute_legacy import xml as xmlutil
from stackvol.http.compute_legacy.schemas.common import LegacySchema

create = LegacySchema(v21.create)

# Only these snake_case attributes, plus <metadata>.
_CREATE_ATTRS = ("display_name", "display_description", "size", "volume_type",
                 "availability_zone")


def decode_create(root: ET.Element) -> dict[str, Any]:
    if xmlutil.local(root.tag) != "volume":
        return {}
    volume: dict[str, Any] = xmlutil.attributes(root, _CREATE_ATTRS)
    found = xmlutil.child(root, "metadata")
    if found is not None:
        volume["metadata"] = xmlutil.metadata(found)
    return {"volume": volume}
