"""Request bodies of the snapshots API."""

from __future__ import annotations

from stackvol.http.validation import Schema
from stackvol.http.volume.schemas.common import (
    BOOLEAN,
    DESCRIPTION,
    METADATA_OR_NULL,
    NAME,
    UUID,
    wrapped,
)

create = Schema(wrapped("snapshot", {
    "name": NAME, "display_name": NAME, "description": DESCRIPTION,
    "display_description": DESCRIPTION, "volume_id": UUID, "force": BOOLEAN,
    "metadata": METADATA_OR_NULL}, ["volume_id"]))
_UPDATE_FIELDS = {"name": NAME, "display_name": NAME, "description": DESCRIPTION,
                  "display_description": DESCRIPTION}
update = Schema({**wrapped("snapshot", _UPDATE_FIELDS), "properties": {"snapshot": {
    "type": "object", "properties": _UPDATE_FIELDS, "additionalProperties": False,
    "anyOf": [{"required": [name]} for name in _UPDATE_FIELDS]}}})

