"""Volumes: creation, listing, deletion and the states between, over any storage driver.

Every status change is a compare-and-swap (``UPDATE ... WHERE status = expected``, checked
against the transitions table: ``stackvol.db.transitions``) committed with the task that
continues the work, so concurrent requests cannot both win and a crash never strands a volume
in a transitional state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.prepared import PreparedSelect, RawReader
from stackvol.db.schema import snapshots, tasks, volume_attachments, volumes
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
from stackvol.services.common.listing import ListQuery, fetch_page
from stackvol.services.common.metadata import MetadataChange, change_metadata, update_fields
from stackvol.services.common.records import Attachment, Page, Volume
from stackvol.services.common.status import AttachmentStatus, SnapshotStatus, VolumeStatus
from stackvol.services.quotas.api import QuotaService
from stackvol.services.servers import image_boot
from stackvol.services.volumes.types import choose_backend, no_valid_backend
from stackvol.services.volumes.types import resolve as resolve_type
from stackvol.storage.base import StorageError
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker
from stackvol.timeutils import utcnow

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
# Attachments that mean "the server has (or is getting/losing) this volume".
LIVE_ATTACHMENTS = (AttachmentStatus.ATTACHED, AttachmentStatus.DETACHING)

_ORDER = (volumes.c.created_at.desc(), volumes.c.id.desc())
_VOLUME_WIDTH = len(volumes.c)
_LIVE = sa.or_(*(volume_attachments.c.status == s.value for s in LIVE_ATTACHMENTS))

# Rows are turned into records by position: the records list the table's columns in order.
assert [f.name for f in dataclasses.fields(Volume)][:_VOLUME_WIDTH] == [c.name for c in volumes.c]
assert [f.name for f in dataclasses.fields(Attachment)] == [c.name for c in volume_attachments.c]


def _page(scoped: bool) -> sa.Select:
    query = (sa.select(*volumes.c).order_by(*_ORDER)
             .limit(sa.bindparam("limit")).offset(sa.bindparam("offset")))
    return query.where(volumes.c.project_id == sa.bindparam("project")) if scoped else query


def _with_live_attachments(selected: sa.Select) -> PreparedSelect:
    """Each selected volume followed by its live attachments, in one query (a LEFT JOIN)."""
    vol = selected.subquery("v")
    joined = vol.outerjoin(volume_attachments,
                           sa.and_(volume_attachments.c.volume_id == vol.c.id, _LIVE))
    return PreparedSelect(
        sa.select(*vol.c, *volume_attachments.c).select_from(joined)
        .order_by(vol.c.created_at.desc(), vol.c.id.desc(), volume_attachments.c.created_at))


def _page_attachments(scoped: bool) -> PreparedSelect:
    """The live attachments of the volumes on a page: its ids re-read from the index alone."""
    ids = _page(scoped).with_only_columns(volumes.c.id).subquery("page")
    return PreparedSelect(
        sa.select(*volume_attachments.c)
        .select_from(ids.join(volume_attachments,
                              sa.and_(volume_attachments.c.volume_id == ids.c.id, _LIVE)))
        .order_by(volume_attachments.c.created_at))


# The read queries, prepared once (see db/prepared.py); also run through Core in transactions.
VOLUME_BY_ID = _with_live_attachments(
    sa.select(*volumes.c).where(volumes.c.id == sa.bindparam("id")))
# A page is two queries: joined, SQLite sorted every page in a temporary B-tree, twice as slow.
PAGE = {scoped: PreparedSelect(_page(scoped)) for scoped in (True, False)}
PAGE_ATTACHMENTS = {scoped: _page_attachments(scoped) for scoped in (True, False)}


def _fold(rows: list[Sequence[Any]]) -> list[Volume]:
    """Joined rows (volume columns, then attachment columns or NULLs) to volumes."""
    found: list[Volume] = []
    for row in rows:
        if not found or found[-1].id != row[0]:
            found.append(Volume(*row[:_VOLUME_WIDTH]))
        if row[_VOLUME_WIDTH] is not None:
            found[-1].attachments.append(Attachment(*row[_VOLUME_WIDTH:]))
    return found


def _with_attachments(found: list[Volume], rows: Sequence[Sequence[Any]]) -> list[Volume]:
    """Give each volume its attachments from rows of ``volume_attachments``."""
    by_volume = {volume.id: volume for volume in found}
    for row in rows:
        volume = by_volume.get(row[1])
        if volume is not None:  # READ COMMITTED: a volume created since the page was read
            volume.attachments.append(Attachment(*row))
    return found


def read_volume(reader: RawReader | Connection, ctx: RequestContext, volume_id: str) -> Volume:
    """The volume with its live attachments, if ``ctx`` may see it; else ``NotFound``."""
    found = _fold(_rows(reader, VOLUME_BY_ID, id=volume_id))
    if not found or (not ctx.is_admin and found[0].project_id != ctx.project_id):
        raise NotFound(f"Volume {volume_id} could not be found.")
    return found[0]


def read_page(reader: RawReader | Connection, project_id: str | None,
              page: Page) -> list[Volume]:
    scoped = project_id is not None
    params = {"limit": page.limit, "offset": page.offset}
    if scoped:
        params["project"] = project_id
    found = [Volume(*row) for row in _rows(reader, PAGE[scoped], **params)]
    if found:
        _with_attachments(found, _rows(reader, PAGE_ATTACHMENTS[scoped], **params))
    return found


def check_not_copying(conn: Connection, volume_id: str, action: str) -> None:
    """Refuse ``action`` (attach, extend) while a snapshot of the volume is being copied: the
    copy must see neither a guest's writes nor a new size. Called after the caller's status swap,
    which waits for a snapshot create holding the volume row, so that snapshot is seen."""
    copying = conn.execute(sa.select(sa.func.count()).where(
        snapshots.c.volume_id == volume_id,
        snapshots.c.status == SnapshotStatus.CREATING)).scalar_one()
    if copying:
        raise Invalid(f"Invalid volume: Volume {volume_id} has a snapshot being created; "
                      f"{action} it when the snapshot is available.")


def _rows(reader: RawReader | Connection, query: PreparedSelect, **params: Any) -> list[Any]:
    if isinstance(reader, RawReader):
        return reader.rows(query, **params)
    return list(reader.execute(query.stmt, params))


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
    # Called with an image id before its bytes are copied into a volume (set by the
    # composition root: the Image service makes the built-in image's bytes on first use).
    prepare_image: Callable[[str], Awaitable[None]] | None = None

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
        worker.register(TaskKind.VOLUME_CREATE, Handler(self._run_create, self._fail_create))
        worker.register(TaskKind.VOLUME_DELETE, Handler(self._run_delete, self._fail_delete))
        worker.register(TaskKind.VOLUME_EXTEND, Handler(self._run_extend, self._fail_extend))

    # --- reads ----------------------------------------------------------------------------

    async def get(self, ctx: RequestContext, volume_id: str) -> Volume:
        volume = await self.db.read_prepared(read_volume, ctx, volume_id)
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
        usage = await self.db.read(_usage_by_backend)
        stats = {}
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
        volume = await self.db.run(self._insert, ctx, spec)
        self.worker.wake()
        log.info("volume %s creating (%d GiB)", volume.id, volume.size)
        return volume

    def _insert(self, conn: Connection, ctx: RequestContext, spec: VolumeSpec) -> Volume:
        if sum(bool(s) for s in (spec.snapshot_id, spec.image_id, spec.source_volid)) > 1:
            raise Invalid("Invalid input received: A volume is made from one source: a "
                          "snapshot, a volume or an image.")
        source = (self._check_source_snapshot(conn, ctx, spec) if spec.snapshot_id else
                  self._check_source_volume(conn, ctx, spec) if spec.source_volid else None)
        image_metadata = (image_boot.volume_image(conn, ctx, spec.image_id, spec.size)
                          if spec.image_id else None)
        if spec.source_volid and source.image_metadata:  # as Cinder copies it to a clone
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
        values = {
            "id": str(uuid.uuid4()),
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
            log.warning("volume %s: %s", values["id"], values["error_reason"])
        conn.execute(volumes.insert(), values)
        if backend is not None:
            taskq.enqueue(conn, TaskKind.VOLUME_CREATE, values["id"], target=backend)
        return Volume(**values)

    @staticmethod
    def _check_source_snapshot(conn: Connection, ctx: RequestContext, spec: VolumeSpec) -> Any:
        """The source snapshot, checked (with its volume's backend and type)."""
        query = (sa.select(snapshots.c.status, snapshots.c.size, snapshots.c.project_id,
                           volumes.c.backend, volumes.c.volume_type)
                 .join(volumes, volumes.c.id == snapshots.c.volume_id)
                 .where(snapshots.c.id == spec.snapshot_id)
                 .with_for_update(of=snapshots))  # vs. a concurrent delete
        row = conn.execute(query).first()
        if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
            raise NotFound(f"Snapshot {spec.snapshot_id} could not be found.")
        if row.status != SnapshotStatus.AVAILABLE:
            raise Invalid(f"Invalid snapshot: Originating snapshot status must be one of "
                          f"'available' values (it is '{row.status}').")
        if spec.size < row.size:
            raise Invalid(f"Invalid input received: Volume size '{spec.size}'GB cannot be "
                          f"smaller than the snapshot size {row.size}GB. They must be >= "
                          f"original snapshot size.")
        return row

    @staticmethod
    def _check_source_volume(conn: Connection, ctx: RequestContext, spec: VolumeSpec) -> Any:
        """The volume to clone, checked (locked against a concurrent delete, which in turn
        refuses a source while a clone of it is being made)."""
        row = conn.execute(sa.select(volumes.c.status, volumes.c.size, volumes.c.project_id,
                                     volumes.c.backend, volumes.c.volume_type,
                                     volumes.c.image_metadata)
                           .where(volumes.c.id == spec.source_volid).with_for_update()).first()
        if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
            raise NotFound(f"Volume {spec.source_volid} could not be found.")
        if row.status not in CLONEABLE:
            raise Invalid(f"Invalid volume: Volume {spec.source_volid} status must be available "
                          f"or in-use to be cloned, but current status is: {row.status}.")
        if spec.size < row.size:
            raise Invalid(f"Invalid input received: Volume size '{spec.size}'GB cannot be "
                          f"smaller than the source volume size {row.size}GB. They must be >= "
                          f"original volume size.")
        return row

    async def _run_create(self, task: Task) -> None:
        volume = await self.db.read_prepared(read_volume, RequestContext.system(),
                                             task.resource_id)
        if volume.status != VolumeStatus.CREATING:
            await self.db.run(_settled, task)  # someone already settled it
            return
        await self.pause.at("volume.create")
        storage = self.backends.get(volume.backend)
        bootable = bool(volume.image_metadata)
        if volume.snapshot_id:
            source = await self.db.read(_snapshot_location, volume.snapshot_id)
            location = await asyncio.to_thread(storage.create_volume_from_snapshot,
                                               volume.id, volume.size, source)
        elif volume.source_volid:
            origin = await self.db.read(_location, volume.source_volid)
            if origin is None or not origin.provider_location:
                raise StorageError(f"source volume {volume.source_volid} has no data")
            location = await asyncio.to_thread(storage.create_cloned_volume, volume.id,
                                               volume.size, origin.provider_location)
            bootable = bootable or bool(origin.bootable)
        elif volume.image_metadata:
            if self.prepare_image is not None:  # e.g. the built-in image's first use
                await self.prepare_image(volume.image_metadata["image_id"])
            image = await self.db.read(image_boot.source_file,
                                       volume.image_metadata["image_id"])
            location = await asyncio.to_thread(storage.copy_image_to_volume, volume.id,
                                               volume.size, image.path, image.qemu_format)
        else:
            location = await asyncio.to_thread(storage.create_volume, volume.id, volume.size)
        await self.db.run(self._created, task, location, bootable)
        log.info("volume %s available", volume.id)

    @staticmethod
    def _created(conn: Connection, task: Task, location: str, bootable: bool = False) -> None:
        # As Cinder: a volume holding an image's bytes (or a clone of a bootable volume) is
        # bootable once they are there.
        extra = {"bootable": True} if bootable else {}
        if not move(conn, VOLUME, task.resource_id, [VolumeStatus.CREATING],
                    VolumeStatus.AVAILABLE, provider_location=location, **extra):
            # Force-deleted meanwhile: record where the bytes are for the delete that follows.
            conn.execute(volumes.update().where(volumes.c.id == task.resource_id)
                         .values(provider_location=location))
        _settled(conn, task)

    @staticmethod
    def _fail_create(conn: Connection, task: Task, reason: str) -> None:
        if not move(conn, VOLUME, task.resource_id, [VolumeStatus.CREATING],
                    VolumeStatus.ERROR, error_reason=reason):
            _settled(conn, task, finish=False)

    # --- Cinder: filtered lists, updates, metadata, bootable --------------------------------

    async def query(self, ctx: RequestContext, query: ListQuery) -> tuple[list[Volume],
                                                                          int | None]:
        """A Cinder list page (filters, sort, marker) and, if asked, the number matching.

        ``query.project_id`` None (every project) is honoured for admins only.
        """
        policy.authorize(ctx, "volume:list", ctx.project_id)
        if query.project_id != ctx.project_id and not policy.allowed(
                ctx, "volume:list_all_projects"):
            query = replace(query, project_id=ctx.project_id)
        return await self.db.read(_query_page, query)

    async def summary(self, ctx: RequestContext,
                      project_id: str | None) -> tuple[int, int, dict[str, list[str]]]:
        """Cinder's volume summary (3.12): how many volumes, their GiB, and each metadata key
        with the values it takes. ``project_id`` None (every project) is for admins only."""
        policy.authorize(ctx, "volume:list", ctx.project_id)
        if project_id != ctx.project_id and not policy.allowed(ctx, "volume:list_all_projects"):
            project_id = ctx.project_id
        return await self.db.read(_summary, project_id)

    async def update(self, ctx: RequestContext, volume_id: str, changes: dict[str, Any],
                     metadata: dict[str, str] | None = None) -> Volume:
        """Rename or describe a volume (``display_name``/``display_description``); ``metadata``
        replaces all of its metadata."""
        await self.db.run(self._update, ctx, volume_id, changes, metadata)
        return await self.get(ctx, volume_id)

    @staticmethod
    def _update(conn: Connection, ctx: RequestContext, volume_id: str, changes: dict[str, Any],
                metadata: dict[str, str] | None) -> None:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:update", volume.project_id)
        update_fields(conn, volumes, volume_id, changes)
        if metadata is not None:
            change_metadata(conn, volumes, volume_id, MetadataChange(set=metadata, replace=True))

    async def change_metadata(self, ctx: RequestContext, volume_id: str,
                              change: MetadataChange) -> dict[str, str]:
        return await self.db.run(self._change_metadata, ctx, volume_id, change)

    @staticmethod
    def _change_metadata(conn: Connection, ctx: RequestContext, volume_id: str,
                         change: MetadataChange) -> dict[str, str]:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:update", volume.project_id)
        return change_metadata(conn, volumes, volume_id, change)

    async def set_bootable(self, ctx: RequestContext, volume_id: str, bootable: bool) -> None:
        await self.db.run(self._set_bootable, ctx, volume_id, bootable)

    @staticmethod
    def _set_bootable(conn: Connection, ctx: RequestContext, volume_id: str,
                      bootable: bool) -> None:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:update", volume.project_id)
        update_fields(conn, volumes, volume_id, {"bootable": bootable})

    # --- extend ---------------------------------------------------------------------------

    async def extend(self, ctx: RequestContext, volume_id: str, new_size: int,
                     allow_in_use: bool = False) -> None:
        """Move the volume to ``extending`` and queue the growth of its bytes to ``new_size``."""
        await self.db.run(self._begin_extend, ctx, volume_id, new_size, allow_in_use)
        self.worker.wake()

    def _begin_extend(self, conn: Connection, ctx: RequestContext, volume_id: str,
                      new_size: int, allow_in_use: bool) -> None:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:update", volume.project_id)
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

    async def _run_extend(self, task: Task) -> None:
        row = await self.db.read(_location, task.resource_id)
        if row is None or row.status != VolumeStatus.EXTENDING:
            await self.db.run(taskq.finish, task)
            return
        await self.pause.at("volume.extend")
        await asyncio.to_thread(self.backends.get(row.backend).extend_volume, task.resource_id,
                                row.provider_location, int(task.payload["new_size"]))
        await self.db.run(self._extended, task)
        log.info("volume %s extended to %s GiB", task.resource_id, task.payload["new_size"])

    @staticmethod
    def _extended(conn: Connection, task: Task) -> None:
        move(conn, VOLUME, task.resource_id, [VolumeStatus.EXTENDING],
             task.payload["restore"], size=int(task.payload["new_size"]))
        taskq.finish(conn, task)

    @staticmethod
    def _fail_extend(conn: Connection, task: Task, reason: str) -> None:
        move(conn, VOLUME, task.resource_id, [VolumeStatus.EXTENDING],
             VolumeStatus.ERROR_EXTENDING, error_reason=reason)

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
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:update_readonly_flag", volume.project_id)
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
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:update", volume.project_id)
        if volume.status == "maintenance":  # set by reset-status (Cinder refuses it too)
            raise Invalid(f"Invalid volume: Volume {volume_id} is in maintenance.")
        found = {**(volume.image_metadata or {}), **(add or {})}
        if remove is not None:
            if remove not in found:
                raise NotFound(f"Glance metadata for volume {volume_id} with key {remove} "
                               "could not be found.")
            del found[remove]
        conn.execute(volumes.update().where(volumes.c.id == volume_id)
                     .values(image_metadata=found, updated_at=utcnow()))
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
        holders = conn.execute(sa.select(sa.func.count()).where(
            volume_attachments.c.volume_id == volume_id)).scalar_one()
        detached = attach_status == "detached" or status == VolumeStatus.AVAILABLE
        if (status == VolumeStatus.IN_USE or attach_status == "attached") and (
                detached or not holders):
            raise Invalid(f"Invalid volume: Volume {volume_id} has no attachment, so it "
                          f"cannot be in-use or attached.")
        if detached:
            conn.execute(volume_attachments.delete().where(
                volume_attachments.c.volume_id == volume_id))
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
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:force_delete" if force else "volume:delete",
                         volume.project_id)
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
        clones = conn.execute(sa.select(sa.func.count()).where(
            volumes.c.source_volid == volume_id,
            volumes.c.status == VolumeStatus.CREATING)).scalar_one()
        if clones:  # after the swap, as for snapshots below (raising rolls it back)
            raise Invalid(f"Invalid volume: Volume {volume_id} is the source of {clones} "
                          f"volume(s) still being created.")
        if force:
            self._drop_reservations(conn, volume_id)
        # Counted after the swap, which waits for a snapshot create holding the volume row, so
        # its snapshot is seen (raising rolls the swap back).
        count = conn.execute(sa.select(sa.func.count()).where(
            snapshots.c.volume_id == volume_id)).scalar_one()
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
            conn.execute(volumes.delete().where(volumes.c.id == volume_id))
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
        from stackvol.services.attachments.nova_side import release_connection

        rows = conn.execute(sa.select(volume_attachments).where(
            volume_attachments.c.volume_id == volume_id)).all()
        conn.execute(volume_attachments.delete().where(
            volume_attachments.c.volume_id == volume_id))
        for row in rows:
            release_connection(conn, row)

    async def _run_delete(self, task: Task) -> None:
        row = await self.db.read(_location, task.resource_id)
        if row is None or row.status != VolumeStatus.DELETING:
            await self.db.run(taskq.finish, task)
            return
        await self.pause.at("volume.delete")
        storage = self.backends.get(row.backend)
        for snap_id, location in await self.db.read(_cascaded_snapshots, task.resource_id):
            await asyncio.to_thread(storage.delete_snapshot, snap_id, location)
        await asyncio.to_thread(storage.delete_volume, task.resource_id, row.provider_location)
        await self.db.run(self._deleted, task)
        log.info("volume %s deleted", task.resource_id)

    @staticmethod
    def _deleted(conn: Connection, task: Task) -> None:
        conn.execute(volume_attachments.delete().where(
            volume_attachments.c.volume_id == task.resource_id))
        conn.execute(snapshots.delete().where(snapshots.c.volume_id == task.resource_id,
                                              snapshots.c.status == SnapshotStatus.DELETING))
        conn.execute(volumes.delete().where(volumes.c.id == task.resource_id,
                                            volumes.c.status == VolumeStatus.DELETING))
        taskq.finish(conn, task)

    @staticmethod
    def _fail_delete(conn: Connection, task: Task, reason: str) -> None:
        move(conn, VOLUME, task.resource_id, [VolumeStatus.DELETING],
             VolumeStatus.ERROR_DELETING, error_reason=reason)


def _query_page(conn: Connection, query: ListQuery) -> tuple[list[Volume], int | None]:
    rows, count = fetch_page(conn, volumes, query)
    found = [Volume.from_row(row) for row in rows]
    if found:
        attached = conn.execute(sa.select(*volume_attachments.c).where(
            volume_attachments.c.volume_id.in_([v.id for v in found]), _LIVE)
            .order_by(volume_attachments.c.created_at)).all()
        _with_attachments(found, attached)
    return found, count


def _summary(conn: Connection, project_id: str | None) -> tuple[int, int, dict[str, list[str]]]:
    query = sa.select(volumes.c.size, volumes.c.metadata)
    if project_id is not None:
        query = query.where(volumes.c.project_id == project_id)
    count, total, values = 0, 0, {}
    for size, metadata in conn.execute(query):
        count, total = count + 1, total + size
        for key, value in (metadata or {}).items():
            values.setdefault(key, set()).add(value)
    return count, total, {key: sorted(found) for key, found in values.items()}


def _usage_by_backend(conn: Connection) -> dict[str, tuple[int, int]]:
    rows = conn.execute(sa.select(volumes.c.backend, sa.func.count(), sa.func.sum(volumes.c.size))
                        .group_by(volumes.c.backend))
    return {backend: (int(count), int(total or 0)) for backend, count, total in rows}


def _cascaded_snapshots(conn: Connection, volume_id: str) -> list[tuple[str, str | None]]:
    """Snapshots going with their volume (``cascade``): ids and where their bytes are."""
    return [(r.id, r.provider_location) for r in conn.execute(
        sa.select(snapshots.c.id, snapshots.c.provider_location).where(
            snapshots.c.volume_id == volume_id, snapshots.c.status == SnapshotStatus.DELETING))]


def _location(conn: Connection, volume_id: str) -> Any:
    return conn.execute(sa.select(volumes.c.status, volumes.c.backend,
                                  volumes.c.provider_location, volumes.c.bootable).where(
        volumes.c.id == volume_id)).first()


def _settled(conn: Connection, task: Task, finish: bool = True) -> None:
    """A ``volume.create`` task ends (``finish``: here). A volume force-deleted while it was
    being created left its delete to this moment, when no more bytes can appear: queue it."""
    row = conn.execute(sa.select(volumes.c.status, volumes.c.backend).where(
        volumes.c.id == task.resource_id)).first()
    if row is not None and row.status == VolumeStatus.DELETING:
        taskq.enqueue(conn, TaskKind.VOLUME_DELETE, task.resource_id, target=row.backend)
    if finish:
        taskq.finish(conn, task)


def creating_elsewhere(conn: Connection, kind: str, resource_id: str) -> bool:
    """Inside a force delete of a resource in ``creating``: cancel its create task if no worker
    took it yet; True when one is running, which then queues the delete itself (its bytes may
    appear until it ends)."""
    conn.execute(tasks.delete().where(tasks.c.kind == kind, tasks.c.resource_id == resource_id,
                                      tasks.c.state == taskq.PENDING))
    return bool(conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
        tasks.c.kind == kind, tasks.c.resource_id == resource_id)).scalar_one())


def _snapshot_location(conn: Connection, snapshot_id: str) -> str:
    row = conn.execute(sa.select(snapshots.c.provider_location).where(
        snapshots.c.id == snapshot_id)).first()
    if row is None or not row.provider_location:
        raise NotFound(f"Snapshot {snapshot_id} could not be found.")
    return row.provider_location
