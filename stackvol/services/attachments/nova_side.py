"""Attaching volumes to servers and detaching them: the race-proof heart of the extension.

The attachment row is the one source of truth for "volume V is on server S as device D": the
volume view, the server's ``volumes_attached`` and ``os-volume_attachments`` all read it.

attach:  volume available → attaching (CAS, with a new attachment row ``attaching`` and a
         ``volume.initialize_connection`` task, one transaction) → on the volume's backend, the
         storage driver makes the connection for the server's host (a local path, or an export
         when that host cannot reach the bytes), stored on the row with an ``attachment.attach``
         task → on the server's host, the compute driver connects it → attachment ``attached``
         and volume ``in-use`` (one transaction).
detach:  attachment attached → detaching and volume in-use → detaching (CAS) → on the server's
         host the driver disconnects (``attachment.detach``) → on the backend the connection is
         torn down (``volume.terminate_connection``) → attachment row removed and volume
         ``available``.
Each step commits with the task of the next, so a crash anywhere resumes the chain. Failures
roll back to the state before the request (Cinder's unreserve / roll_detaching); a connection
made for a row that is gone is torn down. The connector (Nova's name for "this compute host")
is kept in the row's connection info, so whoever ends the attachment can tear down its export.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import servers, tasks, volume_attachments, volumes
from stackvol.db.transitions import ATTACHMENT, VOLUME, initial, move, override
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Forbidden, Invalid, NotFound
from stackvol.services.common.records import Attachment, Page
from stackvol.services.common.status import AttachmentStatus, VmState, VolumeStatus
from stackvol.services.volumes.api import check_not_copying, read_volume
from stackvol.services.volumes.qos_specs import front_end_specs
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker
from stackvol.timeutils import utcnow
from stackvol.virt.base import ComputeDriver

log = logging.getLogger(__name__)

# vm_states in which Nova lets a volume be attached or detached (shelved ones from 2.20).
ATTACHABLE_VM_STATES = (VmState.ACTIVE, VmState.STOPPED, "paused", "resized", "soft-delete")
SHELVED_VM_STATES = ("shelved", "shelved_offloaded")
DEVICE_RE = re.compile(r"^/dev/x?[a-z]?d?([a-z]+)[0-9]*$")
# Every attachment row that holds (or is getting) a device on its server.
HOLDING = (AttachmentStatus.ATTACHING, AttachmentStatus.ATTACHED, AttachmentStatus.DETACHING)
# Volume statuses a force detach rolls back to available when no attachment is left.
STUCK_ATTACHING = (VolumeStatus.ATTACHING, VolumeStatus.DETACHING, VolumeStatus.RESERVED,
                   VolumeStatus.IN_USE)


@dataclass(frozen=True, slots=True)
class AttachRequest:
    server_id: str
    volume_id: str
    device: str | None = None
    tag: str | None = None
    delete_on_termination: bool = False
    allow_shelved: bool = False  # microversion 2.20+


class Stored(NamedTuple):
    """Where a volume's bytes are: its backend and the backend's name for them (and whether
    it is attached read-only: Cinder's admin metadata ``readonly``; and the front-end QoS
    specs of its type, which the hypervisor enforces)."""

    backend: str
    location: str
    readonly: bool = False
    qos_specs: Mapping[str, str] | None = None


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
    def __init__(self, db: Database, backends: Backends, compute: ComputeDriver,
                 worker: Worker, pause: PauseHook | None = None) -> None:
        self.db = db
        self.backends = backends
        self.compute = compute
        self.worker = worker
        self.pause = pause or PauseHook("")
        worker.register(TaskKind.ATTACHMENT_ATTACH, Handler(self._run_attach, self._fail_attach))
        worker.register(TaskKind.ATTACHMENT_DETACH, Handler(self._run_detach, self._fail_detach))
        # Run by the volume's backend (the storage host), not the server's compute host.
        worker.register(TaskKind.VOLUME_INITIALIZE_CONNECTION,
                        Handler(self._run_initialize, self._fail_initialize))
        worker.register(TaskKind.VOLUME_TERMINATE_CONNECTION,
                        Handler(self._run_terminate, self._fail_terminate))

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
        volume = conn.execute(sa.select(volumes.c.id, volumes.c.status, volumes.c.project_id,
                                        volumes.c.backend)
                              .where(volumes.c.id == req.volume_id)).first()
        if volume is None or (not ctx.is_admin and volume.project_id != ctx.project_id):
            raise NotFound(f"Volume {req.volume_id} could not be found.")
        if any(a.server_id == req.server_id for a in self._holders(conn, req.volume_id)):
            raise Invalid(f"Invalid volume: volume {req.volume_id} already attached")
        device = self._pick_device(conn, req)
        attachment = self.reserve_in(conn, req.server_id, req.volume_id, device, req.tag,
                                     req.delete_on_termination)
        request_connection(conn, attachment.id, volume.backend, server.host)
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
        if claim and (holders or not move(conn, VOLUME, volume_id, [VolumeStatus.AVAILABLE],
                                          VolumeStatus.ATTACHING)):
            # A holder with the volume still available is a boot volume not yet claimed.
            status = conn.execute(sa.select(volumes.c.status).where(
                volumes.c.id == volume_id)).scalar_one()
            others = ", ".join(a.server_id for a in holders)
            detail = f" (attached to instances: {others})" if others else ""
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be available "
                          f"to attach, but the current status is {status}{detail}.")
        if claim:
            check_not_copying(conn, volume_id, "attach")
        now = utcnow()
        values = {
            "id": str(uuid.uuid4()), "volume_id": volume_id, "server_id": server_id,
            "device": device, "status": initial(ATTACHMENT, AttachmentStatus.ATTACHING.value),
            "tag": tag, "delete_on_termination": delete_on_termination, "boot_index": boot_index,
            "bdm_uuid": str(uuid.uuid4()), "connection_info": None, "created_at": now,
            "updated_at": None,
        }
        conn.execute(volume_attachments.insert().values(values))
        return Attachment(**values)

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

    # --- the storage host's step: make the connection, tear it down --------------------

    async def _run_initialize(self, task: Task) -> None:
        found = await self.db.read(_attachment_and_volume, task.resource_id)
        if found is None or found[0].status != AttachmentStatus.ATTACHING:
            await self.db.run(taskq.finish, task)
            return
        attachment, stored = found
        await self.pause.at("volume.initialize_connection")
        connector = task.payload["connector"]
        info = await asyncio.to_thread(self._initialize, attachment, stored, connector)
        if not await self.db.run(self._connection_made, task, attachment, stored, info):
            log.info("attachment %s ended while being connected; undoing", attachment.id)

    def _initialize(self, attachment: Attachment, stored: Stored,
                    connector: dict[str, Any]) -> dict[str, Any]:
        info = self.backends.get(stored.backend).initialize_connection(
            attachment.volume_id, stored.location, connector).as_dict()
        info["data"]["access_mode"] = "ro" if stored.readonly else "rw"  # as Cinder's
        info["data"]["qos_specs"] = dict(stored.qos_specs) if stored.qos_specs else None
        return {**info, "connector": connector}

    @staticmethod
    def _connection_made(conn: Connection, task: Task, attachment: Attachment, stored: Stored,
                         info: dict[str, Any]) -> bool:
        """Store the connection on the row and queue the compute host's step; a row that
        ended meanwhile gets its connection torn down instead."""
        kept = conn.execute(volume_attachments.update().where(
            volume_attachments.c.id == attachment.id,
            volume_attachments.c.status == AttachmentStatus.ATTACHING).values(
            connection_info=info, updated_at=utcnow())).rowcount == 1
        if not kept:
            terminate_connection(conn, attachment.id, attachment.volume_id, stored.backend,
                                 info)
        elif task.payload.get("attach", True):  # a boot volume is connected by the spawn
            taskq.enqueue(conn, TaskKind.ATTACHMENT_ATTACH, attachment.id,
                          target=info["connector"]["host"])
        taskq.finish(conn, task)
        return kept

    def _fail_initialize(self, conn: Connection, task: Task, reason: str) -> None:
        if task.payload.get("attach", True):
            self._fail_attach(conn, task, reason)
            return
        # A boot volume: the waiting spawn fails the build with this reason.
        conn.execute(volume_attachments.update().where(
            volume_attachments.c.id == task.resource_id,
            volume_attachments.c.status == AttachmentStatus.ATTACHING).values(
            connection_info={"error": reason}, updated_at=utcnow()))

    async def _run_terminate(self, task: Task) -> None:
        await self.pause.at("volume.terminate_connection")
        volume_id, info = task.payload["volume_id"], task.payload["connection_info"]
        location = await self.db.read(_location, volume_id)
        await asyncio.to_thread(self.backends.get(task.payload["backend"]).terminate_connection,
                                volume_id, location, info.get("connector"))
        await self.db.run(self._terminated, task)

    @classmethod
    def _terminated(cls, conn: Connection, task: Task, reason: str | None = None) -> None:
        """The connection is gone: a detaching row ends, its volume is available."""
        if task.payload.get("release"):
            row = conn.execute(sa.select(volume_attachments.c.volume_id).where(
                volume_attachments.c.id == task.resource_id,
                volume_attachments.c.status == AttachmentStatus.DETACHING)).first()
            if row is not None:
                conn.execute(volume_attachments.delete().where(
                    volume_attachments.c.id == task.resource_id))
                extra = {"error_reason": f"terminate_connection failed: {reason}"} if reason \
                    else {}
                move(conn, VOLUME, row.volume_id, [VolumeStatus.DETACHING],
                     VolumeStatus.AVAILABLE, **extra)
        taskq.finish(conn, task)

    @classmethod
    def _fail_terminate(cls, conn: Connection, task: Task, reason: str) -> None:
        # The server let go of the volume already: it is free, whatever the export did.
        cls._terminated(conn, task, reason)

    # --- the compute host's step ----------------------------------------------------------

    async def _run_attach(self, task: Task) -> None:
        found = await self.db.read(_attachment_and_volume, task.resource_id)
        if found is None or found[0].status != AttachmentStatus.ATTACHING:
            await self.db.run(taskq.finish, task)
            return
        attachment, stored = found
        if attachment.connection_info is None:  # queued by an older release: connect first
            await self.db.run(self._connect_first, task, attachment, stored)
            return
        await self.pause.at("attachment.attach")
        info = await asyncio.to_thread(self.connect, attachment, stored)
        if not await self.db.run(self._attached, task, attachment, stored, info):
            # The attachment ended while the driver plugged it (a forced delete or detach):
            # the server must not keep a disk nothing records.
            log.warning("attachment %s ended while being attached; unplugging volume %s",
                        attachment.id, attachment.volume_id)
            await asyncio.to_thread(self.compute.detach_volume, attachment.server_id,
                                    attachment.volume_id)
            return
        log.info("volume %s in-use on server %s", attachment.volume_id, attachment.server_id)

    def _connect_first(self, conn: Connection, task: Task, attachment: Attachment,
                       stored: Stored) -> None:
        request_connection(conn, attachment.id, stored.backend, self.compute.host)
        taskq.finish(conn, task)

    def connection_info(self, attachment: Attachment, stored: Stored) -> dict[str, Any]:
        """Blocking: how the compute driver reaches the attachment's volume (as the storage
        host made it for this host; made here when the row has none, e.g. a local backend)."""
        if attachment.connection_info:
            return attachment.connection_info
        return self._initialize(attachment, stored, connector(self.compute.host, attachment.id))

    def connect(self, attachment: Attachment, stored: Stored) -> dict[str, Any]:
        """Blocking: have the compute driver connect the volume; its connection info."""
        info = self.connection_info(attachment, stored)
        self.compute.attach_volume(attachment.server_id, attachment.volume_id, info,
                                   attachment.device or "")
        return info

    @staticmethod
    def mark_attached(conn: Connection, attachment: Attachment, info: dict[str, Any]) -> bool:
        """The driver has the volume: attachment ``attached`` and volume ``in-use``; False
        when the attachment ended meanwhile."""
        if not move(conn, ATTACHMENT, attachment.id, [AttachmentStatus.ATTACHING],
                    AttachmentStatus.ATTACHED, connection_info=info):
            return False
        move(conn, VOLUME, attachment.volume_id, [VolumeStatus.ATTACHING], VolumeStatus.IN_USE)
        return True

    def _attached(self, conn: Connection, task: Task, attachment: Attachment, stored: Stored,
                  info: dict[str, Any]) -> bool:
        kept = self.mark_attached(conn, attachment, info)
        if not kept:  # its connection goes too (the compute driver lets go next)
            terminate_connection(conn, attachment.id, attachment.volume_id, stored.backend,
                                 info)
        taskq.finish(conn, task)
        return kept

    def _fail_attach(self, conn: Connection, task: Task, reason: str) -> None:
        row = conn.execute(sa.select(volume_attachments).where(
            volume_attachments.c.id == task.resource_id)).first()
        if row is None:
            return
        conn.execute(volume_attachments.delete().where(volume_attachments.c.id == row.id))
        move(conn, VOLUME, row.volume_id, [VolumeStatus.ATTACHING],
             VolumeStatus.AVAILABLE, error_reason=f"attach failed: {reason}")
        release_connection(conn, row)

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
        moved = move(conn, ATTACHMENT, attachment.id, [AttachmentStatus.ATTACHED],
                     AttachmentStatus.DETACHING)
        if not moved or not move(conn, VOLUME, volume_id, [VolumeStatus.IN_USE],
                                 VolumeStatus.DETACHING):
            raise Invalid("Invalid volume: Unable to detach volume. Volume status must be "
                          "'in-use' and attach status must be 'attached' to detach.")
        taskq.enqueue(conn, TaskKind.ATTACHMENT_DETACH, attachment.id, target=server.host)

    async def _run_detach(self, task: Task) -> None:
        found = await self.db.read(_attachment_and_volume, task.resource_id)
        if found is None or found[0].status != AttachmentStatus.DETACHING:
            await self.db.run(taskq.finish, task)
            return
        attachment, stored = found
        await self.pause.at("attachment.detach")
        await asyncio.to_thread(self.compute.detach_volume, attachment.server_id,
                                attachment.volume_id)
        await self.db.run(self._detached, task, attachment, stored)
        log.info("volume %s detached from server %s", attachment.volume_id,
                 attachment.server_id)

    @staticmethod
    def _detached(conn: Connection, task: Task, attachment: Attachment, stored: Stored) -> None:
        """The server let go: the backend tears the connection down and frees the volume."""
        terminate_connection(conn, attachment.id, attachment.volume_id, stored.backend,
                             attachment.connection_info or {}, release=True)
        taskq.finish(conn, task)

    @staticmethod
    def _fail_detach(conn: Connection, task: Task, reason: str) -> None:
        row = conn.execute(sa.select(volume_attachments).where(
            volume_attachments.c.id == task.resource_id)).first()
        if row is None:
            return
        move(conn, ATTACHMENT, row.id, [AttachmentStatus.DETACHING], AttachmentStatus.ATTACHED)
        move(conn, VOLUME, row.volume_id, [VolumeStatus.DETACHING], VolumeStatus.IN_USE,
             error_reason=f"detach failed: {reason}")

    # --- force detach (Cinder's os-force_detach) ------------------------------------------

    async def force_detach(self, ctx: RequestContext, volume_id: str,
                           attachment_id: str | None) -> None:
        """End an attachment whatever the volume's status (admins). One a server of ours has
        is unplugged by its compute driver first (the detach chain above, without the
        server-state checks); any other (Cinder-only, reserved, attaching) ends at once. The
        volume is ``available`` once nothing holds it."""
        await self.db.run(self._force_detach, ctx, volume_id, attachment_id)
        self.worker.wake()

    def _force_detach(self, conn: Connection, ctx: RequestContext, volume_id: str,
                      attachment_id: str | None) -> None:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:force_detach", volume.project_id)
        rows = self._rows(conn, volume_attachments.c.volume_id == volume_id)
        if attachment_id:
            rows = [r for r in rows if r.id == attachment_id]
            if not rows:  # Cinder: the manager's VolumeAttachmentNotFound, as a 400
                raise Invalid(f"Error force detaching volume - VolumeAttachmentNotFound: "
                              f"VolumeAttachment {attachment_id} could not be found.")
        if len(rows) > 1:
            raise Invalid("Invalid volume: Detach volume failed: More than one attachment, "
                          "but no attachment_id provided.")
        if not rows:
            if not move(conn, VOLUME, volume_id, STUCK_ATTACHING, VolumeStatus.AVAILABLE):
                raise Invalid(f"Invalid volume: Volume {volume_id} is not attached.")
            return
        row = rows[0]
        host = conn.execute(sa.select(servers.c.host).where(
            servers.c.id == row.server_id)).first()
        if host is not None and row.status in (AttachmentStatus.ATTACHED,
                                               AttachmentStatus.DETACHING):
            if row.boot_index == 0:
                raise Invalid("Cannot detach a root device volume")
            move(conn, ATTACHMENT, row.id, [row.status], AttachmentStatus.DETACHING)
            # An admin's override: whatever the volume's status (as Cinder's force detach).
            if not override(conn, VOLUME, volume_id, [volume.status], VolumeStatus.DETACHING):
                raise Invalid(f"Invalid volume: Volume {volume_id} changed status; try again.")
            taskq.enqueue(conn, TaskKind.ATTACHMENT_DETACH, row.id, target=host.host)
            return
        conn.execute(volume_attachments.delete().where(volume_attachments.c.id == row.id))
        release_connection(conn, row)
        override(conn, VOLUME, volume_id, [volume.status], VolumeStatus.AVAILABLE)

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
        sa.select(volume_attachments, volumes.c.backend, volumes.c.provider_location,
                  volumes.c.admin_metadata)
        .join(volumes, volumes.c.id == volume_attachments.c.volume_id)
        .where(volume_attachments.c.id == attachment_id)).first()
    if row is None:
        return None
    mapping = dict(row._mapping)
    readonly = (mapping.pop("admin_metadata") or {}).get("readonly") == "True"
    stored = Stored(mapping.pop("backend"), mapping.pop("provider_location"), readonly,
                    front_end_specs(conn, mapping["volume_id"]))
    return Attachment(**mapping), stored


def _location(conn: Connection, volume_id: str) -> str | None:
    return conn.execute(sa.select(volumes.c.provider_location).where(
        volumes.c.id == volume_id)).scalar()


# --- the chain's tasks, queued inside the caller's transaction --------------------------------


def connector(host: str, attachment_id: str) -> dict[str, Any]:
    """Who connects (Cinder's connector): the compute host, and for which attachment."""
    return {"host": host, "attachment_id": attachment_id}


def request_connection(conn: Connection, attachment_id: str, backend: str, host: str,
                       attach: bool = True) -> None:
    """Have the volume's backend make the connection for ``host`` (then attach, unless the
    spawn of a server booting from the volume connects it)."""
    taskq.enqueue(conn, TaskKind.VOLUME_INITIALIZE_CONNECTION, attachment_id,
                  {"connector": connector(host, attachment_id), "attach": attach},
                  target=backend)


def connection_ready(conn: Connection, attachment: Attachment, backend: str, host: str) -> bool:
    """Whether a boot volume's connection is made for ``host``; if not, have it made (once).

    Raises ``Invalid`` when its backend could not make it (the build fails with the reason).
    """
    info = attachment.connection_info
    if info and info.get("error"):
        raise Invalid(f"Volume {attachment.volume_id} cannot be connected: {info['error']}")
    if info:
        return True
    queued = conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
        tasks.c.kind == TaskKind.VOLUME_INITIALIZE_CONNECTION,
        tasks.c.resource_id == attachment.id)).scalar_one()
    if not queued:
        request_connection(conn, attachment.id, backend, host, attach=False)
    return False


def terminate_connection(conn: Connection, attachment_id: str, volume_id: str, backend: str,
                         info: dict[str, Any], release: bool = False) -> None:
    """Have the storage host that made ``info`` tear it down; with ``release`` the detaching
    row then ends and its volume is available."""
    exporter = (info.get("data") or {}).get("exporter")
    taskq.enqueue(conn, TaskKind.VOLUME_TERMINATE_CONNECTION, attachment_id,
                  {"volume_id": volume_id, "backend": backend, "connection_info": info,
                   "release": release},
                  target=f"{exporter}@{backend}" if exporter else backend)


def release_connection(conn: Connection, row: Any) -> None:
    """An attachment row was just removed: tear down the connection it held, if any."""
    info = row.connection_info
    if not info or "driver_volume_type" not in info:
        return
    backend = conn.execute(sa.select(volumes.c.backend).where(
        volumes.c.id == row.volume_id)).scalar()
    if backend:
        terminate_connection(conn, row.id, row.volume_id, backend, info)
