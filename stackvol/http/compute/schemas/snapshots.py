"""Request schemas of ``/os-snapshots`` (the same rules as Nova's v2.1 validation)."""

from stackvol.http.compute.schemas.parameters import BOOLEAN
from stackvol.http.validation import Schema

create = Schema({
    "type": "object",
    "properties": {
        "snapshot": {
            "type": "object",
            "properties": {
                "volume_id": {"type": "string"},
                "force": BOOLEAN,
                "display_name": {"type": "string"},
                "display_description": {"type": "string"},
            },
            "required": ["volume_id"],
            "additionalProperties": False,
        },
    },
    "required": ["snapshot"],
    "additionalProperties": False,
})
