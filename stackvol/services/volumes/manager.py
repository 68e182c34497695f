"""The worker side of volumes: what a volume worker does with the tasks the API side queued
(``volume.create``, ``volume.delete``, ``volume.extend``).

Each handler calls the storage driver outside any transaction, then ends the work with one
compare-and-swap (``stackvol.db.transitions``) committed with the task's end; a handler that
fails for good moves the volume to its error status (``_fail_*``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import VOLUME, move
from stackvol.services.common.context import RequestContext
from stackvol.services.common.driver_calls import driver_call
from stackvol.services.common.status import VolumeStatus
from stackvol.services.servers import image_boot
from stackvol.services.volumes import queries
from stackvol.storage.base import StorageError
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker

log = logging.getLogger(__name__)


class VolumeManager:
    """Registers the volume task handlers with ``worker``; runs them on the backends."""

    def __init__(self, db: Database, backends: Backends, worker: Worker,
                 pause: PauseHook | None = None) -> None:
        self.db = db
        self.backends = backends
        self.worker = worker
        self.pause = pause or PauseHook("")
        # Called with an image id before its bytes are copied into a volume (set by the
        # composition root, through VolumeService.prepare_image).
        self.prepare_image: Callable[[str], Awaitable[None]] | None = None
        worker.register(TaskKind.VOLUME_CREATE, Handler(self._run_create, self._fail_create))
        worker.register(TaskKind.VOLUME_DELETE, Handler(self._run_delete, self._fail_delete))
        worker.register(TaskKind.VOLUME_EXTEND, Handler(self._run_extend, self._fail_extend))

    # --- create ---------------------------------------------------------------------------

    async def _run_create(self, task: Task) -> None:
        volume = await self.db.read_prepared(queries.read_volume, RequestContext.system(),
                                             task.resource_id)
        if volume.status != VolumeStatus.CREATING:
            await self.db.run(settled, task)  # someone already settled it
            return
        await self.pause.at(TaskKind.VOLUME_CREATE)
        storage = self.backends.get(volume.backend)
        bootable = bool(volume.image_metadata)
        if volume.snapshot_id:
            source = await self.db.read(queries.snapshot_location, volume.snapshot_id)
            location = await asyncio.to_thread(storage.create_volume_from_snapshot,
                                               volume.id, volume.size, source)
        elif volume.source_volid:
            origin = await self.db.read(queries.location, volume.source_volid)
            if origin is None or not origin.provider_location:
                raise StorageError(f"source volume {volume.source_volid} has no data")
            location = await asyncio.to_thread(storage.create_cloned_volume, volume.id,
                                               volume.size, origin.provider_location)
            bootable = bootable or bool(origin.bootable)
        elif volume.image_metadata:
            image_id = volume.image_metadata["image_id"]
            if self.prepare_image is not None:  # e.g. the built-in image's first use
                await self.prepare_image(image_id)
            image = await self.db.read(image_boot.source_file, image_id)
            location = await asyncio.to_thread(storage.copy_image_to_volume, volume.id,
                                               volume.size, image.path, image.qemu_format)
        else:
            location = await driver_call(storage.creates_quickly(), storage.create_volume,
                                         volume.id, volume.size)
        await self.db.run_grouped(self._created, task, location, bootable)
        log.info("volume %s available", volume.id)

    @staticmethod
    def _created(conn: Connection, task: Task, location: str, bootable: bool = False) -> None:
        # As Cinder: a volume holding an image's bytes (or a clone of a bootable volume) is
        # bootable once they are there.
        extra = {"bootable": True} if bootable else {}
        if move(conn, VOLUME, task.resource_id, [VolumeStatus.CREATING],
                VolumeStatus.AVAILABLE, provider_location=location, **extra):
            taskq.finish(conn, task)
            return
        # Force-deleted meanwhile: record where the bytes are for the delete that follows.
        queries.record_location(conn, task.resource_id, location)
        settled(conn, task)

    @staticmethod
    def _fail_create(conn: Connection, task: Task, reason: str) -> None:
        if not move(conn, VOLUME, task.resource_id, [VolumeStatus.CREATING],
                    VolumeStatus.ERROR, error_reason=reason):
            settled(conn, task, finish=False)

    # --- delete ---------------------------------------------------------------------------

    async def _run_delete(self, task: Task) -> None:
        row = await self.db.read(queries.location, task.resource_id)
        if row is None or row.status != VolumeStatus.DELETING:
            await self.db.run(taskq.finish, task)
            return
        await self.pause.at(TaskKind.VOLUME_DELETE)
        storage = self.backends.get(row.backend)
        for snap_id, location in await self.db.read(queries.cascaded_snapshots,
                                                    task.resource_id):
            await asyncio.to_thread(storage.delete_snapshot, snap_id, location)
        await asyncio.to_thread(storage.delete_volume, task.resource_id, row.provider_location)
        await self.db.run(self._deleted, task)
        log.info("volume %s deleted", task.resource_id)

    @staticmethod
    def _deleted(conn: Connection, task: Task) -> None:
        queries.delete_deleted(conn, task.resource_id)
        taskq.finish(conn, task)

    @staticmethod
    def _fail_delete(conn: Connection, task: Task, reason: str) -> None:
        move(conn, VOLUME, task.resource_id, [VolumeStatus.DELETING],
             VolumeStatus.ERROR_DELETING, error_reason=reason)

    # --- extend ---------------------------------------------------------------------------

    async def _run_extend(self, task: Task) -> None:
        row = await self.db.read(queries.location, task.resource_id)
        if row is None or row.status != VolumeStatus.EXTENDING:
            await self.db.run(taskq.finish, task)
            return
        await self.pause.at(TaskKind.VOLUME_EXTEND)
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


def settled(conn: Connection, task: Task, finish: bool = True) -> None:
    """A ``volume.create`` task ends (``finish``: here). A volume force-deleted while it was
    being created left its delete to this moment, when no more bytes can appear: queue it."""
    row = queries.status_and_backend(conn, task.resource_id)
    if row is not None and row.status == VolumeStatus.DELETING:
        taskq.enqueue(conn, TaskKind.VOLUME_DELETE, task.resource_id, target=row.backend)
    if finish:
        taskq.finish(conn, task)
