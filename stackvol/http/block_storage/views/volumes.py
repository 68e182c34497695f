"""How a volume reads on the Block Storage API: Cinder's summary and detail views."""

from __future__ import annotations

import functools
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from stackvol.http.block_storage.common import at_least, link_roots, links_under
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


@functools.lru_cache(maxsize=64)  # a pure function of the backend's name; a list asks per row
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
    shown = dict(vol.metadata or {})
    admin = vol.admin_metadata
    if admin and "readonly" in admin:  # a lookup, not a scan: a list asks once per row
        shown["readonly"] = admin["readonly"]
    return shown


# The microversion from which the detail view shows ``volume_type_id``: only there does it
# need the volume types (one more read per request, which cost show as much as the volume's).
TYPE_ID_VERSION = "3.63"


async def types_for_detail(request: Request) -> Mapping[str, VolumeType] | None:
    """The types by name if the request's detail view shows type ids, else None (no read)."""
    if not at_least(request, TYPE_ID_VERSION):
        return None
    return await services(request).volume_types.by_name()


def summary(request: Request, vol: Volume) -> dict[str, Any]:
    return summaries(request)(vol)


def summaries(request: Request) -> Callable[[Volume], dict[str, Any]]:
    """The summary view for the volumes of one request (the link roots found once)."""
    roots = link_roots(request)
    return lambda vol: {"id": vol.id, "name": vol.display_name,
                        "links": links_under(roots, "volumes", vol.id)}


@dataclass(frozen=True, slots=True)
class DetailView:
    """What the detail view depends on beyond the volume, found once per request: a list of
    1,000 otherwise asked the caller's role, six microversions, the link roots and each
    backend's pool once per row, which cost more than reading the rows."""

    request: Request
    admin: bool
    roots: tuple[str, str]
    types: Mapping[str, VolumeType] | None
    extended: bool
    group: bool  # 3.13
    shared_targets: bool  # 3.48
    type_id: bool  # 3.63
    consumes_quota: bool  # 3.65
    provider: bool  # admin, 3.21
    cluster: bool  # admin, 3.61

    @classmethod
    def of(cls, request: Request, types: Mapping[str, VolumeType] | None = None,
           extended: bool = True) -> DetailView:
        admin = context(request).is_admin
        return cls(request, admin, link_roots(request), types, extended,
                   group=at_least(request, "3.13"), shared_targets=at_least(request, "3.48"),
                   type_id=at_least(request, TYPE_ID_VERSION),
                   consumes_quota=at_least(request, "3.65"),
                   provider=admin and at_least(request, "3.21"),
                   cluster=admin and at_least(request, "3.61"))

    def render(self, vol: Volume, hosts: dict[str, str | None]) -> dict[str, Any]:
        """``hosts``: each backend's ``host@backend#pool``, filled as rows name them."""
        body: dict[str, Any] = {
            "id": vol.id,
            "status": vol.status,
            "size": vol.size,
            "availability_zone": vol.availability_zone,
            "created_at": isotime(vol.created_at),
            "updated_at": isotime(vol.updated_at),
            # Most volumes have none: no comprehension set up for them.
            "attachments": [attachment(a) for a in vol.attachments] if vol.attachments else [],
            "name": vol.display_name,
            "description": vol.display_description,
            "volume_type": vol.volume_type,
            "snapshot_id": vol.snapshot_id,
            "source_volid": vol.source_volid,
            "metadata": metadata(vol),
            "links": links_under(self.roots, "volumes", vol.id),
            "user_id": vol.user_id,
            "bootable": "true" if vol.bootable else "false",
            "encrypted": False,
            "replication_status": None,
            "consistencygroup_id": None,
            "multiattach": False,
        }
        if self.admin:
            body["migration_status"] = vol.migration_status
        if self.extended:
            body.update(self._extension_attributes(vol, hosts))
        if self.group:
            body["group_id"] = None
        if self.provider:
            body["provider_id"] = None
        if self.shared_targets:
            body["shared_targets"] = False
            body["service_uuid"] = service_uuid(vol.backend)
        if self.cluster:
            body["cluster_name"] = None
        if self.type_id:
            found = (self.types or {}).get(vol.volume_type or "")
            body["volume_type_id"] = found.id if found else None
        if self.consumes_quota:
            body["consumes_quota"] = True
        return body

    def render_all(self, found: list[Volume]) -> list[dict[str, Any]]:
        hosts: dict[str, str | None] = {}
        return [self.render(vol, hosts) for vol in found]

    def _extension_attributes(self, vol: Volume,
                              hosts: dict[str, str | None]) -> dict[str, Any]:
        found: dict[str, Any] = {"os-vol-tenant-attr:tenant_id": vol.project_id}
        if vol.image_metadata:  # Cinder shows it only for volumes made from an image
            found["volume_image_metadata"] = dict(vol.image_metadata)
        if self.admin:
            if vol.backend not in hosts:
                hosts[vol.backend] = backend_host(self.request, vol)
            found.update({"os-vol-host-attr:host": hosts[vol.backend],
                          "os-vol-mig-status-attr:migstat": vol.migration_status,
                          "os-vol-mig-status-attr:name_id": None})
        return found


def detail(request: Request, vol: Volume, types: Mapping[str, VolumeType] | None = None,
           extended: bool = True) -> dict[str, Any]:
    """The detail view; ``extended``: with the attributes Cinder's extensions add to show and
    the detailed list only (tenant, host, migration, image metadata), which create and update
    answers do not carry (Tempest's schemas for those refuse them)."""
    return DetailView.of(request, types, extended).render(vol, {})
