"""Block device mappings of a server create request (boot from volume), read as Nova reads them.

Both syntaxes become one list of ``BlockDevice``: ``block_device_mapping_v2`` (``source_type``,
``destination_type``, ``uuid``, ``boot_index``...) and the legacy ``block_device_mapping`` of
``os-volumes_boot`` (``volume_id`` / ``snapshot_id`` and a ``device_name``, the root being
``vda``). Only mappings with a volume destination matter to stackvol: the rest (the image's own
local disk, ephemeral and swap disks) are the simulated hypervisor's business and are kept only
in the server's recorded request.

Validation follows Nova's ``BlockDeviceDict.from_api`` and ``compute.API._validate_bdm``, with
their messages; every failure is a 400 (``InvalidBDM*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stackvol.services.common.errors import Invalid

SOURCES = ("volume", "image", "snapshot", "blank")
ROOT_DEVICE = "/dev/vda"
INVALID_BDM = "Block Device Mapping is Invalid"
BOOT_SEQUENCE = (f"{INVALID_BDM}: Boot sequence for the instance and image/block device mapping "
                 f"combination is not valid.")
_TRUE = {"1", "t", "true", "on", "y", "yes"}


@dataclass(frozen=True, slots=True)
class BlockDevice:
    source_type: str
    destination_type: str
    uuid: str | None
    boot_index: int | None
    volume_size: int | None = None
    delete_on_termination: bool = False
    device_name: str | None = None
    tag: str | None = None

    @property
    def is_volume(self) -> bool:
        return self.destination_type == "volume"

    @property
    def is_root(self) -> bool:
        return self.boot_index == 0


def _invalid_format(details: str) -> Invalid:
    return Invalid(f"{INVALID_BDM}: {details}")


def _bool(value: Any) -> bool:
    return value is True or str(value).strip().lower() in _TRUE


def _int_or_none(value: Any, details: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _invalid_format(details) from None


def prepend_dev(name: str | None) -> str | None:
    """Nova keeps device names as given; ``vdb`` and ``/dev/vdb`` are the same disk."""
    if not name:
        return None
    return name if name.startswith("/dev/") else "/dev/" + name


def from_api(item: dict[str, Any], image_ref: str | None) -> BlockDevice:
    """One ``block_device_mapping_v2`` entry (Nova's ``BlockDeviceDict.from_api``)."""
    source = item.get("source_type")
    uuid = item.get("uuid") or item.get("volume_id") or item.get("snapshot_id") \
        or item.get("image_id")
    if source not in SOURCES:
        raise _invalid_format("Invalid source_type field.")
    if source == "blank" and item.get("uuid"):
        raise _invalid_format("Invalid device UUID.")
    if source != "blank" and not uuid:
        raise _invalid_format("Missing device UUID.")
    boot_index = _int_or_none(item.get("boot_index"), "Boot index is invalid.")
    # Nova's default destination: volumes and snapshots are volumes, the rest local disks.
    destination = item.get("destination_type") or (
        "volume" if source in ("volume", "snapshot") else "local")
    if source == "image" and destination == "local" and not (image_ref and boot_index == 0):
        raise _invalid_format("Mapping image to local is not supported.")
    return BlockDevice(
        source_type=source, destination_type=destination,
        uuid=None if source == "blank" else uuid, boot_index=boot_index,
        volume_size=_int_or_none(item.get("volume_size"), "Invalid volume_size."),
        delete_on_termination=_bool(item.get("delete_on_termination", False)),
        device_name=prepend_dev(item.get("device_name")), tag=item.get("tag"))


def from_legacy(items: list[dict[str, Any]], image_ref: str | None) -> list[BlockDevice]:
    """Legacy mappings (Nova's ``from_legacy_mapping``): the one named ``vda`` is the root."""
    out = []
    for item in items:
        name = prepend_dev(item.get("device_name"))
        if item.get("no_device") or _is_local(item.get("virtual_name")):
            continue  # "no device here", or an ephemeral/swap disk: not a volume
        if item.get("snapshot_id"):
            source, uuid = "snapshot", item["snapshot_id"]
        elif item.get("volume_id"):
            source, uuid = "volume", item["volume_id"]
        else:
            raise _invalid_format("Unrecognized legacy format.")
        if image_ref and name == ROOT_DEVICE:
            raise Invalid("The volume cannot be assigned the same device name as the root "
                          "device vda")
        out.append(BlockDevice(
            source_type=source, destination_type="volume", uuid=uuid,
            boot_index=0 if name == ROOT_DEVICE else -1,
            volume_size=_int_or_none(item.get("volume_size"), "Invalid volume_size."),
            delete_on_termination=_bool(item.get("delete_on_termination", False)),
            device_name=name))
    return out


def _is_local(virtual_name: Any) -> bool:
    return isinstance(virtual_name, str) and bool(
        virtual_name == "swap" or re.fullmatch(r"ephemeral\d+", virtual_name))


def parse(v2: list[dict[str, Any]], legacy: list[dict[str, Any]],
          image_ref: str | None) -> list[BlockDevice]:
    """Both syntaxes into one list, with Nova's checks of the boot sequence and sizes."""
    if v2 and legacy:
        raise Invalid("Using different block_device_mapping syntaxes is not allowed in the "
                      "same request.")
    devices = [from_api(item, image_ref) for item in v2] if v2 else from_legacy(legacy,
                                                                                 image_ref)
    check_boot_sequence(devices, image_ref)
    for device in devices:
        if device.is_volume and device.source_type in ("blank", "image") \
                and not device.volume_size:
            what = ("Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size"
                    if device.source_type == "blank" else
                    "Images with destination_type 'volume' need to have a non-zero size "
                    "specified")
            raise Invalid(f"{INVALID_BDM}: {what}")
    return devices


def check_boot_sequence(devices: list[BlockDevice], image_ref: str | None) -> None:
    """Boot indexes 0, 1, 2... with no gap; an image without a root mapping is index 0."""
    indexes = sorted(d.boot_index for d in devices
                     if d.boot_index is not None and d.boot_index >= 0)
    if image_ref and 0 not in indexes:
        indexes = sorted([0, *indexes])
    if not indexes or any(i != index for i, index in enumerate(indexes)):
        raise Invalid(BOOT_SEQUENCE)
