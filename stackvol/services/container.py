"""The service container: every service the HTTP faces may call, built once by the composition
root (``stackvol.app``) and handed to the faces on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from stackvol.config import Settings
from stackvol.db.engine import Database
from stackvol.services.attachments.cinder_api import VolumeAttachService
from stackvol.services.attachments.nova_api import AttachmentService
from stackvol.services.flavors.api import FlavorService
from stackvol.services.identity.api import BootstrapResult, IdentityService
from stackvol.services.images.api import ImageService
from stackvol.services.keypairs.api import KeyPairService
from stackvol.services.operations.hosts import CinderServices
from stackvol.services.operations.reset import ResetService
from stackvol.services.quotas.api import QuotaService
from stackvol.services.servers.api import ServerService
from stackvol.services.snapshots.api import SnapshotService
from stackvol.services.volumes.api import VolumeService
from stackvol.services.volumes.qos_specs import QosSpecService
from stackvol.services.volumes.retype import RetypeService
from stackvol.services.volumes.transfers import TransferService
from stackvol.services.volumes.types import VolumeTypeService
from stackvol.services.volumes.uploads import VolumeUploadService
from stackvol.tasks.roles import Heartbeat, ProcessRole
from stackvol.tasks.worker import Worker
from stackvol.virt.base import ComputeDriver


@dataclass
class Services:
    """Everything the HTTP faces may call."""

    settings: Settings
    db: Database
    worker: Worker
    identity: IdentityService
    volumes: VolumeService
    snapshots: SnapshotService
    compute: ComputeDriver
    flavors: FlavorService
    servers: ServerService
    attachments: AttachmentService
    volume_types: VolumeTypeService
    quotas: QuotaService
    volume_attach: VolumeAttachService
    images: ImageService
    reset: ResetService
    keypairs: KeyPairService
    transfers: TransferService
    retype: RetypeService
    volume_uploads: VolumeUploadService
    role: ProcessRole
    heartbeat: Heartbeat
    qos_specs: QosSpecService
    cinder_services: CinderServices
    # What this start bootstrapped (the new users' passwords), once ``start`` has run.
    first_start: BootstrapResult | None = None
