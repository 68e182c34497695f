"""Scale-out on one PostgreSQL: two API processes, two volume workers serving one file backend
(one shared data dir), two compute workers for two hosts; 200 volumes created and attached
through both APIs while a volume worker and a compute worker are killed with work in hand.

Every volume must end ``in-use`` on the server it was attached to, exactly once: checked in the
database, on the backend (the files), on the hypervisors (the simulated hosts' state files) and
in the workers' logs (each final transition logged by one worker only).
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import postgres
from tests.support.server import StackvolProcess, query_url, wait_for
from tests.support.servers import IMAGE

VOLUMES = 200
SERVERS = 10
LEASE = 3  # seconds: a dead worker's tasks are taken over this long after its last renewal
HOSTS = ("host-a", "host-b")


@pytest.fixture
def database_url() -> str:
    return postgres.shared_cluster().database(f"multi_{uuid.uuid4().hex[:12]}")


class Fleet:
    """The processes of one deployment, all on one database."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.common = {"database_url": database_url, "task_lease_seconds": LEASE,
                       "task_poll_seconds": 0.2, "heartbeat_seconds": 0.5,
                       "service_down_seconds": 3, "compute_driver": "simulated"}
        self.procs: dict[str, StackvolProcess] = {}

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return query_url(self.common["database_url"], sql, *params)

    def start(self, name: str, data_dir: str, **settings: Any) -> StackvolProcess:
        proc = StackvolProcess(self.root / data_dir, log_name=name, worker_name=name,
                               **self.common, **settings)
        self.procs[name] = proc.start()
        return proc

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    def log(self, name: str) -> str:
        return self.procs[name].log_path.read_text()


@pytest.fixture
def fleet(tmp_path: Path, database_url: str) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path, database_url)
    try:
        fleet.start("api-1", "api-1", role="api")  # the first start creates schema and accounts
        others = [
            ("api-2", "api-2", {"role": "api"}),
            # Both volume workers serve backend "file" from one directory (shared storage,
            # mounted on the compute hosts too: volumes attach by path, not over NBD);
            # the first parks every create it claims until it is killed.
            ("volume-1", "storage", {"role": "volume", "storage_backend": "file",
                                     "compute_host": "storage-1", "pause_at": "volume.create",
                                     "shared_storage_hosts": "*"}),
            ("volume-2", "storage", {"role": "volume", "storage_backend": "file",
                                     "compute_host": "storage-2", "shared_storage_hosts": "*"}),
            # host-a's first worker parks every attach it claims until it is killed.
            ("compute-a", "host-a", {"role": "compute", "compute_host": "host-a",
                                     "pause_at": "attachment.attach"}),
            ("compute-b", "host-b", {"role": "compute", "compute_host": "host-b"}),
        ]
        with concurrent.futures.ThreadPoolExecutor(len(others)) as pool:
            for started in [pool.submit(fleet.start, name, data_dir, **settings)
                            for name, data_dir, settings in others]:
                started.result()
        yield fleet
    finally:
        fleet.stop()


def admin_client(api: StackvolProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=api.url + "/v2.1", timeout=60, headers={"X-Auth-Token": token})


def boot(client: httpx.Client, name: str) -> str:
    resp = client.post("/servers", json={"server": {"name": name, "imageRef": IMAGE,
                                                    "flavorRef": "1"}})
    assert resp.status_code == 202, resp.text
    return resp.json()["server"]["id"]


def until(client: httpx.Client, path: str, key: str, done: Any, timeout: float) -> dict:
    body = wait_for(lambda: client.get(path).json()[key], done, timeout=timeout, interval=0.1)
    assert done(body), body
    return body


def create_and_attach(client: httpx.Client, server_id: str) -> tuple[str, str]:
    """One user's story: create a volume, wait for it, attach it, wait until in-use."""
    resp = client.post("/os-volumes", json={"volume": {"size": 1}})
    assert resp.status_code == 200, resp.text
    volume_id = resp.json()["volume"]["id"]
    path = f"/os-volumes/{volume_id}"
    until(client, path, "volume", lambda v: v["status"] == "available", 90)
    resp = client.post(f"/servers/{server_id}/os-volume_attachments",
                       json={"volumeAttachment": {"volumeId": volume_id}})
    assert resp.status_code == 200, resp.text
    until(client, path, "volume", lambda v: v["status"] == "in-use", 90)
    return volume_id, resp.json()["volumeAttachment"]["device"]


def running_tasks(fleet: Fleet, owner: str, kind: str) -> list[str]:
    return [r[0] for r in fleet.query("SELECT resource_id FROM tasks WHERE owner = ? "
                                      "AND kind = ? AND state = 'running'", owner, kind)]


def kill_with_work_in_hand(fleet: Fleet, name: str, kind: str) -> list[str]:
    """Wait until the worker holds tasks of the ``kind`` it is parked at, then ``kill -9``
    it; those tasks' resources. (A volume worker also runs attach chains' connection steps,
    whose resource is an attachment, not a volume.)"""
    held = wait_for(lambda: running_tasks(fleet, name, kind), bool, timeout=60)
    assert held, f"{name} never claimed a {kind} task"
    time.sleep(0.5)  # let it claim what else it will
    held = running_tasks(fleet, name, kind)
    fleet.procs[name].kill()
    return held


def finished_by(log: str, pattern: str) -> Counter[str]:
    return Counter(re.findall(pattern, log))


def test_api_and_worker_processes_share_the_work_and_survive_kill_9(fleet: Fleet) -> None:
    api1, api2 = fleet.procs["api-1"], fleet.procs["api-2"]
    token, _ = api1.token("admin")
    clients = [admin_client(api1, token), admin_client(api2, token)]  # one token, both APIs
    try:
        _run(fleet, clients)
    finally:
        for client in clients:
            client.close()


def _run(fleet: Fleet, clients: list[httpx.Client]) -> None:
    # Servers are placed on the live compute hosts, evenly, whichever API is asked.
    server_ids = [boot(clients[i % 2], f"vm-{i}") for i in range(SERVERS)]
    hosts = {}
    for server_id in server_ids:
        server = until(clients[0], f"/servers/{server_id}", "server",
                       lambda s: s["status"] in ("ACTIVE", "ERROR"), 60)
        assert server["status"] == "ACTIVE", server
        hosts[server_id] = server["OS-EXT-SRV-ATTR:host"]
    assert Counter(hosts.values()) == {"host-a": SERVERS // 2, "host-b": SERVERS // 2}

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        futures = {pool.submit(create_and_attach, clients[i % 2], server_ids[i % SERVERS]): i
                   for i in range(VOLUMES)}
        early = next(concurrent.futures.as_completed(futures))  # a broken story fails fast
        assert early.exception() is None, early.exception()
        parked_creates = kill_with_work_in_hand(fleet, "volume-1", "volume.create")
        parked_attaches = kill_with_work_in_hand(fleet, "compute-a", "attachment.attach")
        # host-a comes back as a new process (another name): it takes the dead one's attaches
        # over once their leases expire.
        fleet.start("compute-a2", "host-a", role="compute", compute_host="host-a")
        results = {futures[f]: f.result() for f in concurrent.futures.as_completed(futures)}

    volumes = {results[i][0]: (server_ids[i % SERVERS], results[i][1]) for i in range(VOLUMES)}
    assert len(volumes) == VOLUMES
    assert parked_creates and set(parked_creates) <= set(volumes)

    # Nothing stuck: no task left, every volume in-use, held by one attached row.
    assert fleet.query("SELECT kind, resource_id FROM tasks") == []
    rows = fleet.query("SELECT v.id, v.status, a.server_id, a.device, a.status "
                 "FROM volumes v JOIN volume_attachments a ON a.volume_id = v.id")
    assert sorted(rows) == sorted((vid, "in-use", sid, dev, "attached")
                                  for vid, (sid, dev) in volumes.items())
    devices = Counter((sid, dev) for sid, dev in volumes.values())
    assert max(devices.values()) == 1, "two volumes got one device of a server"

    # The backend: exactly one file per volume in the shared directory, no partial copies.
    files = sorted(p.name for p in (fleet.root / "storage" / "volumes").iterdir())
    assert files == sorted(f"volume-{vid}.raw" for vid in volumes)

    # The hypervisors: each volume connected once, to its server, on that server's host.
    connected: dict[str, tuple[str, str, str]] = {}
    for host in HOSTS:
        for state_file in (fleet.root / host / "compute" / "simulated").glob("*.json"):
            state = json.loads(state_file.read_text())
            assert hosts[state["server_id"]] == host
            for vid, entry in state["volumes"].items():
                assert vid not in connected, f"volume {vid} connected twice"
                connected[vid] = (host, state["server_id"], entry["device"])
    assert connected == {vid: (hosts[sid], sid, dev) for vid, (sid, dev) in volumes.items()}

    # Exactly once: each final transition was logged by one worker, once; the parked work
    # was finished by the survivors.
    created = finished_by(fleet.log("volume-1") + fleet.log("volume-2"),
                          r"volume (\S+) available")
    assert created == dict.fromkeys(volumes, 1)
    attached = finished_by("".join(fleet.log(n) for n in ("compute-a", "compute-a2",
                                                          "compute-b")),
                           r"volume (\S+) in-use on server")
    assert attached == dict.fromkeys(volumes, 1)
    assert not finished_by(fleet.log("volume-1"), r"volume (\S+) available")
    survivors = finished_by(fleet.log("volume-2"), r"volume (\S+) available")
    assert all(survivors[vid] == 1 for vid in parked_creates)
    taken_over = finished_by(fleet.log("compute-a2"), r"volume (\S+) in-use on server")
    parked_volumes = {r[0] for r in fleet.query("SELECT volume_id FROM volume_attachments "
                                          "WHERE id IN ({})".format(
                                              ",".join("?" * len(parked_attaches))),
                                          *parked_attaches)}
    assert parked_volumes and all(taken_over[vid] == 1 for vid in parked_volumes)

    _check_health_and_services(fleet)


def _check_health_and_services(fleet: Fleet) -> None:
    for name, proc in fleet.procs.items():
        if proc.proc is not None and proc.proc.poll() is None:
            resp = httpx.get(proc.url + "/healthcheck", timeout=10)
            assert resp.status_code == 200, (name, resp.text)
            body = resp.json()
            assert body["status"] == "ok" and body["database"] == "ok"
            assert body["name"] == name and body["role"] == proc.settings["role"]
    # The killed ones fall silent: down once their heartbeat is older than service_down.
    time.sleep(fleet.common["service_down_seconds"] + 0.5)
    rows = {r[0]: r[1:] for r in fleet.query("SELECT name, role, host, backend FROM services")}
    assert rows == {
        "api-1": ("api", rows["api-1"][1], None), "api-2": ("api", rows["api-2"][1], None),
        "volume-1": ("volume", "storage-1", "file"), "volume-2": ("volume", "storage-2", "file"),
        "compute-a": ("compute", "host-a", None), "compute-a2": ("compute", "host-a", None),
        "compute-b": ("compute", "host-b", None)}

    # Cinder's os-services, from any API process: one row per Cinder host, by heartbeat age.
    token, body = fleet.procs["api-1"].token("admin")  # api-1 made the accounts
    path = f"/volume/v3/{body['project']['id']}/os-services"
    listed = httpx.get(fleet.procs["api-2"].url + path, timeout=10,
                       headers={"X-Auth-Token": token}).json()["services"]
    states = {(s["binary"], s["host"]): s["state"] for s in listed}
    assert states == {("cinder-scheduler", rows["api-1"][1]): "up",
                      ("cinder-volume", "storage-1@file"): "down",
                      ("cinder-volume", "storage-2@file"): "up"}
