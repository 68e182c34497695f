"""How an attachment reads on ``os-volume_attachments``, field by field per microversion."""

from __future__ import annotations

from typing import Any

from stackvol.http.microversion import APIVersion, v
from stackvol.services.common.records import Attachment

V2_70, V2_79, V2_89 = v("2.70"), v("2.79"), v("2.89")


def attachment(att: Attachment, version: APIVersion, created: bool = False) -> dict[str, Any]:
    """The view of GET/list (``created=False``) or of the POST answer (``created=True``).

    The POST answer always has ``id`` and ``device`` and never the 2.89 fields (Nova did not
    apply 2.89 to it).
    """
    view: dict[str, Any] = {}
    if created or version < V2_89:
        view["id"] = att.volume_id
    view["serverId"] = att.server_id
    view["volumeId"] = att.volume_id
    if created or att.device:
        view["device"] = att.device
    if version >= V2_70:
        view["tag"] = att.tag
    if version >= V2_79:
        view["delete_on_termination"] = att.delete_on_termination
    if version >= V2_89 and not created:
        view["attachment_id"] = att.id
        view["bdm_uuid"] = att.bdm_uuid
    return view
