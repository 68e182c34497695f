"""Snapshots: point-in-time copies of volumes, and the states between, over any storage driver.

As for volumes, every status change is a compare-and-swap committed with the task that carries
the work on, so a crash never strands a snapshot in ``creating`` or ``deleting``.

Races with the source volume, and how each is closed:

* Volume delete vs. snapshot create: the snapshot row is committed (``creating``) before any
  byte is copied, and volume delete refuses a volume that has snapshots. Create locks the volume
  row (``FOR UPDATE`` on PostgreSQL; SQLite serialises writers) before checking its status.
* Volume created from a snapshot vs. snapshot delete: delete refuses while a volume is still
  being created from the snapshot (checked after the status swap, so a concurrent create either
  sees ``deleting`` or is seen here).
* Left open for the attach work: a volume attached *while* its snapshot is being copied may be
  written during the copy (a sparse copy is not atomic; a reflink is), giving a snapshot that is
  not of one point in time. Attach should refuse (or wait) while the volume has a snapshot in
  ``creating``, checked under the same volume-row lock; so should a future extend, since the
  snapshot's size is the volume's size when it was asked for.

This is the API side (what a request does, in one transaction with the task it queues); the
worker's side is manager.py, the SQL queries.py.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import snapshots
from stackvol.db.transitions import SNAPSHOT, initial, move, override
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, NotFound
from stackvol.services.common.listing import ListQuery, fetch_page
from stackvol.services.common.metadata import MetadataChange, change_metadata, update_fields
from stackvol.services.common.records import Page, Snapshot
from stackvol.services.common.status import SnapshotStatus, VolumeStatus
from stackvol.services.quotas.api import QuotaService
from stackvol.services.snapshots import queries
from stackvol.services.snapshots.manager import SnapshotManager
from stackvol.services.volumes.api import creating_elsewhere
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.worker import PauseHook, Worker
from stackvol.timeutils import utcnow

log = logging.getLogger(__name__)

# Cinder's rules: a snapshot of an attached volume needs ``force``.
SNAPSHOTTABLE = (VolumeStatus.AVAILABLE,)
SNAPSHOTTABLE_FORCED = (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE)
DELETABLE = (SnapshotStatus.AVAILABLE, SnapshotStatus.ERROR)
# What os-reset_status accepts: Cinder's snapshot statuses.
RESETTABLE = ("creating", "available", "deleting", "error", "error_deleting", "unmanaging",
              "backing-up", "restoring")
# os-update_snapshot_status (a driver reporting on a snapshot it makes or removes): the moves
# Cinder allows from each status.
STATUS_UPDATES: dict[str, tuple[str, ...]] = {
    SnapshotStatus.CREATING: (SnapshotStatus.CREATING, SnapshotStatus.AVAILABLE,
                              SnapshotStatus.ERROR),
    SnapshotStatus.DELETING: (SnapshotStatus.DELETING, SnapshotStatus.ERROR_DELETING)}


class SnapshotService:
    def __init__(self, db: Database, backends: Backends, worker: Worker,
                 pause: PauseHook | None = None, quotas: QuotaService | None = None) -> None:
        self.db = db
        self.quotas = quotas
        self.backends = backends
        self.worker = worker
        self.pause = pause or PauseHook("")
        # The worker's side: runs the tasks this side queues (where the backend is served).
        self.manager = SnapshotManager(db, backends, worker, self.pause)

    # --- reads ----------------------------------------------------------------------------

    @staticmethod
    def _load(conn: Connection, ctx: RequestContext, snapshot_id: str) -> Snapshot:
        found = queries.find(conn, snapshot_id, ctx.visible_project)
        if found is None:
            raise NotFound(f"Snapshot {snapshot_id} could not be found.")
        return found

    async def get(self, ctx: RequestContext, snapshot_id: str) -> Snapshot:
        snapshot = await self.db.read(self._load, ctx, snapshot_id)
        policy.authorize(ctx, "snapshot:show", snapshot.project_id)
        return snapshot

    async def list(self, ctx: RequestContext, page: Page,
                   all_projects: bool = False) -> builtins.list[Snapshot]:
        """One page of the caller's snapshots, newest first (every project's for admins who ask).

        Listing every project shares the volumes' rule: there is no separate snapshot one.
        """
        policy.authorize(ctx, "snapshot:list", ctx.project_id)
        everyone = all_projects and policy.allowed(ctx, "volume:list_all_projects")
        return await self.db.read(queries.page_of, None if everyone else ctx.project_id, page)

    async def query(self, ctx: RequestContext,
                    query: ListQuery) -> tuple[builtins.list[Snapshot], int | None]:
        """A Cinder list page; ``query.project_id`` None (every project) for admins only."""
        policy.authorize(ctx, "snapshot:list", ctx.project_id)
        if query.project_id != ctx.project_id and not policy.allowed(
                ctx, "volume:list_all_projects"):
            query = replace(query, project_id=ctx.project_id)
        rows, count = await self.db.read(fetch_page, snapshots, query)
        return [Snapshot.from_row(row) for row in rows], count

    async def update(self, ctx: RequestContext, snapshot_id: str, changes: dict[str, Any],
                     change: MetadataChange | None = None) -> Snapshot:
        """Rename or describe a snapshot, and/or change its metadata."""
        return await self.db.run(self._update, ctx, snapshot_id, changes, change)

    def _update(self, conn: Connection, ctx: RequestContext, snapshot_id: str,
                changes: dict[str, Any], change: MetadataChange | None) -> Snapshot:
        snapshot = self._load(conn, ctx, snapshot_id)
        policy.authorize(ctx, "snapshot:update", snapshot.project_id)
        update_fields(conn, snapshots, snapshot_id, changes)
        if change is not None:
            change_metadata(conn, snapshots, snapshot_id, change)
        return self._load(conn, ctx, snapshot_id)

    # --- create ---------------------------------------------------------------------------

    async def create(self, ctx: RequestContext, volume_id: str | None, force: bool = False,
                     display_name: str | None = None,
                     display_description: str | None = None) -> Snapshot:
        """Record the snapshot as ``creating`` and queue the copy of the volume's bytes
        (``volume_id`` None, which Cinder's schema allows, names no volume: NotFound)."""
        policy.authorize(ctx, "snapshot:create", ctx.project_id)
        snapshot = await self.db.run(self._insert, ctx, volume_id, force, display_name,
                                     display_description)
        self.worker.wake()
        log.info("snapshot %s of volume %s creating", snapshot.id, volume_id)
        return snapshot

    def _insert(self, conn: Connection, ctx: RequestContext, volume_id: str | None, force: bool,
                display_name: str | None, display_description: str | None) -> Snapshot:
        volume = queries.lock_source(conn, volume_id, ctx.visible_project)
        if volume is None:
            raise NotFound(f"Volume {volume_id} could not be found.")
        if volume.status not in (SNAPSHOTTABLE_FORCED if force else SNAPSHOTTABLE):
            wanted = "available or in-use" if force else "available"
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be {wanted}, but "
                          f"current status is: {volume.status}.")
        if self.quotas is not None:
            self.quotas.enforce(conn, ctx.project_id, volume.volume_type, snapshots=1,
                                gigabytes=volume.size)
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "project_id": ctx.project_id,
            "user_id": ctx.user_id,
            "volume_id": volume_id,
            "status": initial(SNAPSHOT, SnapshotStatus.CREATING.value),
            "size": volume.size,
            "display_name": display_name,
            "display_description": display_description,
            "metadata": {},
            "provider_location": None,
            "error_reason": None,
            "created_at": utcnow(),
            "updated_at": None,
        }
        queries.insert(conn, values)
        taskq.enqueue(conn, TaskKind.SNAPSHOT_CREATE, values["id"], target=volume.backend)
        return Snapshot(**values)

    # --- administration: reset status, status updates ---------------------------------------

    async def reset_status(self, ctx: RequestContext, snapshot_id: str, status: str) -> None:
        """Set a snapshot's status as an admin says (Cinder's statuses, case-blind)."""
        status = status.lower()
        if status not in RESETTABLE:
            raise Invalid(f"Invalid input received: Snapshot status: {status} is invalid, "
                          f"valid statuses are: {', '.join(RESETTABLE)}.")
        await self.db.run(self._reset, ctx, snapshot_id, status)
        log.warning("snapshot %s status reset to %s by %s", snapshot_id, status, ctx.user_id)

    def _reset(self, conn: Connection, ctx: RequestContext, snapshot_id: str,
               status: str) -> None:
        snapshot = self._load(conn, ctx, snapshot_id)
        policy.authorize(ctx, "snapshot:reset_status", snapshot.project_id)
        if not override(conn, SNAPSHOT, snapshot_id, [snapshot.status], status):
            raise Invalid(f"Invalid snapshot: Snapshot {snapshot_id} changed status; try "
                          f"again.")

    async def update_status(self, ctx: RequestContext, snapshot_id: str, status: str,
                            progress: str | None = None) -> None:
        """Cinder's os-update_snapshot_status: ``creating`` may become available or error,
        ``deleting`` error_deleting; ``progress`` is a percentage ("80%")."""
        if progress and not _is_percentage(progress):
            raise Invalid("Invalid input received: progress must be an integer percentage "
                          "between 0 and 100")
        await self.db.run(self._update_status, ctx, snapshot_id, status, progress)

    def _update_status(self, conn: Connection, ctx: RequestContext, snapshot_id: str,
                       status: str, progress: str | None) -> None:
        snapshot = self._load(conn, ctx, snapshot_id)
        policy.authorize(ctx, "snapshot:update_status", snapshot.project_id)
        allowed = STATUS_UPDATES.get(snapshot.status)
        if allowed is None:
            raise Invalid(f"Invalid input received: Snapshot status {snapshot.status} not "
                          f"allowed for update_snapshot_status")
        if status not in allowed:
            raise Invalid(f"Invalid input received: Provided snapshot status {status} not "
                          f"allowed for snapshot with status {snapshot.status}.")
        extra = {"progress": progress} if progress else {}
        if not move(conn, SNAPSHOT, snapshot_id, [snapshot.status], status, **extra):
            raise Invalid(f"Invalid snapshot: Snapshot {snapshot_id} changed status; try "
                          f"again.")

    # --- delete ---------------------------------------------------------------------------

    async def delete(self, ctx: RequestContext, snapshot_id: str, force: bool = False) -> None:
        """Refuse clearly, or move the snapshot to ``deleting`` and queue removing its bytes.

        ``force`` (admins, os-force_delete) ignores its status, as Cinder does.
        """
        await self.db.run(self._begin_delete, ctx, snapshot_id, force)
        self.worker.wake()

    def _begin_delete(self, conn: Connection, ctx: RequestContext, snapshot_id: str,
                      force: bool = False) -> None:
        snapshot = self._load(conn, ctx, snapshot_id)
        policy.authorize(ctx, "snapshot:force_delete" if force else "snapshot:delete",
                         snapshot.project_id)
        # Forced, as Cinder: whatever its status (an admin's override).
        moved = (override(conn, SNAPSHOT, snapshot_id, [snapshot.status], SnapshotStatus.DELETING)
                 if force else move(conn, SNAPSHOT, snapshot_id, DELETABLE,
                                    SnapshotStatus.DELETING))
        if not moved:
            raise Invalid(f"Invalid snapshot: Snapshot status must be available or error, but "
                          f"current status is: {snapshot.status}.")
        # After the swap: a volume create that committed first is visible now (raising here
        # rolls the swap back); one that comes later finds the snapshot ``deleting``.
        copying = queries.volumes_being_made_from(conn, snapshot_id)
        if copying:
            raise Invalid(f"Invalid snapshot: Snapshot {snapshot_id} is the source of "
                          f"{copying} volume(s) still being created.")
        if snapshot.status == SnapshotStatus.CREATING and creating_elsewhere(
                conn, TaskKind.SNAPSHOT_CREATE, snapshot_id):
            return  # its running create queues the delete when it ends (manager.py)
        taskq.enqueue(conn, TaskKind.SNAPSHOT_DELETE, snapshot_id,
                      target=queries.volume_backend(conn, snapshot.volume_id))


def _is_percentage(progress: str) -> bool:
    """"0%" to "100%", as Cinder's progress format."""
    number = progress[:-1]
    return progress.endswith("%") and number.isdigit() and 0 <= int(number) <= 100

