"""Libvirt ``<disk>`` elements for volumes, from a storage driver's connection info.

Each ``driver_volume_type`` (Cinder's name for how a volume is reached) has a source builder
here: ``file``, ``nbd`` and ``rbd`` (QEMU's own userspace clients) today; iscsi adds its own to
``SOURCES``. A disk's ``<serial>`` is the volume id as virtio keeps it and its user alias
``ua-<volume id>``, so the domain itself records which volume each disk is. Connection info
with ``access_mode`` ``ro`` gives a ``<readonly/>`` disk, and front-end ``qos_specs`` an
``<iotune>``, as Nova does.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from stackvol.virt.base import ComputeError

ALIAS_PREFIX = "ua-"  # libvirt keeps user aliases that start with "ua-"
SERIAL_MAX = 20  # bytes of a virtio-blk serial the guest sees
# QoS keys libvirt's <iotune> takes (in its order), as Nova's volume drivers pass them on.
IOTUNE_KEYS = ("total_bytes_sec", "read_bytes_sec", "write_bytes_sec", "total_iops_sec",
               "read_iops_sec", "write_iops_sec", "total_bytes_sec_max", "read_bytes_sec_max",
               "write_bytes_sec_max", "total_iops_sec_max", "read_iops_sec_max",
               "write_iops_sec_max", "size_iops_sec")


def _file_source(disk: ET.Element, data: dict[str, Any]) -> None:
    disk.set("type", "file")
    sub(disk, "driver", name="qemu", type=data.get("format", "raw"))
    sub(disk, "source", file=data["device_path"])


def _nbd_source(disk: ET.Element, data: dict[str, Any]) -> None:
    # QEMU's own NBD client; the export serves the guest-visible bytes, so the format is raw.
    disk.set("type", "network")
    sub(disk, "driver", name="qemu", type=data.get("format", "raw"))
    source = sub(disk, "source", protocol="nbd", name=data["export"])
    sub(source, "host", name=str(data["host"]), port=str(data["port"]))


def _rbd_source(disk: ET.Element, data: dict[str, Any]) -> None:
    # QEMU's own librbd client (qemu-block-extra) reaches the monitors listed; the cephx key is
    # in the libvirt secret named here (``ensure_secret`` defines it first).
    disk.set("type", "network")
    sub(disk, "driver", name="qemu", type="raw", cache="none", discard="unmap")
    source = sub(disk, "source", protocol="rbd", name=data["name"])
    for host, port in zip(data.get("hosts") or [], data.get("ports") or [], strict=True):
        sub(source, "host", name=str(host), port=str(port))
    if data.get("auth_enabled"):
        auth = sub(disk, "auth", username=str(data["auth_username"]))
        sub(auth, "secret", type=str(data.get("secret_type") or "ceph"),
            uuid=str(data["secret_uuid"]))


SOURCES: dict[str, Callable[[ET.Element, dict[str, Any]], None]] = {"file": _file_source,
                                                                     "nbd": _nbd_source,
                                                                     "rbd": _rbd_source}


def ensure_secret(conn: Any, lv: Any, connection_info: dict[str, Any] | None) -> None:
    """Define (once) and fill the libvirt secret an authenticated rbd disk names, from the key
    in its connection info, so any host can attach it. Without a key the secret must be there
    already (defined by the host's administrator, as Nova's ``rbd_secret_uuid``)."""
    data = (connection_info or {}).get("data") or {}
    if (connection_info or {}).get("driver_volume_type") != "rbd" or \
            not data.get("auth_enabled"):
        return
    uuid, key = str(data.get("secret_uuid") or ""), data.get("key")
    if not uuid:
        raise ComputeError("rbd connection info with cephx but no secret uuid")
    try:
        try:
            secret = conn.secretLookupByUUIDString(uuid)
        except lv.libvirtError as exc:
            if exc.get_error_code() != lv.VIR_ERR_NO_SECRET or not key:
                raise
            secret = conn.secretDefineXML(_secret_xml(uuid, str(data["auth_username"])))
        if key:
            secret.setValue(base64.b64decode(key))
    except lv.libvirtError as exc:
        raise ComputeError(f"cannot set up libvirt secret {uuid} for Ceph user "
                           f"{data.get('auth_username')}: {exc.get_error_message()}") from exc


def _secret_xml(uuid: str, user: str) -> str:
    secret = ET.Element("secret", ephemeral="no", private="yes")
    sub(secret, "uuid", uuid)
    sub(secret, "description", f"stackvol: cephx key of client.{user}")
    # Usage names are unique per host: the uuid tells two clusters' same-named users apart.
    sub(sub(secret, "usage", type="ceph"), "name", f"client.{user} secret {uuid}")
    return ET.tostring(secret, encoding="unicode")


def _iotune(disk: ET.Element, specs: Any) -> None:
    """Front-end QoS specs (Cinder's ``qos_specs`` in the connection data) as the disk's
    ``<iotune>`` limits, as Nova's libvirt volume drivers apply them; other keys are the
    storage's business and values that are not whole numbers are left out."""
    if not isinstance(specs, dict):
        return
    limits = {key: str(specs[key]).strip() for key in IOTUNE_KEYS if key in specs}
    limits = {key: value for key, value in limits.items() if value.isdigit()}
    if limits:
        iotune = sub(disk, "iotune")
        for key, value in limits.items():
            sub(iotune, key, value)


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
    if data.get("access_mode") == "ro":  # a read-only volume (Cinder's readonly flag)
        sub(disk, "readonly")
    _iotune(disk, data.get("qos_specs"))
    sub(disk, "serial", volume_id[:SERIAL_MAX])
    sub(disk, "alias", name=ALIAS_PREFIX + volume_id)
    return disk


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element
