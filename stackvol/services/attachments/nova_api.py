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

This is the API's side (what a request does, committed with the task that starts the chain);
the workers' steps are in manager.py, the SQL in queries.py, the tasks both sides queue in
connections.py.
"""

from __future__ import annotations

import builtins
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import ATTACHMENT, VOLUME, initial, move, override
from stackvol.services.attachments import queries
from stackvol.services.attachments.connections import release_connection, request_connection
from stackvol.services.attachments.manager import AttachmentManager, mark_attached
from stackvol.services.attachments.queries import Stored
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Forbidden, Invalid, NotFound
from stackvol.services.common.records import Attachment, Page
from stackvol.services.common.status import AttachmentStatus, VmState, VolumeStatus
from stackvol.services.volumes.api import check_not_copying
from stackvol.services.volumes.queries import read_volume
from stackvol.storage.registry import Backends
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.worker import PauseHook, Worker
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
        # The workers' side: runs the chain's tasks this side queues.
        self.manager = AttachmentManager(db, backends, compute, worker, self.pause)

    # --- the compute host's step, shared with a server's spawn (servers/) -------------------

    def connection_info(self, attachment: Attachment, stored: Stored) -> dict[str, Any]:
        """Blocking: how the compute driver reaches the attachment's volume."""
        return self.manager.connection_info(attachment, stored)

    def connect(self, attachment: Attachment, stored: Stored) -> dict[str, Any]:
        """Blocking: have the compute driver connect the volume; its connection info."""
        return self.manager.connect(attachment, stored)

    mark_attached = staticmethod(mark_attached)

    # --- lookups --------------------------------------------------------------------------

    @staticmethod
    def _server(conn: Connection, ctx: RequestContext, server_id: str,
                lock: bool = False) -> _Server:
        # ``lock``: attaches to one server queue up (PostgreSQL), so two never pick one device
        # and none slips past a concurrent delete of the server.
        row = queries.server(conn, server_id, lock)
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

    # --- reads ----------------------------------------------------------------------------

    async def list(self, ctx: RequestContext, server_id: str,
                   page: Page) -> builtins.list[Attachment]:
        return await self.db.read(self._list, ctx, server_id, page)

    def _list(self, conn: Connection, ctx: RequestContext, server_id: str,
              page: Page) -> builtins.list[Attachment]:
        server = self._server(conn, ctx, server_id)
        policy.authorize(ctx, "attachment:list", server.project_id)
        found = queries.on_server(conn, server_id, HOLDING)
        return found[page.offset:page.offset + page.limit]

    async def get(self, ctx: RequestContext, server_id: str, volume_id: str) -> Attachment:
        return await self.db.read(self._get, ctx, server_id, volume_id)

    def _get(self, conn: Connection, ctx: RequestContext, server_id: str,
             volume_id: str) -> Attachment:
        server = self._server(conn, ctx, server_id)
        policy.authorize(ctx, "attachment:show", server.project_id)
        found = queries.on_server(conn, server_id, HOLDING, volume_id)
        if not found:
            raise NotFound(f"Instance {server_id} is not attached to volume {volume_id}")
        return found[0]

    # --- attach ---------------------------------------------------------------------------

    async def attach(self, ctx: RequestContext, request: AttachRequest) -> Attachment:
        """Reserve the volume and a device, and queue the connection; answer at once."""
        attachment = await self.db.run(self._reserve, ctx, request)
        log.info("attaching volume %s to server %s as %s", request.volume_id,
                 request.server_id, attachment.device)
        return attachment

    def _reserve(self, conn: Connection, ctx: RequestContext, req: AttachRequest) -> Attachment:
        server = self._server(conn, ctx, req.server_id, lock=True)
        policy.authorize(ctx, "attachment:create", server.project_id)
        self._check_server_state(server, "attach_volume", req.allow_shelved)
        volume = queries.volume(conn, req.volume_id)
        if volume is None or (not ctx.is_admin and volume.project_id != ctx.project_id):
            raise NotFound(f"Volume {req.volume_id} could not be found.")
        holders = self._holders(conn, req.volume_id)
        if any(a.server_id == req.server_id for a in holders):
            raise Invalid(f"Invalid volume: volume {req.volume_id} already attached")
        device = self._pick_device(conn, req)
        attachment = self.reserve_in(conn, req.server_id, req.volume_id, device, req.tag,
                                     req.delete_on_termination, holders=holders)
        # Through the worker: started in this process at the commit when it runs the step.
        request_connection(conn, attachment.id, volume.backend, server.host,
                           enqueue=self.worker.enqueue)
        return attachment

    @staticmethod
    def _holders(conn: Connection, volume_id: str) -> builtins.list[Attachment]:
        return queries.of_volume(conn, volume_id, HOLDING)

    def reserve_in(self, conn: Connection, server_id: str, volume_id: str, device: str,
                   tag: str | None = None, delete_on_termination: bool = False,
                   boot_index: int | None = None, claim: bool = True,
                   holders: builtins.list[Attachment] | None = None) -> Attachment:
        """Inside the caller's transaction: an ``attaching`` row for the volume on the server.

        With ``claim`` the volume moves available → attaching (CAS) or the call raises
        ``Invalid`` naming its status; without it the volume is still being created for this
        server (boot from volume) and whoever made the row claims it once it is available.
        The caller queues the work that connects it. ``holders``: the volume's holding rows,
        when the caller read them in this transaction already.
        """
        if holders is None:
            holders = self._holders(conn, volume_id)
        if claim and (holders or not move(conn, VOLUME, volume_id, [VolumeStatus.AVAILABLE],
                                          VolumeStatus.ATTACHING)):
            # A holder with the volume still available is a boot volume not yet claimed.
            status = queries.volume_status(conn, volume_id)
            others = ", ".join(a.server_id for a in holders)
            detail = f" (attached to instances: {others})" if others else ""
            raise Invalid(f"Invalid volume: Volume {volume_id} status must be available "
                          f"to attach, but the current status is {status}{detail}.")
        if claim:
            check_not_copying(conn, volume_id, "attach")
        return queries.insert(conn, queries.new_row(
            volume_id, server_id, device,
            initial(ATTACHMENT, AttachmentStatus.ATTACHING.value), tag=tag,
            delete_on_termination=delete_on_termination, boot_index=boot_index))

    def _pick_device(self, conn: Connection, req: AttachRequest) -> str:
        used = set(queries.devices_on_server(conn, req.server_id, HOLDING))
        used.add("/dev/vda")  # the server's root disk
        if req.device is None:
            return next_device(used)
        if not DEVICE_RE.match(req.device):
            raise Invalid(f"The supplied device path ({req.device}) is invalid.")
        if req.device in used:
            raise Conflict(f"The supplied device path ({req.device}) is in use.")
        return req.device

    # --- detach ---------------------------------------------------------------------------

    async def detach(self, ctx: RequestContext, server_id: str, volume_id: str,
                     allow_shelved: bool = False) -> None:
        await self.db.run(self._begin_detach, ctx, server_id, volume_id, allow_shelved)

    def _begin_detach(self, conn: Connection, ctx: RequestContext, server_id: str,
                      volume_id: str, allow_shelved: bool) -> None:
        server = self._server(conn, ctx, server_id)
        policy.authorize(ctx, "attachment:delete", server.project_id)
        found = queries.on_server(conn, server_id, HOLDING, volume_id)
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
        self.worker.enqueue(conn, TaskKind.ATTACHMENT_DETACH, attachment.id,
                            target=server.host)

    # --- force detach (Cinder's os-force_detach) ------------------------------------------

    async def force_detach(self, ctx: RequestContext, volume_id: str,
                           attachment_id: str | None) -> None:
        """End an attachment whatever the volume's status (admins). One a server of ours has
        is unplugged by its compute driver first (the detach chain above, without the
        server-state checks); any other (Cinder-only, reserved, attaching) ends at once. The
        volume is ``available`` once nothing holds it."""
        await self.db.run(self._force_detach, ctx, volume_id, attachment_id)

    def _force_detach(self, conn: Connection, ctx: RequestContext, volume_id: str,
                      attachment_id: str | None) -> None:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:force_detach", volume.project_id)
        rows = queries.of_volume(conn, volume_id)
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
        host = queries.server_host(conn, row.server_id)
        if host is not None and row.status in (AttachmentStatus.ATTACHED,
                                               AttachmentStatus.DETACHING):
            if row.boot_index == 0:
                raise Invalid("Cannot detach a root device volume")
            move(conn, ATTACHMENT, row.id, [row.status], AttachmentStatus.DETACHING)
            # An admin's override: whatever the volume's status (as Cinder's force detach).
            if not override(conn, VOLUME, volume_id, [volume.status], VolumeStatus.DETACHING):
                raise Invalid(f"Invalid volume: Volume {volume_id} changed status; try again.")
            self.worker.enqueue(conn, TaskKind.ATTACHMENT_DETACH, row.id, target=host.host)
            return
        queries.delete(conn, row.id)
        release_connection(conn, row, self.worker.enqueue)
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
            queries.set_delete_on_termination(conn, attachment.id, delete_on_termination)

    def _check_swap(self, conn: Connection, ctx: RequestContext, server: _Server,
                    volume_id: str, new_volume_id: str) -> None:
        new = queries.volume(conn, new_volume_id)
        if new is None or (not ctx.is_admin and new.project_id != ctx.project_id):
            raise Invalid(f"Volume {new_volume_id} could not be found.")
        if server.vm_state not in (VmState.ACTIVE, "paused", "resized"):
            raise Conflict(f"Cannot 'swap_volume' instance {server.id} while it is in "
                           f"vm_state {server.vm_state}")
        # Nova allows a swap only while Cinder migrates the volume; stackvol never migrates.
        raise Conflict(f"volume {volume_id} is not migrating; this API should only be called "
                       f"by Cinder")

