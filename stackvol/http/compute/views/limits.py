"""How absolute limits read on the Compute API (``nova/api/openstack/compute/views/limits.py``):
each quota under its historic name(s), what the project uses, and no rate limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackvol.http.compute.views.quota_sets import hidden
from stackvol.http.microversion import APIVersion, v

V2_39 = v("2.39")  # the image-metadata proxy is gone, and maxImageMeta with it

# Quota resource → the limits it is shown as.
LIMIT_NAMES: dict[str, tuple[str, ...]] = {
    "ram": ("maxTotalRAMSize",),
    "instances": ("maxTotalInstances",),
    "cores": ("maxTotalCores",),
    "key_pairs": ("maxTotalKeypairs",),
    "floating_ips": ("maxTotalFloatingIps",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"),
    "injected_files": ("maxPersonality",),
    "injected_file_content_bytes": ("maxPersonalitySize",),
    "security_groups": ("maxSecurityGroups",),
    "security_group_rules": ("maxSecurityGroupRules",),
    "server_groups": ("maxServerGroups",),
    "server_group_members": ("maxServerGroupMembers",),
}
# Usage figure → the quota resource it counts (only servers use anything here).
USED_NAMES: dict[str, str] = {
    "totalRAMUsed": "ram",
    "totalCoresUsed": "cores",
    "totalInstancesUsed": "instances",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
    "totalServerGroupsUsed": "server_groups",
}


def limits(api_version: APIVersion, quota: Mapping[str, int],
           in_use: Mapping[str, int]) -> dict[str, Any]:
    """``{"limits": {"rate": [], "absolute": {...}}}``: the network limits go at 2.36 (and
    maxImageMeta at 2.39), the personality ones at 2.57, as the quota sets lose them."""
    gone = hidden(api_version)
    absolute: dict[str, int] = {
        name: quota[resource]
        for resource, names in LIMIT_NAMES.items() if resource not in gone
        for name in names if not (name == "maxImageMeta" and api_version >= V2_39)}
    absolute.update({name: in_use.get(resource, 0) for name, resource in USED_NAMES.items()
                     if resource not in gone})
    return {"limits": {"rate": [], "absolute": absolute}}
