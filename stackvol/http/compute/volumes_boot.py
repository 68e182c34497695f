"""``/os-volumes_boot``: the old boot-from-volume extension, today an alias of ``/servers``.

Every verb behaves as on ``/servers`` (same schemas, same policies); the legacy
``block_device_mapping`` is read by the servers face. Removed at microversion 2.103 (404).
"""

from __future__ import annotations

from starlette.routing import Route

from stackvol.http.compute import servers
from stackvol.http.compute.common import versioned

LAST_VERSION = "2.102"
_alias = versioned(maximum=LAST_VERSION)
_BASE = "/os-volumes_boot"

routes = [
    Route(_BASE, _alias(servers.index), methods=["GET"]),
    Route(_BASE, _alias(servers.create), methods=["POST"]),
    Route(_BASE + "/detail", _alias(servers.detail), methods=["GET"]),
    Route(_BASE + "/{server_id}", _alias(servers.show), methods=["GET"]),
    Route(_BASE + "/{server_id}", _alias(servers.update), methods=["PUT"]),
    Route(_BASE + "/{server_id}", _alias(servers.delete), methods=["DELETE"]),
    Route(_BASE + "/{server_id}/action", _alias(servers.action), methods=["POST"]),
]
