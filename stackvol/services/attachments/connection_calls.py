"""Cinder's synchronous connection calls, made by the volume's storage host.

``os-initialize_connection``, ``os-terminate_connection`` and the attachments API with a
connector answer with (or end) a connection the storage driver makes: an NBD export of a file
volume must be started by the host holding the file. An API process that does not run the
volume's backend carries the call to the backend's worker, as Cinder's API makes an RPC call to
cinder-volume and waits ``rpc_response_timeout``:

1. the API commits a ``connection_calls`` row (``waiting``) with a task for the backend
   (``volume.call.*``; a terminate goes to the storage host that made the export);
2. the worker makes the connection and, in one transaction, answers the row (``done`` with the
   connection info, or ``failed``) and, for an attachment, stores the info on its row;
3. the API polls the row; when the time is up it marks the row ``abandoned`` and cancels the
   task if no worker took it yet (and the caller undoes its reservation), in one transaction.

Answer and abandonment are compare-and-swaps on the same row, so exactly one wins; a worker
that loses tears down what it made. A worker killed mid-call runs the task again: the driver's
calls are idempotent per holder, so the re-run reuses the export it started.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import connection_calls, tasks, volumes
from stackvol.db.transitions import ATTACHMENT, VOLUME, move
from stackvol.services.attachments.nova_side import terminate_connection
from stackvol.services.common.errors import Invalid, Unanswered
from stackvol.services.common.status import AttachmentStatus, VolumeStatus
from stackvol.services.volumes.qos_specs import front_end_specs
from stackvol.storage.base import StorageError
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker
from stackvol.timeutils import utcnow

log = logging.getLogger(__name__)

INITIALIZE = TaskKind.VOLUME_CALL_INITIALIZE_CONNECTION
TERMINATE = TaskKind.VOLUME_CALL_TERMINATE_CONNECTION
WAITING, DONE, FAILED, ABANDONED = "waiting", "done", "failed", "abandoned"
ATTACH_MODES = ("rw", "ro")
# Cinder's answer when the volume service does not answer an API's call.
NO_ANSWER = "The server has either erred or is incapable of performing the requested operation."

Undo = Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class Pending:
    """A call committed for a backend's worker: what to wait for, and what to undo if it fails
    or is not answered in time (inside the abandoning transaction)."""

    call_id: str
    timeout_message: str = NO_ANSWER
    undo: Undo | None = None


def connection_info(backends: Backends, backend: str, volume_id: str, location: str,
                    mode: str | None, made_for: Mapping[str, Any] | None,
                    qos_specs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Blocking: the driver's connection for ``made_for`` (Cinder's connector), with the
    access mode and the front-end QoS specs the hypervisor applies (services/qos_specs);
    ``Invalid`` when the backend cannot make it."""
    try:
        info = backends.get(backend).initialize_connection(volume_id, location,
                                                           made_for).as_dict()
    except StorageError as exc:  # e.g. a backend no longer configured
        raise Invalid(f"Invalid volume: cannot connect volume {volume_id}: {exc}") from exc
    info["data"]["access_mode"] = mode if mode in ATTACH_MODES else "rw"
    info["data"]["qos_specs"] = dict(qos_specs) if qos_specs else None  # as Cinder's
    if made_for:  # kept for whoever ends the connection (as Nova keeps it)
        info["connector"] = dict(made_for)
    return info


def made_for(connector: Mapping[str, Any] | None,
             attachment_id: str | None) -> dict[str, Any] | None:
    """The part of a client's connector the driver needs: the host, and for which attachment
    (the holder of an export)."""
    if not connector or not connector.get("host"):
        return None
    return {"host": connector["host"], "attachment_id": attachment_id}


# --- the API's side: commit a call, wait for its answer ---------------------------------------


def _insert(conn: Connection, kind: str, volume_id: str, host: str | None,
            attachment_id: str | None) -> str:
    call_id = str(uuid.uuid4())
    conn.execute(connection_calls.insert().values(
        id=call_id, kind=kind, volume_id=volume_id, attachment_id=attachment_id, host=host,
        state=WAITING, result=None, created_at=utcnow(), updated_at=None))
    return call_id


def call_initialize(conn: Connection, volume_id: str, backend: str,
                    connector: Mapping[str, Any] | None, mode: str | None,
                    attachment_id: str | None = None, device: str | None = None) -> str:
    """Inside the caller's transaction: have ``backend``'s worker connect the volume for the
    connector (and store it on ``attachment_id``'s row, with ``device``)."""
    made = made_for(connector, attachment_id)
    call_id = _insert(conn, "initialize", volume_id, (made or {}).get("host"), attachment_id)
    taskq.enqueue(conn, INITIALIZE, call_id, {
        "volume_id": volume_id, "backend": backend, "connector": made, "mode": mode,
        "attachment_id": attachment_id, "device": device}, target=backend)
    return call_id


def call_terminate(conn: Connection, volume_id: str, backend: str, host: str) -> str:
    """Inside the caller's transaction: have the storage host that connected the volume for
    ``host`` (os-initialize_connection) end that connection."""
    made = conn.execute(sa.select(connection_calls.c.result).where(
        connection_calls.c.volume_id == volume_id, connection_calls.c.host == host,
        connection_calls.c.kind == "initialize", connection_calls.c.state == DONE,
        connection_calls.c.attachment_id.is_(None))
        .order_by(connection_calls.c.created_at.desc())).scalars().first()
    exporter = _exporter(made)
    call_id = _insert(conn, "terminate", volume_id, host, None)
    taskq.enqueue(conn, TERMINATE, call_id, {
        "volume_id": volume_id, "backend": backend,
        "connector": {"host": host, "attachment_id": None}},
        target=f"{exporter}@{backend}" if exporter else backend)
    return call_id


def _exporter(info: Mapping[str, Any] | None) -> str | None:
    """The storage host serving a connection (an export), if one does."""
    return ((info or {}).get("data") or {}).get("exporter")


def _state(conn: Connection, call_id: str) -> str:
    """A call's state; one that is gone was given up (and forgotten)."""
    found = conn.execute(sa.select(connection_calls.c.state)
                         .where(connection_calls.c.id == call_id)).scalar()
    return found or ABANDONED


def _collect(conn: Connection, call_id: str, pending: Pending) -> tuple[str, Any]:
    """The call was answered: forget it (a legacy initialize stays as the record of its
    export until its terminate) and undo the caller's reservation if it failed."""
    row = conn.execute(sa.select(connection_calls).where(
        connection_calls.c.id == call_id)).first()
    if row is None:
        return ABANDONED, None
    if not (row.state == DONE and row.kind == "initialize" and row.attachment_id is None
            and _exporter(row.result)):
        conn.execute(connection_calls.delete().where(connection_calls.c.id == call_id))
    if row.state == FAILED and pending.undo is not None:
        pending.undo(conn)
    return row.state, row.result


def _abandon(conn: Connection, call_id: str, pending: Pending) -> tuple[str, Any] | None:
    """Time is up: give the call up unless it was answered meanwhile (then collect it)."""
    given_up = conn.execute(connection_calls.update().where(
        connection_calls.c.id == call_id, connection_calls.c.state == WAITING)
        .values(state=ABANDONED, updated_at=utcnow())).rowcount == 1
    if not given_up:
        return _collect(conn, call_id, pending)
    # Not claimed yet: nobody will ever act on it. Claimed: its worker undoes what it makes.
    cancelled = conn.execute(tasks.delete().where(
        tasks.c.resource_id == call_id, tasks.c.kind.in_([INITIALIZE, TERMINATE]),
        tasks.c.state == taskq.PENDING)).rowcount
    if cancelled:
        conn.execute(connection_calls.delete().where(connection_calls.c.id == call_id))
    if pending.undo is not None:
        pending.undo(conn)
    return None


class ConnectionCalls:
    """Carries connection calls to the backends' workers, and runs them on a storage host."""

    def __init__(self, db: Database, backends: Backends, worker: Worker,
                 local: Callable[[str], bool], timeout: float = 60.0,
                 pause: PauseHook | None = None) -> None:
        self.db = db
        self.backends = backends
        self.local = local  # whether this process runs a backend itself (no call needed)
        self.timeout = timeout
        self.pause = pause or PauseHook("")
        worker.register(INITIALIZE, Handler(self._run_initialize, self._fail))
        worker.register(TERMINATE, Handler(self._run_terminate, self._fail))

    def remote(self, backend: str) -> bool:
        """Whether connections of ``backend`` must be made by another process."""
        return not self.local(backend)

    async def wait(self, pending: Pending) -> Any:
        """The call's answer (connection info, or None for a terminate); ``Invalid`` when the
        worker failed, ``Unanswered`` when none answered within the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        delay = 0.005
        while True:
            if await self.db.read(_state, pending.call_id) != WAITING:
                answer = await self.db.run(_collect, pending.call_id, pending)
                break
            left = deadline - loop.time()
            if left <= 0:
                answer = await self.db.run(_abandon, pending.call_id, pending)
                if answer is None:
                    log.error("no storage host answered connection call %s within %.1f s",
                              pending.call_id, self.timeout)
                    raise Unanswered(pending.timeout_message)
                break
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.1)
        state, result = answer
        if state == ABANDONED:  # forgotten under us (cannot happen while we wait)
            raise Unanswered(pending.timeout_message)
        if state == FAILED:
            raise Invalid((result or {}).get("error") or "Invalid volume: connection failed")
        return result

    # --- the storage host's side ----------------------------------------------------------

    async def _run_initialize(self, task: Task) -> None:
        if not await self._still_wanted(task):
            return
        await self.pause.at(INITIALIZE)
        p = task.payload
        location = await self.db.read(_location, p["volume_id"])
        qos = await self.db.read(front_end_specs, p["volume_id"])
        try:
            info = await asyncio.to_thread(connection_info, self.backends, p["backend"],
                                           p["volume_id"], location or "", p.get("mode"),
                                           p.get("connector"), qos)
        except Invalid as exc:
            await self.db.run(self._answered, task, FAILED, {"error": exc.message})
            return
        await self.pause.at(f"{INITIALIZE}:made")  # a crash here: the re-run reuses the export
        await self.db.run(self._initialized, task, info)

    @staticmethod
    def _initialized(conn: Connection, task: Task, info: dict[str, Any]) -> None:
        """Answer the call; store the info on its attachment. A call given up meanwhile, or
        an attachment that ended, gets the connection torn down instead."""
        p = task.payload
        kept = _answer(conn, task.resource_id, WAITING, DONE, info)
        attachment_id = p.get("attachment_id")
        if kept and attachment_id and not _connect_row(conn, attachment_id, p["volume_id"],
                                                       info, p.get("device")):
            _answer(conn, task.resource_id, DONE, FAILED, {
                "error": f"Invalid volume: Attachment {attachment_id} ended while being "
                         f"connected."})
            kept = False
        if not kept:
            log.info("connection call %s was given up; tearing its connection down",
                     task.resource_id)
            terminate_connection(conn, attachment_id or task.resource_id, p["volume_id"],
                                 p["backend"], info)
            _forget_abandoned(conn, task.resource_id)
        taskq.finish(conn, task)

    async def _run_terminate(self, task: Task) -> None:
        if not await self._still_wanted(task):
            return
        await self.pause.at(TERMINATE)
        p = task.payload
        location = await self.db.read(_location, p["volume_id"])
        try:
            await asyncio.to_thread(self.backends.get(p["backend"]).terminate_connection,
                                    p["volume_id"], location, p["connector"])
        except StorageError as exc:
            await self.db.run(self._answered, task, FAILED, {
                "error": f"Invalid volume: cannot disconnect volume {p['volume_id']}: {exc}"})
            return
        await self.db.run(self._terminated, task)

    @staticmethod
    def _terminated(conn: Connection, task: Task) -> None:
        p = task.payload
        # The export is gone: so is the record of the initialize that made it.
        conn.execute(connection_calls.delete().where(
            connection_calls.c.volume_id == p["volume_id"],
            connection_calls.c.host == p["connector"]["host"],
            connection_calls.c.kind == "initialize", connection_calls.c.state == DONE,
            connection_calls.c.attachment_id.is_(None)))
        ConnectionCalls._answered(conn, task, DONE, None)

    async def _still_wanted(self, task: Task) -> bool:
        """False (and the task ends) when the caller gave up before the work began."""
        state = await self.db.read(_state, task.resource_id)
        if state == WAITING:
            return True
        await self.db.run(self._answered, task, state, None)
        return False

    @staticmethod
    def _answered(conn: Connection, task: Task, state: str, result: Any) -> None:
        if not _answer(conn, task.resource_id, WAITING, state, result):
            _forget_abandoned(conn, task.resource_id)
        taskq.finish(conn, task)

    @staticmethod
    def _fail(conn: Connection, task: Task, reason: str) -> None:
        if not _answer(conn, task.resource_id, WAITING, FAILED, {
                "error": f"Invalid volume: connection call failed: {reason}"}):
            _forget_abandoned(conn, task.resource_id)


def _answer(conn: Connection, call_id: str, was: str, state: str, result: Any) -> bool:
    return conn.execute(connection_calls.update().where(
        connection_calls.c.id == call_id, connection_calls.c.state == was)
        .values(state=state, result=result, updated_at=utcnow())).rowcount == 1


def _forget_abandoned(conn: Connection, call_id: str) -> None:
    conn.execute(connection_calls.delete().where(connection_calls.c.id == call_id,
                                                 connection_calls.c.state == ABANDONED))


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


def _location(conn: Connection, volume_id: str) -> str | None:
    return conn.execute(sa.select(volumes.c.provider_location).where(
        volumes.c.id == volume_id)).scalar()
