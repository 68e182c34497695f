"""Request bodies of ``os-quota-sets``."""

from __future__ import annotations

from stackvol.http.validation import Schema

update = Schema({"type": "object", "properties": {"quota_set": {
    "type": "object",
    "additionalProperties": {"type": ["integer", "string"], "pattern": "^-?[0-9]+$"}}},
    "required": ["quota_set"], "additionalProperties": False})
