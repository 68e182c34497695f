"""Cinder's side of attaching: the attachments API (3.27+) and the older volume actions.

These work on the very rows nova_api.py keeps for Nova's os-volume_attachments
(one ``volume_attachments`` row per volume on a server), with the same volume state machine:

attachments API: create (volume available → reserved, row ``reserved``; with a connector the
    row is ``attaching`` with its connection info at once) → update with a connector (row
    ``attaching``, volume ``attaching``) → complete (row ``attached``, volume ``in-use``) →
    delete (row removed; volume ``available`` once nothing holds it).
volume actions: os-reserve / os-unreserve (available ⇄ attaching), os-attach (row ``attached``,
    volume ``in-use``), os-begin_detaching / os-roll_detaching (in-use ⇄ detaching),
    os-detach (row removed), os-initialize_connection / os-terminate_connection.

Here the caller (a hypervisor manager that is not our compute face) makes the connection, as
Nova does against Cinder, so no compute driver is called. The storage driver makes it in this
process when it runs the volume's backend (role ``all``); otherwise the backend's worker makes
it and this process waits for the answer (connection_calls.py), as Cinder's API calls
cinder-volume. No worker runs anything of this module: it is all the API's side.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import ATTACHMENT, VOLUME, initial, move
from stackvol.services.attachments import queries
from stackvol.services.attachments.connection_calls import (
    ConnectionCalls,
    Pending,
    call_initialize,
    call_terminate,
)
from stackvol.services.attachments.connections import (
    ATTACH_MODES,
    connection_info,
    made_for,
    release_connection,
)
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, NotFound
from stackvol.services.common.records import Attachment, Volume
from stackvol.services.common.status import AttachmentStatus, VolumeStatus
from stackvol.services.volumes.api import check_not_copying
from stackvol.services.volumes.qos_specs import front_end_specs
from stackvol.services.volumes.queries import read_volume
from stackvol.storage.base import StorageError
from stackvol.storage.registry import Backends

# Rows that hold the volume, reserved ones included.
HOLDING = (AttachmentStatus.RESERVED, AttachmentStatus.ATTACHING, AttachmentStatus.ATTACHED,
           AttachmentStatus.DETACHING)
# Volume statuses meaning something holds the volume: ``available`` once nothing does.
ATTACHED_STATUSES = (VolumeStatus.IN_USE, VolumeStatus.RESERVED, VolumeStatus.ATTACHING,
                     VolumeStatus.DETACHING)


@dataclass(frozen=True, slots=True)
class AttachmentFilter:
    volume_id: str | None = None
    status: str | None = None
    instance_id: str | None = None
    all_projects: bool = False


def access_mode(volume: Volume, mode: str | None) -> str | None:
    """The mode a connection gets: ``ro`` for a read-only volume whatever was asked (Cinder's
    admin metadata ``readonly``), else the one asked for."""
    return "ro" if volume.readonly else mode


def attach_mode(attachment: Attachment) -> str:
    """``rw``/``ro`` once known (kept in the connection info, as Cinder's ``access_mode``)."""
    info = attachment.connection_info or {}
    return (info.get("data") or {}).get("access_mode") or info.get("access_mode") or "null"


class VolumeAttachService:
    def __init__(self, db: Database, backends: Backends, calls: ConnectionCalls) -> None:
        self.db = db
        self.backends = backends
        self.calls = calls

    # --- lookups --------------------------------------------------------------------------

    @staticmethod
    def _load(conn: Connection, ctx: RequestContext, attachment_id: str,
              action: str) -> tuple[Attachment, Volume]:
        row = queries.find(conn, attachment_id)
        if row is None:
            raise NotFound(f"VolumeAttachment {attachment_id} could not be found.")
        try:
            volume = read_volume(conn, ctx, row.volume_id)
        except NotFound:
            raise NotFound(f"VolumeAttachment {attachment_id} could not be found.") from None
        policy.authorize(ctx, action, volume.project_id)
        return Attachment.from_row(row), volume

    @staticmethod
    def _holders(conn: Connection, volume_id: str) -> builtins.list[Attachment]:
        return queries.of_volume(conn, volume_id, HOLDING)

    def _connection_info(self, conn: Connection, volume: Volume, mode: str | None,
                         connector: Mapping[str, Any] | None = None,
                         attachment_id: str | None = None) -> dict[str, Any]:
        """Connection info for the connector's host (an export where it cannot reach the
        bytes), made here: for a backend this process runs (see ``_remote``)."""
        return connection_info(self.backends, volume.backend, volume.id,
                               volume.provider_location or "", access_mode(volume, mode),
                               made_for(connector, attachment_id),
                               front_end_specs(conn, volume.id))

    def _remote(self, volume: Volume, connector: Mapping[str, Any] | None) -> bool:
        """Whether the connection for ``connector`` must be made by the backend's worker."""
        return bool(connector and connector.get("host")) and self.calls.remote(volume.backend)

    async def _answer(self, found: Any) -> Any:
        """A transaction's result, or the answer of the connection call it committed."""
        return await self.calls.wait(found) if isinstance(found, Pending) else found

    @staticmethod
    def _check_instance(conn: Connection, ctx: RequestContext, instance_id: str | None) -> None:
        """A named server of ours must be one the caller may see: otherwise another project
        could put its volume on that server. A uuid naming no server of ours stays allowed
        (a consumer that is not our compute service, as Cinder allows)."""
        if not instance_id:
            return
        owner = queries.server_owner(conn, instance_id)
        if owner is not None and not ctx.is_admin and owner != ctx.project_id:
            raise NotFound(f"Instance {instance_id} could not be found.")

    @staticmethod
    def _insert(conn: Connection, volume_id: str, server_id: str | None, device: str | None,
                status: str, info: dict[str, Any] | None) -> Attachment:
        return queries.insert(conn, queries.new_row(
            volume_id, server_id or "", device, initial(ATTACHMENT, status),
            connection_info=info))

    @staticmethod
    def _release(conn: Connection, attachment: Attachment) -> None:
        """Remove one row; the volume is available again once no row holds it."""
        queries.delete(conn, attachment.id)
        release_connection(conn, attachment)
        if not queries.count_of_volume(conn, attachment.volume_id, HOLDING):
            move(conn, VOLUME, attachment.volume_id, ATTACHED_STATUSES, VolumeStatus.AVAILABLE)

    # --- the attachments API --------------------------------------------------------------

    async def get(self, ctx: RequestContext, attachment_id: str) -> Attachment:
        found, _ = await self.db.read(self._load, ctx, attachment_id, "attachment:show")
        return found

    async def list(self, ctx: RequestContext,
                   flt: AttachmentFilter) -> builtins.list[Attachment]:
        policy.authorize(ctx, "attachment:list", ctx.project_id)
        everyone = flt.all_projects and policy.allowed(ctx, "volume:list_all_projects")
        return await self.db.read(self._list, None if everyone else ctx.project_id, flt)

    @staticmethod
    def _list(conn: Connection, project_id: str | None,
              flt: AttachmentFilter) -> builtins.list[Attachment]:
        return queries.listed(conn, project_id, flt.volume_id, flt.status, flt.instance_id)

    async def create(self, ctx: RequestContext, volume_id: str, instance_id: str | None,
                     connector: Mapping[str, Any] | None = None,
                     mode: str | None = None) -> Attachment:
        """Reserve the volume for an instance (and connect it at once with a connector)."""
        found = await self.db.run(self._create, ctx, volume_id, instance_id, connector, mode)
        if isinstance(found, tuple):  # reserved; the backend's worker connects it
            attachment, pending = found
            await self.calls.wait(pending)
            return await self.db.read(_reload, attachment)
        return found

    def _create(self, conn: Connection, ctx: RequestContext, volume_id: str,
                instance_id: str | None, connector: Mapping[str, Any] | None,
                mode: str | None) -> Attachment | tuple[Attachment, Pending]:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "attachment:create", volume.project_id)
        self._check_instance(conn, ctx, instance_id)
        remote = self._remote(volume, connector)
        target = VolumeStatus.ATTACHING if connector and not remote else VolumeStatus.RESERVED
        if not move(conn, VOLUME, volume_id, [VolumeStatus.AVAILABLE], target):
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be available to "
                          f"reserve, but the current status is {volume.status}.")
        check_not_copying(conn, volume_id, "attach")
        if connector and remote:
            return self._call_create(conn, volume, instance_id, connector, mode)
        if connector:
            return self._insert(conn, volume_id, instance_id, connector.get("mountpoint"),
                                AttachmentStatus.ATTACHING,
                                self._connection_info(conn, volume,
                                                      mode or connector.get("mode"), connector))
        mode = access_mode(volume, mode)
        info = {"access_mode": mode} if mode in ATTACH_MODES else None
        return self._insert(conn, volume_id, instance_id, None, AttachmentStatus.RESERVED, info)

    def _call_create(self, conn: Connection, volume: Volume, instance_id: str | None,
                     connector: Mapping[str, Any],
                     mode: str | None) -> tuple[Attachment, Pending]:
        """A reserved row, connected by the backend's worker; gone again if that fails."""
        reserved = self._insert(conn, volume.id, instance_id, None, AttachmentStatus.RESERVED,
                                None)
        call_id = call_initialize(conn, volume.id, volume.backend, connector,
                                  access_mode(volume, mode or connector.get("mode")),
                                  reserved.id, connector.get("mountpoint"))

        def undo(conn: Connection) -> None:
            self._release(conn, reserved)

        return reserved, Pending(call_id, "Unable to create attachment for volume.", undo)

    async def update(self, ctx: RequestContext, attachment_id: str,
                     connector: Mapping[str, Any]) -> Attachment:
        """Give a reserved attachment its connector; answer with the connection info."""
        found = await self.db.run(self._update, ctx, attachment_id, connector)
        if isinstance(found, Pending):  # the backend's worker connects it
            await self.calls.wait(found)
            return await self.db.read(_reload, attachment_id)
        return found

    def _update(self, conn: Connection, ctx: RequestContext, attachment_id: str,
                connector: Mapping[str, Any]) -> Attachment | Pending:
        attachment, volume = self._load(conn, ctx, attachment_id, "attachment:update")
        if attachment.status not in (AttachmentStatus.RESERVED, AttachmentStatus.ATTACHING):
            raise Invalid(f"Invalid volume: Attachment {attachment_id} is {attachment.status}; "
                          f"only a reserved attachment can be updated.")
        mode = connector.get("mode") or (attachment.connection_info or {}).get("access_mode")
        device = connector.get("mountpoint") or attachment.device
        if self._remote(volume, connector):
            return Pending(call_initialize(conn, volume.id, volume.backend, connector,
                                           access_mode(volume, mode), attachment_id, device),
                           "Unable to update the attachment.")
        info = self._connection_info(conn, volume, mode, connector, attachment_id)
        move(conn, ATTACHMENT, attachment_id, [attachment.status],
             AttachmentStatus.ATTACHING, connection_info=info, device=device)
        move(conn, VOLUME, volume.id, [VolumeStatus.RESERVED], VolumeStatus.ATTACHING)
        attachment.status, attachment.connection_info, attachment.device = (
            AttachmentStatus.ATTACHING.value, info, device)
        return attachment

    async def complete(self, ctx: RequestContext, attachment_id: str) -> None:
        await self.db.run(self._complete, ctx, attachment_id)

    def _complete(self, conn: Connection, ctx: RequestContext, attachment_id: str) -> None:
        attachment, volume = self._load(conn, ctx, attachment_id, "attachment:update")
        if attachment.status == AttachmentStatus.ATTACHED:
            return
        if attachment.status not in (AttachmentStatus.RESERVED, AttachmentStatus.ATTACHING):
            raise Invalid(f"Invalid volume: Attachment {attachment_id} is {attachment.status} "
                          f"and cannot be completed.")
        move(conn, ATTACHMENT, attachment_id, [attachment.status], AttachmentStatus.ATTACHED)
        move(conn, VOLUME, volume.id, [VolumeStatus.RESERVED, VolumeStatus.ATTACHING],
             VolumeStatus.IN_USE)

    async def delete(self, ctx: RequestContext, attachment_id: str) -> None:
        await self.db.run(self._delete, ctx, attachment_id)

    def _delete(self, conn: Connection, ctx: RequestContext, attachment_id: str) -> None:
        attachment, _ = self._load(conn, ctx, attachment_id, "attachment:delete")
        self._release(conn, attachment)

    # --- the volume actions ---------------------------------------------------------------

    async def action(self, ctx: RequestContext, volume_id: str, name: str,
                     **args: Any) -> dict[str, Any] | None:
        """Run one of the legacy attach actions (``reserve``, ``attach``...) on a volume."""
        return await self._answer(await self.db.run(getattr(self, f"_{name}"), ctx, volume_id,
                                                    **args))

    def _volume(self, conn: Connection, ctx: RequestContext, volume_id: str) -> Volume:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "attachment:update", volume.project_id)
        return volume

    def _reserve(self, conn: Connection, ctx: RequestContext, volume_id: str) -> None:
        volume = self._volume(conn, ctx, volume_id)
        if not move(conn, VOLUME, volume_id, [VolumeStatus.AVAILABLE], VolumeStatus.ATTACHING):
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be available to "
                          f"reserve, but the current status is {volume.status}.")
        check_not_copying(conn, volume_id, "attach")

    def _unreserve(self, conn: Connection, ctx: RequestContext, volume_id: str) -> None:
        self._volume(conn, ctx, volume_id)
        if not self._holders(conn, volume_id):
            move(conn, VOLUME, volume_id, [VolumeStatus.ATTACHING], VolumeStatus.AVAILABLE)

    def _attach(self, conn: Connection, ctx: RequestContext, volume_id: str,
                instance_uuid: str | None, mountpoint: str | None, host_name: str | None,
                mode: str) -> None:
        volume = self._volume(conn, ctx, volume_id)
        if not instance_uuid and not host_name:
            raise Invalid("Invalid request to attach volume to an invalid target")
        self._check_instance(conn, ctx, instance_uuid)
        if mode not in ATTACH_MODES:
            raise Invalid("Invalid request to attach volume with an invalid mode. Attaching "
                          "mode should be 'rw' or 'ro'")
        if volume.readonly and mode != "ro":
            raise Invalid(f"Invalid attaching mode '{mode}' for volume {volume_id}.")
        if not move(conn, VOLUME, volume_id,
                    [VolumeStatus.AVAILABLE, VolumeStatus.ATTACHING],
                    VolumeStatus.IN_USE) or self._holders(conn, volume_id):
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be available or "
                          f"attaching to attach, but the current status is {volume.status}.")
        check_not_copying(conn, volume_id, "attach")
        self._insert(conn, volume_id, instance_uuid, mountpoint, AttachmentStatus.ATTACHED,
                     self._connection_info(conn, volume, mode))

    def _detach(self, conn: Connection, ctx: RequestContext, volume_id: str,
                attachment_id: str | None) -> None:
        volume = self._volume(conn, ctx, volume_id)
        if volume.status == "maintenance":  # set by reset-status (Cinder refuses it too)
            raise Invalid("Invalid volume: The volume cannot be detached in maintenance mode.")
        holders = self._holders(conn, volume_id)
        if attachment_id:
            holders = [a for a in holders if a.id == attachment_id]
        if not holders:
            # As Cinder's manager: detaching what is not attached (e.g. after a force detach)
            # is no error; a volume nothing holds any more leaves its attach statuses.
            if not self._holders(conn, volume_id):
                move(conn, VOLUME, volume_id, ATTACHED_STATUSES, VolumeStatus.AVAILABLE)
            return
        if len(holders) > 1:
            raise Invalid("Invalid volume: Detach volume failed: More than one attachment, "
                          "but no attachment_id provided.")
        self._release(conn, holders[0])

    def _begin_detaching(self, conn: Connection, ctx: RequestContext, volume_id: str) -> None:
        self._volume(conn, ctx, volume_id)
        if not move(conn, VOLUME, volume_id, [VolumeStatus.IN_USE], VolumeStatus.DETACHING):
            raise Invalid("Invalid volume: Unable to detach volume. Volume status must be "
                          "'in-use' and attach_status must be 'attached' to detach.")

    def _roll_detaching(self, conn: Connection, ctx: RequestContext, volume_id: str) -> None:
        self._volume(conn, ctx, volume_id)
        move(conn, VOLUME, volume_id, [VolumeStatus.DETACHING], VolumeStatus.IN_USE)

    def _initialize_connection(self, conn: Connection, ctx: RequestContext, volume_id: str,
                               connector: Mapping[str, Any]) -> dict[str, Any] | Pending:
        volume = self._volume(conn, ctx, volume_id)
        if not volume.provider_location:
            raise Invalid(f"Invalid volume: Volume {volume_id} has no data yet (status "
                          f"{volume.status}).")
        if self._remote(volume, connector):
            return Pending(call_initialize(conn, volume.id, volume.backend, connector,
                                           access_mode(volume, connector.get("mode"))))
        return self._connection_info(conn, volume, connector.get("mode"), connector)

    def _terminate_connection(self, conn: Connection, ctx: RequestContext, volume_id: str,
                              connector: Mapping[str, Any]) -> Pending | None:
        volume = self._volume(conn, ctx, volume_id)
        if volume.backend and self._remote(volume, connector):
            return Pending(call_terminate(conn, volume.id, volume.backend, connector["host"]))
        if connector.get("host") and volume.backend:  # what os-initialize_connection made
            try:
                self.backends.get(volume.backend).terminate_connection(
                    volume.id, volume.provider_location,
                    {"host": connector["host"], "attachment_id": None})
            except StorageError as exc:
                raise Invalid(f"Invalid volume: cannot disconnect volume {volume.id}: "
                              f"{exc}") from exc
        return None


def _reload(conn: Connection, attachment: Attachment | str) -> Attachment:
    """An attachment as its connection call left it."""
    attachment_id = attachment if isinstance(attachment, str) else attachment.id
    row = queries.find(conn, attachment_id)
    if row is None:
        raise NotFound(f"VolumeAttachment {attachment_id} could not be found.")
    return Attachment.from_row(row)
