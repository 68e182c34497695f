"""Request schemas of ``/servers`` (Nova's ``schemas/servers.py``), built per microversion."""

from __future__ import annotations

import copy
import functools
from typing import Any

from stackvol.http.compute.schemas.parameters import BOOLEAN_WITH_LETTERS
from stackvol.http.microversion import APIVersion, v
from stackvol.http.validation import Schema

# Nova's "name" format: printable, no leading or trailing whitespace.
NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": r"^(?![\s])[^\x00-\x1f]*(?<![\s])$"}
OPTIONAL_NAME: dict[str, Any] = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
# Nova checks a "uuid" format (oslo's is_uuid_like); Draft 4 has none, so a pattern does it.
UUID: dict[str, Any] = {"type": "string",
                        "pattern": "^(urn:uuid:)?[{]?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?"
                                   "[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}[}]?$"}
DESCRIPTION: dict[str, Any] = {"type": ["string", "null"], "minLength": 0, "maxLength": 255,
                               "pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"}
TAG: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 60,
                       "pattern": r"^[^,/]*$"}
METADATA: dict[str, Any] = {
    "type": "object",
    "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
HOSTNAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 63,
                            "pattern": r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"}
FQDN: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$"}

DEVICE_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255,
                               "pattern": r"^[a-zA-Z0-9._\-\/]*$"}
VOLUME_SIZE: dict[str, Any] = {"type": ["integer", "string", "null"], "pattern": "^[0-9]+$",
                               "minimum": 0}

_NETWORK: dict[str, Any] = {
    "type": "object",
    "properties": {
        "fixed_ip": {"type": "string"},
        "port": {"type": ["string", "null"]},
        "uuid": {"type": "string"},
    },
    "additionalProperties": False,
}
_BDM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
        "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
                 "pattern": "^[a-zA-Z0-9._-]*$"},
        "image_id": UUID,
        "destination_type": {"type": "string", "enum": ["local", "volume"]},
        "guest_format": {"type": "string", "maxLength": 255},
        "device_type": {"type": "string", "maxLength": 255},
        "disk_bus": {"type": "string", "maxLength": 255},
        "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
        "device_name": DEVICE_NAME,
        "volume_size": VOLUME_SIZE,
        "delete_on_termination": BOOLEAN_WITH_LETTERS,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
        "snapshot_id": UUID,
        "volume_id": UUID,
    },
    "additionalProperties": False,
}
# The legacy syntax of ``os-volumes_boot`` (Nova's ``block_device_mapping_v1`` schema).
_LEGACY_BDM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "virtual_name": {"type": "string", "maxLength": 255},
        "volume_id": UUID,
        "snapshot_id": UUID,
        "volume_size": VOLUME_SIZE,
        "device_name": DEVICE_NAME,
        "delete_on_termination": BOOLEAN_WITH_LETTERS,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
    },
    "additionalProperties": False,
}
_BASE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": NAME,
                "imageRef": {"type": "string", "maxLength": 255},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "adminPass": {"type": "string"},
                "metadata": METADATA,
                "networks": {"type": "array", "items": _NETWORK},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
                "personality": {"type": "array", "items": {"type": "object"}},
                "availability_zone": NAME,
                "block_device_mapping": {"type": "array", "items": _LEGACY_BDM},
                "block_device_mapping_v2": {"type": "array", "items": _BDM},
                "config_drive": BOOLEAN_WITH_LETTERS,
                "key_name": NAME,
                "min_count": {"type": ["integer", "string"], "pattern": "^[0-9]+$",
                              "minimum": 1},
                "max_count": {"type": ["integer", "string"], "pattern": "^[0-9]+$",
                              "minimum": 1},
                "return_reservation_id": BOOLEAN_WITH_LETTERS,
                "security_groups": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}},
                              "additionalProperties": False},
                },
                "user_data": {"type": "string", "format": "base64", "maxLength": 65535},
            },
            "required": ["name", "flavorRef"],
            "additionalProperties": False,
        },
        "os:scheduler_hints": {"type": "object", "additionalProperties": True},
        "OS-SCH-HNT:scheduler_hints": {"type": "object", "additionalProperties": True},
    },
    "required": ["server"],
    "additionalProperties": False,
}


def create_document(current: APIVersion) -> dict[str, Any]:
    """Nova's create schema at ``current``: each microversion's change applied in order."""
    doc = copy.deepcopy(_BASE)
    server = doc["properties"]["server"]
    props = server["properties"]
    network_item = props["networks"]["items"]["properties"]
    bdm_item = props["block_device_mapping_v2"]["items"]["properties"]
    if current >= v("2.19"):
        props["description"] = DESCRIPTION
    if v("2.32") <= current < v("2.37") or current >= v("2.42"):
        network_item["tag"] = TAG
    if current == v("2.32") or current >= v("2.42"):
        bdm_item["tag"] = TAG
    if current >= v("2.37"):
        network_item["uuid"] = UUID
        props["networks"] = {"oneOf": [props["networks"],
                                       {"type": "string", "enum": ["none", "auto"]}]}
        server["required"] = [*server["required"], "networks"]
    if current >= v("2.52"):
        props["tags"] = {"type": "array", "items": TAG, "maxItems": 50}
    if current >= v("2.57"):
        del props["personality"]
    if current >= v("2.63"):
        props["trusted_image_certificates"] = {
            "type": ["array", "null"], "minItems": 1, "maxItems": 50, "uniqueItems": True,
            "items": {"type": "string", "minLength": 1}}
    if current >= v("2.67"):
        bdm_item["volume_type"] = OPTIONAL_NAME
    if current >= v("2.74"):
        props["host"] = {"type": "string", "minLength": 1, "maxLength": 255}
        props["hypervisor_hostname"] = {"type": "string", "minLength": 1, "maxLength": 255}
    if current >= v("2.90"):
        props["hostname"] = FQDN if current >= v("2.94") else HOSTNAME
    return doc


# The microversions at which the create schema changes; a request uses the last one <= it.
_CREATE_STEPS = [v(s) for s in ("2.1", "2.19", "2.32", "2.33", "2.37", "2.42", "2.52", "2.57",
                                "2.63", "2.67", "2.74", "2.90", "2.94")]


@functools.cache
def _create_schema(step: APIVersion) -> Schema:
    return Schema(create_document(step))


def create(current: APIVersion) -> Schema:
    step = max(s for s in _CREATE_STEPS if s <= current)
    return _create_schema(step)


def update_document(current: APIVersion) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": NAME,
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
    }
    if current >= v("2.19"):
        props["description"] = DESCRIPTION
    if current >= v("2.90"):
        props["hostname"] = FQDN if current >= v("2.94") else HOSTNAME
    return {"type": "object",
            "properties": {"server": {"type": "object", "properties": props,
                                      "additionalProperties": False}},
            "required": ["server"], "additionalProperties": False}


@functools.cache
def update(current: APIVersion) -> Schema:
    return Schema(update_document(current))


reboot = Schema({
    "type": "object",
    "properties": {
        "reboot": {
            "type": "object",
            "properties": {"type": {"type": "string",
                                    "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}},
            "required": ["type"],
            "additionalProperties": False,
        },
    },
    "required": ["reboot"],
    "additionalProperties": False,
})

# Query parameters Nova's list schema knows (2.75+ rejects any other).
LIST_QUERY = frozenset({
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id",
    "ramdisk_id", "hostname", "key_name", "power_state", "vm_state", "task_state", "host",
    "node", "flavor", "reservation_id", "launched_at", "terminated_at", "availability_zone",
    "name", "display_name", "description", "display_description", "locked_by", "uuid",
    "root_device_name", "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
    "progress", "sort_key", "sort_dir", "all_tenants", "soft_deleted", "deleted", "status",
    "changes-since", "changes-before", "ip", "ip6", "created_at", "block_device_mapping",
    "services", "metadata", "pci_devices", "security_groups", "info_cache", "system_metadata",
    "tags", "tags-any", "not-tags", "not-tags-any", "locked", "limit", "marker",
})


def user_filters(current: APIVersion) -> frozenset[str]:
    """Filters a non-admin may use at ``current`` (others are silently dropped, as in Nova)."""
    names = {"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since",
             "all_tenants"}
    if current >= v("2.5"):
        names.add("ip6")
    if current >= v("2.26"):
        names |= {"tags", "tags-any", "not-tags", "not-tags-any"}
    if current >= v("2.66"):
        names.add("changes-before")
    if current >= v("2.73"):
        names.add("locked")
    if current >= v("2.83"):
        names |= {"availability_zone", "config_drive", "key_name", "created_at", "launched_at",
                  "terminated_at", "power_state", "task_state", "vm_state", "progress",
                  "user_id"}
    return frozenset(names)
