"""Task claiming on PostgreSQL under real concurrency, leases, start-up of many processes at
once, and attaches racing for one server's devices (on whichever database the run uses)."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stackvol.db.engine import Database, create_engine
from stackvol.db.migrate import upgrade
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.worker import Handler, Worker
from tests.support import postgres
from tests.support.server import StackvolProcess, query_url
from tests.support.servers import new_server
from tests.support.volumes import new_volume, volume_status


@pytest.fixture
def pg() -> Iterator[Database]:
    url = postgres.shared_cluster().database(f"tasks_{uuid.uuid4().hex[:12]}")
    db = Database(create_engine(url))
    upgrade(db.engine)
    yield db
    db.dispose()


def worker(db: Database, name: str, lease: int = 60) -> Worker:
    w = Worker(db, name, targets=["file"], lease_seconds=lease)
    w.register(TaskKind.VOLUME_CREATE, Handler(run=None, fail=None))  # type: ignore[arg-type]
    return w


def test_many_workers_claim_every_task_exactly_once(pg: Database) -> None:
    def enqueue(conn, n: int) -> None:  # type: ignore[no-untyped-def]
        for i in range(n):
            taskq.enqueue(conn, TaskKind.VOLUME_CREATE, f"vol-{i}", target="file")
        taskq.enqueue(conn, TaskKind.VOLUME_CREATE, "elsewhere", target="rbd")  # not theirs

    pg.run_sync(enqueue, 600)
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claim_all(name: str) -> None:
        w = worker(pg, name)
        start.wait()
        while batch := pg.run_sync(taskq.claim, w.claimant, 7):
            with lock:
                claimed.extend((name, t.id) for t in batch)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(claim_all, [f"w{i}" for i in range(8)]))
    ids = Counter(task_id for _, task_id in claimed)
    assert len(ids) == 600 and set(ids.values()) == {1}
    assert len({name for name, _ in claimed}) > 1  # they really ran side by side
    assert pg.run_sync(lambda c: c.exec_driver_sql(
        "SELECT resource_id FROM tasks WHERE state = 'pending'").scalars().all()) == ["elsewhere"]


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(pg: Database) -> None:
    pg.run_sync(lambda c: taskq.enqueue(c, TaskKind.VOLUME_CREATE, "vol-1", target="file"))
    dead, alive = worker(pg, "dead", lease=1), worker(pg, "alive", lease=1)
    (task,) = pg.run_sync(taskq.claim, dead.claimant, 10)
    assert pg.run_sync(taskq.claim, alive.claimant, 10) == []  # leased
    pg.run_sync(taskq.renew, dead.claimant, [task.id])
    time.sleep(1.2)
    (again,) = pg.run_sync(taskq.claim, alive.claimant, 10)
    assert (again.id, again.attempts) == (task.id, 2)
    pg.run_sync(taskq.renew, dead.claimant, [task.id])  # the old owner cannot take its lease back
    owner = pg.run_sync(lambda c: c.exec_driver_sql("SELECT owner FROM tasks").scalar_one())
    assert owner == "alive"


def test_processes_starting_together_on_a_fresh_database(tmp_path: Path) -> None:
    """Migrations and the first accounts are made once, whoever starts first."""
    url = postgres.shared_cluster().database(f"start_{uuid.uuid4().hex[:12]}")
    procs = [StackvolProcess(tmp_path / f"p{i}", database_url=url, role=role,
                             compute_driver="simulated")
             for i, role in enumerate(("api", "api", "volume", "compute"))]
    try:
        with concurrent.futures.ThreadPoolExecutor(len(procs)) as pool:
            list(pool.map(lambda p: p.start(timeout=60), procs))
        assert query_url(url, "SELECT count(*) FROM users")[0][0] == 2
        assert query_url(url, "SELECT count(*) FROM services")[0][0] == 4
        for proc in procs:
            health = httpx.get(proc.url + "/healthcheck", timeout=10).json()
            assert health["status"] == "ok" and health["role"] == proc.settings["role"]
        assert httpx.get(procs[2].url + "/v2.1/os-volumes", timeout=10).status_code == 404
    finally:
        for proc in procs:
            proc.stop()


def test_concurrent_attaches_to_one_server_get_distinct_devices(admin: httpx.Client) -> None:
    """Each attach picks the server's next free device; racing ones must queue on the server
    (a row lock on PostgreSQL), never take the same name."""
    server_id = new_server(admin, "devices")
    volume_ids = [new_volume(admin) for _ in range(12)]

    def attach(volume_id: str) -> str:
        resp = admin.post(f"/servers/{server_id}/os-volume_attachments",
                          json={"volumeAttachment": {"volumeId": volume_id}})
        assert resp.status_code == 200, resp.text
        return resp.json()["volumeAttachment"]["device"]

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        devices = list(pool.map(attach, volume_ids))
    assert len(set(devices)) == len(devices), devices
    for volume_id in volume_ids:
        volume_status(admin, volume_id, "in-use")
        admin.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}")
    for volume_id in volume_ids:
        volume_status(admin, volume_id, "available")
