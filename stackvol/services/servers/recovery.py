"""Start-up reconciliation: make the compute driver agree with the database after a crash.

Durable tasks finish or roll back every interrupted operation, and each keeps the driver and
the database in step. What a task cannot see is the driver holding something no row (and no
task) speaks of any more, e.g. a server the driver built again after its delete had already
removed the row, then the process died before taking it back. So before the worker resumes
anything, every server and volume connection the driver holds is compared with the rows:

* a driver server with no row and no task is destroyed;
* a connection with no holding attachment row is disconnected;
* an ``attached`` row the driver lacks is connected again (the database is the truth);
* an ``attaching`` or ``detaching`` row that no task will move (cannot happen while tasks are
  committed with their state change; checked so it can never strand a volume) is rolled back
  or finished, with its volume; rows the Block Storage API's caller drives are left alone.

Everything still covered by a task is left to that task. Each fix is logged as a warning.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import VOLUME, move
from stackvol.services.common.records import Attachment
from stackvol.services.common.status import AttachmentStatus, VolumeStatus
from stackvol.services.servers import queries as q
from stackvol.virt.base import ComputeDriver

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DatabaseView:
    servers: set[str]
    busy: set[str]  # resource ids some task will still act on
    attachments: dict[str, list[Attachment]]  # server id -> its attachment rows


@dataclass(slots=True)
class Report:
    destroyed: list[str] = field(default_factory=list)
    disconnected: list[tuple[str, str]] = field(default_factory=list)
    reconnected: list[tuple[str, str]] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.destroyed or self.disconnected or self.reconnected or self.settled)


def _view(conn: Connection) -> DatabaseView:
    by_server: dict[str, list[Attachment]] = {}
    for attachment in q.all_attachments(conn):
        by_server.setdefault(attachment.server_id, []).append(attachment)
    return DatabaseView(servers=q.all_ids(conn), busy=q.task_resources(conn),
                        attachments=by_server)


def _settle(conn: Connection, attachment: Attachment) -> None:
    """No task will move this row: an attach is rolled back, a detach finished."""
    q.delete_attachment(conn, attachment.id)
    move(conn, VOLUME, attachment.volume_id,
         [VolumeStatus.ATTACHING, VolumeStatus.DETACHING], VolumeStatus.AVAILABLE)


async def reconcile(db: Database, compute: ComputeDriver) -> Report:
    """Run once at start-up, before the worker takes any task."""
    view = await db.read(_view)
    report = Report()
    for server_id in await asyncio.to_thread(compute.servers):
        if server_id not in view.servers and server_id not in view.busy:
            log.warning("destroying server %s: the hypervisor holds it, the database does not",
                        server_id)
            await asyncio.to_thread(compute.destroy, server_id)
            report.destroyed.append(server_id)
    for server_id in view.servers - view.busy:
        await _reconcile_server(db, compute, server_id, view, report)
    if report:
        log.warning("start-up reconciliation: %s", report)
    return report


async def _reconcile_server(db: Database, compute: ComputeDriver, server_id: str,
                            view: DatabaseView, report: Report) -> None:
    rows = [a for a in view.attachments.get(server_id, []) if a.id not in view.busy]
    connected = await asyncio.to_thread(compute.attached_volumes, server_id)
    holding = {a.volume_id for a in view.attachments.get(server_id, [])}
    for attachment in rows:
        if attachment.status == AttachmentStatus.ATTACHED:
            if attachment.volume_id not in connected and attachment.connection_info:
                await _reconnect(compute, attachment, report)
            continue
        if _driven_from_outside(attachment):
            continue
        log.warning("settling attachment %s (%s) of volume %s: no task will finish it",
                    attachment.id, attachment.status, attachment.volume_id)
        await asyncio.to_thread(compute.detach_volume, server_id, attachment.volume_id)
        await db.run(_settle, attachment)
        holding.discard(attachment.volume_id)
        report.settled.append(attachment.id)
    for volume_id in set(connected) - holding:
        log.warning("disconnecting volume %s from server %s: no attachment row holds it",
                    volume_id, server_id)
        await asyncio.to_thread(compute.detach_volume, server_id, volume_id)
        report.disconnected.append((server_id, volume_id))


def _driven_from_outside(attachment: Attachment) -> bool:
    """Block Storage API attachments move at their caller's pace, never by our tasks: one
    ``reserved``, or ``attaching`` with its connection made, is waiting, not stranded."""
    return attachment.status == AttachmentStatus.RESERVED or (
        attachment.status == AttachmentStatus.ATTACHING and bool(attachment.connection_info))


async def _reconnect(compute: ComputeDriver, attachment: Attachment, report: Report) -> None:
    if attachment.server_id not in await asyncio.to_thread(compute.servers):
        return  # the server itself is gone from the hypervisor: not a volume matter
    log.warning("reconnecting volume %s to server %s: attached in the database only",
                attachment.volume_id, attachment.server_id)
    info: dict[str, Any] = attachment.connection_info or {}
    await asyncio.to_thread(compute.attach_volume, attachment.server_id, attachment.volume_id,
                            info, attachment.device or "")
    report.reconnected.append((attachment.server_id, attachment.volume_id))
