"""Request schemas of ``/os-volumes`` (the same rules as Nova's v2.1 validation)."""

from stackvol.http.validation import Schema

create = Schema({
    "type": "object",
    "properties": {
        "volume": {
            "type": "object",
            "properties": {
                "volume_type": {"type": "string"},
                "metadata": {"type": "object", "additionalProperties": True},
                "snapshot_id": {"type": "string"},
                "size": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
                "availability_zone": {"type": "string"},
                "display_name": {"type": "string"},
                "display_description": {"type": "string"},
            },
            "required": ["size"],
            "additionalProperties": False,
        },
    },
    "required": ["volume"],
    "additionalProperties": False,
})
