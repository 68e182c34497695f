"""``/extensions``: the frozen v2.1 extension list, limited to what stackvol really provides."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.faults import Fault
from stackvol.http.responses import json_response

_NAMESPACE = "http://docs.openstack.org/compute/ext/fake_xml"
_UPDATED = "2014-12-03T00:00:00Z"

# (alias, name, description) of each extension whose behaviour stackvol serves.
_PROVIDED = [
    ("OS-EXT-AZ", "ExtendedAvailabilityZone", "Extended Availability Zone support."),
    ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."),
    ("OS-EXT-STS", "ExtendedStatus", "Extended Status support."),
    ("OS-SRV-USG", "ServerUsage", "Adds launched_at and terminated_at on Servers."),
    ("os-access-ips", "AccessIPs", "Access IPs support."),
    ("os-extended-volumes", "ExtendedVolumes", "Extended Volumes support."),
    ("os-flavor-rxtx", "FlavorRxtx", "Support to show the rxtx status of a flavor."),
    ("os-flavor-swap", "FlavorSwap", "Support to show the swap status of a flavor."),
    ("os-keypairs", "Keypairs", "Keypair Support."),
    ("os-server-start-stop", "ServerStartStop", "Start/Stop instance compute API support."),
    ("os-volume-attachment-update", "VolumeAttachmentUpdate",
     "Support for updating a volume attachment."),
    ("os-volumes", "Volumes", "Volumes support."),
]


def _entry(alias: str, name: str, description: str) -> dict:
    return {"alias": alias, "description": description, "links": [], "name": name,
            "namespace": _NAMESPACE, "updated": _UPDATED}


EXTENSIONS = {alias: _entry(alias, name, desc) for alias, name, desc in _PROVIDED}


async def index(request: Request) -> Response:
    return json_response({"extensions": list(EXTENSIONS.values())})


async def show(request: Request) -> Response:
    alias = request.path_params["alias"]
    if alias not in EXTENSIONS:
        raise Fault(404)
    return json_response({"extension": EXTENSIONS[alias]})


routes = [
    Route("/extensions", index, methods=["GET"]),
    Route("/extensions/{alias}", show, methods=["GET"]),
]
