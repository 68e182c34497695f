"""How a snapshot reads on the Block Storage API (Cinder's view)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from stackvol.http.block_storage.common import at_least
from stackvol.http.timefmt import isotime
from stackvol.services.common.records import Snapshot
from stackvol.services.common.status import SnapshotStatus


def snapshot(request: Request, snap: Snapshot, extended: bool = True) -> dict[str, Any]:
    """``extended`` adds the os-extended-snapshot-attributes (show and detail only)."""
    body: dict[str, Any] = {
        "id": snap.id,
        "created_at": isotime(snap.created_at),
        "updated_at": isotime(snap.updated_at),
        "name": snap.display_name,
        "description": snap.display_description,
        "volume_id": snap.volume_id,
        "status": snap.status,
        "size": snap.size,
        "metadata": snap.metadata or {},
    }
    if extended:
        done = snap.status == SnapshotStatus.AVAILABLE
        body["os-extended-snapshot-attributes:project_id"] = snap.project_id
        body["os-extended-snapshot-attributes:progress"] = snap.progress or (
            "100%" if done else "0%")
    if at_least(request, "3.14"):
        body["group_snapshot_id"] = None
    if at_least(request, "3.41"):
        body["user_id"] = snap.user_id
    if at_least(request, "3.65"):
        body["consumes_quota"] = True
    return body
