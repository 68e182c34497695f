"""A volume attachment on the legacy paths: the v2.1 view at 2.1; in XML, one element of
attributes."""

from __future__ import annotations

from typing import Any

from stackvol.http.compute.views import volume_attachments as v21
from stackvol.http.compute_legacy.common import V2_1
from stackvol.http.compute_legacy.views.templates import attrs, collection, single
from stackvol.http.compute_legacy.xml import Node
from stackvol.services.common.records import Attachment

ATTACHMENT_ATTRS = ("id", "serverId", "volumeId", "device")


def attachment(att: Attachment, created: bool = False) -> dict[str, Any]:
    return v21.attachment(att, V2_1, created=created)


def _attachment_node(data: dict[str, Any]) -> Node:
    return Node("volumeAttachment", attrs(data, ATTACHMENT_ATTRS))


attachment_xml = single("volumeAttachment", _attachment_node)
attachments_xml = collection("volumeAttachments", _attachment_node)
