"""Request bodies of ``/os-snapshots`` on the legacy paths (XML read by Nova's generic
deserializer)."""

from __future__ import annotations

from stackvol.http.compute.schemas import snapshots as v21
from stackvol.http.compute_legacy.schemas.common import LegacySchema

create = LegacySchema(v21.create)
