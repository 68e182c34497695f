"""Request bodies of the volume transfer API (``os-volume-transfer``, ``volume-transfers``)."""

from __future__ import annotations

from stackvol.http.block_storage.schemas.common import BOOLEAN, NAME, UUID, wrapped
from stackvol.http.validation import Schema

_CREATE = {"volume_id": UUID, "name": NAME}
create = Schema(wrapped("transfer", _CREATE, ["volume_id"]))
create_v355 = Schema(wrapped("transfer", {**_CREATE, "no_snapshots": BOOLEAN}, ["volume_id"]))
accept = Schema(wrapped("accept", {"auth_key": {"type": "string", "minLength": 1,
                                                "maxLength": 255}}, ["auth_key"]))
