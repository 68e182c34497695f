"""Durable background work: tasks are rows, claimed under a lease by workers, run by handlers.

A service enqueues a task in the same transaction as the state change that needs it (a volume
row in ``creating`` and its ``volume.create`` task commit together), so no work is ever lost or
orphaned. A handler is idempotent and ends the task in the same transaction as its final state
change. A worker that dies leaves its leases to expire; a worker restarted under the same name
takes its own running tasks back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import tasks
from stackvol.logs import request_id_var
from stackvol.timeutils import utcnow

log = logging.getLogger(__name__)

PENDING = "pending"
RUNNING = "running"


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    kind: str
    resource_id: str
    payload: dict[str, Any]
    attempts: int
    request_id: str | None


def enqueue(
    conn: Connection,
    kind: str,
    resource_id: str,
    payload: dict[str, Any] | None = None,
    target: str | None = None,
) -> None:
    """Add a task inside the caller's transaction."""
    conn.execute(_INSERT, {
        "kind": kind,
        "resource_id": resource_id,
        "payload": payload or {},
        "target": target,
        "state": PENDING,
        "attempts": 0,
        "request_id": request_id_var.get(),
        "created_at": utcnow(),
    })


# Built once: on the hot path, making a statement costs more than running it.
_INSERT = tasks.insert()
_DELETE = tasks.delete().where(tasks.c.id == sa.bindparam("task_id"))


def finish(conn: Connection, task: Task) -> None:
    """End a task inside the transaction that records its outcome."""
    conn.execute(_DELETE, {"task_id": task.id})


def pending_count(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar_one()


@dataclass(frozen=True, slots=True)
class Handler:
    """How to run one kind of task, and how to record that it failed for good."""

    run: Callable[[Task], Awaitable[None]]
    fail: Callable[[Connection, Task, str], None]
    max_attempts: int = 3


class PauseHook:
    """Test hook: park the worker at a named point (``settings.pause_at``) forever.

    Lets a crash test kill the process while work is provably in flight at that point.
    """

    def __init__(self, point: str) -> None:
        self.point = point

    async def at(self, point: str) -> None:
        if self.point and self.point == point:
            log.warning("paused at %s (test hook)", point)
            await asyncio.Event().wait()


class Worker:
    """Claims runnable tasks for its targets and runs them with bounded concurrency."""

    def __init__(
        self,
        db: Database,
        name: str,
        targets: list[str] | None = None,
        concurrency: int = 8,
        lease_seconds: int = 60,
        poll_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.name = name
        self.targets = targets  # None: every task
        self.concurrency = concurrency
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.handlers: dict[str, Handler] = {}
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    @property
    def running(self) -> int:
        """How many tasks this worker is running now."""
        return len(self._running)

    def wake(self) -> None:
        """Tell the worker new work was committed (saves waiting for the next poll)."""
        self._wake.set()

    # --- database side --------------------------------------------------------------------

    def _runnable(self, now: dt.datetime) -> sa.ColumnElement[bool]:
        cond = sa.or_(
            tasks.c.state == PENDING,
            sa.and_(tasks.c.state == RUNNING, tasks.c.lease_until < now),
        )
        return sa.and_(cond, self._mine())

    def _mine(self) -> sa.ColumnElement[bool]:
        """Tasks this worker has handlers for, on its targets."""
        cond = tasks.c.kind.in_(list(self.handlers))
        if self.targets is not None:
            cond = sa.and_(cond, sa.or_(tasks.c.target.is_(None), tasks.c.target.in_(self.targets)))
        return cond

    def _pick(self, conn: Connection, where: sa.ColumnElement[bool], limit: int) -> list[int]:
        # One state per query so the (state, id) index yields rows in id order and the LIMIT
        # stops the scan: the cost of a claim does not grow with the queue.
        pick = sa.select(tasks.c.id).where(where, self._mine()).order_by(tasks.c.id).limit(limit)
        if conn.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        return [r[0] for r in conn.execute(pick)]

    def _claim(self, conn: Connection, limit: int) -> list[Task]:
        now = utcnow()
        expired = sa.and_(tasks.c.state == RUNNING, tasks.c.lease_until < now)
        ids = sorted(self._pick(conn, tasks.c.state == PENDING, limit)
                     + self._pick(conn, expired, limit))[:limit]
        if not ids:
            return []
        rows = conn.execute(
            tasks.update()
            .where(tasks.c.id.in_(ids), self._runnable(now))
            .values(state=RUNNING, owner=self.name, lease_until=now + self.lease,
                    attempts=tasks.c.attempts + 1)
            .returning(tasks.c.id, tasks.c.kind, tasks.c.resource_id, tasks.c.payload,
                       tasks.c.attempts, tasks.c.request_id)
        ).all()
        return [Task(*row) for row in rows]

    def _reclaim_own(self, conn: Connection) -> int:
        """Our previous incarnation died: make its running tasks runnable again now."""
        result = conn.execute(
            tasks.update()
            .where(tasks.c.state == RUNNING, tasks.c.owner == self.name)
            .values(state=PENDING, owner=None, lease_until=None)
        )
        return result.rowcount

    def _renew(self, conn: Connection, ids: list[int]) -> None:
        conn.execute(
            tasks.update()
            .where(tasks.c.id.in_(ids), tasks.c.owner == self.name)
            .values(lease_until=utcnow() + self.lease)
        )

    # --- running --------------------------------------------------------------------------

    async def start(self) -> None:
        reclaimed = await self.db.run(self._reclaim_own)
        if reclaimed:
            log.warning("resuming %d task(s) left running by a previous process", reclaimed,
                        extra={"worker": self.name})
        self._loop_task = asyncio.create_task(self._loop(), name=f"worker:{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._loop_task:
            self._loop_task.cancel()
        for t in list(self._running):
            t.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._loop_task:
            await asyncio.gather(self._loop_task, return_exceptions=True)

    async def _loop(self) -> None:
        renew_every = self.lease.total_seconds() / 3
        last_renew = asyncio.get_running_loop().time()
        while not self._stopping:
            self._wake.clear()
            free = self.concurrency - len(self._running)
            claimed: list[Task] = []
            if free > 0:
                try:
                    claimed = await self.db.run(self._claim, free)
                except Exception:
                    log.exception("claiming tasks failed; retrying")
            for task in claimed:
                t = asyncio.create_task(self._execute(task))
                self._running.add(t)
                t.add_done_callback(self._done)
            now = asyncio.get_running_loop().time()
            if self._running and now - last_renew > renew_every:
                ids = [getattr(t, "stackvol_task_id", 0) for t in self._running]
                try:
                    await self.db.run(self._renew, ids)
                    last_renew = now
                except Exception:  # the loop must outlive a database hiccup; retried next turn
                    log.exception("renewing leases failed; retrying")
            if claimed and len(self._running) < self.concurrency:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    def _done(self, t: asyncio.Task[None]) -> None:
        self._running.discard(t)
        self._wake.set()

    async def _execute(self, task: Task) -> None:
        current = asyncio.current_task()
        if current is not None:
            current.stackvol_task_id = task.id  # type: ignore[attr-defined]
        token = request_id_var.set(task.request_id)
        handler = self.handlers[task.kind]
        try:
            await handler.run(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if task.attempts < handler.max_attempts and _is_transient(exc):
                log.warning("task %s %s failed (attempt %d), will retry: %s", task.kind,
                            task.resource_id, task.attempts, reason)
                await self.db.run(self._release, task)
            else:
                log.error("task %s %s failed: %s", task.kind, task.resource_id, reason,
                          exc_info=exc)
                await self.db.run(handler.fail, task, reason)
                await self.db.run(finish, task)
        finally:
            request_id_var.reset(token)

    def _release(self, conn: Connection, task: Task) -> None:
        conn.execute(
            tasks.update().where(tasks.c.id == task.id)
            .values(state=PENDING, owner=None, lease_until=None)
        )

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until no task is queued or running (used by tests and benchmarks)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if not self._running and await self.db.read(pending_count) == 0:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("tasks still pending")


def _is_transient(exc: Exception) -> bool:
    """Database hiccups are retried; everything else is a real failure of the work."""
    return isinstance(exc, sa.exc.OperationalError)
