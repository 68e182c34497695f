"""Task kinds, which process role runs each, and the durable queue on a real temporary SQLite."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.app import build_services
from stackvol.config import Settings
from stackvol.db.engine import Database
from stackvol.db.schema import tasks
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind, role_of
from stackvol.tasks.queue import Claimant, Task
from stackvol.tasks.roles import ROLES, ProcessRole
from stackvol.tasks.worker import Handler, Worker

# Today's routing, written as the prefixes it was once decided by: a storage host runs volume
# and snapshot work (the connections it exports too), a compute host server and attachment work.
VOLUME_PREFIXES = ("volume.", "snapshot.")
COMPUTE_PREFIXES = ("server.", "attachment.")
LEASE = dt.timedelta(seconds=60)


def role(name: str) -> ProcessRole:
    return ProcessRole(role=name, name=f"test:{name}", host="host-1", backend="file",
                       url="http://127.0.0.1:1")


def claimant(owner: str = "w1", kinds: tuple[str, ...] = tuple(TaskKind),
             targets: tuple[str, ...] | None = None,
             lease: dt.timedelta = LEASE) -> Claimant:
    return Claimant(owner, kinds, targets, lease)


def rows(db: Database) -> list[Any]:
    return db.run_sync(lambda c: c.execute(
        sa.select(tasks.c.resource_id, tasks.c.state, tasks.c.owner, tasks.c.attempts)
        .order_by(tasks.c.id)).all())


# --- kinds and roles ----------------------------------------------------------------------


def test_every_handler_of_a_built_app_is_a_task_kind(tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path / "data",
                                        "compute_driver": "simulated"})
    services = build_services(settings)
    try:
        registered = services.worker.handlers
        assert all(type(kind) is TaskKind for kind in registered)
        assert set(registered) == set(TaskKind)  # and no kind is left without a handler
    finally:
        services.db.dispose()


def test_kinds_keep_their_stored_values() -> None:
    """The values are in databases and in ``pause_at`` settings: they never change."""
    assert TaskKind.VOLUME_CREATE == "volume.create"
    assert TaskKind("volume.call.initialize_connection") is (
        TaskKind.VOLUME_CALL_INITIALIZE_CONNECTION)
    assert f"{TaskKind.SERVER_SPAWN}.volumes" == "server.spawn.volumes"  # a pause point


@pytest.mark.parametrize("kind", list(TaskKind))
def test_each_kind_runs_where_its_prefix_always_sent_it(kind: TaskKind) -> None:
    expected = "volume" if kind.startswith(VOLUME_PREFIXES) else "compute"
    assert kind.startswith(VOLUME_PREFIXES + COMPUTE_PREFIXES)
    assert kind.role == role_of(kind) == expected


def test_connection_tasks_run_on_the_storage_host() -> None:
    """The Nova side queues them, but the volume's backend makes and tears down exports."""
    assert TaskKind.VOLUME_INITIALIZE_CONNECTION.role == "volume"
    assert TaskKind.VOLUME_TERMINATE_CONNECTION.role == "volume"


def test_each_role_handles_exactly_its_kinds() -> None:
    handled = {name: {k for k in TaskKind if role(name).handles(k)} for name in ROLES}
    assert handled["all"] == set(TaskKind)
    assert handled["api"] == set()
    assert handled["volume"] == {k for k in TaskKind if k.startswith(VOLUME_PREFIXES)}
    assert handled["compute"] == {k for k in TaskKind if k.startswith(COMPUTE_PREFIXES)}


def test_a_kind_this_release_does_not_know_runs_nowhere_but_all() -> None:
    assert role_of("volume.retired_kind") is None
    assert role("all").handles("volume.retired_kind")
    assert not any(role(name).handles("volume.retired_kind")
                   for name in ("api", "volume", "compute"))


def test_restrict_keeps_the_role_s_handlers_and_targets(db: Database) -> None:
    handler = Handler(run=_noop, fail=_no_failure)
    for name in ROLES:
        worker = Worker(db, "w")
        for kind in TaskKind:
            worker.register(kind, handler)
        role(name).restrict(worker)
        assert set(worker.handlers) == {k for k in TaskKind if role(name).handles(k)}
        assert worker.targets == role(name).targets


# --- the queue ----------------------------------------------------------------------------


def test_a_claim_leases_the_oldest_tasks_and_counts_the_attempt(db: Database) -> None:
    for i in range(3):
        db.run_sync(taskq.enqueue, TaskKind.VOLUME_CREATE, f"vol-{i}", {"n": i}, target="file")
    first = db.run_sync(taskq.claim, claimant(), 2)
    assert [(t.kind, t.resource_id, t.payload, t.attempts) for t in first] == [
        ("volume.create", "vol-0", {"n": 0}, 1), ("volume.create", "vol-1", {"n": 1}, 1)]
    assert db.run_sync(taskq.claim, claimant("w2"), 10)[0].resource_id == "vol-2"
    assert db.run_sync(taskq.claim, claimant("w3"), 10) == []  # every one is leased
    assert [r.owner for r in rows(db)] == ["w1", "w1", "w2"]


def test_a_claim_takes_only_its_kinds_and_targets(db: Database) -> None:
    db.run_sync(taskq.enqueue, TaskKind.VOLUME_CREATE, "mine", target="file")
    db.run_sync(taskq.enqueue, TaskKind.VOLUME_CREATE, "anyone's")  # untargeted
    db.run_sync(taskq.enqueue, TaskKind.VOLUME_CREATE, "rbd's", target="rbd")
    db.run_sync(taskq.enqueue, TaskKind.SNAPSHOT_CREATE, "other kind", target="file")
    got = db.run_sync(taskq.claim, claimant(kinds=(TaskKind.VOLUME_CREATE,),
                                            targets=("file",)), 10)
    assert [t.resource_id for t in got] == ["mine", "anyone's"]
    assert db.run_sync(taskq.claim, claimant("w2", kinds=()), 10) == []


def test_an_unknown_kind_in_the_table_is_left_alone(db: Database) -> None:
    """A row of a kind no longer known (from an older release) is never claimed."""
    db.run_sync(lambda c: c.execute(tasks.insert().values(
        kind="volume.retired_kind", resource_id="old", payload={}, state=taskq.PENDING,
        attempts=0, created_at=dt.datetime(2020, 1, 1))))
    assert db.run_sync(taskq.claim, claimant(), 10) == []
    assert db.run_sync(taskq.pending_count) == 1


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_renew(db: Database) -> None:
    db.run_sync(taskq.enqueue, TaskKind.SERVER_SPAWN, "srv-1", target="host-1")
    (task,) = db.run_sync(taskq.claim, claimant("dead", lease=dt.timedelta(seconds=-1)), 10)
    (again,) = db.run_sync(taskq.claim, claimant("alive"), 10)
    assert (again.id, again.attempts) == (task.id, 2)
    db.run_sync(taskq.renew, claimant("dead", lease=dt.timedelta(seconds=-1)), [task.id])
    assert db.run_sync(taskq.claim, claimant("third"), 10) == []  # alive's lease still holds
    assert rows(db)[0].owner == "alive"


def test_release_recover_and_finish(db: Database) -> None:
    for name in ("a", "b", "c"):
        db.run_sync(taskq.enqueue, TaskKind.ATTACHMENT_ATTACH, name)
    a, b, _c = db.run_sync(taskq.claim, claimant("w1"), 3)
    db.run_sync(taskq.release, a)  # to be tried again; the attempt stays counted
    assert db.run_sync(taskq.recover, "w1") == 2  # w1 restarted: b and c run again now
    assert [(r.state, r.owner, r.attempts) for r in rows(db)] == [(taskq.PENDING, None, 1)] * 3
    db.run_sync(taskq.finish, b)
    assert [r.resource_id for r in rows(db)] == ["a", "c"]
    assert db.run_sync(taskq.pending_count) == 2


def test_a_task_enqueued_in_a_rolled_back_transaction_never_exists(db: Database) -> None:
    def enqueue_then_fail(conn: Connection) -> None:
        taskq.enqueue(conn, TaskKind.VOLUME_DELETE, "vol-1")
        raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        db.run_sync(enqueue_then_fail)
    assert db.run_sync(taskq.pending_count) == 0


def test_the_worker_runs_each_task_by_its_kind_and_ends_it(db: Database) -> None:
    ran: list[tuple[str, str]] = []
    failed: list[str] = []

    async def run(task: Task) -> None:
        ran.append((task.kind, task.resource_id))
        if task.resource_id == "broken":
            raise ValueError("no such backend")
        await db.run(taskq.finish, task)

    def fail(conn: Connection, task: Task, reason: str) -> None:
        failed.append(f"{task.resource_id}: {reason}")

    async def scenario() -> None:
        worker = Worker(db, "w1", poll_seconds=0.01)
        worker.register(TaskKind.VOLUME_CREATE, Handler(run, fail))
        worker.register(TaskKind.VOLUME_EXTEND, Handler(run, fail))
        await db.run(taskq.enqueue, TaskKind.VOLUME_CREATE, "vol-1")
        await db.run(taskq.enqueue, TaskKind.VOLUME_EXTEND, "broken")
        await worker.start()
        try:
            await worker.drain(timeout=10)
        finally:
            await worker.stop()

    asyncio.run(scenario())
    assert sorted(ran) == [("volume.create", "vol-1"), ("volume.extend", "broken")]
    assert failed == ["broken: ValueError: no such backend"]  # not transient: no retry


async def _noop(task: Task) -> None:
    return None


def _no_failure(conn: Connection, task: Task, reason: str) -> None:
    return None
