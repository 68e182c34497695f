"""The worker side of volume → image uploads (``volume.upload_image``, queued by ``uploads``):
the copy, on the volume's backend worker.

The image goes ``saving`` under this process's name (so a process that dies mid-copy has its
image put back to ``queued``, as any upload's, and the task, resumed, starts the copy again),
the backend writes the bytes into the image store's temporary file in the requested disk
format, and the image becomes ``active`` in the same transaction that gives the volume back its
status and ends the task. A copy that fails for good removes the image (as Cinder deletes it)
and gives the volume back too.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import VOLUME, move
from stackvol.services.common.context import RequestContext
from stackvol.services.common.records import Volume
from stackvol.services.common.status import VolumeStatus
from stackvol.services.volumes import queries
from stackvol.storage.images import ImageStore, StoredImage
from stackvol.storage.qemu_img import QEMU_FORMATS
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker

log = logging.getLogger(__name__)

TASK = TaskKind.VOLUME_UPLOAD_IMAGE


class VolumeUploadManager:
    """Registers the upload handler with ``worker``; copies volumes into the image store."""

    def __init__(self, db: Database, backends: Backends, worker: Worker, store: ImageStore,
                 pause: PauseHook | None = None) -> None:
        self.db = db
        self.backends = backends
        self.worker = worker
        self.store = store
        self.pause = pause or PauseHook("")
        worker.register(TASK, Handler(self._run, self._fail))

    async def _run(self, task: Task) -> None:
        image_id = task.payload["image_id"]
        volume = await self.db.run(self._start_copy, task, self.worker.name)
        if volume is None:
            return  # settled meanwhile (the image deleted, the volume reset): task finished
        await self.pause.at(TASK)
        storage = self.backends.get(volume.backend)
        qemu_format = QEMU_FORMATS[task.payload["disk_format"]]

        def make(target: Path) -> None:
            storage.copy_volume_to_image(volume.id, volume.provider_location or "",
                                         str(target), qemu_format)

        stored = await asyncio.to_thread(self.store.fill, image_id, self.worker.name,
                                         task.payload["disk_format"], make)
        if not await self.db.run(self._copied, task, stored, self.worker.name):
            await asyncio.to_thread(self.store.delete, image_id, stored.path)
        log.info("volume %s uploaded to image %s", volume.id, image_id)

    @staticmethod
    def _start_copy(conn: Connection, task: Task, owner: str) -> Volume | None:
        """Take the image for this process (``queued`` → ``saving``); None when there is
        nothing to copy any more (the task is then finished, the volume given back)."""
        volume = queries.read_volume(conn, RequestContext.system(), task.resource_id)
        taken = queries.take_image(conn, task.payload["image_id"], owner)
        if volume.status == VolumeStatus.UPLOADING and taken:
            return volume
        _give_back(conn, task)
        taskq.finish(conn, task)
        return None

    @staticmethod
    def _copied(conn: Connection, task: Task, stored: StoredImage, owner: str) -> bool:
        """The image ``active`` and the volume back, with the task's end; False if the image
        was deleted (or taken back) while its bytes were copied."""
        done = queries.activate_image(conn, task.payload["image_id"], owner, stored)
        _give_back(conn, task)
        taskq.finish(conn, task)
        return done

    def _fail(self, conn: Connection, task: Task, reason: str) -> None:
        # As Cinder: the unfinished image is deleted; the volume is as it was.
        log.warning("volume %s: upload to image %s failed: %s", task.resource_id,
                    task.payload["image_id"], reason)
        queries.delete_unfinished_image(conn, task.payload["image_id"])
        self.store.discard_upload(task.payload["image_id"], self.worker.name)
        _give_back(conn, task)


def _give_back(conn: Connection, task: Task) -> None:
    """The volume's status from before the upload (``available`` or ``in-use``)."""
    move(conn, VOLUME, task.resource_id, [VolumeStatus.UPLOADING], task.payload["restore"])
