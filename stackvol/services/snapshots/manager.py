"""The worker's side of snapshots: what the volume's storage host does with the tasks the API
side (api.py) committed: copy the volume's bytes, remove them, and the compare-and-swap that
ends each task (or, when it fails, the status that says so).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import SNAPSHOT, move
from stackvol.services.common.status import SnapshotStatus
from stackvol.services.snapshots import queries
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker

log = logging.getLogger(__name__)


class SnapshotManager:
    """Runs ``snapshot.create`` and ``snapshot.delete`` on the volume's backend."""

    def __init__(self, db: Database, backends: Backends, worker: Worker,
                 pause: PauseHook) -> None:
        self.db = db
        self.backends = backends  # a snapshot lives on its volume's backend
        self.pause = pause
        worker.register(TaskKind.SNAPSHOT_CREATE, Handler(self._run_create, _fail_create))
        worker.register(TaskKind.SNAPSHOT_DELETE, Handler(self._run_delete, _fail_delete))

    async def _run_create(self, task: Task) -> None:
        row = await self.db.read(queries.source, task.resource_id)
        if row is None or row.status != SnapshotStatus.CREATING:
            await self.db.run(_settled, task)  # already settled (or deleted)
            return
        await self.pause.at("snapshot.create")
        location = await asyncio.to_thread(self.backends.get(row.backend).create_snapshot,
                                           task.resource_id, row.volume_id, row.volume_location)
        await self.db.run(_created, task, location)
        log.info("snapshot %s available", task.resource_id)

    async def _run_delete(self, task: Task) -> None:
        row = await self.db.read(queries.source, task.resource_id)
        if row is None or row.status != SnapshotStatus.DELETING:
            await self.db.run(taskq.finish, task)
            return
        await self.pause.at("snapshot.delete")
        await asyncio.to_thread(self.backends.get(row.backend).delete_snapshot,
                                task.resource_id, row.provider_location)
        await self.db.run(_deleted, task)
        log.info("snapshot %s deleted", task.resource_id)


def _created(conn: Connection, task: Task, location: str) -> None:
    if not move(conn, SNAPSHOT, task.resource_id, [SnapshotStatus.CREATING],
                SnapshotStatus.AVAILABLE, provider_location=location):
        # Force-deleted meanwhile: record where the bytes are for the delete that follows.
        queries.set_location(conn, task.resource_id, location)
    _settled(conn, task)


def _fail_create(conn: Connection, task: Task, reason: str) -> None:
    if not move(conn, SNAPSHOT, task.resource_id, [SnapshotStatus.CREATING],
                SnapshotStatus.ERROR, error_reason=reason):
        _settled(conn, task, finish=False)


def _settled(conn: Connection, task: Task, finish: bool = True) -> None:
    """A ``snapshot.create`` task ends (``finish``: here). A snapshot force-deleted while it
    was being made left its delete to this moment, when no more bytes can appear: queue it."""
    row = queries.status_and_volume(conn, task.resource_id)
    if row is not None and row.status == SnapshotStatus.DELETING:
        taskq.enqueue(conn, TaskKind.SNAPSHOT_DELETE, task.resource_id,
                      target=queries.volume_backend(conn, row.volume_id))
    if finish:
        taskq.finish(conn, task)


def _deleted(conn: Connection, task: Task) -> None:
    queries.delete_deleting(conn, task.resource_id)
    taskq.finish(conn, task)


def _fail_delete(conn: Connection, task: Task, reason: str) -> None:
    move(conn, SNAPSHOT, task.resource_id, [SnapshotStatus.DELETING],
         SnapshotStatus.ERROR_DELETING, error_reason=reason)
