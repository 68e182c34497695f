"""``/os-services`` (admins) and ``/os-availability-zone``: what runs the block storage here."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.common import at_least
from stackvol.http.block_storage.views.volumes import HOST
from stackvol.http.common import CINDER_BOOL, context, query_bool
from stackvol.http.faults import Fault
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.http.timefmt import isotime
from stackvol.services.operations.hosts import VOLUME, CinderService
from stackvol.timeutils import utcnow


async def availability_zones(request: Request) -> Response:
    zones = services(request).volumes.availability_zones
    return json_response({"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": True}} for zone in zones]})


def _service(request: Request, found: CinderService) -> dict[str, Any]:
    state = "up" if found.up else "down"
    body: dict[str, Any] = {
        "binary": found.binary, "host": found.host,
        "zone": services(request).settings.availability_zone,
        "status": "disabled" if found.disabled else "enabled", "state": state,
        "updated_at": isotime(found.seen), "disabled_reason": found.disabled_reason,
    }
    if at_least(request, "3.7"):
        body["cluster"] = None
    if found.binary == VOLUME:
        body.update({"replication_status": "disabled", "active_backend_id": None,
                     "frozen": found.frozen})
        if at_least(request, "3.49"):
            body["backend_state"] = state
    return body


async def list_services(request: Request) -> Response:
    # Each process's heartbeat (services/cinder_services): API processes schedule, volume
    # workers serve host@backend (an ``all`` process every enabled backend); processes
    # sharing a Cinder host are one row, up if any is.
    params = request.query_params
    found = await services(request).cinder_services.list(context(request), params.get("host"),
                                                         params.get("binary"))
    return json_response({"services": [_service(request, row) for row in found]})


async def get_pools(request: Request) -> Response:
    """Cinder's scheduler stats: one pool per enabled backend (``host@backend#pool``)."""
    if not context(request).is_admin:
        raise Fault(403, "Policy doesn't allow scheduler_extension:scheduler_stats:get_pools "
                         "to be performed.")
    detail = query_bool(request, "detail", CINDER_BOOL, False)
    stats = await services(request).volumes.pool_stats()
    pools = []
    for backend, capabilities in stats.items():
        pool: dict[str, Any] = {"name": f"{HOST}@{backend}#{capabilities['pool_name']}"}
        if detail:
            pool["capabilities"] = {**capabilities, "timestamp": isotime(utcnow())}
        pools.append(pool)
    return json_response({"pools": pools})


routes = [
    Route("/os-availability-zone", availability_zones, methods=["GET"]),
    Route("/os-services", list_services, methods=["GET"]),
    Route("/scheduler-stats/get_pools", get_pools, methods=["GET"]),
]
