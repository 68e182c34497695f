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

This is the API's side (commit a call, wait for its answer); the storage host's side is
``ConnectionCallManager`` in manager.py, the SQL in queries.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.attachments import queries
from stackvol.services.attachments.connections import exporter, made_for, storage_host
from stackvol.services.attachments.manager import (
    CALL_INITIALIZE,
    CALL_TERMINATE,
    ConnectionCallManager,
)
from stackvol.services.attachments.queries import ABANDONED, DONE, FAILED, WAITING
from stackvol.services.common.errors import Invalid, Unanswered
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.worker import PauseHook, Worker

log = logging.getLogger(__name__)

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


def call_initialize(conn: Connection, volume_id: str, backend: str,
                    connector: Mapping[str, Any] | None, mode: str | None,
                    attachment_id: str | None = None, device: str | None = None) -> str:
    """Inside the caller's transaction: have ``backend``'s worker connect the volume for the
    connector (and store it on ``attachment_id``'s row, with ``device``)."""
    made = made_for(connector, attachment_id)
    call_id = queries.insert_call(conn, "initialize", volume_id, (made or {}).get("host"),
                                  attachment_id)
    taskq.enqueue(conn, CALL_INITIALIZE, call_id, {
        "volume_id": volume_id, "backend": backend, "connector": made, "mode": mode,
        "attachment_id": attachment_id, "device": device}, target=backend)
    return call_id


def call_terminate(conn: Connection, volume_id: str, backend: str, host: str) -> str:
    """Inside the caller's transaction: have the storage host that connected the volume for
    ``host`` (os-initialize_connection) end that connection."""
    made = queries.last_export(conn, volume_id, host)
    call_id = queries.insert_call(conn, "terminate", volume_id, host, None)
    taskq.enqueue(conn, CALL_TERMINATE, call_id, {
        "volume_id": volume_id, "backend": backend,
        "connector": {"host": host, "attachment_id": None}},
        target=storage_host(made, backend))
    return call_id


def _collect(conn: Connection, call_id: str, pending: Pending) -> tuple[str, Any]:
    """The call was answered: forget it (a legacy initialize stays as the record of its
    export until its terminate) and undo the caller's reservation if it failed."""
    row = queries.find_call(conn, call_id)
    if row is None:
        return ABANDONED, None
    if not (row.state == DONE and row.kind == "initialize" and row.attachment_id is None
            and exporter(row.result)):
        queries.delete_call(conn, call_id)
    if row.state == FAILED and pending.undo is not None:
        pending.undo(conn)
    return row.state, row.result


def _abandon(conn: Connection, call_id: str, pending: Pending) -> tuple[str, Any] | None:
    """Time is up: give the call up unless it was answered meanwhile (then collect it)."""
    if not queries.answer_call(conn, call_id, WAITING, ABANDONED, None):
        return _collect(conn, call_id, pending)
    # Not claimed yet: nobody will ever act on it. Claimed: its worker undoes what it makes.
    if queries.cancel_unclaimed(conn, call_id):
        queries.delete_call(conn, call_id)
    if pending.undo is not None:
        pending.undo(conn)
    return None


class ConnectionCalls:
    """Carries connection calls to the backends' workers (and has them run on a storage host:
    ``self.manager``)."""

    def __init__(self, db: Database, backends: Backends, worker: Worker,
                 local: Callable[[str], bool], timeout: float = 60.0,
                 pause: PauseHook | None = None) -> None:
        self.db = db
        self.backends = backends
        self.local = local  # whether this process runs a backend itself (no call needed)
        self.timeout = timeout
        self.pause = pause or PauseHook("")
        self.manager = ConnectionCallManager(db, backends, worker, self.pause)

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
            if await self.db.read(queries.call_state, pending.call_id) != WAITING:
                answer = await self.db.run(_collect, pending.call_id, pending)
                break
            left = deadline - loop.time()
            if left <= 0:
                found = await self.db.run(_abandon, pending.call_id, pending)
                if found is None:
                    log.error("no storage host answered connection call %s within %.1f s",
                              pending.call_id, self.timeout)
                    raise Unanswered(pending.timeout_message)
                answer = found
                break
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.1)
        state, result = answer
        if state == ABANDONED:  # forgotten under us (cannot happen while we wait)
            raise Unanswered(pending.timeout_message)
        if state == FAILED:
            raise Invalid((result or {}).get("error") or "Invalid volume: connection failed")
        return result
