"""The composition root: builds the database, drivers, services, worker and HTTP faces, and wires
them together. The only module that knows every layer."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import yaml
from sqlalchemy.engine import Connection
from starlette.types import ASGIApp

from stackvol.config import Settings
from stackvol.db.engine import Database, create_engine
from stackvol.db.migrate import ensure_current
from stackvol.http import health
from stackvol.http.admin import PATH as ADMIN_PATH
from stackvol.http.admin import AdminFace
from stackvol.http.application import Application
from stackvol.http.auth import Authenticator
from stackvol.http.block_storage.face import VolumeFace
from stackvol.http.compute.face import ComputeFace
from stackvol.http.compute_legacy.face import PREFIXES as LEGACY_PREFIXES
from stackvol.http.compute_legacy.face import LegacyFace
from stackvol.http.identity.face import identity_face
from stackvol.http.image.face import ImageFace
from stackvol.http.middleware import PrefixDispatcher, RequestIdMiddleware
from stackvol.services.attachments.cinder_api import VolumeAttachService
from stackvol.services.attachments.connection_calls import ConnectionCalls
from stackvol.services.attachments.nova_api import AttachmentService
from stackvol.services.common import policy
from stackvol.services.container import Services
from stackvol.services.flavors.api import FlavorService
from stackvol.services.identity.api import BootstrapResult, IdentityService
from stackvol.services.images.api import ImageService
from stackvol.services.keypairs.api import KeyPairService
from stackvol.services.operations.hosts import CinderServices
from stackvol.services.operations.reset import ResetService
from stackvol.services.quotas.api import QuotaService, configured_defaults
from stackvol.services.servers import power_sync
from stackvol.services.servers.api import ServerService
from stackvol.services.snapshots.api import SnapshotService
from stackvol.services.volumes.api import VolumeService
from stackvol.services.volumes.qos_specs import QosSpecService
from stackvol.services.volumes.retype import RetypeService
from stackvol.services.volumes.transfers import TransferService
from stackvol.services.volumes.types import VolumeTypeService
from stackvol.services.volumes.uploads import VolumeUploadService
from stackvol.storage.images import ImageStore
from stackvol.storage.registry import Backends
from stackvol.tasks.roles import Heartbeat, ProcessRole, pick_compute_host
from stackvol.tasks.worker import PauseHook, Worker
from stackvol.virt.base import ComputeDriver
from stackvol.virt.simulated import SimulatedDriver

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "bootstrap-credentials.json"


def make_backends(settings: Settings, role: ProcessRole) -> Backends:
    """The enabled storage backends. A process working for them builds their drivers now (a
    broken one stops it at start); others build one only when they first need it."""
    backends = Backends.from_settings(settings)
    served = {"all": backends.names, "volume": [settings.served_backend]}.get(role.role, [])
    backends.build(served)
    for name in served:  # e.g. exports whose daemons ended with a reboot of this host
        backends.get(name).restore()
    return backends


def make_compute(settings: Settings) -> ComputeDriver:
    choice: str = settings.compute_driver  # "auto" resolves to one of the other two
    if choice not in ("auto", "libvirt", "simulated"):
        raise ValueError(f"unknown compute driver {choice!r} (auto, libvirt or simulated)")
    # A data directory keeps the driver its servers were made on: "auto" never switches it.
    marker = settings.data_dir / "compute" / "driver"
    if choice == "auto" and marker.exists():
        choice = marker.read_text().strip()
        log.info("compute driver: %s (this data directory's)", choice)
    elif choice == "auto":
        from stackvol.virt.libvirt import unavailable

        reason = unavailable(settings.libvirt_uri)
        choice = "libvirt" if reason is None else "simulated"
        log.info("compute driver: %s (%s)", choice, f"no libvirt daemon at "
                 f"{settings.libvirt_uri}: {reason}" if reason else "a libvirt daemon answers")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(choice + "\n")
    if choice == "simulated":
        return SimulatedDriver(settings.data_dir, host=settings.compute_host or None)
    from stackvol.virt import libvirt

    reason = libvirt.unavailable(settings.libvirt_uri)
    if reason is not None:
        raise ValueError(f"compute driver libvirt: no libvirt daemon at {settings.libvirt_uri}: "
                         f"{reason}")
    log.info("compute driver: libvirt at %s (%s)", settings.libvirt_uri,
             settings.libvirt_virt_type)
    return libvirt.LibvirtDriver(
        settings.data_dir, settings.libvirt_uri, settings.libvirt_virt_type,
        settings.libvirt_max_memory_mb,
        guest_image_dir(settings),
        settings.libvirt_detach_timeout, host=settings.compute_host or None,
        detach_attempts=settings.libvirt_detach_attempts)


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    policy.configure(settings.policy_file or None)
    db = Database(create_engine(settings.effective_database_url, settings.sqlite_synchronous))
    role = ProcessRole.from_settings(settings, public_url(settings))
    worker = Worker(
        db,
        name=role.name,
        targets=role.targets,
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.task_lease_seconds,
        poll_seconds=settings.task_poll_seconds,
    )
    pause = PauseHook(settings.pause_at)
    identity = IdentityService(db, settings.token_ttl_seconds, settings.password_hash_rounds)
    backends = make_backends(settings, role)
    quotas = QuotaService(db, configured_defaults(settings))
    volumes = VolumeService(db, backends, worker, availability_zones=(settings.availability_zone,),
                            pause=pause, quotas=quotas)
    snapshots = SnapshotService(db, backends, worker, pause=pause, quotas=quotas)
    compute = make_compute(settings)
    attachments = AttachmentService(db, backends, compute, worker, pause=pause)
    place = None
    if role.role == "api":  # new servers go to a live compute host, not this process's
        def place(conn: Connection) -> str:
            return pick_compute_host(conn, settings.service_down_seconds, compute.host)
    servers = ServerService(db, compute, worker, volumes, attachments,
                            availability_zones=(settings.availability_zone,), pause=pause,
                            place=place)
    # Connection calls of backends this process does not run go to their workers.
    calls = ConnectionCalls(db, backends, worker, role.serves, settings.rpc_response_timeout,
                            pause)
    volume_attach = VolumeAttachService(db, backends, calls)
    image_store = ImageStore(image_dir(settings))
    volume_uploads = VolumeUploadService(db, backends, worker, image_store, pause)
    role.restrict(worker)
    images = ImageService(db, image_store, role.name, settings.service_down_seconds,
                          builtin_disk=lambda: builtin_guest_disk(settings))
    volumes.prepare_image = images.ensure_data  # the built-in image's bytes, on first use
    heartbeat = Heartbeat(db, role, settings.heartbeat_seconds, settings.service_down_seconds)
    return Services(settings=settings, db=db, worker=worker, identity=identity, volumes=volumes,
                    snapshots=snapshots, compute=compute, flavors=FlavorService(db),
                    servers=servers, attachments=attachments,
                    volume_types=VolumeTypeService(db), quotas=quotas,
                    volume_attach=volume_attach, role=role,
                    keypairs=KeyPairService(db, quotas),
                    transfers=TransferService(db, quotas), volume_uploads=volume_uploads,
                    retype=RetypeService(db, backends, quotas),
                    images=images,
                    reset=ResetService(db, backends, compute, images, identity),
                    heartbeat=heartbeat, qos_specs=QosSpecService(db),
                    cinder_services=CinderServices(db, heartbeat, backends))


def guest_image_dir(settings: Settings) -> Path:
    """The built-in guest's build cache (kernel, initramfs, boot disk)."""
    return Path(settings.guest_image_dir or settings.data_dir / "guest-image")


def builtin_guest_disk(settings: Settings) -> Path:
    """The built-in guest as a bootable qcow2 disk, built on first call (blocking)."""
    from stackvol.virt import guest_image

    return guest_image.boot_disk(guest_image_dir(settings), "qcow2")


def image_dir(settings: Settings) -> Path:
    return Path(settings.image_dir) if settings.image_dir else settings.data_dir / "images"


def public_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def write_clouds_yaml(settings: Settings, fresh: BootstrapResult) -> Path:
    """Keep the bootstrap credentials and render ``clouds.yaml`` for this run's address."""
    creds_path = settings.data_dir / CREDENTIALS_FILE
    creds = json.loads(creds_path.read_text()) if creds_path.exists() else {}
    for user, password in fresh.passwords.items():
        creds[user] = {"password": password, "project": fresh.projects[user]}
    _write_private(creds_path, json.dumps(creds, indent=2))
    clouds = {"clouds": {
        f"stackvol-{user}": {
            "auth": {"auth_url": f"{public_url(settings)}/identity", "username": user,
                     "password": entry["password"], "project_name": entry["project"],
                     "user_domain_name": "Default", "project_domain_name": "Default"},
            "region_name": settings.region,
            "identity_api_version": 3,
        } for user, entry in sorted(creds.items())}}
    path = settings.data_dir / "clouds.yaml"
    _write_private(path, yaml.safe_dump(clouds, sort_keys=False))
    return path


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


async def start(services: Services) -> None:
    """Schema, first-start bootstrap, keys, then the worker (which resumes unfinished work)."""
    with services.db.startup_lock():  # one process at a time creates the schema and rows
        ensure_current(services.db.engine)
        fresh = await services.db.run(services.identity.bootstrap)
        write_clouds_yaml(services.settings, fresh)
        services.first_start = fresh
        await services.flavors.bootstrap()
        await services.images.seed_builtin()
        services.images.remove_leftovers()
    await services.images.start()  # uploads a crash cut off go back to queued
    await services.identity.load_keys()
    if services.role.runs_compute:
        await services.servers.reconcile()  # after a crash, before any task resumes
    if services.role.runs_worker:
        await services.worker.start()
    await services.heartbeat.start()
    log.info("stackvol started", extra={"database": services.db.engine.url.render_as_string(),
                                        "storage": ",".join(services.volumes.backends.names)})


async def stop(services: Services) -> None:
    """Shutdown, shared by the application's lifespan and in-process users (the unit tier):
    heartbeat, image uploads, worker, and last the database they all use."""
    await services.heartbeat.stop()
    await services.images.stop()
    await services.worker.stop()
    services.db.dispose()


def _compute_header(path: str) -> bytes | None:
    return None if path.startswith(("/identity", "/volume", "/image")) else b"x-compute-request-id"


def create_app(settings: Settings, services: Services | None = None) -> RequestIdMiddleware:
    """The ASGI application serving every face on one port."""
    services = services or build_services(settings)
    authenticator = Authenticator(services.identity, noauth=settings.noauth,
                                  identity_url=f"{public_url(settings)}/identity")

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await start(services)
        syncing = (power_sync.start(services.db, services.compute)
                   if services.role.runs_compute else None)
        try:
            yield
        finally:
            await power_sync.stop(syncing)
            await stop(services)

    # /v1.1, /v2 (and /v1.0 sign-in) go to the legacy face, at the root and below /compute.
    legacy_face = LegacyFace(authenticator)
    legacy: dict[str, ASGIApp] = dict.fromkeys(LEGACY_PREFIXES, legacy_face)
    compute = PrefixDispatcher(legacy, default=ComputeFace(authenticator))
    faces = PrefixDispatcher({"/identity": identity_face(), "/compute": compute,
                              "/volume": VolumeFace(authenticator),
                              "/image": ImageFace(authenticator), **legacy,
                              ADMIN_PATH: AdminFace(authenticator),
                              health.PATH: health.healthcheck}, default=compute)
    if not services.role.runs_api:  # a worker process: health only
        faces = PrefixDispatcher({health.PATH: health.healthcheck}, default=health.not_served)
    app = Application(faces, lifespan)
    app.state.services = services
    return RequestIdMiddleware(app, _compute_header, settings.access_log)
