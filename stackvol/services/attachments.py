"""Attaching volumes to servers and detaching them: the race-proof heart of the extension.

The attachment row is the one source of truth for "volume V is on server S as device D": the
volume view, the server's ``volumes_attached`` and ``os-volume_attachments`` all read it.

attach:  volume available → attaching (CAS, with a new attachment row ``attaching`` and an
         ``attachment.attach`` task, one transaction) → the compute driver connects the volume
         → attachment ``attached`` and volume ``in-use`` (one transaction).
detach:  attachment attached → detaching and volume in-use → detaching (CAS) → the driver
         disconnects → attachment row removed and volume ``available``.
Failures roll back to the state before the request (Cinder's unreserve / roll_detaching).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.compute.base import ComputeDriver
from stackvol.db.engine import Database
from stackvol.db.schema import servers, snapshots, volume_attachments, volumes
from stackvol.services import policy
from stackvol.services import tasks as taskq
from stackvol.services.context import RequestContext
from stackvol.services.errors import Conflict, Forbidden, Invalid, NotFound
from stackvol.services.records import Attachment, Page
from stackvol.services.status import AttachmentStatus, SnapshotStatus, VmState, VolumeStatus
from stackvol.services.tasks import Handler, PauseHook, Task, Worker
from stackvol.services.volumes import cas_status
from stackvol.storage.base import StorageDriver
from stackvol.timeutils import utcnow

log = logging.getLogger(__name__)

# vm_states in which Nova lets a volume be attached or detached (shelved ones from 2.20).
ATTACHABLE_VM_STATES = (VmState.ACTIVE, VmState.STOPPED, "paused", "resized", "soft-delete")
SHELVED_VM_STATES = ("shelved", "shelved_offloaded")
DEVICE_RE = re.compile(r"^/dev/x?[a-z]?d?([a-z]+)[0-9]*$")
# Every attachment row that holds (or is getting) a device on its server.
HOLDING = (AttachmentStatus.ATTACHING, AttachmentStatus.ATTACHED, AttachmentStatus.DETACHING)


@dataclass(frozen=True, slots=True)
class AttachRequest:
    server_id: str
    volume_id: str
    device: str | None = None
    tag: str | None = None
    delete_on_termination: bool = False
    allow_shelved: bool = False  # microversion 2.20+


@dataclass(frozen=True, slots=True)
class _Server:
    id: str
    project_id: str
    vm_state: str
    task_state: str | None
    locked: bool
    host: str | None


def device_letters(index: int) -> str:
    """0 → 'a', 25 → 'z', 26 → 'aa' (disk naming as Linux does it)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def next_device(used: set[str], prefix: str = "/dev/vd") -> str:
    """The first free name after the root disk (``/dev/vda``): ``/dev/vdb``, ``/dev/vdc``..."""
    index = 1
    while f"{prefix}{device_letters(index)}" in used:
        index += 1
    return f"{prefix}{device_letters(index)}"


class AttachmentService:
    def __init__(self, db: Database, storage: StorageDriver, compute: ComputeDriver,
                 worker: Worker, pause: PauseHook | None = None) -> None:
        self.db = db
        self.storage = storage
        self.compute = compute
        self.worker = worker
        self.pause = pause or PauseHook("")
        worker.register("attachment.attach", Handler(self._run_attach, self._fail_attach))
        worker.register("attachment.detach", Handler(self._run_detach, self._fail_detach))

    # --- lookups --------------------------------------------------------------------------

    @staticmethod
    def _server(conn: Connection, ctx: RequestContext, server_id: str,
                lock: bool = False) -> _Server:
        query = sa.select(
            servers.c.id, servers.c.project_id, servers.c.vm_state, servers.c.task_state,
            servers.c.locked, servers.c.host).where(servers.c.id == server_id)
        # ``lock``: attaches to one server queue up (PostgreSQL), so two never pick one device
        # and none slips past a concurrent delete of the server.
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
            raise NotFound(f"Instance {server_id} could not be found.")
        return _Server(*row)

    @staticmethod
    def _check_server_state(server: _Server, action: str, allow_shelved: bool) -> None:
        allowed = ATTACHABLE_VM_STATES + (SHELVED_VM_STATES if allow_shelved else ())
        if server.locked:
            raise Conflict(f"Instance {server.id} is locked")
        if server.vm_state not in allowed:
            raise Conflict(f"Cannot '{action}' instance {server.id} while it is in vm_state "
                           f"{server.vm_state}")
        if server.task_state is not None:
            raise Conflict(f"Cannot '{action}' instance {server.id} while it is in task_state "
                           f"{server.task_state}")

    @staticmethod
    def _rows(conn: Connection, *where: Any) -> list[Attachment]:
        query = sa.select(volume_attachments).where(*where).order_by(
            volume_attachments.c.created_at, volume_attachments.c.id)
        return [Attachment.from_row(r) for r in conn.execute(query)]

    # --- reads ----------------------------------------------------------------------------

    async def list(self, ctx: RequestContext, server_id: str, page: Page) -> list[Attachment]:
        return await self.db.read(self._list, ctx, server_id, page)

    def _list(self, conn: Connection, ctx: RequestContext, server_id: str,
              page: Page) -> list[Attachment]:
        server = self._server(conn, ctx, server_id)
        policy.authorize(ctx, "attachment:list", server.project_id)
        found = self._rows(conn, volume_attachments.c.server_id == server_id,
                           volume_attachments.c.status.in_(list(HOLDING)))
        return found[page.offset:page.offset + page.limit]

    async def get(self, ctx: RequestContext, server_id: str, volume_id: str) -> Attachment:
        return await self.db.read(self._get, ctx, server_id, volume_id)

    def _get(self, conn: Connection, ctx: RequestContext, server_id: str,
             volume_id: str) -> Attachment:
        server = self._server(conn, ctx, server_id)
        policy.authorize(ctx, "attachment:show", server.project_id)
        found = self._rows(conn, volume_attachments.c.server_id == server_id,
                           volume_attachments.c.volume_id == volume_id,
                           volume_attachments.c.status.in_(list(HOLDING)))
        if not found:
            raise NotFound(f"Instance {server_id} is not attached to volume {volume_id}")
        return found[0]

    # --- attach ---------------------------------------------------------------------------

    async def attach(self, ctx: RequestContext, request: AttachRequest) -> Attachment:
        """Reserve the volume and a device, and queue the connection; answer at once."""
        attachment = await self.db.run(self._reserve, ctx, request)
        self.worker.wake()
        log.info("attaching volume %s to server %s as %s", request.volume_id,
                 request.server_id, attachment.device)
        return attachment

    def _reserve(self, conn: Connection, ctx: RequestContext, req: AttachRequest) -> Attachment:
        server = self._server(conn, ctx, req.server_id, lock=True)
        policy.authorize(ctx, "attachment:create", server.project_id)
        self._check_server_state(server, "attach_volume", req.allow_shelved)
        volume = conn.execute(sa.select(volumes.c.id, volumes.c.status, volumes.c.project_id)
                              .where(volumes.c.id == req.volume_id)).first()
        if volume is None or (not ctx.is_admin and volume.project_id != ctx.project_id):
            raise NotFound(f"Volume {req.volume_id} could not be found.")
        if any(a.server_id == req.server_id for a in self._holders(conn, req.volume_id)):
            raise Invalid(f"Invalid volume: volume {req.volume_id} already attached")
        device = self._pick_device(conn, req)
        attachment = self.reserve_in(conn, req.server_id, req.volume_id, device, req.tag,
                                     req.delete_on_termination)
        taskq.enqueue(conn, "attachment.attach", attachment.id, target=server.host)
        return attachment

    def _holders(self, conn: Connection, volume_id: str) -> list[Attachment]:
        return self._rows(conn, volume_attachments.c.volume_id == volume_id,
                          volume_attachments.c.status.in_(list(HOLDING)))

    def reserve_in(self, conn: Connection, server_id: str, volume_id: str, device: str,
                   tag: str | None = None, delete_on_termination: bool = False,
                   boot_index: int | None = None, claim: bool = True) -> Attachment:
        """Inside the caller's transaction: an ``attaching`` row for the volume on the server.

        With ``claim`` the volume moves available → attaching (CAS) or the call raises
        ``Invalid`` naming its status; without it the volume is still being created for this
        server (boot from volume) and whoever made the row claims it once it is available.
        The caller queues the work that connects it.
        """
        holders = self._holders(conn, volume_id)
        if claim and (holders or not cas_status(conn, volumes, volume_id,
                                                [VolumeStatus.AVAILABLE],
                                                VolumeStatus.ATTACHING)):
            # A holder with the volume still available is a boot volume not yet claimed.
            status = conn.execute(sa.select(volumes.c.status).where(
                volumes.c.id == volume_id)).scalar_one()
            others = ", ".join(a.server_id for a in holders)
            detail = f" (attached to instances: {others})" if others else ""
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be available "
                          f"to attach, but the current status is {status}{detail}.")
        if claim:
            self._check_not_copying(conn, volume_id)
        now = utcnow()
        values = {
            "id": str(uuid.uuid4()), "volume_id": volume_id, "server_id": server_id,
            "device": device, "status": AttachmentStatus.ATTACHING.value, "tag": tag,
            "delete_on_termination": delete_on_termination, "boot_index": boot_index,
            "bdm_uuid": str(uuid.uuid4()), "connection_info": None, "created_at": now,
            "updated_at": None,
        }
        conn.execute(volume_attachments.insert().values(values))
        return Attachment(**values)

    @staticmethod
    def _check_not_copying(conn: Connection, volume_id: str) -> None:
        # Checked after the swap: a snapshot being copied must see no writes from a guest.
        copying = conn.execute(sa.select(sa.func.count()).where(
            snapshots.c.volume_id == volume_id,
            snapshots.c.status == SnapshotStatus.CREATING)).scalar_one()
        if copying:
            raise Invalid(f"Invalid volume: Volume {volume_id} has a snapshot being "
                          f"created; attach it when the snapshot is available.")

    def _pick_device(self, conn: Connection, req: AttachRequest) -> str:
        used = {a.device for a in self._rows(
            conn, volume_attachments.c.server_id == req.server_id,
            volume_attachments.c.status.in_(list(HOLDING))) if a.device}
        used.add("/dev/vda")  # the server's root disk
        if req.device is None:
            return next_device(used)
        if not DEVICE_RE.match(req.device):
            raise Invalid(f"The supplied device path ({req.device}) is invalid.")
        if req.device in used:
            raise Conflict(f"The supplied device path ({req.device}) is in use.")
        return req.device

    async def _run_attach(self, task: Task) -> None:
        found = await self.db.read(_attachment_and_volume, task.resource_id)
        if found is None or found[0].status != AttachmentStatus.ATTACHING:
            await self.db.run(taskq.finish, task)
            return
        attachment, location = found
        await self.pause.at("attachment.attach")
        info = await asyncio.to_thread(self.connect, attachment, location)
        await self.db.run(self._attached, task, attachment, info)
        log.info("volume %s in-use on server %s", attachment.volume_id, attachment.server_id)

    def connect(self, attachment: Attachment, location: str) -> dict[str, Any]:
        """Blocking: have the compute driver connect the volume; its connection info."""
        info = self.storage.connection_info(attachment.volume_id, location).as_dict()
        self.compute.attach_volume(attachment.server_id, attachment.volume_id, info,
                                   attachment.device or "")
        return info

    @staticmethod
    def mark_attached(conn: Connection, attachment: Attachment, info: dict[str, Any]) -> None:
        """The driver has the volume: attachment ``attached`` and volume ``in-use``."""
        cas_status(conn, volume_attachments, attachment.id, [AttachmentStatus.ATTACHING],
                   AttachmentStatus.ATTACHED, connection_info=info)
        cas_status(conn, volumes, attachment.volume_id, [VolumeStatus.ATTACHING],
                   VolumeStatus.IN_USE)

    def _attached(self, conn: Connection, task: Task, attachment: Attachment,
                  info: dict[str, Any]) -> None:
        self.mark_attached(conn, attachment, info)
        taskq.finish(conn, task)

    def _fail_attach(self, conn: Connection, task: Task, reason: str) -> None:
        row = conn.execute(sa.select(volume_attachments).where(
            volume_attachments.c.id == task.resource_id)).first()
        if row is None:
            return
        conn.execute(volume_attachments.delete().where(volume_attachments.c.id == row.id))
        cas_status(conn, volumes, row.volume_id, [VolumeStatus.ATTACHING],
                   VolumeStatus.AVAILABLE, error_reason=f"attach failed: {reason}")

    # --- detach ---------------------------------------------------------------------------

    async def detach(self, ctx: RequestContext, server_id: str, volume_id: str,
                     allow_shelved: bool = False) -> None:
        await self.db.run(self._begin_detach, ctx, server_id, volume_id, allow_shelved)
        self.worker.wake()

    def _begin_detach(self, conn: Connection, ctx: RequestContext, server_id: str,
                      volume_id: str, allow_shelved: bool) -> None:
        server = self._server(conn, ctx, server_id)
        policy.authorize(ctx, "attachment:delete", server.project_id)
        found = self._rows(conn, volume_attachments.c.server_id == server_id,
                           volume_attachments.c.volume_id == volume_id,
                           volume_attachments.c.status.in_(list(HOLDING)))
        if not found:
            raise NotFound(f"Volume {volume_id} is not attached to server {server_id}")
        attachment = found[0]
        self._check_server_state(server, "detach_volume", allow_shelved)
        if attachment.boot_index == 0:
            raise Invalid("Cannot detach a root device volume")
        moved = cas_status(conn, volume_attachments, attachment.id, [AttachmentStatus.ATTACHED],
                           AttachmentStatus.DETACHING)
        if not moved or not cas_status(conn, volumes, volume_id, [VolumeStatus.IN_USE],
                                       VolumeStatus.DETACHING):
            raise Invalid("Invalid volume: Unable to detach volume. Volume status must be "
                          "'in-use' and attach status must be 'attached' to detach.")
        taskq.enqueue(conn, "attachment.detach", attachment.id, target=server.host)

    async def _run_detach(self, task: Task) -> None:
        found = await self.db.read(_attachment_and_volume, task.resource_id)
        if found is None or found[0].status != AttachmentStatus.DETACHING:
            await self.db.run(taskq.finish, task)
            return
        attachment = found[0]
        await self.pause.at("attachment.detach")
        await asyncio.to_thread(self.compute.detach_volume, attachment.server_id,
                                attachment.volume_id)
        await self.db.run(self._detached, task, attachment)
        log.info("volume %s detached from server %s", attachment.volume_id,
                 attachment.server_id)

    @staticmethod
    def _detached(conn: Connection, task: Task, attachment: Attachment) -> None:
        conn.execute(volume_attachments.delete().where(volume_attachments.c.id == attachment.id))
        cas_status(conn, volumes, attachment.volume_id, [VolumeStatus.DETACHING],
                   VolumeStatus.AVAILABLE)
        taskq.finish(conn, task)

    @staticmethod
    def _fail_detach(conn: Connection, task: Task, reason: str) -> None:
        row = conn.execute(sa.select(volume_attachments).where(
            volume_attachments.c.id == task.resource_id)).first()
        if row is None:
            return
        cas_status(conn, volume_attachments, row.id, [AttachmentStatus.DETACHING],
                   AttachmentStatus.ATTACHED)
        cas_status(conn, volumes, row.volume_id, [VolumeStatus.DETACHING], VolumeStatus.IN_USE,
                   error_reason=f"detach failed: {reason}")

    # --- update (PUT) ---------------------------------------------------------------------

    async def update(self, ctx: RequestContext, server_id: str, volume_id: str,
                     new_volume_id: str, delete_on_termination: bool | None) -> None:
        """Nova's PUT: change ``delete_on_termination`` (2.85+), or swap to another volume."""
        await self.db.run(self._update, ctx, server_id, volume_id, new_volume_id,
                          delete_on_termination)

    def _update(self, conn: Connection, ctx: RequestContext, server_id: str, volume_id: str,
                new_volume_id: str, delete_on_termination: bool | None) -> None:
        server = self._server(conn, ctx, server_id)
        swap = new_volume_id != volume_id
        if swap and not policy.allowed(ctx, "attachment:swap", server.project_id):
            raise Forbidden("Policy doesn't allow os_compute_api:os-volumes-attachments:swap "
                            "to be performed.")
        policy.authorize(ctx, "attachment:update", server.project_id)
        attachment = self._get(conn, ctx, server_id, volume_id)
        if swap:
            self._check_swap(conn, ctx, server, volume_id, new_volume_id)
        if delete_on_termination is not None:
            conn.execute(volume_attachments.update()
                         .where(volume_attachments.c.id == attachment.id)
                         .values(delete_on_termination=delete_on_termination,
                                 updated_at=utcnow()))

    def _check_swap(self, conn: Connection, ctx: RequestContext, server: _Server,
                    volume_id: str, new_volume_id: str) -> None:
        new = conn.execute(sa.select(volumes.c.project_id).where(
            volumes.c.id == new_volume_id)).first()
        if new is None or (not ctx.is_admin and new.project_id != ctx.project_id):
            raise Invalid(f"Volume {new_volume_id} could not be found.")
        if server.vm_state not in (VmState.ACTIVE, "paused", "resized"):
            raise Conflict(f"Cannot 'swap_volume' instance {server.id} while it is in "
                           f"vm_state {server.vm_state}")
        # Nova allows a swap only while Cinder migrates the volume; stackvol never migrates.
        raise Conflict(f"volume {volume_id} is not migrating; this API should only be called "
                       f"by Cinder")


def _attachment_and_volume(conn: Connection, attachment_id: str) -> Any:
    row = conn.execute(
        sa.select(volume_attachments, volumes.c.provider_location)
        .join(volumes, volumes.c.id == volume_attachments.c.volume_id)
        .where(volume_attachments.c.id == attachment_id)).first()
    if row is None:
        return None
    mapping = dict(row._mapping)
    location = mapping.pop("provider_location")
    return Attachment(**mapping), location
