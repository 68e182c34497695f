"""The composition root: builds the database, drivers, services, worker and HTTP faces, and wires
them together. The only module that knows every layer."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from starlette.applications import Starlette
from starlette.routing import Mount

from stackvol.compute.base import ComputeDriver
from stackvol.compute.simulated import SimulatedDriver
from stackvol.config import Settings
from stackvol.db.engine import Database, create_engine
from stackvol.db.migrate import upgrade
from stackvol.http.auth import Authenticator
from stackvol.http.compute.face import ComputeFace
from stackvol.http.identity.face import identity_face
from stackvol.http.legacy.face import PREFIXES as LEGACY_PREFIXES
from stackvol.http.legacy.face import LegacyFace
from stackvol.http.middleware import PrefixDispatcher, RequestIdMiddleware
from stackvol.http.volume.face import VolumeFace
from stackvol.services import policy
from stackvol.services.attachments import AttachmentService
from stackvol.services.flavors import FlavorService
from stackvol.services.identity import BootstrapResult, IdentityService
from stackvol.services.quotas import QuotaService
from stackvol.services.servers import ServerService
from stackvol.services.snapshots import SnapshotService
from stackvol.services.tasks import PauseHook, Worker
from stackvol.services.volume_attach import VolumeAttachService
from stackvol.services.volume_types import VolumeTypeService
from stackvol.services.volumes import VolumeService
from stackvol.storage.base import StorageDriver
from stackvol.storage.file import FileDriver

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "bootstrap-credentials.json"


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


def make_storage(settings: Settings) -> StorageDriver:
    if settings.storage_backend == "file":
        return FileDriver(settings.data_dir, settings.volume_format)
    raise ValueError(f"unknown storage backend {settings.storage_backend!r}")


def make_compute(settings: Settings) -> ComputeDriver:
    if settings.compute_driver == "simulated":
        return SimulatedDriver(settings.data_dir)
    raise ValueError(f"unknown compute driver {settings.compute_driver!r}")


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    policy.configure(settings.policy_file or None)
    db = Database(create_engine(settings.effective_database_url, settings.sqlite_synchronous))
    worker = Worker(
        db,
        name=settings.worker_name or f"{socket.gethostname()}:all",
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.task_lease_seconds,
        poll_seconds=settings.task_poll_seconds,
    )
    pause = PauseHook(settings.pause_at)
    identity = IdentityService(db, settings.token_ttl_seconds, settings.password_hash_rounds)
    storage = make_storage(settings)
    quotas = QuotaService(db, {
        "volumes": settings.quota_volumes, "snapshots": settings.quota_snapshots,
        "gigabytes": settings.quota_gigabytes,
        "per_volume_gigabytes": settings.quota_per_volume_gigabytes})
    volumes = VolumeService(db, storage, worker, availability_zones=(settings.availability_zone,),
                            pause=pause, quotas=quotas)
    snapshots = SnapshotService(db, storage, worker, pause=pause, quotas=quotas)
    compute = make_compute(settings)
    attachments = AttachmentService(db, storage, compute, worker, pause=pause)
    servers = ServerService(db, compute, worker, volumes, attachments,
                            availability_zones=(settings.availability_zone,), pause=pause)
    return Services(settings=settings, db=db, worker=worker, identity=identity, volumes=volumes,
                    snapshots=snapshots, compute=compute, flavors=FlavorService(db),
                    servers=servers, attachments=attachments,
                    volume_types=VolumeTypeService(db), quotas=quotas,
                    volume_attach=VolumeAttachService(db, storage))


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
    upgrade(services.db.engine)
    fresh = await services.db.run(services.identity.bootstrap)
    write_clouds_yaml(services.settings, fresh)
    await services.flavors.bootstrap()
    await services.identity.load_keys()
    await services.servers.reconcile()  # after a crash, before any task resumes
    await services.worker.start()
    log.info("stackvol started", extra={"database": services.db.engine.url.render_as_string(),
                                        "storage": services.volumes.storage.name})


def _compute_header(path: str) -> bytes | None:
    return None if path.startswith(("/identity", "/volume")) else b"x-compute-request-id"


def create_app(settings: Settings, services: Services | None = None) -> RequestIdMiddleware:
    """The ASGI application serving every face on one port."""
    services = services or build_services(settings)
    authenticator = Authenticator(services.identity, noauth=settings.noauth,
                                  identity_url=f"{public_url(settings)}/identity")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await start(services)
        try:
            yield
        finally:
            await services.worker.stop()
            services.db.dispose()

    # /v1.1, /v2 (and /v1.0 sign-in) go to the legacy face, at the root and below /compute.
    legacy_face = LegacyFace(authenticator)
    legacy = dict.fromkeys(LEGACY_PREFIXES, legacy_face)
    compute = PrefixDispatcher(legacy, default=ComputeFace(authenticator))
    app = Starlette(
        routes=[Mount("", app=PrefixDispatcher(
            {"/identity": identity_face(), "/compute": compute,
             "/volume": VolumeFace(authenticator), **legacy},
            default=compute,
        ))],
        lifespan=lifespan,
    )
    app.state.services = services
    return RequestIdMiddleware(app, _compute_header, settings.access_log)
