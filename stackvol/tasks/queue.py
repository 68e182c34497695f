"""The durable task queue: the ``tasks`` table and every statement that moves a row through it.

A service enqueues a task in the same transaction as the state change that needs it (a volume
row in ``creating`` and its ``volume.create`` task commit together), so no work is ever lost or
orphaned. A worker claims runnable rows under a lease it renews while it works; a handler ends
its task (``finish``) in the same transaction as its final state change. A worker that dies
leaves its leases to expire, and one restarted under the same name takes its own running tasks
back at once (``recover``).

Every function here runs inside a transaction its caller holds (``Database.run``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import on_commit
from stackvol.db.prepared import PreparedWrite
from stackvol.db.schema import tasks
from stackvol.logs import request_id_var
from stackvol.tasks.kinds import TaskKind
from stackvol.timeutils import utcnow

PENDING = "pending"
RUNNING = "running"


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    kind: str  # a TaskKind's value: only kinds a worker has handlers for are claimed
    resource_id: str
    payload: dict[str, Any]
    attempts: int
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Claimant:
    """Who claims tasks and which: a worker's name, the kinds it runs, the targets it serves
    (None: every target) and how long a claim holds before another worker may take it."""

    owner: str
    kinds: tuple[str, ...]
    targets: tuple[str, ...] | None
    lease: dt.timedelta

    def mine(self) -> sa.ColumnElement[bool]:
        """Tasks of this claimant's kinds, untargeted or on its targets."""
        cond: sa.ColumnElement[bool] = tasks.c.kind.in_(self.kinds)
        if self.targets is not None:
            cond = sa.and_(cond, sa.or_(tasks.c.target.is_(None),
                                        tasks.c.target.in_(self.targets)))
        return cond


# Prepared: on the hot path, making a statement costs more than running it.
_INSERT = PreparedWrite(lambda _: tasks.insert())
_INSERT_ID = PreparedWrite(lambda _: tasks.insert().returning(tasks.c.id))
_DELETE = PreparedWrite(lambda _: tasks.delete().where(tasks.c.id == sa.bindparam("task_id")))


def enqueue(
    conn: Connection,
    kind: TaskKind,
    resource_id: str,
    payload: dict[str, Any] | None = None,
    target: str | None = None,
) -> None:
    """Add a task inside the caller's transaction (it runs once that commits); the workers
    of this process that ``listen`` are woken at the commit."""
    _INSERT.rowcount(conn, **_row(kind, resource_id, payload, target))
    if _listeners:
        on_commit(conn, _notify)


# Wake-ups of this process's workers: a task queued by any transaction here, by the API or by
# another task's handler, starts at its commit instead of at the next poll.
_listeners: list[Callable[[], None]] = []


def listen(wake: Callable[[], None]) -> None:
    """Call ``wake`` after each commit that queued a task (``enqueue``) in this process."""
    _listeners.append(wake)


def unlisten(wake: Callable[[], None]) -> None:
    if wake in _listeners:
        _listeners.remove(wake)


def _notify() -> None:
    for wake in list(_listeners):
        wake()


def enqueue_claimed(
    conn: Connection,
    claimant: Claimant,
    kind: TaskKind,
    resource_id: str,
    payload: dict[str, Any] | None = None,
    target: str | None = None,
) -> Task:
    """Add a task already leased to ``claimant`` (its first attempt counted), as a claim
    would leave it: the worker that queued it runs it without claiming. Should that worker
    die, the task is recovered like any other it held."""
    row = _row(kind, resource_id, payload, target)
    row.update(state=RUNNING, owner=claimant.owner, attempts=1,
               lease_until=utcnow() + claimant.lease)
    task_id = _INSERT_ID.returned(conn, **row)[0]
    return Task(task_id, kind, resource_id, row["payload"], 1, row["request_id"])


def _row(kind: TaskKind, resource_id: str, payload: dict[str, Any] | None,
         target: str | None) -> dict[str, Any]:
    return {
        "kind": kind,
        "resource_id": resource_id,
        "payload": payload or {},
        "target": target,
        "state": PENDING,
        "attempts": 0,
        "request_id": request_id_var.get(),
        "created_at": utcnow(),
    }


def finish(conn: Connection, task: Task) -> None:
    """End a task inside the transaction that records its outcome."""
    _DELETE.rowcount(conn, task_id=task.id)


def pending_count(conn: Connection) -> int:
    """Tasks queued or running, of every kind."""
    return conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar_one()


def claim(conn: Connection, claimant: Claimant, limit: int) -> list[Task]:
    """Take up to ``limit`` runnable tasks (pending, or running under an expired lease), oldest
    first, leasing them to ``claimant`` and counting the attempt."""
    now = utcnow()
    expired = sa.and_(tasks.c.state == RUNNING, tasks.c.lease_until < now)
    ids = sorted(_pick(conn, claimant, tasks.c.state == PENDING, limit)
                 + _pick(conn, claimant, expired, limit))[:limit]
    if not ids:
        return []
    # The same conditions again: another worker may have taken a picked row meanwhile.
    runnable = sa.and_(sa.or_(tasks.c.state == PENDING, expired), claimant.mine())
    rows = conn.execute(
        tasks.update()
        .where(tasks.c.id.in_(ids), runnable)
        .values(state=RUNNING, owner=claimant.owner, lease_until=now + claimant.lease,
                attempts=tasks.c.attempts + 1)
        .returning(tasks.c.id, tasks.c.kind, tasks.c.resource_id, tasks.c.payload,
                   tasks.c.attempts, tasks.c.request_id)
    ).all()
    return [Task(**row._mapping) for row in rows]


def _pick(conn: Connection, claimant: Claimant, where: sa.ColumnElement[bool],
          limit: int) -> list[int]:
    # One state per query so the (state, id) index yields rows in id order and the LIMIT
    # stops the scan: the cost of a claim does not grow with the queue.
    pick = (sa.select(tasks.c.id).where(where, claimant.mine()).order_by(tasks.c.id)
            .limit(limit))
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    return [r[0] for r in conn.execute(pick)]


def renew(conn: Connection, claimant: Claimant, ids: Iterable[int]) -> None:
    """Extend the leases ``claimant`` still holds on ``ids`` (one taken over stays taken)."""
    conn.execute(
        tasks.update()
        .where(tasks.c.id.in_(list(ids)), tasks.c.owner == claimant.owner)
        .values(lease_until=utcnow() + claimant.lease)
    )


def release(conn: Connection, task: Task) -> None:
    """Give a task back to the queue to be tried again (its attempt stays counted)."""
    conn.execute(
        tasks.update().where(tasks.c.id == task.id)
        .values(state=PENDING, owner=None, lease_until=None)
    )


def recover(conn: Connection, owner: str) -> int:
    """``owner``'s previous incarnation died: make its running tasks runnable again now
    rather than when their leases expire. How many there were."""
    result = conn.execute(
        tasks.update()
        .where(tasks.c.state == RUNNING, tasks.c.owner == owner)
        .values(state=PENDING, owner=None, lease_until=None)
    )
    return result.rowcount
