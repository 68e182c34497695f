"""Request bodies of the volumes API."""

from __future__ import annotations

from stackvol.http.block_storage.schemas.common import (
    DESCRIPTION,
    METADATA,
    METADATA_OR_NULL,
    NAME,
    SIZE,
    UUID_OR_NULL,
    wrapped,
)
from stackvol.http.validation import Schema

_CREATE = wrapped("volume", {
    "name": NAME, "description": DESCRIPTION, "display_name": NAME,
    "display_description": DESCRIPTION,
    "volume_type": {"type": ["string", "null"], "minLength": 0, "maxLength": 255},
    "metadata": METADATA_OR_NULL, "snapshot_id": UUID_OR_NULL, "source_volid": UUID_OR_NULL,
    "consistencygroup_id": UUID_OR_NULL, "size": {**SIZE, "type": ["integer", "string", "null"]},
    "availability_zone": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
    "multiattach": {"type": ["boolean", "string", "null"]},
    "image_id": {"type": ["string", "null"], "minLength": 0, "maxLength": 255},
    "imageRef": {"type": ["string", "null"], "minLength": 0, "maxLength": 255},
    "group_id": {"type": ["string", "null"], "minLength": 0, "maxLength": 255},
    "backup_id": UUID_OR_NULL,
}, additional=True)
_CREATE["properties"]["OS-SCH-HNT:scheduler_hints"] = {"type": ["object", "null"]}
create = Schema(_CREATE)
create_v353 = Schema({**_CREATE, "properties": {
    **_CREATE["properties"],
    "volume": {**_CREATE["properties"]["volume"], "additionalProperties": False}}})

_UPDATE_FIELDS = {"name": NAME, "description": DESCRIPTION, "display_name": NAME,
                  "display_description": DESCRIPTION, "metadata": METADATA}
_UPDATE = wrapped("volume", _UPDATE_FIELDS)
update = Schema(_UPDATE)
update_v353 = Schema({**_UPDATE, "properties": {"volume": {
    **_UPDATE["properties"]["volume"],
    "anyOf": [{"required": [name]} for name in _UPDATE_FIELDS]}}})
