"""Parameter types shared by the compute request schemas (as Nova's ``parameter_types``)."""

BOOLEAN = {
    "type": ["boolean", "string"],
    "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
             False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"],
}

UUID = {"type": "string", "format": "uuid"}

TRUE_STRINGS = {"true", "1", "on", "yes"}


def to_bool(value: bool | str) -> bool:
    """A value that passed ``BOOLEAN`` as a Python bool (oslo's strict bool_from_string)."""
    return value if isinstance(value, bool) else value.strip().lower() in TRUE_STRINGS
