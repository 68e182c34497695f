"""A volume on the legacy paths: the v2.1 view with the Essex ``createdAt``; in XML, attributes
and ``<attachments>``/``<metadata>`` children without a namespace."""

from __future__ import annotations

from typing import Any

from stackvol.http.compute.views import volumes as v21
from stackvol.http.compute_legacy.views.common import essex_time
from stackvol.http.compute_legacy.views.templates import attrs, collection, meta, single
from stackvol.http.compute_legacy.views.volume_attachments import ATTACHMENT_ATTRS
from stackvol.http.compute_legacy.xml import Node
from stackvol.services.common.records import Volume

VOLUME_ATTRS = ("id", "status", "size", "availabilityZone", "createdAt", "displayName",
                "displayDescription", "volumeType", "snapshotId")


def volume(vol: Volume) -> dict[str, Any]:
    return v21.volume(vol, created_at=essex_time)


def _volume_node(data: dict[str, Any]) -> Node:
    node = Node("volume", attrs(data, VOLUME_ATTRS))
    attachments = node.add(Node("attachments"))
    for item in data.get("attachments", []):
        attachments.add(Node("attachment", attrs(item, ATTACHMENT_ATTRS)))
    node.add(meta(data.get("metadata")))
    return node


volume_xml = single("volume", _volume_node)
volumes_xml = collection("volumes", _volume_node)
