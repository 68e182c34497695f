"""Tasks queued in the process that runs them start at their commit: handed over already
leased (``Worker.enqueue``), or by a wake-up (``queue.enqueue``); never by waiting a poll."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import tasks
from stackvol.tasks import queue
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, Worker

POLL = 60.0  # far longer than any wait below: only a hand-off or a wake-up can be in time


def _row(conn: Connection, task_id: int) -> Any:
    return conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).one()


async def _worker(db: Database, seen: list[tuple[Task, Any]], done: asyncio.Event) -> Worker:
    worker = Worker(db, "w1", poll_seconds=POLL)

    async def run(task: Task) -> None:
        seen.append((task, await db.read(_row, task.id)))
        await db.run(queue.finish, task)
        done.set()

    worker.register(TaskKind.VOLUME_CREATE, Handler(run, lambda conn, task, reason: None))
    await worker.start()
    return worker


def test_a_task_this_worker_runs_is_handed_over_leased_at_the_commit(db: Database) -> None:
    seen: list[tuple[Task, Any]] = []
    claims: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute",
                    lambda conn, cursor, sql, *rest: claims.append(sql)
                    if sql.startswith("UPDATE tasks") else None)

    async def scenario() -> None:
        done = asyncio.Event()
        worker = await _worker(db, seen, done)
        await asyncio.sleep(0)  # the loop's first (empty) claim
        try:
            before = len(claims)
            await db.run(worker.enqueue, TaskKind.VOLUME_CREATE, "v1")
            await asyncio.wait_for(done.wait(), 5)
            assert claims[before:] == []  # started without a claim
        finally:
            await worker.stop()

    asyncio.run(scenario())
    (task, row), = seen
    # Written leased to the worker, first attempt counted, as a claim would have left it.
    assert (row.state, row.owner, row.attempts) == ("running", "w1", 1)
    assert (task.resource_id, task.attempts) == ("v1", 1)


def test_a_task_queued_plainly_wakes_the_worker_at_the_commit(db: Database) -> None:
    seen: list[tuple[Task, Any]] = []

    async def scenario() -> None:
        done = asyncio.Event()
        worker = await _worker(db, seen, done)
        await asyncio.sleep(0.05)  # the loop is waiting for its (long) poll
        try:
            await db.run(queue.enqueue, TaskKind.VOLUME_CREATE, "v2")
            await asyncio.wait_for(done.wait(), 5)
        finally:
            await worker.stop()

    asyncio.run(scenario())
    (task, row), = seen
    assert task.resource_id == "v2" and row.owner == "w1"
