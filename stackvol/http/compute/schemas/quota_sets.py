"""Request bodies of ``os-quota-sets`` at each microversion (as Nova's schemas)."""

from __future__ import annotations

from typing import Any

from stackvol.http.compute.schemas.parameters import BOOLEAN
from stackvol.http.validation import Schema

MAX_INT = 2**31 - 1
LIMIT = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$", "minimum": -1,
         "maximum": MAX_INT}

# 2.36 stopped proxying the network quotas to Neutron; 2.57 dropped personality files.
NETWORK = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules", "networks")
INJECTED_FILES = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
RESOURCES = ("instances", "cores", "ram", "metadata_items", "key_pairs", "server_groups",
             "server_group_members", *INJECTED_FILES, *NETWORK)


def _update(removed: tuple[str, ...]) -> Schema:
    properties: dict[str, Any] = {name: LIMIT for name in RESOURCES if name not in removed}
    properties["force"] = BOOLEAN
    return Schema({"type": "object",
                   "properties": {"quota_set": {"type": "object", "properties": properties,
                                                "additionalProperties": False}},
                   "required": ["quota_set"], "additionalProperties": False})


update = _update(())
update_v236 = _update(NETWORK)
update_v257 = _update(NETWORK + INJECTED_FILES)
