"""Libvirt ``<disk>`` elements for volumes, from a storage driver's connection info.

Each ``driver_volume_type`` (Cinder's name for how a volume is reached) has a source builder
here: ``file`` today; rbd, iscsi and nbd (QEMU's own userspace clients) add theirs to
``SOURCES``. A disk's ``<serial>`` is the volume id as virtio keeps it and its user alias
``ua-<volume id>``, so the domain itself records which volume each disk is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from stackvol.compute.base import ComputeError

ALIAS_PREFIX = "ua-"  # libvirt keeps user aliases that start with "ua-"
SERIAL_MAX = 20  # bytes of a virtio-blk serial the guest sees


def _file_source(disk: ET.Element, data: dict[str, Any]) -> None:
    disk.set("type", "file")
    sub(disk, "driver", name="qemu", type=data.get("format", "raw"))
    sub(disk, "source", file=data["device_path"])


SOURCES: dict[str, Callable[[ET.Element, dict[str, Any]], None]] = {"file": _file_source}


def disk_xml(connection_info: dict[str, Any], target: str) -> ET.Element:
    """A virtio disk for a volume: serial = volume id (as virtio keeps it), alias ua-<id>."""
    kind = connection_info.get("driver_volume_type", "")
    data = connection_info.get("data") or {}
    volume_id = data.get("volume_id")
    if kind not in SOURCES:
        raise ComputeError(f"the libvirt driver cannot attach {kind or 'unknown'} volumes")
    if not volume_id:
        raise ComputeError("connection info without a volume id")
    disk = ET.Element("disk", device="disk")
    SOURCES[kind](disk, data)
    sub(disk, "target", dev=target, bus="virtio")
    sub(disk, "serial", volume_id[:SERIAL_MAX])
    sub(disk, "alias", name=ALIAS_PREFIX + volume_id)
    return disk


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element
