"""The worker: claims runnable tasks from the queue and runs their handlers, a few at a time.

The table side (enqueue, claim under a lease, finish, recover) is ``stackvol.tasks.queue``;
here is the loop. A handler is idempotent: a task is run again when its worker dies mid-way
or fails on a database hiccup. Services register one handler per ``TaskKind`` they own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database, on_commit
from stackvol.logs import request_id_var
from stackvol.tasks import queue
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Claimant, Task

log = logging.getLogger(__name__)


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
        self.handlers: dict[TaskKind, Handler] = {}
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._promised = 0  # tasks queued for this worker by transactions not yet committed
        self._promise_lock = threading.Lock()  # on PostgreSQL, units of work run in threads
        self._wake_on_loop = self._on_loop(self.wake)
        self._more = False  # tasks may be waiting that a free slot should go and claim

    def register(self, kind: TaskKind, handler: Handler) -> None:
        self.handlers[kind] = handler

    @property
    def claimant(self) -> Claimant:
        """What this worker claims now (its handlers and targets are narrowed after it is
        built, when the process learns its role)."""
        targets = None if self.targets is None else tuple(self.targets)
        return Claimant(self.name, tuple(self.handlers), targets, self.lease)

    @property
    def running(self) -> int:
        """How many tasks this worker is running now."""
        return len(self._running)

    def wake(self) -> None:
        """Tell the worker new work was committed (saves waiting for the next poll)."""
        self._more = True
        self._wake.set()

    def enqueue(self, conn: Connection, kind: TaskKind, resource_id: str,
                payload: dict[str, Any] | None = None, target: str | None = None) -> None:
        """Queue a task in the caller's transaction, to run as soon as that commits.

        When this worker runs such tasks and has a slot free, the row is written already
        leased to it and handed over in-process at the commit: no claim, no poll. Otherwise
        it is queued for whichever worker claims it (this one is woken at the commit).
        """
        if not self._promise(kind, target):
            queue.enqueue(conn, kind, resource_id, payload, target)  # wakes at the commit
            return
        task = queue.enqueue_claimed(conn, self.claimant, kind, resource_id, payload, target)
        on_commit(conn, self._on_loop(lambda: self._hand_over(task)),
                  self._on_loop(self._unpromise))

    def _on_loop(self, hook: Callable[[], None]) -> Callable[[], None]:
        """``hook``, run on the worker's event loop. On PostgreSQL a unit of work (and so its
        commit hooks) runs in a thread, and asyncio tasks and events belong to their loop."""
        def call() -> None:
            loop = self._loop_task.get_loop() if self._loop_task is not None else None
            if loop is None or _running_loop() is loop:
                hook()
            else:
                loop.call_soon_threadsafe(hook)
        return call

    def _promise(self, kind: TaskKind, target: str | None) -> bool:
        """Reserve a slot for a task of ``kind`` on ``target`` if this worker runs it."""
        if (kind not in self.handlers or self._loop_task is None or self._stopping
                or not (target is None or self.targets is None or target in self.targets)):
            return False
        with self._promise_lock:
            if len(self._running) + self._promised >= self.concurrency:
                return False
            self._promised += 1
            return True

    def _unpromise(self) -> None:
        with self._promise_lock:
            self._promised -= 1

    def _hand_over(self, task: Task) -> None:
        self._unpromise()
        if not self._stopping:  # else the row stays leased to this name: recovered at start
            self._start(task)

    async def start(self) -> None:
        reclaimed = await self.db.run(queue.recover, self.name)
        if reclaimed:
            log.warning("resuming %d task(s) left running by a previous process", reclaimed,
                        extra={"worker": self.name})
        self._loop_task = asyncio.create_task(self._loop(), name=f"worker:{self.name}")
        queue.listen(self._wake_on_loop)

    async def stop(self) -> None:
        self._stopping = True
        queue.unlisten(self._wake_on_loop)
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
            claimed = await self._claim_free()
            if free > 0:  # a full claim may have left more behind: a freed slot looks again
                self._more = len(claimed) >= free
            for task in claimed:
                self._start(task)
            now = asyncio.get_running_loop().time()
            if self._running and now - last_renew > renew_every and await self._renew():
                last_renew = now
            # No second look right after a claim: it took every runnable task there was (or
            # filled the slots), and work committed since sets ``_wake`` (in this process) or
            # is found by the poll (others). Waiting here also lets the claimed tasks start
            # at once instead of after one more claim transaction.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def _claim_free(self) -> list[Task]:
        """Claim as many tasks as there are free slots (none when the claim fails)."""
        free = self.concurrency - len(self._running)
        if free <= 0:
            return []
        try:
            return await self.db.run(queue.claim, self.claimant, free)
        except Exception:
            log.exception("claiming tasks failed; retrying")
            return []

    async def _renew(self) -> bool:
        """Renew the leases of the running tasks; False if that failed (retried next turn:
        the loop must outlive a database hiccup)."""
        ids = [getattr(t, "stackvol_task_id", 0) for t in self._running]
        try:
            await self.db.run(queue.renew, self.claimant, ids)
        except Exception:
            log.exception("renewing leases failed; retrying")
            return False
        return True

    def _start(self, task: Task) -> None:
        t = asyncio.create_task(self._execute(task))
        self._running.add(t)
        t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task[None]) -> None:
        self._running.discard(t)
        if self._more:
            self._wake.set()

    async def _execute(self, task: Task) -> None:
        current = asyncio.current_task()
        if current is not None:
            current.stackvol_task_id = task.id  # type: ignore[attr-defined]
        token = request_id_var.set(task.request_id)
        handler = self.handlers[TaskKind(task.kind)]
        try:
            await handler.run(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if task.attempts < handler.max_attempts and _is_transient(exc):
                log.warning("task %s %s failed (attempt %d), will retry: %s", task.kind,
                            task.resource_id, task.attempts, reason)
                await self.db.run(queue.release, task)
            else:
                log.error("task %s %s failed: %s", task.kind, task.resource_id, reason,
                          exc_info=exc)
                await self.db.run(handler.fail, task, reason)
                await self.db.run(queue.finish, task)
        finally:
            request_id_var.reset(token)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until no task is queued or running (used by tests and benchmarks)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if not self._running and await self.db.read(queue.pending_count) == 0:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("tasks still pending")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _is_transient(exc: Exception) -> bool:
    """Database hiccups are retried; everything else is a real failure of the work."""
    return isinstance(exc, sa.exc.OperationalError)
