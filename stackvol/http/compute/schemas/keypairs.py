"""Request schemas of ``/os-keypairs``, microversion by microversion (Nova's
``schemas/keypairs.py``): ``type`` from 2.2, ``user_id`` from 2.10, and from 2.92 only imports
(``public_key`` required) with ``.`` and ``@`` allowed in names."""

from __future__ import annotations

import string
from typing import Any

from stackvol.http.microversion import APIVersion, v
from stackvol.http.validation import FORMATS, InvalidName, Schema
from stackvol.services.keypairs.api import TYPES

V2_2 = v("2.2")
V2_10 = v("2.10")
V2_92 = v("2.92")

SAFE_CHARS = string.ascii_letters + string.digits + "-_ "
SAFE_CHARS_292 = SAFE_CHARS + ".@"


def _safe_name(safe: str) -> Any:
    """A name of only ``safe`` characters, neither starting nor ending with a space (Nova's
    printable-name rule on top of its keypair-name format)."""
    def check(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if value != value.strip(" ") or any(char not in safe for char in value):
            raise InvalidName(f"Only expected characters: [{safe}]")
        return True

    return check


FORMATS.checks("keypair_name_20", raises=InvalidName)(_safe_name(SAFE_CHARS))
FORMATS.checks("keypair_name_292", raises=InvalidName)(_safe_name(SAFE_CHARS_292))


def _create(api_version: APIVersion) -> Schema:
    name_format = "keypair_name_292" if api_version >= V2_92 else "keypair_name_20"
    properties: dict[str, Any] = {
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "format": name_format},
        "public_key": {"type": "string"},
    }
    if api_version >= V2_2:
        properties["type"] = {"type": "string", "enum": list(TYPES)}
    if api_version >= V2_10:
        properties["user_id"] = {"type": "string"}
    return Schema({
        "type": "object",
        "properties": {"keypair": {
            "type": "object", "properties": properties,
            "required": ["name", "public_key"] if api_version >= V2_92 else ["name"],
            "additionalProperties": False,
        }},
        "required": ["keypair"],
        "additionalProperties": False,
    })


_CREATE = {version: _create(v(version)) for version in ("2.1", "2.2", "2.10", "2.92")}


def create(api_version: APIVersion) -> Schema:
    """The create (import) schema of ``api_version``."""
    for version in ("2.92", "2.10", "2.2"):
        if api_version >= v(version):
            return _CREATE[version]
    return _CREATE["2.1"]
