"""Parameter types of the Block Storage request schemas (as Cinder's ``parameter_types``)."""

from __future__ import annotations

import copy
from typing import Any

NAME = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
METADATA = {
    "type": "object",
    "patternProperties": {"^[a-zA-Z0-9-_:. /]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
METADATA_OR_NULL = {**METADATA, "type": ["object", "null"]}
UUID = {"type": "string", "format": "uuid"}
UUID_OR_NULL = {"type": ["string", "null"], "format": "uuid"}
SIZE = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1,
        "maximum": 2147483647}
BOOLEAN = {"type": ["boolean", "string"]}


def wrapped(key: str, properties: dict[str, Any], required: list[str] | None = None,
            additional: bool = False) -> dict[str, Any]:
    """``{"<key>": {...}}`` with the inner object's properties."""
    inner: dict[str, Any] = {"type": "object", "properties": properties,
                             "additionalProperties": additional}
    if required:
        inner["required"] = required
    return {"type": "object", "properties": {key: inner}, "required": [key],
            "additionalProperties": False}


def strict(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """The same schema refusing unknown properties inside ``key``."""
    out = copy.deepcopy(schema)
    out["properties"][key]["additionalProperties"] = False
    return out
