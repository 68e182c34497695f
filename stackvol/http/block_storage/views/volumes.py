"""How a volume reads on the Block Storage API: Cinder's summary and detail views."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from stackvol.http.block_storage.common import at_least, links
from stackvol.http.common import context
from stackvol.http.state import services
from stackvol.http.timefmt import isotime
from stackvol.services.common.records import Attachment, Volume
from stackvol.services.volumes.types import VolumeType

HOST = socket.gethostname()


def backend_host(request: Request, volume: Volume) -> str | None:
    """Cinder's ``host@backend#pool`` (the pool: the backend's volume_backend_name); None for
    a volume no backend took, as Cinder shows one its scheduler could not place."""
    if not volume.backend:
        return None
    return f"{HOST}@{volume.backend}#{services(request).volumes.backends.pool(volume.backend)}"


def service_uuid(backend: str) -> str | None:
    if not backend:
        return None
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"stackvol:cinder-volume:{HOST}@{backend}"))


def attachment(att: Attachment) -> dict[str, Any]:
    return {
        "id": att.volume_id,
        "attachment_id": att.id,
        "volume_id": att.volume_id,
        "server_id": att.server_id or None,
        "host_name": None,
        "device": att.device,
        "attached_at": isotime(att.updated_at or att.created_at),
    }


def metadata(vol: Volume) -> dict[str, str]:
    """The volume's metadata with the admin metadata users see (Cinder's ``readonly``)."""
    visible = {k: v for k, v in (vol.admin_metadata or {}).items() if k == "readonly"}
    return {**(vol.metadata or {}), **visible}


# The microversion from which the detail view shows ``volume_type_id``: only there does it
# need the volume types (one more read per request, which cost show as much as the volume's).
TYPE_ID_VERSION = "3.63"


async def types_for_detail(request: Request) -> Mapping[str, VolumeType] | None:
    """The types by name if the request's detail view shows type ids, else None (no read)."""
    if not at_least(request, TYPE_ID_VERSION):
        return None
    return await services(request).volume_types.by_name()


def summary(request: Request, vol: Volume) -> dict[str, Any]:
    return {"id": vol.id, "name": vol.display_name, "links": links(request, "volumes", vol.id)}


def _extension_attributes(request: Request, vol: Volume, admin: bool) -> dict[str, Any]:
    found: dict[str, Any] = {"os-vol-tenant-attr:tenant_id": vol.project_id}
    if vol.image_metadata:  # Cinder shows it only for volumes made from an image
        found["volume_image_metadata"] = dict(vol.image_metadata)
    if admin:
        found.update({"os-vol-host-attr:host": backend_host(request, vol),
                      "os-vol-mig-status-attr:migstat": vol.migration_status,
                      "os-vol-mig-status-attr:name_id": None})
    return found


def detail(request: Request, vol: Volume, types: Mapping[str, VolumeType] | None = None,
           extended: bool = True) -> dict[str, Any]:
    """The detail view; ``extended``: with the attributes Cinder's extensions add to show and
    the detailed list only (tenant, host, migration, image metadata), which create and update
    answers do not carry (Tempest's schemas for those refuse them)."""
    admin = context(request).is_admin
    body: dict[str, Any] = {
        "id": vol.id,
        "status": vol.status,
        "size": vol.size,
        "availability_zone": vol.availability_zone,
        "created_at": isotime(vol.created_at),
        "updated_at": isotime(vol.updated_at),
        "attachments": [attachment(a) for a in vol.attachments],
        "name": vol.display_name,
        "description": vol.display_description,
        "volume_type": vol.volume_type,
        "snapshot_id": vol.snapshot_id,
        "source_volid": vol.source_volid,
        "metadata": metadata(vol),
        "links": links(request, "volumes", vol.id),
        "user_id": vol.user_id,
        "bootable": "true" if vol.bootable else "false",
        "encrypted": False,
        "replication_status": None,
        "consistencygroup_id": None,
        "multiattach": False,
    }
    if admin:
        body["migration_status"] = vol.migration_status
    if extended:
        body.update(_extension_attributes(request, vol, admin))
    if at_least(request, "3.13"):
        body["group_id"] = None
    if admin and at_least(request, "3.21"):
        body["provider_id"] = None
    if at_least(request, "3.48"):
        body["shared_targets"] = False
        body["service_uuid"] = service_uuid(vol.backend)
    if admin and at_least(request, "3.61"):
        body["cluster_name"] = None
    if at_least(request, TYPE_ID_VERSION):
        found = (types or {}).get(vol.volume_type or "")
        body["volume_type_id"] = found.id if found else None
    if at_least(request, "3.65"):
        body["consumes_quota"] = True
    return body
