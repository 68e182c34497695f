"""How an attachment reads on the attachments API (Cinder's summary and detail)."""

from __future__ import annotations

from typing import Any

from stackvol.http.timefmt import isotime
from stackvol.services.attachments.cinder_api import attach_mode
from stackvol.services.common.records import Attachment
from stackvol.services.common.status import AttachmentStatus


def summary(att: Attachment) -> dict[str, Any]:
    return {"id": att.id, "status": att.status, "instance": att.server_id or None,
            "volume_id": att.volume_id}


def detail(att: Attachment) -> dict[str, Any]:
    attached = att.status in (AttachmentStatus.ATTACHED, AttachmentStatus.DETACHING)
    info = att.connection_info if att.status != AttachmentStatus.RESERVED else None
    return {**summary(att),
            "attached_at": isotime(att.updated_at or att.created_at) if attached else "",
            "detached_at": "",
            "attach_mode": attach_mode(att),
            "connection_info": info if info and "driver_volume_type" in info else None}
