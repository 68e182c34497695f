"""Reset: back to a freshly bootstrapped cloud, for developers testing their tools against
stackvol (what moto's and LocalStack's reset give): every server, volume, snapshot, attachment,
image (but the built-in one), transfer and key pair goes, with every user, project, custom role
and application credential but the bootstrap ones (admin, demo; admin, member, reader).

The rows go first, in one transaction; then the bytes and guests behind them (a failure there
leaves an orphan file or domain, logged, never a record without its data). Meant for an idle
test cloud: work in flight for the deleted resources finds them gone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Forbidden
from stackvol.services.identity.api import IdentityService
from stackvol.services.identity.directory import BUILTIN_ROLES
from stackvol.services.images.api import BUILTIN_IMAGE_ID, ImageService
from stackvol.services.operations import queries
from stackvol.storage.registry import Backends
from stackvol.virt.base import ComputeDriver

log = logging.getLogger(__name__)

BOOTSTRAP_NAMES = ("admin", "demo")  # the users and projects bootstrap makes


@dataclass
class Removed:
    """What a reset took away: the resources' ids and where their bytes were."""

    servers: list[str] = field(default_factory=list)
    snapshots: list[tuple[str, str, str | None]] = field(default_factory=list)  # id, backend
    volumes: list[tuple[str, str, str | None]] = field(default_factory=list)
    images: list[tuple[str, Path | None]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class ResetService:
    def __init__(self, db: Database, backends: Backends, compute: ComputeDriver,
                 image_service: ImageService, identity: IdentityService) -> None:
        self.db = db
        self.backends = backends
        self.compute = compute
        self.images = image_service
        self.identity = identity

    async def reset(self, ctx: RequestContext) -> dict[str, int]:
        """Delete everything but the bootstrap objects; how many of each kind went."""
        if not ctx.is_admin:
            raise Forbidden("Policy doesn't allow stackvol:reset to be performed.")
        removed = await self.db.run(_remove_rows)
        self.identity.forget()  # cached tokens of deleted users and projects
        await asyncio.to_thread(self._remove_data, removed)
        log.warning("reset: removed %s", ", ".join(f"{n} {k}" for k, n in
                                                   removed.counts.items() if n) or "nothing")
        return removed.counts

    def _remove_data(self, removed: Removed) -> None:
        for server_id in removed.servers:
            _quietly(f"server {server_id}", self.compute.destroy, server_id)
        for snapshot_id, backend, location in removed.snapshots:
            _quietly(f"snapshot {snapshot_id}",
                     lambda s=snapshot_id, b=backend, loc=location:
                     self.backends.get(b).delete_snapshot(s, loc))
        for volume_id, backend, location in removed.volumes:
            _quietly(f"volume {volume_id}",
                     lambda v=volume_id, b=backend, loc=location:
                     self.backends.get(b).delete_volume(v, loc))
        for image_id, path in removed.images:
            _quietly(f"image {image_id}", self.images.store.delete, image_id, path)


def _quietly(what: str, fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # one stuck resource must not stop the rest of the reset
        log.warning("reset: could not remove the data of %s: %s", what, exc)


def _remove_rows(conn: Connection) -> Removed:
    removed = Removed()
    removed.servers = queries.server_ids(conn)
    removed.snapshots = queries.snapshot_locations(conn)
    removed.volumes = queries.volume_locations(conn)
    removed.images = [(image_id, Path(location) if location else None) for image_id, location
                      in queries.image_locations(conn, BUILTIN_IMAGE_ID)]
    removed.counts = queries.delete_all_but(conn, BUILTIN_IMAGE_ID, BOOTSTRAP_NAMES,
                                            BUILTIN_ROLES)
    return removed
