"""Parameter types shared by the compute request schemas (as Nova's ``parameter_types``).

A boolean that passed one of these reads as ``parse_bool(value, NOVA_BOOL)``
(``stackvol.http.common``).
"""

from __future__ import annotations

from typing import Any

_TRUE: list[Any] = [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes"]
_FALSE: list[Any] = [False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"]
# JSON booleans or these exact spellings.
BOOLEAN: dict[str, Any] = {"type": ["boolean", "string"], "enum": [*_TRUE, *_FALSE]}
# The servers schemas also take oslo's one-letter spellings (as Nova's newer ``boolean``).
BOOLEAN_WITH_LETTERS: dict[str, Any] = {"type": ["boolean", "string"],
                                        "enum": [*_TRUE, "y", "t", *_FALSE, "n", "f"]}

UUID = {"type": "string", "format": "uuid"}
