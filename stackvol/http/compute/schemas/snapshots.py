"""Request schemas of ``/os-snapshots`` (the same rules as Nova's v2.1 validation)."""

from stackvol.http.validation import Schema

# Nova's ``parameter_types.boolean``: JSON booleans or these exact spellings.
TRUE_STRINGS = ("True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes")
FALSE_STRINGS = ("False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no")
boolean = {"type": ["boolean", "string"], "enum": [True, *TRUE_STRINGS, False, *FALSE_STRINGS]}

create = Schema({
    "type": "object",
    "properties": {
        "snapshot": {
            "type": "object",
            "properties": {
                "volume_id": {"type": "string"},
                "force": boolean,
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


def to_bool(value: bool | str) -> bool:
    """A value ``boolean`` accepted, as ``strutils.bool_from_string(strict=True)`` reads it."""
    return value is True or value in TRUE_STRINGS
