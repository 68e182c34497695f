"""Volume → image (Cinder's ``os-volume_upload_image``), the API side: a volume's bytes become
an image of the image service.

The request moves the volume to ``uploading`` (from ``available``, or ``in-use`` when forced),
records the image ``queued`` and enqueues the copy, all in one transaction. The copy runs on the
volume's backend worker (``uploads_manager``), which makes the image ``active`` and gives the
volume back its status, or on failure removes the image and gives the volume back too.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import VOLUME, move
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid
from stackvol.services.common.records import Volume
from stackvol.services.common.status import VolumeStatus
from stackvol.services.images.api import RESERVED, VISIBILITIES
from stackvol.services.volumes import queries
from stackvol.services.volumes.queries import read_volume
from stackvol.services.volumes.uploads_manager import TASK, VolumeUploadManager
from stackvol.storage.images import ImageStore
from stackvol.storage.qemu_img import QEMU_FORMATS
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.worker import PauseHook, Worker

log = logging.getLogger(__name__)

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
    """The API side of uploads; the copy it queues is done by ``VolumeUploadManager``."""

    def __init__(self, db: Database, backends: Backends, worker: Worker, store: ImageStore,
                 pause: PauseHook | None = None) -> None:
        self.db = db
        self.worker = worker
        # The worker side, in this process (its handler runs where the role allows).
        self.manager = VolumeUploadManager(db, backends, worker, store, pause)

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
        properties = {k: v for k, v in (volume.image_metadata or {}).items()
                      if k not in _NOT_PROPERTIES}
        queries.insert_queued_image(conn, {
            "id": image_id, "name": request.image_name,
            "visibility": request.visibility or "shared", "protected": request.protected,
            "os_hidden": False, "disk_format": request.disk_format,
            "container_format": request.container_format, "min_disk": 0, "min_ram": 0,
            "owner": volume.project_id, "tags": [], "properties": properties})
        taskq.enqueue(conn, TASK, volume_id, {"image_id": image_id, "restore": volume.status,
                                              "disk_format": request.disk_format},
                      target=volume.backend)
        return Upload(read_volume(conn, ctx, volume_id), image_id, request)
