"""How a volume transfer reads on the Block Storage API (Cinder's view, by microversion)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from stackvol.http.block_storage.common import at_least, links
from stackvol.http.timefmt import isotime
from stackvol.services.volumes.transfers import Transfer


def summary(request: Request, collection: str, transfer: Transfer) -> dict[str, Any]:
    return {"id": transfer.id, "volume_id": transfer.volume_id, "name": transfer.display_name,
            "links": links(request, collection, transfer.id)}


def detail(request: Request, collection: str, transfer: Transfer) -> dict[str, Any]:
    """Show and detail list; a create adds the auth key."""
    body = {**summary(request, collection, transfer),
            "created_at": isotime(transfer.created_at)}
    if at_least(request, "3.55"):
        body["no_snapshots"] = transfer.no_snapshots
    if at_least(request, "3.57"):
        # Only pending transfers are kept: none has been accepted by anyone yet.
        body.update(source_project_id=transfer.project_id, destination_project_id=None,
                    accepted=False)
    if transfer.auth_key is not None:
        body["auth_key"] = transfer.auth_key
    return body
