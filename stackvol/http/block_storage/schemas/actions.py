"""Request bodies of the volume actions (``POST /volumes/{id}/action``)."""

from __future__ import annotations

from stackvol.http.block_storage.schemas.common import BOOLEAN, SIZE, UUID, UUID_OR_NULL, wrapped
from stackvol.http.validation import Schema

_EMPTY = {"type": ["object", "null"], "additionalProperties": False}
_CONNECTOR = {"type": ["object", "null", "string"]}

SCHEMAS: dict[str, Schema] = {
    "os-extend": Schema(wrapped("os-extend", {"new_size": SIZE}, ["new_size"])),
    "os-reset_status": Schema(wrapped("os-reset_status", {
        "status": {"type": "string"}, "attach_status": {"type": "string"},
        "migration_status": {"type": "string"}})),
    "os-set_bootable": Schema(wrapped("os-set_bootable", {"bootable": BOOLEAN},
                                      ["bootable"])),
    "os-attach": Schema(wrapped("os-attach", {
        "instance_uuid": UUID, "mountpoint": {"type": "string"},
        "host_name": {"type": "string", "maxLength": 255},
        "mode": {"type": "string", "enum": ["rw", "ro"]}}, ["mountpoint"])),
    "os-detach": Schema({"type": "object", "properties": {"os-detach": {
        "type": ["object", "null"], "properties": {"attachment_id": UUID_OR_NULL},
        "additionalProperties": False}}}),
    "os-initialize_connection": Schema(wrapped("os-initialize_connection",
                                               {"connector": {"type": "object"}},
                                               ["connector"])),
    "os-terminate_connection": Schema(wrapped("os-terminate_connection",
                                              {"connector": _CONNECTOR}, ["connector"])),
    "os-force_detach": Schema(wrapped("os-force_detach", {
        "attachment_id": UUID_OR_NULL, "connector": {"type": ["object", "null"]}})),
    "os-update_readonly_flag": Schema(wrapped("os-update_readonly_flag",
                                              {"readonly": BOOLEAN}, ["readonly"])),
    "os-set_image_metadata": Schema(wrapped("os-set_image_metadata", {"metadata": {
        "type": "object", "additionalProperties": {"type": "string", "maxLength": 255},
        "propertyNames": {"minLength": 1, "maxLength": 255}}}, ["metadata"])),
    "os-unset_image_metadata": Schema(wrapped("os-unset_image_metadata", {"key": {
        "type": "string", "minLength": 1, "maxLength": 255}}, ["key"])),
    "os-retype": Schema(wrapped("os-retype", {
        "new_type": {"type": "string", "minLength": 1, "maxLength": 255},
        "migration_policy": {"type": ["string", "null"], "enum": ["never", "on-demand", None]}},
        ["new_type"])),
    "os-extend_volume_completion": Schema(wrapped("os-extend_volume_completion",
                                                  {"error": {"type": "boolean"}})),
}
for _name in ("os-force_delete", "os-show_image_metadata", "os-reserve", "os-unreserve",
              "os-begin_detaching", "os-roll_detaching"):
    SCHEMAS[_name] = Schema({"type": "object", "properties": {_name: _EMPTY}})
