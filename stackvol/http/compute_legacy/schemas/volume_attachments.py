"""Request bodies of ``/servers/{server_id}/os-volume_attachments`` on the legacy paths: attach
and swap as at v2.1 (XML read by Nova's generic deserializer)."""

from __future__ import annotations

from stackvol.http.compute.schemas import volume_attachments as v21
from stackvol.http.compute_legacy.schemas.common import LegacySchema

create = LegacySchema(v21.create_v21)
update = LegacySchema(v21.update_v21)
