"""How a volume reads on the Compute API (``/os-volumes``): Nova's camelCase view."""

from __future__ import annotations

from typing import Any

from stackvol.http.timefmt import isotime
from stackvol.services.common.records import Volume

# Statuses Cinder has that Nova's proxy folds into ones its schema knows.
_STATUS_MAP = {"error_managing": "error", "managing": "creating"}


def attachment_summary(volume: Volume) -> list[dict[str, Any]]:
    """The first attachment only (as Nova shows multiattach volumes), or ``[{}]`` if none."""
    if not volume.attachments:
        return [{}]
    first = volume.attachments[0]
    item: dict[str, Any] = {"id": volume.id, "volumeId": volume.id, "serverId": first.server_id}
    if first.device:
        item["device"] = first.device
    return [item]


def volume(vol: Volume, created_at=isotime) -> dict[str, Any]:
    return {
        "attachments": attachment_summary(vol),
        "availabilityZone": vol.availability_zone,
        "createdAt": created_at(vol.created_at),
        "displayDescription": vol.display_description,
        "displayName": vol.display_name,
        "id": vol.id,
        "metadata": vol.metadata or {},
        "size": vol.size,
        "snapshotId": vol.snapshot_id,
        "status": _STATUS_MAP.get(vol.status, vol.status),
        "volumeType": vol.volume_type,
    }
