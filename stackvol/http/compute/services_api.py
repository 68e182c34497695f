"""``/os-services`` (admins) and ``/os-availability-zone``: Nova's view of the processes.

Every stackvol process records a heartbeat (services/process_roles); Nova lists its services by
binary and host, so API processes appear as ``nova-scheduler`` and ``nova-conductor`` (zone
``internal``) and compute workers as ``nova-compute`` in the availability zone. Processes that
share a host and binary are one row, up if any of them is.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import context, version
from stackvol.http.faults import Fault
from stackvol.http.microversion import v
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.http.timefmt import isotime
from stackvol.tasks.roles import ServiceRecord, ServiceRow, service_rows

FORCED_DOWN = v("2.11")
UUID_IDS = v("2.53")
INTERNAL_ZONE = "internal"  # Nova's zone for services that are not compute hosts
# Service ids as UUIDs (2.53+) are stable per binary and host.
_ID_NAMESPACE = uuid.UUID("5b0b8f5e-5e55-4e0c-9a52-2d3c1b0f6a11")


def _keys(proc: ServiceRecord) -> list[tuple[str, str]]:
    binaries = ["nova-conductor", "nova-scheduler"] if proc.role in ("all", "api") else []
    if proc.role in ("all", "compute"):
        binaries.append("nova-compute")
    return [(binary, proc.host) for binary in binaries]


def _view(request: Request, number: int, row: ServiceRow) -> dict[str, Any]:
    zone = services(request).settings.availability_zone
    body: dict[str, Any] = {
        "id": str(uuid.uuid5(_ID_NAMESPACE, f"{row.binary}@{row.host}"))
        if version(request) >= UUID_IDS else number,
        "binary": row.binary, "host": row.host,
        "zone": zone if row.binary == "nova-compute" else INTERNAL_ZONE,
        "status": "enabled", "state": "up" if row.up else "down",
        "updated_at": isotime(row.seen), "disabled_reason": None,
    }
    if version(request) >= FORCED_DOWN:
        body["forced_down"] = False
    return body


def _require_admin(request: Request, rule: str) -> None:
    if not context(request).is_admin:
        raise Fault(403, f"Policy doesn't allow {rule} to be performed.")


async def list_services(request: Request) -> Response:
    _require_admin(request, "os_compute_api:os-services:list")
    params = request.query_params
    rows = service_rows(await services(request).heartbeat.directory(), _keys,
                        params.get("host"), params.get("binary"))
    return json_response({"services": [_view(request, number, row)
                                       for number, row in enumerate(rows, 1)]})


async def availability_zones(request: Request) -> Response:
    zone = services(request).settings.availability_zone
    return json_response({"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": True}, "hosts": None}]})


async def availability_zones_detail(request: Request) -> Response:
    """Zones with their hosts and each host's services (admins), as Nova shows them."""
    _require_admin(request, "os_compute_api:os-availability-zone:detail")
    zones: dict[str, dict[str, dict[str, Any]]] = {}
    for row in service_rows(await services(request).heartbeat.directory(), _keys):
        zone = (services(request).settings.availability_zone if row.binary == "nova-compute"
                else INTERNAL_ZONE)
        zones.setdefault(zone, {}).setdefault(row.host, {})[row.binary] = {
            "available": row.up, "active": True, "updated_at": isotime(row.seen)}
    return json_response({"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": True}, "hosts": hosts}
        for zone, hosts in sorted(zones.items())]})


routes = [
    Route("/os-services", list_services, methods=["GET"]),
    Route("/os-availability-zone", availability_zones, methods=["GET"]),
    Route("/os-availability-zone/detail", availability_zones_detail, methods=["GET"]),
]
