"""Request bodies of ``os-quota-sets`` and ``os-quota-class-sets``."""

from __future__ import annotations

from typing import Any

from stackvol.http.validation import Schema


def _limits(key: str) -> dict[str, Any]:
    """``{key: {resource: limit}}``, limits as integers or integer strings."""
    return {"type": "object", "properties": {key: {
        "type": "object",
        "additionalProperties": {"type": ["integer", "string"], "pattern": "^-?[0-9]+$"}}},
        "required": [key], "additionalProperties": False}


update = Schema(_limits("quota_set"))
update_class = Schema(_limits("quota_class_set"))
