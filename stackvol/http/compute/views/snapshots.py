"""How a snapshot reads on the Compute API (``/os-snapshots``): Nova's camelCase view."""

from __future__ import annotations

from typing import Any

from stackvol.http.timefmt import isotime
from stackvol.services.common.records import Snapshot


def snapshot(snap: Snapshot) -> dict[str, Any]:
    return {
        "createdAt": isotime(snap.created_at),
        "displayDescription": snap.display_description,
        "displayName": snap.display_name,
        "id": snap.id,
        "size": snap.size,  # Nova shows the volume's size as the snapshot's
        "status": snap.status,
        "volumeId": snap.volume_id,
    }
