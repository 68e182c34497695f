"""How a quota set reads on the Compute API: which resources each microversion shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackvol.http.compute.schemas.quota_sets import INJECTED_FILES, NETWORK
from stackvol.http.microversion import APIVersion, v
from stackvol.services.quotas.api import COMPUTE_DEFAULTS

V2_36 = v("2.36")  # the network quotas are gone (Neutron's)
V2_57 = v("2.57")  # so are the injected (personality) file quotas


def hidden(api_version: APIVersion) -> set[str]:
    """The resources this microversion neither shows nor accepts."""
    if api_version >= V2_57:
        return {*NETWORK, *INJECTED_FILES}
    if api_version >= V2_36:
        return set(NETWORK)
    return set()


def shown(api_version: APIVersion) -> list[str]:
    gone = hidden(api_version)
    return [name for name in COMPUTE_DEFAULTS if name not in gone]


def quota_set(api_version: APIVersion, project_id: str | None,
              limits: Mapping[str, int]) -> dict[str, Any]:
    """``{"quota_set": {...}}`` of limits; ``id`` on all but the update's answer."""
    body: dict[str, Any] = {"id": project_id} if project_id is not None else {}
    body.update({name: limits[name] for name in shown(api_version)})
    return {"quota_set": body}


def detail(api_version: APIVersion, project_id: str, limits: Mapping[str, int],
           in_use: Mapping[str, int]) -> dict[str, Any]:
    """Each resource as ``{"limit", "in_use", "reserved"}`` (nothing is ever reserved)."""
    body: dict[str, Any] = {"id": project_id}
    body.update({name: {"limit": limits[name], "in_use": in_use.get(name, 0), "reserved": 0}
                 for name in shown(api_version)})
    return {"quota_set": body}
