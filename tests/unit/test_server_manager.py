"""The worker side of servers (services/servers/manager.py) on a temporary SQLite, the simulated
compute driver and a real worker: each task kind ends in its state with the driver agreeing, a
failing driver leaves the server in error with a fault, a superseded task touches nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.servers import queries as q
from stackvol.services.servers.manager import ServerManager
from stackvol.services.servers.records import Server
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.worker import PauseHook, Worker
from stackvol.timeutils import utcnow
from stackvol.virt.base import ComputeError, InstanceSpec, PowerState
from stackvol.virt.simulated import SimulatedDriver

HOST = "compute-1"


@pytest.fixture
def driver(tmp_path: Path) -> SimulatedDriver:
    return SimulatedDriver(tmp_path, host=HOST)


def run_tasks(db: Database, driver: SimulatedDriver, work: Any) -> None:
    """Commit ``work`` (a function of a Connection queueing tasks), then let a worker with only
    the server handlers run everything queued."""
    async def scenario() -> None:
        worker = Worker(db, "w1", poll_seconds=0.02)
        # No volume is mapped in these tests, so the attachment service is never called.
        ServerManager(db, driver, worker, cast(Any, None), PauseHook(""), 1.0)
        await db.run(work)
        await worker.start()
        try:
            await worker.drain(10)
        finally:
            await worker.stop()
    asyncio.run(scenario())


def building(db: Database) -> str:
    """A server recorded as an API process records it, with its spawn task."""
    def insert(conn: Connection) -> None:
        q.insert(conn, {"id": "s1", "project_id": "p1", "user_id": "u1", "name": "vm",
                        "vm_state": "building", "task_state": "scheduling",
                        "flavor_id": "no-such-flavor", "metadata": {}, "host": HOST,
                        "created_at": utcnow()})
        taskq.enqueue(conn, TaskKind.SERVER_SPAWN, "s1", target=HOST)
    db.run_sync(insert)
    return "s1"


def shown(db: Database, server_id: str) -> Server | None:
    return db.run_sync(q.find, server_id, write=False)


def test_spawn_power_and_delete_end_in_their_states(db: Database,
                                                    driver: SimulatedDriver) -> None:
    server_id = building(db)
    run_tasks(db, driver, lambda conn: None)
    server = shown(db, server_id)
    assert server is not None
    assert (server.vm_state, server.task_state, server.power_state) == (
        "active", None, int(PowerState.RUNNING))
    assert server.launched_at is not None and server_id in driver.servers()

    def stop(conn: Connection) -> None:
        assert q.cas_state(conn, server_id, ["active"], [None], task_state="powering-off")
        taskq.enqueue(conn, TaskKind.SERVER_POWER, server_id, {"op": "stop"}, target=HOST)
    run_tasks(db, driver, stop)
    server = shown(db, server_id)
    assert server is not None
    assert (server.vm_state, server.task_state, server.power_state) == (
        "stopped", None, int(PowerState.SHUTDOWN))
    assert driver.power_state(server_id) == PowerState.SHUTDOWN

    def delete(conn: Connection) -> None:
        assert q.mark_deleting(conn, server_id)
        taskq.enqueue(conn, TaskKind.SERVER_DELETE, server_id, target=HOST)
    run_tasks(db, driver, delete)
    assert shown(db, server_id) is None
    assert server_id not in driver.servers()


def test_a_failed_spawn_leaves_an_error_with_its_fault_and_nothing_on_the_driver(
        db: Database, driver: SimulatedDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(spec: InstanceSpec) -> None:
        raise ComputeError("no room")
    monkeypatch.setattr(driver, "spawn", refuse)
    server_id = building(db)
    run_tasks(db, driver, lambda conn: None)
    server = shown(db, server_id)
    assert server is not None and server.fault is not None
    assert (server.vm_state, server.task_state) == ("error", None)
    assert server.fault["message"] == "ComputeError: no room"
    assert server_id not in driver.servers()


def test_a_superseded_power_task_calls_no_driver(db: Database, driver: SimulatedDriver,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server_id = building(db)
    run_tasks(db, driver, lambda conn: None)
    calls: list[str] = []
    monkeypatch.setattr(driver, "power_off", calls.append)

    def stale_stop(conn: Connection) -> None:  # queued, but the server is not powering-off
        taskq.enqueue(conn, TaskKind.SERVER_POWER, server_id, {"op": "stop"}, target=HOST)
    run_tasks(db, driver, stale_stop)
    server = shown(db, server_id)
    assert server is not None and (server.vm_state, server.task_state) == ("active", None)
    assert calls == []
