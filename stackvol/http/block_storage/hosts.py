"""``/os-hosts`` (admins): the hosts of Cinder's services, and what each project keeps on a
volume host (Cinder's numbers are strings)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import context
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.http.timefmt import isotime


async def index(request: Request) -> Response:
    zone = services(request).settings.availability_zone
    found = await services(request).cinder_services.hosts(context(request))
    return json_response({"hosts": [{
        "host_name": s.host, "service": s.binary, "zone": zone,
        "service-status": "available" if s.up else "unavailable",
        "service-state": "disabled" if s.disabled else "enabled",
        "last-update": isotime(s.seen)} for s in found]})


async def show(request: Request) -> Response:
    host = request.path_params["host"]
    usage = await services(request).cinder_services.host_usage(context(request), host)
    return json_response({"host": [{"resource": {
        "host": host, "project": u.project, "volume_count": str(u.volume_count),
        "total_volume_gb": str(u.volume_gb), "snapshot_count": str(u.snapshot_count),
        "total_snapshot_gb": str(u.snapshot_gb)}} for u in usage]})


routes = [
    Route("/os-hosts", index, methods=["GET"]),
    Route("/os-hosts/{host}", show, methods=["GET"]),
]
