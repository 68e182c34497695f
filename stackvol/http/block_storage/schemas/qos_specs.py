"""Request bodies of ``qos-specs`` (Cinder's schemas)."""

from __future__ import annotations

from stackvol.http.validation import Schema

_KEY = "^[a-zA-Z0-9-_:. /]{1,255}$"
# A name that is more than blanks, at most 255 long (Cinder's
# name_skip_leading_trailing_spaces); any other key is a spec, kept as text.
create = Schema({"type": "object", "properties": {"qos_specs": {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255,
                            "pattern": r"^\s*\S.*$"}},
    "required": ["name"], "additionalProperties": True}},
    "required": ["qos_specs"], "additionalProperties": False})
# Keys to set (a null value unsets one).
update = Schema({"type": "object", "properties": {"qos_specs": {
    "type": "object",
    "patternProperties": {_KEY: {"type": ["string", "null"], "maxLength": 255}},
    "additionalProperties": False}},
    "required": ["qos_specs"], "additionalProperties": False})
delete_keys = Schema({"type": "object", "properties": {"keys": {
    "type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255},
    "uniqueItems": True}},
    "required": ["keys"], "additionalProperties": False})
