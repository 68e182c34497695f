"""Request bodies of the attachments API."""

from __future__ import annotations

from stackvol.http.block_storage.schemas.common import UUID, strict, wrapped
from stackvol.http.validation import Schema

_CREATE = wrapped("attachment", {"instance_uuid": UUID, "connector": {"type": ["object", "null"]},
                                 "volume_uuid": UUID}, ["volume_uuid"])
create = Schema(_CREATE)
_V354 = strict(_CREATE, "attachment")
_V354["properties"]["attachment"]["properties"]["mode"] = {"type": "string",
                                                           "enum": ["rw", "ro"]}
create_v354 = Schema(_V354)
update = Schema(wrapped("attachment", {"connector": {"type": "object"}}, ["connector"]))
complete = Schema({"type": "object", "properties": {"os-complete": {"type": ["object", "null"]}},
                   "required": ["os-complete"], "additionalProperties": False})
