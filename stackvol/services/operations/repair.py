"""Repairs an operator makes when work was interrupted: find what is stuck, reset a volume's
state, force a volume off its servers.

Unlike Cinder's ``os-reset_status`` (which edits a row), these reconcile first: a connection is
torn down through the compute driver before the database says it is gone, a volume is only
called ``available`` if the storage backend holds its bytes, and only ``in-use`` if the compute
driver really has it connected. The queued work for what is repaired is dropped in the same
transaction as the new state, so a restarted worker does not redo it.

Work still leased by a live worker is refused unless forced: a worker killed with ``kill -9``
keeps its lease until it expires, and nothing here can tell a dead worker from a slow one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import ANY, ATTACHMENT, VOLUME, override
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Invalid, NotFound
from stackvol.services.common.records import Attachment, Volume
from stackvol.services.common.status import AttachmentStatus, SnapshotStatus, VolumeStatus
from stackvol.services.operations import queries
from stackvol.storage.base import StorageError
from stackvol.storage.registry import Backends
from stackvol.timeutils import utcnow
from stackvol.virt.base import ComputeDriver

TRANSITIONAL = {
    "volume": (VolumeStatus.CREATING, VolumeStatus.ATTACHING, VolumeStatus.DETACHING,
               VolumeStatus.DELETING, VolumeStatus.EXTENDING, VolumeStatus.RESERVED),
    "snapshot": (SnapshotStatus.CREATING, SnapshotStatus.DELETING),
    "attachment": (AttachmentStatus.ATTACHING, AttachmentStatus.DETACHING),
}
RESETTABLE = (VolumeStatus.AVAILABLE, VolumeStatus.ERROR, VolumeStatus.IN_USE)

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class Stuck:
    """A resource in a transitional status, and the work (if any) queued for it."""

    kind: str  # volume | snapshot | attachment
    id: str
    status: str
    project_id: str | None
    since: dt.datetime
    task: str | None  # "attachment.attach (running on host:all)" or None

    def age(self, now: dt.datetime | None = None) -> dt.timedelta:
        return (now or utcnow()) - self.since


@dataclass(frozen=True, slots=True)
class Repaired:
    volume_id: str
    old_status: str
    new_status: str
    disconnected: tuple[str, ...]  # servers the compute driver disconnected the volume from
    dropped_tasks: int


class RepairService:
    def __init__(self, db: Database, backends: Backends, compute: ComputeDriver) -> None:
        self.db = db
        self.backends = backends
        self.compute = compute

    # --- finding ----------------------------------------------------------------------------

    async def stuck(self, ctx: RequestContext, older_than: float = 0.0) -> list[Stuck]:
        """Everything in a transitional status for at least ``older_than`` seconds, oldest
        first."""
        policy.authorize(ctx, "volume:reset_status")
        cutoff = utcnow() - dt.timedelta(seconds=older_than)
        found = await self.db.read(_stuck)
        return sorted((s for s in found if s.since <= cutoff), key=lambda s: s.since)

    # --- reset-state --------------------------------------------------------------------------

    async def reset_volume_state(self, ctx: RequestContext, volume_id: str, state: str,
                                 force: bool = False, progress: Progress = _quiet) -> Repaired:
        """Make ``state`` true of the backend and the compute driver, then record it."""
        policy.authorize(ctx, "volume:reset_status")
        if state not in RESETTABLE:
            raise Invalid(f"Invalid status {state!r}: a volume can be reset to "
                          f"{', '.join(RESETTABLE)}.")
        volume, attachments = await self.db.read(_volume_and_attachments, volume_id)
        await self._check_no_live_work(volume, attachments, force)
        if state == VolumeStatus.AVAILABLE:
            await self._check_bytes(volume, progress)
        if state == VolumeStatus.IN_USE:
            keep = await self._connected(volume, attachments, progress)
            if not keep:
                raise Invalid(f"Volume {volume_id} is connected to no server on compute driver "
                              f"{self.compute.name}; it cannot be in-use (reset it to "
                              f"available instead).")
            drop = [a for a in attachments if a not in keep]
        else:
            keep, drop = [], attachments
        disconnected = await self._disconnect(drop, progress)
        dropped = await self.db.run(_record, volume, state, keep, drop)
        progress(f"volume {volume_id}: {volume.status} -> {state}"
                 + (f" ({dropped} queued task(s) dropped)" if dropped else ""))
        return Repaired(volume_id, volume.status, state, disconnected, dropped)

    # --- force-detach -------------------------------------------------------------------------

    async def force_detach(self, ctx: RequestContext, volume_id: str,
                           server_id: str | None = None, force: bool = False,
                           progress: Progress = _quiet) -> Repaired:
        """Disconnect the volume from its servers (or one) whatever their state, then record
        it detached; the volume is ``available`` once no server holds it."""
        policy.authorize(ctx, "volume:force_detach")
        volume, attachments = await self.db.read(_volume_and_attachments, volume_id)
        drop = [a for a in attachments if server_id in (None, a.server_id)]
        if not drop:
            target = f" from server {server_id}" if server_id else ""
            raise NotFound(f"Volume {volume_id} has no attachment{target}.")
        await self._check_no_live_work(volume, drop, force)
        disconnected = await self._disconnect(drop, progress)
        keep = [a for a in attachments if a not in drop]
        state = volume.status
        if volume.status in (VolumeStatus.ATTACHING, VolumeStatus.IN_USE,
                             VolumeStatus.DETACHING):
            state = VolumeStatus.IN_USE if keep else VolumeStatus.AVAILABLE
        dropped = await self.db.run(_record, volume, state, keep, drop)
        progress(f"volume {volume_id}: {volume.status} -> {state}")
        return Repaired(volume_id, volume.status, state, disconnected, dropped)

    # --- the steps ----------------------------------------------------------------------------

    async def _check_no_live_work(self, volume: Volume, attachments: list[Attachment],
                                  force: bool) -> None:
        ids = [volume.id, *(a.id for a in attachments)]
        live = await self.db.read(queries.leased_tasks, ids)
        if live and not force:
            kind, owner, until = live[0]
            raise Conflict(f"Volume {volume.id} has work in progress: task {kind} is held by "
                           f"worker {owner} until {until:%Y-%m-%d %H:%M:%S} UTC. Stop that "
                           f"server (or wait for the lease to expire), or pass --force if it "
                           f"is dead.")

    async def _check_bytes(self, volume: Volume, progress: Progress) -> None:
        if not volume.backend:
            raise Invalid(f"Volume {volume.id} was never placed on a storage backend; it "
                          f"cannot be available (reset it to error instead).")
        progress(f"checking storage backend {volume.backend} for volume {volume.id}")
        try:
            exists = await asyncio.to_thread(self.backends.get(volume.backend).volume_exists,
                                             volume.id, volume.provider_location)
        except StorageError as exc:
            raise Invalid(f"Storage backend {volume.backend} cannot be checked for volume "
                          f"{volume.id}: {exc}") from exc
        if not exists:
            raise Invalid(f"Storage backend {volume.backend} holds no data for volume "
                          f"{volume.id}; it cannot be available (reset it to error instead).")

    async def _connected(self, volume: Volume, attachments: list[Attachment],
                         progress: Progress) -> list[Attachment]:
        """The attachments the compute driver really has connected."""
        keep = []
        for att in attachments:
            held = await asyncio.to_thread(self.compute.attached_volumes, att.server_id)
            progress(f"server {att.server_id}: compute driver {self.compute.name} "
                     f"{'has' if volume.id in held else 'does not have'} volume {volume.id}")
            if volume.id in held:
                keep.append(att)
        return keep

    async def _disconnect(self, attachments: Iterable[Attachment],
                          progress: Progress) -> tuple[str, ...]:
        done = []
        for att in attachments:
            progress(f"disconnecting volume {att.volume_id} from server {att.server_id} "
                     f"({att.device or 'no device'}, {att.status}) via compute driver "
                     f"{self.compute.name}")
            await asyncio.to_thread(self.compute.detach_volume, att.server_id, att.volume_id)
            done.append(att.server_id)
        return tuple(done)


# --- transactions -----------------------------------------------------------------------------


def _volume_and_attachments(conn: Connection, volume_id: str) -> tuple[Volume, list[Attachment]]:
    row = queries.volume_row(conn, volume_id)
    if row is None:
        raise NotFound(f"Volume {volume_id} could not be found.")
    found = queries.attachment_rows(conn, volume_id)
    return Volume.from_row(row), [Attachment.from_row(a) for a in found]


def _record(conn: Connection, volume: Volume, state: str, keep: list[Attachment],
            drop: list[Attachment]) -> int:
    """The new state, the attachment rows that match it, and no queued work for either."""
    # An admin's override, compared with the status the repair was decided on.
    if not override(conn, VOLUME, volume.id, [volume.status], state,
                    error_reason=None if state != VolumeStatus.ERROR else volume.error_reason):
        raise Conflict(f"Volume {volume.id} changed while it was being repaired; look again "
                       f"and retry.")
    ids = [volume.id, *(a.id for a in (*keep, *drop))]
    dropped = queries.delete_tasks(conn, ids)
    if drop:
        queries.delete_attachments(conn, [a.id for a in drop])
    for att in keep:
        override(conn, ATTACHMENT, att.id, ANY, AttachmentStatus.ATTACHED)
    return dropped


def _stuck(conn: Connection) -> list[Stuck]:
    queued = {r.resource_id: f"{r.kind} ({r.state}" + (f" on {r.owner})" if r.owner else ")")
              for r in queries.all_tasks(conn)}
    out: list[Stuck] = []
    for kind, table, project in queries.STATUS_TABLES:
        statuses = [s.value for s in TRANSITIONAL[kind]]
        rows = queries.rows_in_status(conn, table, project, statuses)
        out.extend(Stuck(kind, r.id, r.status, r.project_id, _naive(r.since),
                         queued.get(r.id)) for r in rows)
    return out


def _naive(value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite returns coalesce() of datetimes as text
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=None)
