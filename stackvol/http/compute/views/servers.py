"""How a server reads on the Compute API: exactly the fields Nova returns at each microversion
(``nova/api/openstack/compute/views/servers.py``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from stackvol.http.common import version
from stackvol.http.compute.views.flavors import bookmark, links
from stackvol.http.microversion import APIVersion, v
from stackvol.http.timefmt import isotime_z
from stackvol.services.servers.api import Server, Visibility

PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")
FAULT_STATUSES = ("ERROR", "DELETED")
# Extended attributes admins see from 2.1, and the ones 2.3 added (user_data aside).
_SRV_ATTR_21 = ("host", "instance_name", "hypervisor_hostname")
_SRV_ATTR_23 = ("reservation_id", "launch_index", "hostname", "kernel_id", "ramdisk_id",
                "root_device_name")


@dataclass(frozen=True, slots=True)
class Shape:
    """Which optional parts a particular response carries (show, detail, update...)."""

    full: bool = True  # the extension attributes (pre-2.75 update responses omit them)
    server_groups: bool = False  # only GET /servers/{id}, PUT and rebuild (2.71+)


DETAIL = Shape()
SHOW = Shape(server_groups=True)


def host_id(server: Server) -> str:
    if not server.host:
        return ""
    return hashlib.sha224((server.project_id + server.host).encode()).hexdigest()


def create(request: Request, server: Server, admin_pass: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": server.id,
        "links": links(request, "servers", server.id),
        "OS-DCF:diskConfig": "AUTO" if server.auto_disk_config else "MANUAL",
        "security_groups": [{"name": n} for n in server.security_groups or ["default"]],
    }
    if admin_pass is not None:
        body["adminPass"] = admin_pass
    return body


def basic(request: Request, server: Server) -> dict[str, Any]:
    return {"id": server.id, "name": server.name, "links": links(request, "servers", server.id)}


def addresses(server: Server, extended: bool) -> dict[str, list[dict[str, Any]]]:
    """Nova's address view; the server views add the type and MAC, ``/ips`` does not."""
    out: dict[str, list[dict[str, Any]]] = {}
    for network, items in server.addresses.items():
        out[network] = [
            {"version": a["version"], "addr": a["addr"],
             **({"OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": a["mac"]}
                if extended else {})}
            for a in items]
    return out


def _image(request: Request, server: Server, current: APIVersion) -> Any:
    if not server.image_ref:
        return ""
    image_id = server.image_ref.rstrip("/").rsplit("/", 1)[-1]
    image: dict[str, Any] = {"id": image_id, "links": bookmark(request, "images", image_id)}
    if current >= v("2.98"):
        image["properties"] = {}  # no image service: no image metadata was recorded
    return image


def _flavor(request: Request, server: Server, current: APIVersion) -> dict[str, Any]:
    flavor = server.flavor
    if flavor is None:
        return {}
    if current < v("2.47"):
        return {"id": flavor.id, "links": bookmark(request, "flavors", flavor.id)}
    return {"vcpus": flavor.vcpus, "ram": flavor.ram, "disk": flavor.disk,
            "ephemeral": flavor.ephemeral, "swap": flavor.swap, "original_name": flavor.name,
            "extra_specs": dict(flavor.extra_specs)}


def _fault(server: Server, admin: bool) -> dict[str, Any] | None:
    if not server.fault:
        return None
    out = {"code": server.fault["code"], "created": server.fault["created"][:19] + "Z",
           "message": server.fault["message"]}
    if server.fault.get("details") and (admin or server.fault["code"] != 500):
        out["details"] = server.fault["details"]
    return out


def _srv_attrs(server: Server, current: APIVersion, user_data: bool) -> dict[str, Any]:
    values = {
        "host": server.host, "instance_name": f"instance-{server.id[:8]}",
        "hypervisor_hostname": server.node, "reservation_id": server.reservation_id,
        "launch_index": 0, "hostname": server.hostname, "kernel_id": "", "ramdisk_id": "",
        "root_device_name": server.root_device_name, "user_data": server.user_data,
    }
    names = list(_SRV_ATTR_21)
    if current >= v("2.3"):
        names += _SRV_ATTR_23 + (("user_data",) if user_data else ())
    return {f"OS-EXT-SRV-ATTR:{name}": values[name] for name in names}


def _extensions(server: Server, current: APIVersion, seen: Visibility) -> dict[str, Any]:
    """The attributes of the old v2 extensions (AZ, config drive, usage, status, volumes)."""
    body: dict[str, Any] = {
        "OS-EXT-AZ:availability_zone": server.availability_zone or "",
        "config_drive": server.config_drive,
        "key_name": server.key_name,
        "OS-SRV-USG:launched_at": server.launched_at.isoformat() if server.launched_at else None,
        "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-EXT-STS:power_state": server.power_state,
    }
    if server.networks != "none":  # a server with ports is in their security groups
        body["security_groups"] = [{"name": n} for n in server.security_groups or ["default"]]
    if seen.host_attributes:
        body.update(_srv_attrs(server, current, user_data=True))
    elif current >= v("2.90"):  # the hostname became visible to everyone
        body["OS-EXT-SRV-ATTR:hostname"] = server.hostname
    with_flag = current >= v("2.3")
    body["os-extended-volumes:volumes_attached"] = [
        {"id": vol, "delete_on_termination": flag} if with_flag else {"id": vol}
        for vol, flag in server.volumes]
    if current >= v("2.16") and seen.host_status:
        body["host_status"] = server.host_status
    return body


def show(request: Request, server: Server, seen: Visibility,
         shape: Shape = DETAIL) -> dict[str, Any]:
    current = version(request)
    status = server.status
    body: dict[str, Any] = {
        "id": server.id,
        "name": server.name,
        "status": status,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "metadata": server.metadata or {},
        "hostId": host_id(server),
        "image": _image(request, server, current),
        "flavor": _flavor(request, server, current),
        "created": isotime_z(server.created_at),
        "updated": isotime_z(server.updated_at or server.created_at),
        "addresses": addresses(server, extended=True),
        "accessIPv4": server.access_ipv4 or "",
        "accessIPv6": server.access_ipv6 or "",
        "links": links(request, "servers", server.id),
        "OS-DCF:diskConfig": "AUTO" if server.auto_disk_config else "MANUAL",
    }
    fault = _fault(server, seen.host_attributes) if status in FAULT_STATUSES else None
    if fault:
        body["fault"] = fault
    if status in PROGRESS_STATUSES:
        body["progress"] = 0
    if shape.full:
        body.update(_extensions(server, current, seen))
    body.update(_versioned(server, current, shape))
    return body


def _versioned(server: Server, current: APIVersion, shape: Shape) -> dict[str, Any]:
    """Top-level fields later microversions added, each from its own version on."""
    body: dict[str, Any] = {}
    if current >= v("2.9"):
        body["locked"] = bool(server.locked)
    if current >= v("2.73"):
        body["locked_reason"] = server.locked_reason
    if current >= v("2.19"):
        body["description"] = server.description
    if current >= v("2.26"):
        body["tags"] = list(server.tags or [])
    if current >= v("2.63"):
        body["trusted_image_certificates"] = server.trusted_certs or None
    if shape.server_groups and current >= v("2.71"):
        body["server_groups"] = []
    if current >= v("2.96"):
        body["pinned_availability_zone"] = server.pinned_availability_zone
    if current >= v("2.100"):
        body["scheduler_hints"] = dict(server.scheduler_hints or {})
    return body
