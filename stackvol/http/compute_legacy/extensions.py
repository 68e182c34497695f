"""``/extensions`` on the legacy paths: the extensions whose behaviour stackvol serves, as the
API of that era described them. ``os-volumes`` reads as in its 2011 seed on ``/v1.1`` and as
in Juno on ``/v2``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.compute.extensions import EXTENSIONS as V21_EXTENSIONS
from stackvol.http.compute_legacy.rendering import Negotiated
from stackvol.http.compute_legacy.views import extensions as views
from stackvol.http.faults import Fault

_EXT = "http://docs.openstack.org/compute/ext"
# alias -> (namespace, updated) of the Juno descriptors; names and descriptions are v2.1's.
_JUNO = {
    "OS-EXT-AZ": (f"{_EXT}/extended_availability_zone/api/v2", "2013-01-30T00:00:00Z"),
    "OS-EXT-SRV-ATTR": (f"{_EXT}/extended_status/api/v1.1", "2011-11-03T00:00:00Z"),
    "OS-EXT-STS": (f"{_EXT}/extended_status/api/v1.1", "2011-11-03T00:00:00Z"),
    "OS-SRV-USG": (f"{_EXT}/server_usage/api/v1.1", "2013-04-29T00:00:00Z"),
    "os-extended-volumes": (f"{_EXT}/extended_volumes/api/v1.1", "2013-06-07T00:00:00Z"),
    "os-flavor-rxtx": (f"{_EXT}/flavor_rxtx/api/v1.1", "2012-08-29T00:00:00Z"),
    "os-flavor-swap": (f"{_EXT}/flavor_swap/api/v1.1", "2012-08-29T00:00:00Z"),
    "os-server-start-stop": (f"{_EXT}/servers/api/v1.1", "2012-01-23T00:00:00Z"),
    "os-volume-attachment-update": (f"{_EXT}/os-volume-attachment-update/api/v2",
                                    "2013-06-20T00:00:00Z"),
    "os-volumes": (f"{_EXT}/volumes/api/v1.1", "2011-03-25T00:00:00Z"),
}
# The extension as Nova first shipped it (Diablo, Compute API v1.1).
SEED_VOLUMES = {"alias": "os-volumes", "description": "Volumes support", "links": [],
                "name": "Volumes", "namespace": "http://docs.openstack.org/ext/volumes/api/v1.1",
                "updated": "2011-03-25T00:00:00+00:00"}


def _juno(alias: str) -> dict[str, Any]:
    namespace, updated = _JUNO[alias]
    return {**V21_EXTENSIONS[alias], "namespace": namespace, "updated": updated}


BY_API = {
    "v2": {alias: _juno(alias) for alias in sorted(_JUNO)},
    "v1.1": {alias: SEED_VOLUMES if alias == "os-volumes" else _juno(alias)
             for alias in sorted(_JUNO)},
}


def _known(request: Request) -> dict[str, dict[str, Any]]:
    return BY_API[request.state.legacy_api]


async def index(request: Request) -> Response:
    return Negotiated({"extensions": list(_known(request).values())}, views.extensions_xml)


async def show(request: Request) -> Response:
    found = _known(request).get(request.path_params["alias"])
    if found is None:
        raise Fault(404)
    return Negotiated({"extension": found}, views.extension_xml)


routes = [
    Route("/extensions", index, methods=["GET"]),
    Route("/extensions/{alias}", show, methods=["GET"]),
]
