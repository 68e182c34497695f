"""Request bodies of the snapshots API."""

from __future__ import annotations

from stackvol.http.block_storage.schemas.common import (
    BOOLEAN,
    DESCRIPTION,
    METADATA_OR_NULL,
    NAME,
    UUID_OR_NULL,
    wrapped,
)
from stackvol.http.validation import Schema

create = Schema(wrapped("snapshot", {
    "name": NAME, "display_name": NAME, "description": DESCRIPTION,
    "display_description": DESCRIPTION, "volume_id": UUID_OR_NULL, "force": BOOLEAN,
    "metadata": METADATA_OR_NULL}, ["volume_id"]))
_UPDATE_FIELDS = {"name": NAME, "display_name": NAME, "description": DESCRIPTION,
                  "display_description": DESCRIPTION}
update = Schema({**wrapped("snapshot", _UPDATE_FIELDS), "properties": {"snapshot": {
    "type": "object", "properties": _UPDATE_FIELDS, "additionalProperties": False,
    "anyOf": [{"required": [name]} for name in _UPDATE_FIELDS]}}})

# ``POST /snapshots/{id}/action`` (Cinder's snapshot admin actions and snapshot_actions).
ACTIONS = {
    "os-reset_status": Schema(wrapped("os-reset_status", {"status": {"type": "string"}},
                                      ["status"])),
    "os-update_snapshot_status": Schema(wrapped("os-update_snapshot_status", {
        "status": {"type": "string"}, "progress": {"type": ["string", "null"]}},
        ["status"])),
    "os-force_delete": Schema({"type": "object", "properties": {
        "os-force_delete": {"type": ["object", "null"], "additionalProperties": False}}}),
}
