"""Volumes, the API side: what a request does now (policy, quotas, validation, the
compare-and-swap starting the work and the task that continues it, in one transaction). The
worker side, which runs those tasks on the storage drivers, is ``manager``; the SQL is in
``queries``.

Every status change is a compare-and-swap (``UPDATE ... WHERE status = expected``, checked
against the transitions table: ``stackvol.db.transitions``) committed with the task that
continues the work, so concurrent requests cannot both win and a crash never strands a volume
in a transitional state.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import volumes
from stackvol.db.transitions import (
    ANY,
    ATTACHMENT,
    SNAPSHOT,
    VOLUME,
    initial,
    move,
    move_all,
    override,
    override_all,
)
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, NotFound
from stackvol.services.common.listing import ListQuery
from stackvol.services.common.metadata import MetadataChange, change_metadata, update_fields
from stackvol.services.common.records import Page, Volume
from stackvol.services.common.status import AttachmentStatus, SnapshotStatus, VolumeStatus
from stackvol.services.quotas.api import QuotaService
from stackvol.services.servers import image_boot
from stackvol.services.volumes import queries
from stackvol.services.volumes.manager import VolumeManager
from stackvol.services.volumes.queries import read_page, read_volume
from stackvol.services.volumes.types import choose_backend, no_valid_backend
from stackvol.services.volumes.types import resolve as resolve_type
from stackvol.storage.base import StorageError
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.worker import PauseHook, Worker
from stackvol.timeutils import utcnow

# Re-exported: the attachment services and the faces read volumes through this module.
__all__ = ["CLONEABLE", "DELETABLE", "SORT_KEYS", "VolumeService",
           "VolumeSpec", "check_not_copying", "creating_elsewhere", "read_page", "read_volume"]

log = logging.getLogger(__name__)

DEFAULT_VOLUME_TYPE = "__DEFAULT__"
# Statuses from which Cinder lets a volume be deleted (any but these when forced).
DELETABLE = (VolumeStatus.AVAILABLE, VolumeStatus.ERROR, VolumeStatus.ERROR_EXTENDING)
# What os-reset_status accepts: Cinder's volume statuses (some only an admin ever sets here,
# e.g. ``maintenance``, which no other action accepts), attach and migration statuses.
RESETTABLE = ("creating", "available", "deleting", "error", "error_deleting", "error_managing",
              "managing", "attaching", "in-use", "detaching", "maintenance", "restoring-backup",
              "error_restoring", "reserved", "error_extending", "extending")
ATTACH_STATUSES = ("attached", "detached")
MIGRATION_STATUSES = ("migrating", "error", "success", "completing", "none", "starting")
# Statuses a volume may be cloned from (Cinder's).
CLONEABLE = (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE)
# Sortable columns by their Cinder names.
SORT_KEYS = {"id": "id", "created_at": "created_at", "updated_at": "updated_at",
             "name": "display_name", "display_name": "display_name", "status": "status",
             "size": "size", "availability_zone": "availability_zone", "bootable": "bootable",
             "volume_type": "volume_type", "project_id": "project_id", "user_id": "user_id",
             "description": "display_description"}


def _authorized(conn: Connection, ctx: RequestContext, volume_id: str,
                rule: str = "volume:update") -> Volume:
    """The volume ``ctx`` may see (else ``NotFound``), once ``rule`` lets it act on the
    volume's project (else ``Forbidden``): the check every change of one volume starts with."""
    volume = read_volume(conn, ctx, volume_id)
    policy.authorize(ctx, rule, volume.project_id)
    return volume


def check_not_copying(conn: Connection, volume_id: str, action: str) -> None:
    """Refuse ``action`` (attach, extend) while a snapshot of the volume is being copied: the
    copy must see neither a guest's writes nor a new size. Called after the caller's status swap,
    which waits for a snapshot create holding the volume row, so that snapshot is seen."""
    if queries.snapshots_being_copied(conn, volume_id):
        raise Invalid(f"Invalid volume: Volume {volume_id} has a snapshot being created; "
                      f"{action} it when the snapshot is available.")


def creating_elsewhere(conn: Connection, kind: str, resource_id: str) -> bool:
    """Inside a force delete of a resource in ``creating``: cancel its create task if no worker
    took it yet; True when one is running, which then queues the delete itself (its bytes may
    appear until it ends)."""
    return queries.cancel_pending(conn, kind, resource_id)


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    """A create request, already validated for shape by the face that received it."""

    size: int
    display_name: str | None = None
    display_description: str | None = None
    volume_type: str | None = None
    metadata: dict[str, str] | None = None
    availability_zone: str | None = None
    snapshot_id: str | None = None
    image_id: str | None = None  # made from this image (Cinder's imageRef)
    source_volid: str | None = None  # a clone of this volume


class VolumeService:
    """The API side of volumes; the work it queues is done by ``manager.VolumeManager``."""

    def __init__(
        self,
        db: Database,
        backends: Backends,
        worker: Worker,
        availability_zones: tuple[str, ...] = ("nova",),
        max_volume_size_gb: int = 10240,
        pause: PauseHook | None = None,
        quotas: QuotaService | None = None,
    ) -> None:
        self.db = db
        self.backends = backends
        self.worker = worker
        self.availability_zones = availability_zones
        self.quotas = quotas
        self.max_volume_size_gb = max_volume_size_gb
        self.pause = pause or PauseHook("")
        # The worker side, in this process (its handlers run where the role allows).
        self.manager = VolumeManager(db, backends, worker, self.pause)

    @property
    def prepare_image(self) -> Callable[[str], Awaitable[None]] | None:
        """Called with an image id before its bytes are copied into a volume (set by the
        composition root: the Image service makes the built-in image's bytes on first use)."""
        return self.manager.prepare_image

    @prepare_image.setter
    def prepare_image(self, prepare: Callable[[str], Awaitable[None]] | None) -> None:
        self.manager.prepare_image = prepare

    # --- reads ----------------------------------------------------------------------------

    async def get(self, ctx: RequestContext, volume_id: str) -> Volume:
        volume = await self.db.read_prepared(read_volume, ctx, volume_id, one_query=True)
        policy.authorize(ctx, "volume:show", volume.project_id)
        return volume

    async def list(self, ctx: RequestContext, page: Page,
                   all_projects: bool = False) -> list[Volume]:
        """One page of the caller's volumes, newest first.

        ``all_projects`` widens it to every project for admins and is ignored for others (as
        Nova does with ``all_tenants``).
        """
        policy.authorize(ctx, "volume:list", ctx.project_id)
        everyone = all_projects and policy.allowed(ctx, "volume:list_all_projects")
        return await self.db.read_prepared(read_page, None if everyone else ctx.project_id,
                                           page)

    async def pool_stats(self) -> dict[str, dict[str, Any]]:
        """Each enabled backend's pool (Cinder's ``get_pools`` capabilities), with the
        volumes it holds and the GiB they were given."""
        usage = await self.db.read(queries.usage_by_backend)
        stats: dict[str, dict[str, Any]] = {}
        for name in self.backends.names:
            count, gigabytes = usage.get(name, (0, 0))
            stats[name] = {**await asyncio.to_thread(self.backends.capabilities, name),
                           "allocated_capacity_gb": gigabytes, "total_volumes": count}
        return stats

    # --- create ---------------------------------------------------------------------------

    def _check_spec(self, spec: VolumeSpec) -> None:
        if spec.size > self.max_volume_size_gb:
            raise Invalid(f"Invalid input received: Volume size {spec.size}G exceeds the "
                          f"maximum of {self.max_volume_size_gb}G per volume.")
        if spec.availability_zone and spec.availability_zone not in self.availability_zones:
            raise Invalid(f"Invalid input received: Availability zone "
                          f"'{spec.availability_zone}' is invalid.")

    async def create(self, ctx: RequestContext, spec: VolumeSpec) -> Volume:
        """Record the volume as ``creating`` and queue the work that makes its bytes."""
        policy.authorize(ctx, "volume:create", ctx.project_id)
        self._check_spec(spec)
        volume = await self.db.run_grouped(self._insert, ctx, spec)
        log.info("volume %s creating (%d GiB)", volume.id, volume.size)
        return volume

    def _insert(self, conn: Connection, ctx: RequestContext, spec: VolumeSpec) -> Volume:
        if sum(bool(s) for s in (spec.snapshot_id, spec.image_id, spec.source_volid)) > 1:
            raise Invalid("Invalid input received: A volume is made from one source: a "
                          "snapshot, a volume or an image.")
        source = (self._check_source_snapshot(conn, ctx, spec.snapshot_id, spec.size)
                  if spec.snapshot_id else
                  self._check_source_volume(conn, ctx, spec.source_volid, spec.size)
                  if spec.source_volid else None)
        image_metadata = (image_boot.volume_image(conn, ctx, spec.image_id, spec.size)
                          if spec.image_id else None)
        if spec.source_volid and source is not None and source.image_metadata:
            # As Cinder copies it to a clone.
            image_metadata = dict(source.image_metadata)
        # As Cinder: a volume made from a snapshot (or a clone) has its source's type unless
        # told otherwise, and stays on its source's backend.
        vtype = resolve_type(conn, ctx, spec.volume_type or (source.volume_type if source else
                                                              None) or DEFAULT_VOLUME_TYPE)
        type_name = vtype.name
        backend = source.backend if source else choose_backend(conn, self.backends, vtype)
        if self.quotas is not None:
            self.quotas.enforce(conn, ctx.project_id, type_name, volumes=1,
                                gigabytes=spec.size, volume_size=spec.size)
        now = utcnow()
        volume_id = str(uuid.uuid4())
        values: dict[str, Any] = {
            "id": volume_id,
            "project_id": ctx.project_id,
            "user_id": ctx.user_id,
            # ``error`` when no backend can hold it: Cinder's scheduler leaves it so, quota held.
            "status": initial(VOLUME, VolumeStatus.CREATING.value if backend is not None
                              else VolumeStatus.ERROR.value),
            "size": spec.size,
            "display_name": spec.display_name,
            "display_description": spec.display_description,
            "availability_zone": spec.availability_zone or self.availability_zones[0],
            "volume_type": type_name,
            "snapshot_id": spec.snapshot_id,
            "source_volid": spec.source_volid,
            "metadata": dict(spec.metadata or {}),
            "bootable": False,
            "backend": backend or "",
            "provider_location": None,
            "error_reason": None,
            "created_at": now,
            "updated_at": None,
            "image_metadata": image_metadata,
        }
        if backend is None:
            values["error_reason"] = no_valid_backend(vtype)
            log.warning("volume %s: %s", volume_id, values["error_reason"])
        queries.insert_volume(conn, values)
        if backend is not None:
            self.worker.enqueue(conn, TaskKind.VOLUME_CREATE, volume_id, target=backend)
        return Volume(**values)

    @staticmethod
    def _check_source_snapshot(conn: Connection, ctx: RequestContext, snapshot_id: str,
                               size: int) -> Any:
        """The source snapshot, checked (with its volume's backend and type)."""
        row = queries.source_snapshot(conn, snapshot_id)
        if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
            raise NotFound(f"Snapshot {snapshot_id} could not be found.")
        if row.status != SnapshotStatus.AVAILABLE:
            raise Invalid(f"Invalid snapshot: Originating snapshot status must be one of "
                          f"'available' values (it is '{row.status}').")
        if size < row.size:
            raise Invalid(f"Invalid input received: Volume size '{size}'GB cannot be "
                          f"smaller than the snapshot size {row.size}GB. They must be >= "
                          f"original snapshot size.")
        return row

    @staticmethod
    def _check_source_volume(conn: Connection, ctx: RequestContext, volume_id: str,
                             size: int) -> Any:
        """The volume to clone, checked (locked against a concurrent delete, which in turn
        refuses a source while a clone of it is being made)."""
        row = queries.source_volume(conn, volume_id)
        if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
            raise NotFound(f"Volume {volume_id} could not be found.")
        if row.status not in CLONEABLE:
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be available "
                          f"or in-use to be cloned, but current status is: {row.status}.")
        if size < row.size:
            raise Invalid(f"Invalid input received: Volume size '{size}'GB cannot be "
                          f"smaller than the source volume size {row.size}GB. They must be >= "
                          f"original volume size.")
        return row

    # --- Cinder: filtered lists, updates, metadata, bootable --------------------------------

    async def query(self, ctx: RequestContext,
                    query: ListQuery) -> tuple[builtins.list[Volume], int | None]:
        """A Cinder list page (filters, sort, marker) and, if asked, the number matching.

        ``query.project_id`` None (every project) is honoured for admins only.
        """
        policy.authorize(ctx, "volume:list", ctx.project_id)
        if query.project_id != ctx.project_id and not policy.allowed(
                ctx, "volume:list_all_projects"):
            query = replace(query, project_id=ctx.project_id)
        page = queries.plain_page(query)
        if page is not None:
            return await self.db.read_prepared(read_page, query.project_id, page), None
        return await self.db.read(queries.query_page, query)

    async def summary(self, ctx: RequestContext,
                      project_id: str | None) -> tuple[int, int, dict[str, builtins.list[str]]]:
        """Cinder's volume summary (3.12): how many volumes, their GiB, and each metadata key
        with the values it takes. ``project_id`` None (every project) is for admins only."""
        policy.authorize(ctx, "volume:list", ctx.project_id)
        if project_id != ctx.project_id and not policy.allowed(ctx, "volume:list_all_projects"):
            project_id = ctx.project_id
        return await self.db.read(queries.summary, project_id)

    async def update(self, ctx: RequestContext, volume_id: str, changes: dict[str, Any],
                     metadata: dict[str, str] | None = None) -> Volume:
        """Rename or describe a volume (``display_name``/``display_description``); ``metadata``
        replaces all of its metadata."""
        await self.db.run(self._update, ctx, volume_id, changes, metadata)
        return await self.get(ctx, volume_id)

    @staticmethod
    def _update(conn: Connection, ctx: RequestContext, volume_id: str, changes: dict[str, Any],
                metadata: dict[str, str] | None) -> None:
        _authorized(conn, ctx, volume_id)
        update_fields(conn, volumes, volume_id, changes)
        if metadata is not None:
            change_metadata(conn, volumes, volume_id, MetadataChange(set=metadata, replace=True))

    async def change_metadata(self, ctx: RequestContext, volume_id: str,
                              change: MetadataChange) -> dict[str, str]:
        return await self.db.run(self._change_metadata, ctx, volume_id, change)

    @staticmethod
    def _change_metadata(conn: Connection, ctx: RequestContext, volume_id: str,
                         change: MetadataChange) -> dict[str, str]:
        _authorized(conn, ctx, volume_id)
        return change_metadata(conn, volumes, volume_id, change)

    async def set_bootable(self, ctx: RequestContext, volume_id: str, bootable: bool) -> None:
        await self.db.run(self._set_bootable, ctx, volume_id, bootable)

    @staticmethod
    def _set_bootable(conn: Connection, ctx: RequestContext, volume_id: str,
                      bootable: bool) -> None:
        _authorized(conn, ctx, volume_id)
        update_fields(conn, volumes, volume_id, {"bootable": bootable})

    # --- extend ---------------------------------------------------------------------------

    async def extend(self, ctx: RequestContext, volume_id: str, new_size: int,
                     allow_in_use: bool = False) -> None:
        """Move the volume to ``extending`` and queue the growth of its bytes to ``new_size``."""
        await self.db.run(self._begin_extend, ctx, volume_id, new_size, allow_in_use)
        self.worker.wake()

    def _begin_extend(self, conn: Connection, ctx: RequestContext, volume_id: str,
                      new_size: int, allow_in_use: bool) -> None:
        volume = _authorized(conn, ctx, volume_id)
        wanted = [VolumeStatus.AVAILABLE] + ([VolumeStatus.IN_USE] if allow_in_use else [])
        if volume.status not in wanted:
            names = " or ".join(wanted)
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be {names} to "
                          f"extend, but current status is: {volume.status}.")
        if new_size <= volume.size:
            raise Invalid(f"Invalid input received: New size for extend must be greater than "
                          f"current size. (current: {volume.size}, extended: {new_size}).")
        if new_size > self.max_volume_size_gb:
            raise Invalid(f"Invalid input received: Volume size {new_size}G exceeds the "
                          f"maximum of {self.max_volume_size_gb}G per volume.")
        if self.quotas is not None:
            self.quotas.enforce(conn, volume.project_id, volume.volume_type,
                                gigabytes=new_size - volume.size, volume_size=new_size)
        if not move(conn, VOLUME, volume_id, [volume.status], VolumeStatus.EXTENDING):
            raise Invalid(f"Invalid volume: Volume {volume_id} changed status; try again.")
        # After the swap: a snapshot being copied has the volume's current size.
        check_not_copying(conn, volume_id, "extend")
        taskq.enqueue(conn, TaskKind.VOLUME_EXTEND, volume_id,
                      {"new_size": new_size, "restore": volume.status}, target=volume.backend)

    # --- administration: reset status -----------------------------------------------------

    async def reset_status(self, ctx: RequestContext, volume_id: str, status: str | None,
                           attach_status: str | None = None,
                           migration_status: str | None = None) -> None:
        """Set a volume's status as an admin says, reconciled with the backend and attachments.

        A volume said to be ``available``/``in-use`` whose bytes the backend does not hold
        becomes ``error``; ``available`` or ``detached`` drops its attachment rows; ``in-use``
        or ``attached`` needs one. Values are read case-blind, as Cinder does.
        """
        volume = await self.get(ctx, volume_id)
        policy.authorize(ctx, "volume:reset_status", volume.project_id)
        status, attach_status, migration_status = (
            v.lower() if v else None for v in (status, attach_status, migration_status))
        if not (status or attach_status or migration_status):
            raise Invalid("Invalid input received: Must specify 'status', 'attach_status' or "
                          "'migration_status' for update.")
        for value, valid, what in ((status, RESETTABLE, "status"),
                                   (attach_status, ATTACH_STATUSES, "attach status"),
                                   (migration_status, MIGRATION_STATUSES, "migration status")):
            if value is not None and value not in valid:
                raise Invalid(f"Invalid input received: Must specify a valid {what}")
        exists = await asyncio.to_thread(self.holds_bytes, volume)
        await self.db.run(self._reset, volume_id, status, attach_status, exists)
        if migration_status is not None:  # "none" clears it, as in Cinder
            await self.db.run(update_fields, volumes, volume_id, {
                "migration_status": None if migration_status == "none" else migration_status})
        log.warning("volume %s status reset to %s/%s/%s by %s", volume_id, status,
                    attach_status, migration_status, ctx.user_id)

    # --- read-only flag -------------------------------------------------------------------

    async def update_readonly_flag(self, ctx: RequestContext, volume_id: str,
                                   readonly: bool) -> None:
        """Cinder's os-update_readonly_flag: admin metadata ``readonly`` ("True"/"False"),
        which makes later attachments read-only (access_mode ``ro``)."""
        await self.db.run(self._set_readonly, ctx, volume_id, readonly)

    @staticmethod
    def _set_readonly(conn: Connection, ctx: RequestContext, volume_id: str,
                      readonly: bool) -> None:
        volume = _authorized(conn, ctx, volume_id, "volume:update_readonly_flag")
        admin_metadata = {**(volume.admin_metadata or {}), "readonly": str(readonly)}
        # Compare-and-swap on ``available``: an attach that begins meanwhile keeps its mode.
        if not move(conn, VOLUME, volume_id, [VolumeStatus.AVAILABLE],
                    VolumeStatus.AVAILABLE, admin_metadata=admin_metadata):
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be available to "
                          f"update readonly flag, but current status is: {volume.status}.")

    async def change_image_metadata(self, ctx: RequestContext, volume_id: str,
                                    add: dict[str, str] | None = None,
                                    remove: str | None = None) -> dict[str, str]:
        """Cinder's os-set_image_metadata / os-unset_image_metadata: the image properties a
        volume carries (``volume_image_metadata``); answers them as they now are."""
        return await self.db.run(self._change_image_metadata, ctx, volume_id, add, remove)

    @staticmethod
    def _change_image_metadata(conn: Connection, ctx: RequestContext, volume_id: str,
                               add: dict[str, str] | None, remove: str | None) -> dict[str, str]:
        volume = _authorized(conn, ctx, volume_id)
        if volume.status == "maintenance":  # set by reset-status (Cinder refuses it too)
            raise Invalid(f"Invalid volume: Volume {volume_id} is in maintenance.")
        found = {**(volume.image_metadata or {}), **(add or {})}
        if remove is not None:
            if remove not in found:
                raise NotFound(f"Glance metadata for volume {volume_id} with key {remove} "
                               "could not be found.")
            del found[remove]
        queries.set_image_metadata(conn, volume_id, found)
        return found

    def holds_bytes(self, volume: Volume) -> bool:
        """Blocking: whether the volume's backend holds its bytes (never placed: no)."""
        if not volume.backend:
            return False
        try:
            return self.backends.get(volume.backend).volume_exists(volume.id,
                                                                   volume.provider_location)
        except StorageError as exc:
            raise Invalid(f"Invalid volume: cannot reach the storage backend of volume "
                          f"{volume.id}: {exc}") from exc

    @staticmethod
    def _reset(conn: Connection, volume_id: str, status: str | None, attach_status: str | None,
               exists: bool) -> None:
        holders = queries.attachment_count(conn, volume_id)
        detached = attach_status == "detached" or status == VolumeStatus.AVAILABLE
        if (status == VolumeStatus.IN_USE or attach_status == "attached") and (
                detached or not holders):
            raise Invalid(f"Invalid volume: Volume {volume_id} has no attachment, so it "
                          f"cannot be in-use or attached.")
        if detached:
            queries.delete_attachments(conn, volume_id)
        elif status == VolumeStatus.IN_USE:
            override_all(conn, ATTACHMENT, "volume_id", volume_id, ANY, AttachmentStatus.ATTACHED)
        if status in (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE) and not exists:
            override(conn, VOLUME, volume_id, ANY, VolumeStatus.ERROR,
                     error_reason="reset_status: the backend holds no data for the volume")
        elif status is not None:
            override(conn, VOLUME, volume_id, ANY, status, error_reason=None)

    # --- delete ---------------------------------------------------------------------------

    async def delete(self, ctx: RequestContext, volume_id: str, cascade: bool = False,
                     force: bool = False) -> None:
        """Refuse clearly, or move the volume to ``deleting`` and queue the removal of its bytes.

        ``cascade`` takes its snapshots with it; ``force`` (admins) ignores its status.
        """
        await self.db.run(self._begin_delete, ctx, volume_id, cascade, force)
        self.worker.wake()

    def _begin_delete(self, conn: Connection, ctx: RequestContext, volume_id: str,
                      cascade: bool = False, force: bool = False) -> None:
        volume = _authorized(conn, ctx, volume_id,
                             "volume:force_delete" if force else "volume:delete")
        if volume.attachments:  # attached (or detaching): a server holds it, forced or not
            raise Invalid("Invalid volume: Volume status must be available or error or "
                          "error_restoring or error_extending or error_managing and must not "
                          "be migrating, attached, belong to a group, have snapshots or be "
                          "disassociated from snapshots after volume transfer.")
        # As Cinder: forced, any status will do (attaching, maintenance, creating...).
        moved = (override(conn, VOLUME, volume_id, [volume.status], VolumeStatus.DELETING)
                 if force else move(conn, VOLUME, volume_id, DELETABLE, VolumeStatus.DELETING))
        if not moved:
            raise Invalid(f"Invalid volume: Volume status must be available or error, but "
                          f"current status is: {volume.status}.")
        clones = queries.clones_being_created(conn, volume_id)
        if clones:  # after the swap, as for snapshots below (raising rolls it back)
            raise Invalid(f"Invalid volume: Volume {volume_id} is the source of {clones} "
                          f"volume(s) still being created.")
        if force:
            self._drop_reservations(conn, volume_id)
        # Counted after the swap, which waits for a snapshot create holding the volume row, so
        # its snapshot is seen (raising rolls the swap back).
        count = queries.snapshot_count(conn, volume_id)
        if count and not cascade:
            raise Invalid(f"Invalid volume: Volume {volume_id} still has {count} dependent "
                          f"snapshots.")
        if count:
            cascaded = move_all(conn, SNAPSHOT, "volume_id", volume_id,
                                [SnapshotStatus.AVAILABLE, SnapshotStatus.ERROR],
                                SnapshotStatus.DELETING)
            if cascaded != count:
                raise Invalid("Invalid volume: Snapshot of the volume must be available or "
                              "error to be deleted with the volume.")
        if not volume.backend:  # never placed on a backend: no bytes anywhere (as Cinder)
            queries.delete_unplaced(conn, volume_id)
            return
        if volume.status == VolumeStatus.CREATING and creating_elsewhere(
                conn, TaskKind.VOLUME_CREATE, volume_id):
            return  # its running create queues the delete when it ends (see ``_settled``)
        taskq.enqueue(conn, TaskKind.VOLUME_DELETE, volume_id, target=volume.backend)

    @staticmethod
    def _drop_reservations(conn: Connection, volume_id: str) -> None:
        """A forced delete ends the attachments no server holds yet (reserved, attaching),
        tearing down any connection made for them; an attach chain still running finds its
        row gone and stops."""
        # Imported here: the attachment services build on this module (read_volume).
        from stackvol.services.attachments.connections import release_connection

        for row in queries.take_attachments(conn, volume_id):
            release_connection(conn, row)

