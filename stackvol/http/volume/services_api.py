"""``/os-services`` (admins) and ``/os-availability-zone``: what runs the block storage here."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.compute.views.volumes import isotime
from stackvol.http.faults import Fault
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.http.volume.common import at_least, context
from stackvol.http.volume.views.volumes import HOST
from stackvol.timeutils import utcnow


async def availability_zones(request: Request) -> Response:
    zones = services(request).volumes.availability_zones
    return json_response({"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": True}} for zone in zones]})


def _service(request: Request, binary: str, host: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "binary": binary, "host": host, "zone": services(request).settings.availability_zone,
        "status": "enabled", "state": "up", "updated_at": isotime(utcnow()),
        "disabled_reason": None,
    }
    if at_least(request, "3.7"):
        body["cluster"] = None
    if binary == "cinder-volume":
        body.update({"replication_status": "disabled", "active_backend_id": None,
                     "frozen": False})
        if at_least(request, "3.49"):
            body["backend_state"] = "up"
    return body


async def list_services(request: Request) -> Response:
    if not context(request).is_admin:
        raise Fault(403, "Policy doesn't allow volume_extension:services:index to be "
                         "performed.")
    backend = services(request).volumes.storage.name
    found = [_service(request, "cinder-scheduler", HOST),
             _service(request, "cinder-volume", f"{HOST}@{backend}")]
    params = request.query_params
    found = [s for s in found if params.get("host") in (None, s["host"])
             and params.get("binary") in (None, s["binary"])]
    return json_response({"services": found})


routes = [
    Route("/os-availability-zone", availability_zones, methods=["GET"]),
    Route("/os-services", list_services, methods=["GET"]),
]
