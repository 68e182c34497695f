"""Request bodies of the volume types API."""

from __future__ import annotations

from stackvol.http.block_storage.schemas.common import BOOLEAN, METADATA, wrapped
from stackvol.http.validation import Schema

_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
create = Schema(wrapped("volume_type", {
    "name": _NAME, "description": _DESCRIPTION, "extra_specs": METADATA,
    "os-volume-type-access:is_public": BOOLEAN}, ["name"]))
update = Schema(wrapped("volume_type", {
    "name": {**_NAME, "type": ["string", "null"]}, "description": _DESCRIPTION,
    "is_public": BOOLEAN}))
extra_specs = Schema({"type": "object", "properties": {"extra_specs": METADATA},
                      "required": ["extra_specs"], "additionalProperties": False})
spec_item = Schema({**METADATA, "minProperties": 1, "maxProperties": 1})
# Type access actions: ``{"addProjectAccess": {"project": ...}}`` and removeProjectAccess.
ACCESS_ACTIONS = ("addProjectAccess", "removeProjectAccess")
access = {name: Schema(wrapped(name, {"project": {"type": "string", "minLength": 1,
                                                  "maxLength": 255}}, ["project"]))
          for name in ACCESS_ACTIONS}
