"""The workers' side of attaching: what the storage and compute hosts do with the tasks the API
sides committed (nova_api.py, connection_calls.py), and the compare-and-swap ending each step.

The attach chain (see nova_api.py): on the volume's backend the storage driver makes the
connection (``volume.initialize_connection``), on the server's host the compute driver plugs it
in (``attachment.attach``); detaching runs the other way (``attachment.detach``, then
``volume.terminate_connection``). Each step commits with the task of the next; a failure rolls
back to the state before the request. Cinder's synchronous connection calls are run here too,
on the storage host (``volume.call.*``), and answered on their ``connection_calls`` row.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import ATTACHMENT, VOLUME, move
from stackvol.services.attachments import queries
from stackvol.services.attachments.connections import (
    Enqueue,
    connection_info,
    connector,
    release_connection,
    request_connection,
    terminate_connection,
)
from stackvol.services.attachments.queries import DONE, FAILED, WAITING, Stored
from stackvol.services.common.driver_calls import driver_call
from stackvol.services.common.errors import Invalid
from stackvol.services.common.records import Attachment
from stackvol.services.common.status import AttachmentStatus, VolumeStatus
from stackvol.services.volumes.qos_specs import front_end_specs
from stackvol.storage.base import StorageError
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker
from stackvol.virt.base import ComputeDriver

log = logging.getLogger(__name__)

T = TypeVar("T")

CALL_INITIALIZE = TaskKind.VOLUME_CALL_INITIALIZE_CONNECTION
CALL_TERMINATE = TaskKind.VOLUME_CALL_TERMINATE_CONNECTION


class AttachmentManager:
    """The attach chain's steps: the storage host's (connect, tear down) and the compute
    host's (plug in, unplug)."""

    def __init__(self, db: Database, backends: Backends, compute: ComputeDriver,
                 worker: Worker, pause: PauseHook) -> None:
        self.db = db
        self.backends = backends
        self.compute = compute
        self.pause = pause
        # Each step queues the next through the worker: a step this process runs itself
        # starts at the commit that queued it, instead of at the next claim or poll.
        self.enqueue: Enqueue = worker.enqueue
        worker.register(TaskKind.ATTACHMENT_ATTACH,
                        Handler(self._run_attach, partial(_fail_attach, enqueue=self.enqueue)))
        worker.register(TaskKind.ATTACHMENT_DETACH, Handler(self._run_detach, _fail_detach))
        # Run by the volume's backend (the storage host), not the server's compute host.
        worker.register(TaskKind.VOLUME_INITIALIZE_CONNECTION,
                        Handler(self._run_initialize,
                                partial(_fail_initialize, enqueue=self.enqueue)))
        worker.register(TaskKind.VOLUME_TERMINATE_CONNECTION,
                        Handler(self._run_terminate, _fail_terminate))

    # --- the storage host's step: make the connection, tear it down --------------------

    async def _run_initialize(self, task: Task) -> None:
        found = await self.db.read_prepared(queries.attachment_and_volume, task.resource_id)
        if found is None or found[0].status != AttachmentStatus.ATTACHING:
            await self.db.run(taskq.finish, task)
            return
        attachment, stored = found
        await self.pause.at("volume.initialize_connection")
        connector = task.payload["connector"]
        quick = self.backends.get(stored.backend).connects_quickly(connector)
        info = await driver_call(quick, self._initialize, attachment, stored, connector)
        if not await self.db.run(_connection_made, task, attachment, stored, info,
                                 self.enqueue):
            log.info("attachment %s ended while being connected; undoing", attachment.id)

    def _initialize(self, attachment: Attachment, stored: Stored,
                    connector: dict[str, Any]) -> dict[str, Any]:
        info = self.backends.get(stored.backend).initialize_connection(
            attachment.volume_id, stored.location, connector).as_dict()
        info["data"]["access_mode"] = "ro" if stored.readonly else "rw"  # as Cinder's
        info["data"]["qos_specs"] = dict(stored.qos_specs) if stored.qos_specs else None
        return {**info, "connector": connector}

    async def _run_terminate(self, task: Task) -> None:
        await self.pause.at("volume.terminate_connection")
        volume_id, info = task.payload["volume_id"], task.payload["connection_info"]
        location = await self.db.read_prepared(queries.volume_location, volume_id)
        backend = self.backends.get(task.payload["backend"])
        await driver_call(backend.connects_quickly(info.get("connector")),
                          backend.terminate_connection, volume_id, location,
                          info.get("connector"))
        await self.db.run(_terminated, task)

    # --- the compute host's step ----------------------------------------------------------

    async def _run_attach(self, task: Task) -> None:
        found = await self.db.read_prepared(queries.attachment_and_volume, task.resource_id)
        if found is None or found[0].status != AttachmentStatus.ATTACHING:
            await self.db.run(taskq.finish, task)
            return
        attachment, stored = found
        if attachment.connection_info is None:  # queued by an older release: connect first
            await self.db.run(self._connect_first, task, attachment, stored)
            return
        await self.pause.at("attachment.attach")
        quick = self.compute.attaches_quickly(attachment.connection_info)
        info = await driver_call(quick, self.connect, attachment, stored)
        if not await self.db.run(_attached, task, attachment, stored, info, self.enqueue):
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
        request_connection(conn, attachment.id, stored.backend, self.compute.host,
                           enqueue=self.enqueue)
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

    async def _run_detach(self, task: Task) -> None:
        found = await self.db.read_prepared(queries.attachment_and_volume, task.resource_id)
        if found is None or found[0].status != AttachmentStatus.DETACHING:
            await self.db.run(taskq.finish, task)
            return
        attachment, stored = found
        await self.pause.at("attachment.detach")
        await driver_call(self.compute.attaches_quickly(attachment.connection_info or {}),
                           self.compute.detach_volume, attachment.server_id,
                           attachment.volume_id)
        await self.db.run(_detached, task, attachment, stored, self.enqueue)
        log.info("volume %s detached from server %s", attachment.volume_id,
                 attachment.server_id)


def mark_attached(conn: Connection, attachment: Attachment, info: dict[str, Any]) -> bool:
    """The driver has the volume: attachment ``attached`` and volume ``in-use``; False when
    the attachment ended meanwhile."""
    if not move(conn, ATTACHMENT, attachment.id, [AttachmentStatus.ATTACHING],
                AttachmentStatus.ATTACHED, connection_info=info):
        return False
    move(conn, VOLUME, attachment.volume_id, [VolumeStatus.ATTACHING], VolumeStatus.IN_USE)
    return True


def _connection_made(conn: Connection, task: Task, attachment: Attachment, stored: Stored,
                     info: dict[str, Any], enqueue: Enqueue) -> bool:
    """Store the connection on the row and queue the compute host's step; a row that ended
    meanwhile gets its connection torn down instead."""
    kept = queries.store_connection(conn, attachment.id, info)
    if not kept:
        terminate_connection(conn, attachment.id, attachment.volume_id, stored.backend, info,
                             enqueue=enqueue)
    elif task.payload.get("attach", True):  # a boot volume is connected by the spawn
        enqueue(conn, TaskKind.ATTACHMENT_ATTACH, attachment.id,
                target=info["connector"]["host"])
    taskq.finish(conn, task)
    return kept


def _fail_initialize(conn: Connection, task: Task, reason: str, enqueue: Enqueue) -> None:
    if task.payload.get("attach", True):
        _fail_attach(conn, task, reason, enqueue)
        return
    # A boot volume: the waiting spawn fails the build with this reason.
    queries.store_connection(conn, task.resource_id, {"error": reason})


def _terminated(conn: Connection, task: Task, reason: str | None = None) -> None:
    """The connection is gone: a detaching row ends, its volume is available."""
    if task.payload.get("release"):
        volume_id = queries.detaching_volume(conn, task.resource_id)
        if volume_id is not None:
            queries.delete(conn, task.resource_id)
            extra = {"error_reason": f"terminate_connection failed: {reason}"} if reason \
                else {}
            move(conn, VOLUME, volume_id, [VolumeStatus.DETACHING], VolumeStatus.AVAILABLE,
                 **extra)
    taskq.finish(conn, task)


def _fail_terminate(conn: Connection, task: Task, reason: str) -> None:
    # The server let go of the volume already: it is free, whatever the export did.
    _terminated(conn, task, reason)


def _attached(conn: Connection, task: Task, attachment: Attachment, stored: Stored,
              info: dict[str, Any], enqueue: Enqueue) -> bool:
    kept = mark_attached(conn, attachment, info)
    if not kept:  # its connection goes too (the compute driver lets go next)
        terminate_connection(conn, attachment.id, attachment.volume_id, stored.backend, info,
                             enqueue=enqueue)
    taskq.finish(conn, task)
    return kept


def _fail_attach(conn: Connection, task: Task, reason: str, enqueue: Enqueue) -> None:
    row = queries.find(conn, task.resource_id)
    if row is None:
        return
    queries.delete(conn, row.id)
    move(conn, VOLUME, row.volume_id, [VolumeStatus.ATTACHING],
         VolumeStatus.AVAILABLE, error_reason=f"attach failed: {reason}")
    release_connection(conn, row, enqueue)


def _detached(conn: Connection, task: Task, attachment: Attachment, stored: Stored,
              enqueue: Enqueue) -> None:
    """The server let go: the backend tears the connection down and frees the volume."""
    terminate_connection(conn, attachment.id, attachment.volume_id, stored.backend,
                         attachment.connection_info or {}, release=True, enqueue=enqueue)
    taskq.finish(conn, task)


def _fail_detach(conn: Connection, task: Task, reason: str) -> None:
    row = queries.find(conn, task.resource_id)
    if row is None:
        return
    move(conn, ATTACHMENT, row.id, [AttachmentStatus.DETACHING], AttachmentStatus.ATTACHED)
    move(conn, VOLUME, row.volume_id, [VolumeStatus.DETACHING], VolumeStatus.IN_USE,
         error_reason=f"detach failed: {reason}")


# --- Cinder's connection calls, on the storage host -------------------------------------------


class ConnectionCallManager:
    """Runs the connection calls an API process committed (connection_calls.py) and answers
    them on their row."""

    def __init__(self, db: Database, backends: Backends, worker: Worker,
                 pause: PauseHook) -> None:
        self.db = db
        self.backends = backends
        self.pause = pause
        worker.register(CALL_INITIALIZE, Handler(self._run_initialize, _fail_call))
        worker.register(CALL_TERMINATE, Handler(self._run_terminate, _fail_call))

    async def _run_initialize(self, task: Task) -> None:
        if not await self._still_wanted(task):
            return
        await self.pause.at(CALL_INITIALIZE)
        p = task.payload
        location = await self.db.read_prepared(queries.volume_location, p["volume_id"])
        qos = await self.db.read(front_end_specs, p["volume_id"])
        try:
            info = await asyncio.to_thread(connection_info, self.backends, p["backend"],
                                           p["volume_id"], location or "", p.get("mode"),
                                           p.get("connector"), qos)
        except Invalid as exc:
            await self.db.run(_answered, task, FAILED, {"error": exc.message})
            return
        await self.pause.at(f"{CALL_INITIALIZE}:made")  # a crash here: the re-run reuses it
        await self.db.run(_initialized, task, info)

    async def _run_terminate(self, task: Task) -> None:
        if not await self._still_wanted(task):
            return
        await self.pause.at(CALL_TERMINATE)
        p = task.payload
        location = await self.db.read_prepared(queries.volume_location, p["volume_id"])
        try:
            await asyncio.to_thread(self.backends.get(p["backend"]).terminate_connection,
                                    p["volume_id"], location, p["connector"])
        except StorageError as exc:
            await self.db.run(_answered, task, FAILED, {
                "error": f"Invalid volume: cannot disconnect volume {p['volume_id']}: {exc}"})
            return
        await self.db.run(_call_terminated, task)

    async def _still_wanted(self, task: Task) -> bool:
        """False (and the task ends) when the caller gave up before the work began."""
        state = await self.db.read(queries.call_state, task.resource_id)
        if state == WAITING:
            return True
        await self.db.run(_answered, task, state, None)
        return False


def _initialized(conn: Connection, task: Task, info: dict[str, Any]) -> None:
    """Answer the call; store the info on its attachment. A call given up meanwhile, or an
    attachment that ended, gets the connection torn down instead."""
    p = task.payload
    kept = queries.answer_call(conn, task.resource_id, WAITING, DONE, info)
    attachment_id = p.get("attachment_id")
    if kept and attachment_id and not _connect_row(conn, attachment_id, p["volume_id"], info,
                                                   p.get("device")):
        queries.answer_call(conn, task.resource_id, DONE, FAILED, {
            "error": f"Invalid volume: Attachment {attachment_id} ended while being "
                     f"connected."})
        kept = False
    if not kept:
        log.info("connection call %s was given up; tearing its connection down",
                 task.resource_id)
        terminate_connection(conn, attachment_id or task.resource_id, p["volume_id"],
                             p["backend"], info)
        queries.forget_abandoned(conn, task.resource_id)
    taskq.finish(conn, task)


def _call_terminated(conn: Connection, task: Task) -> None:
    p = task.payload
    # The export is gone: so is the record of the initialize that made it.
    queries.forget_exports(conn, p["volume_id"], p["connector"]["host"])
    _answered(conn, task, DONE, None)


def _answered(conn: Connection, task: Task, state: str, result: Any) -> None:
    if not queries.answer_call(conn, task.resource_id, WAITING, state, result):
        queries.forget_abandoned(conn, task.resource_id)
    taskq.finish(conn, task)


def _fail_call(conn: Connection, task: Task, reason: str) -> None:
    if not queries.answer_call(conn, task.resource_id, WAITING, FAILED, {
            "error": f"Invalid volume: connection call failed: {reason}"}):
        queries.forget_abandoned(conn, task.resource_id)


def _connect_row(conn: Connection, attachment_id: str, volume_id: str, info: dict[str, Any],
                 device: str | None) -> bool:
    """Store the connection on a reserved (or connecting) attachment: it is ``attaching``."""
    values: dict[str, Any] = {"connection_info": info}
    if device:
        values["device"] = device
    if not move(conn, ATTACHMENT, attachment_id,
                [AttachmentStatus.RESERVED, AttachmentStatus.ATTACHING],
                AttachmentStatus.ATTACHING, **values):
        return False
    move(conn, VOLUME, volume_id, [VolumeStatus.RESERVED], VolumeStatus.ATTACHING)
    return True

