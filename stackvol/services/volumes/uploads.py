"""Volume → image (Cinder's ``os-volume_upload_image``): a volume's bytes become an image of the
image service.

The request moves the volume to ``uploading`` (from ``available``, or ``in-use`` when forced),
records the image ``queued`` and enqueues the copy, all in one transaction. The copy runs on the
volume's backend worker: the image goes ``saving`` under that process's name (so a process that
dies mid-copy has its image put back to ``queued``, as any upload's, and the task, resumed,
starts the copy again), the backend writes the bytes into the image store's temporary file in the
requested disk format, and the image becomes ``active`` in the same transaction that gives the
volume back its status and ends the task. A copy that fails for good removes the image (as
Cinder deletes it) and gives the volume back too.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import images
from stackvol.db.transitions import VOLUME, move
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid
from stackvol.services.common.records import Volume
from stackvol.services.common.status import VolumeStatus
from stackvol.services.images.api import RESERVED, VISIBILITIES
from stackvol.services.volumes.api import read_volume
from stackvol.storage.images import ImageStore, StoredImage
from stackvol.storage.qemu_img import QEMU_FORMATS
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker
from stackvol.timeutils import utcnow

log = logging.getLogger(__name__)

TASK = TaskKind.VOLUME_UPLOAD_IMAGE
CONTAINER_FORMATS = ("bare",)
# Image metadata a volume made from an image keeps that is not a property of the new image.
_NOT_PROPERTIES = {"image_id", "image_name", "checksum", "container_format", "disk_format",
                   "min_disk", "min_ram", "size", *RESERVED}


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What the caller asked for (shape already checked by the face)."""

    image_name: str
    disk_format: str = "raw"
    container_format: str = "bare"
    force: bool = False
    visibility: str | None = None  # None: the image service's default (3.1 sets it)
    protected: bool = False


@dataclass(frozen=True, slots=True)
class Upload:
    """The volume as it is now (``uploading``) and the image record its bytes go to."""

    volume: Volume
    image_id: str
    request: UploadRequest


class VolumeUploadService:
    def __init__(self, db: Database, backends: Backends, worker: Worker, store: ImageStore,
                 pause: PauseHook | None = None) -> None:
        self.db = db
        self.backends = backends
        self.worker = worker
        self.store = store
        self.pause = pause or PauseHook("")
        worker.register(TASK, Handler(self._run, self._fail))

    async def upload(self, ctx: RequestContext, volume_id: str,
                     request: UploadRequest) -> Upload:
        """Start copying the volume into a new image; the volume is ``uploading`` until done."""
        if request.disk_format not in QEMU_FORMATS:
            raise Invalid(f"Invalid input received: Invalid disk-format "
                          f"'{request.disk_format}' is specified. Allowed disk-formats are "
                          f"{', '.join(QEMU_FORMATS)}.")
        if request.container_format not in CONTAINER_FORMATS:
            raise Invalid(f"Invalid input received: Invalid container-format "
                          f"'{request.container_format}' is specified. Allowed "
                          f"container-formats are {', '.join(CONTAINER_FORMATS)}.")
        if request.visibility is not None and request.visibility not in VISIBILITIES:
            raise Invalid(f"Invalid input received: Invalid visibility "
                          f"'{request.visibility}'.")
        upload = await self.db.run(self._begin, ctx, volume_id, request)
        self.worker.wake()
        log.info("volume %s uploading to image %s", volume_id, upload.image_id)
        return upload

    @staticmethod
    def _begin(conn: Connection, ctx: RequestContext, volume_id: str,
               request: UploadRequest) -> Upload:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume_extension:volume_actions:upload_image", volume.project_id)
        if request.visibility == "public":
            policy.authorize(ctx, "volume_extension:volume_actions:upload_public",
                             volume.project_id)
        allowed = [VolumeStatus.AVAILABLE] + ([VolumeStatus.IN_USE] if request.force else [])
        if not move(conn, VOLUME, volume_id, allowed, VolumeStatus.UPLOADING):
            wanted = "available/in-use" if request.force else "available"
            raise Invalid(f"Invalid volume: Volume status must be {wanted}.")
        image_id = str(uuid.uuid4())
        now = utcnow()
        properties = {k: v for k, v in (volume.image_metadata or {}).items()
                      if k not in _NOT_PROPERTIES}
        conn.execute(images.insert().values(
            id=image_id, name=request.image_name, status="queued",
            visibility=request.visibility or "shared", protected=request.protected,
            os_hidden=False, disk_format=request.disk_format,
            container_format=request.container_format, min_disk=0, min_ram=0,
            owner=volume.project_id, tags=[], properties=properties, created_at=now,
            updated_at=now))
        taskq.enqueue(conn, TASK, volume_id, {"image_id": image_id, "restore": volume.status,
                                              "disk_format": request.disk_format},
                      target=volume.backend)
        return Upload(read_volume(conn, ctx, volume_id), image_id, request)

    # --- the copy, on the volume's backend worker ----------------------------------------------

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
        volume = read_volume(conn, RequestContext.system(), task.resource_id)
        mine = sa.and_(images.c.id == task.payload["image_id"], sa.or_(
            images.c.status == "queued",
            sa.and_(images.c.status == "saving", images.c.upload_owner == owner)))
        taken = conn.execute(images.update().where(mine).values(
            status="saving", upload_owner=owner, upload_started_at=utcnow(),
            updated_at=utcnow())).rowcount
        if volume.status == VolumeStatus.UPLOADING and taken:
            return volume
        _give_back(conn, task)
        taskq.finish(conn, task)
        return None

    @staticmethod
    def _copied(conn: Connection, task: Task, stored: StoredImage, owner: str) -> bool:
        """The image ``active`` and the volume back, with the task's end; False if the image
        was deleted (or taken back) while its bytes were copied."""
        done = conn.execute(images.update().where(
            images.c.id == task.payload["image_id"], images.c.status == "saving",
            images.c.upload_owner == owner).values(
            status="active", size=stored.size, virtual_size=stored.virtual_size,
            checksum=stored.checksum, os_hash_algo=stored.hash_algo,
            os_hash_value=stored.hash_value, location=str(stored.path), upload_owner=None,
            upload_started_at=None, updated_at=utcnow())).rowcount
        _give_back(conn, task)
        taskq.finish(conn, task)
        return bool(done)

    def _fail(self, conn: Connection, task: Task, reason: str) -> None:
        # As Cinder: the unfinished image is deleted; the volume is as it was.
        log.warning("volume %s: upload to image %s failed: %s", task.resource_id,
                    task.payload["image_id"], reason)
        conn.execute(images.delete().where(images.c.id == task.payload["image_id"],
                                           images.c.status.in_(("queued", "saving"))))
        self.store.discard_upload(task.payload["image_id"], self.worker.name)
        _give_back(conn, task)


def _give_back(conn: Connection, task: Task) -> None:
    """The volume's status from before the upload (``available`` or ``in-use``)."""
    move(conn, VOLUME, task.resource_id, [VolumeStatus.UPLOADING], task.payload["restore"])

