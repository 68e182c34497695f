"""Remote attach of file volumes: the storage host exports a volume over NBD
(``qemu-storage-daemon``) to a compute host that cannot read its file, and tears the export
down on detach, on server delete and on volume delete.

Three processes on one PostgreSQL stand in for three hosts, each with its own data directory:
an API process, a volume worker for backend ``file`` on host ``storage-1`` (the only directory
holding volume files) and a compute worker on host ``host-b`` (simulated: it opens NBD volumes
with ``qemu-img``, so an export that does not answer fails the attach).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from tests.support import libvirt_guest as lg
from tests.support import postgres
from tests.support.server import StackvolProcess, query_url, wait_for
from tests.support.servers import IMAGE, delete_server
from tests.support.volumes import attach_and_wait, detach_and_wait, new_volume

pytestmark = pytest.mark.skipif(shutil.which("qemu-storage-daemon") is None
                                or shutil.which("qemu-io") is None,
                                reason="qemu-storage-daemon / qemu-io not installed")

FAST = {"task_lease_seconds": 3, "task_poll_seconds": 0.2, "heartbeat_seconds": 0.5,
        "service_down_seconds": 3, "compute_driver": "simulated"}
STORAGE = {"role": "volume", "storage_backend": "file", "compute_host": "storage-1"}


class Hosts:
    """API, storage host and compute host: processes on one database, separate directories."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.common = {"database_url": database_url, **FAST}
        self.procs: dict[str, StackvolProcess] = {}

    def start(self, name: str, **settings: Any) -> StackvolProcess:
        old = self.procs.get(name)
        proc = old or StackvolProcess(self.root / name, log_name=name, worker_name=name,
                                      **self.common)
        self.procs[name] = proc.start(**settings)
        return proc

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return query_url(self.common["database_url"], sql, *params)

    @property
    def exports_dir(self) -> Path:
        return self.root / "storage" / "exports" / "file" / "storage-1"

    def export(self, volume_id: str) -> dict[str, Any] | None:
        path = self.exports_dir / f"{volume_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        for record in self.exports_dir.glob("*.json"):  # a failed test leaves no daemon
            pid = json.loads(record.read_text())["pid"]
            if daemon_alive(pid):
                os.kill(pid, 9)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    url = postgres.shared_cluster().database(f"remote_{uuid.uuid4().hex[:12]}")
    hosts = Hosts(tmp_path, url)
    try:
        hosts.start("api", role="api")  # the first start creates schema and accounts
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(hosts.start, "storage", **STORAGE),
                            pool.submit(hosts.start, "host-b", role="compute",
                                        compute_host="host-b")]:
                started.result()
        yield hosts
    finally:
        hosts.stop()


def daemon_alive(pid: int) -> bool:
    """A live process (a zombie waiting for PID 1 to reap it is gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def nbd_url(data: dict[str, Any]) -> str:
    return f"nbd://{data['host']}:{data['port']}/{data['export']}"


def qemu_io(url: str, command: str) -> str:
    done = subprocess.run(["qemu-io", "-f", "raw", "-c", command, url], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and "failed" not in done.stdout, done.stdout + done.stderr
    return done.stdout


class Cloud:
    """The user's side: one admin client on the API process."""

    def __init__(self, hosts: Hosts) -> None:
        token, _ = hosts.procs["api"].token("admin")
        self.hosts = hosts
        self.http = httpx.Client(base_url=hosts.procs["api"].url + "/v2.1", timeout=60,
                                 headers={"X-Auth-Token": token})

    def volume_status(self, volume_id: str) -> str:
        return self.http.get(f"/os-volumes/{volume_id}").json()["volume"]["status"]

    def wait_volume(self, volume_id: str, status: str, timeout: float = 60) -> None:
        seen = wait_for(lambda: self.volume_status(volume_id), lambda s: s == status,
                        timeout=timeout, interval=0.05)
        assert seen == status, f"volume {volume_id} is {seen}, not {status}"

    def boot(self) -> str:
        resp = self.http.post("/servers", json={"server": {"name": "vm", "imageRef": IMAGE,
                                                           "flavorRef": "1"}})
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["server"]["id"]
        server = wait_for(lambda: self.http.get(f"/servers/{server_id}").json()["server"],
                          lambda s: s["status"] in ("ACTIVE", "ERROR"), timeout=60)
        assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "host-b")
        return server_id

    def volume(self) -> str:
        resp = self.http.post("/os-volumes", json={"volume": {"size": 1}})
        assert resp.status_code == 200, resp.text
        volume_id = resp.json()["volume"]["id"]
        self.wait_volume(volume_id, "available")
        return volume_id

    def attach(self, server_id: str, volume_id: str) -> None:
        resp = self.http.post(f"/servers/{server_id}/os-volume_attachments",
                              json={"volumeAttachment": {"volumeId": volume_id}})
        assert resp.status_code == 200, resp.text

    def detach(self, server_id: str, volume_id: str) -> None:
        resp = self.http.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}")
        assert resp.status_code == 202, resp.text

    def connection_info(self, volume_id: str) -> dict[str, Any]:
        (row,) = self.hosts.query("SELECT connection_info FROM volume_attachments "
                                  "WHERE volume_id = ?", volume_id)
        info = row[0]
        return json.loads(info) if isinstance(info, str) else info

    def hypervisor_view(self, server_id: str) -> dict[str, Any]:
        state = self.hosts.root / "host-b" / "compute" / "simulated" / f"{server_id}.json"
        return json.loads(state.read_text())["volumes"]


@pytest.fixture
def cloud(hosts: Hosts) -> Iterator[Cloud]:
    cloud = Cloud(hosts)
    yield cloud
    cloud.http.close()


def assert_export_gone(hosts: Hosts, volume_id: str, info: dict[str, Any], pid: int) -> None:
    assert hosts.export(volume_id) is None
    gone = wait_for(lambda: daemon_alive(pid), lambda alive: not alive, timeout=10)
    assert not gone, f"qemu-storage-daemon {pid} still runs"
    assert not port_open(info["data"]["host"], info["data"]["port"])


def test_attach_exports_over_nbd_and_detach_tears_it_down(hosts: Hosts, cloud: Cloud) -> None:
    server_id, volume_id = cloud.boot(), cloud.volume()
    started = time.monotonic()
    cloud.attach(server_id, volume_id)
    cloud.wait_volume(volume_id, "in-use")
    print(f"\nattach -> in-use over NBD (3 processes): {time.monotonic() - started:.3f} s")

    # The storage host serves the volume; the compute host holds no volume file.
    info = cloud.connection_info(volume_id)
    assert info["driver_volume_type"] == "nbd", info
    data = info["data"]
    assert (data["host"], data["format"], data["volume_id"], data["exporter"]) == (
        "127.0.0.1", "raw", volume_id, "storage-1")
    assert info["connector"] == {"host": "host-b", "attachment_id": info["connector"][
        "attachment_id"]}
    export = hosts.export(volume_id)
    assert export is not None and (export["port"], export["name"]) == (data["port"],
                                                                        data["export"])
    assert len(data["export"]) >= 32  # an unguessable name
    cmdline = Path(f"/proc/{export['pid']}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0] == b"qemu-storage-daemon" and daemon_alive(export["pid"])
    assert cloud.hypervisor_view(server_id)[volume_id]["connection_info"] == info
    assert not list((hosts.root / "host-b").rglob("volume-*"))
    volume_file = hosts.root / "storage" / "volumes" / f"volume-{volume_id}.raw"
    assert volume_file.exists()
    # Only the named export is served; another name is refused.
    wrong = subprocess.run(["qemu-img", "info", nbd_url({**data, "export": "guess"})],
                           capture_output=True, text=True, timeout=30, check=False)
    assert wrong.returncode != 0

    # Bytes written over the network land in the storage host's file.
    qemu_io(nbd_url(data), "write -P 0x5a 1048576 65536")
    assert "read 65536/65536" in qemu_io(nbd_url(data), "read -P 0x5a 1048576 65536")

    cloud.detach(server_id, volume_id)
    cloud.wait_volume(volume_id, "available")
    assert_export_gone(hosts, volume_id, info, export["pid"])
    with open(volume_file, "rb") as fh:
        fh.seek(1048576)
        assert fh.read(65536) == b"\x5a" * 65536
    assert cloud.hypervisor_view(server_id) == {}
    assert hosts.query("SELECT kind FROM tasks") == []

    # Attached again: a new export (a new name) serves the same bytes.
    cloud.attach(server_id, volume_id)
    cloud.wait_volume(volume_id, "in-use")
    again = cloud.connection_info(volume_id)
    assert again["data"]["export"] != data["export"]
    qemu_io(nbd_url(again["data"]), "read -P 0x5a 1048576 65536")

    # Deleting the server ends its export; the volume is free (and its bytes kept).
    pid = hosts.export(volume_id)["pid"]
    assert cloud.http.delete(f"/servers/{server_id}").status_code == 204
    cloud.wait_volume(volume_id, "available")
    wait_for(lambda: hosts.export(volume_id), lambda e: e is None, timeout=30)
    assert_export_gone(hosts, volume_id, again, pid)
    assert volume_file.exists()
    assert wait_for(lambda: hosts.query("SELECT kind FROM tasks"), lambda t: t == [],
                    timeout=30) == []


def running(hosts: Hosts, kind: str) -> list[tuple[Any, ...]]:
    return hosts.query("SELECT owner FROM tasks WHERE kind = ? AND state = 'running'", kind)


def kill_storage_at(hosts: Hosts, point: str) -> None:
    """Wait until the storage host's worker is parked at ``point`` with the task, kill -9."""
    held = wait_for(lambda: running(hosts, point), bool, timeout=30)
    assert held == [("storage",)], held
    hosts.procs["storage"].kill()


def test_storage_worker_killed_mid_chain_resumes(hosts: Hosts, cloud: Cloud) -> None:
    server_id, volume_id = cloud.boot(), cloud.volume()

    # Killed while making the connection: the restarted worker makes it and the chain ends.
    hosts.procs["storage"].stop()
    hosts.start("storage", **STORAGE, pause_at="volume.initialize_connection")
    cloud.attach(server_id, volume_id)
    kill_storage_at(hosts, "volume.initialize_connection")
    assert cloud.volume_status(volume_id) == "attaching"
    hosts.start("storage", **STORAGE, pause_at="")
    cloud.wait_volume(volume_id, "in-use", timeout=30)
    info = cloud.connection_info(volume_id)
    export = hosts.export(volume_id)
    assert info["data"]["port"] == export["port"] and daemon_alive(export["pid"])
    qemu_io(nbd_url(info["data"]), "write -P 0x11 0 4096")

    # The export outlives a kill -9 of the worker that started it.
    hosts.procs["storage"].kill()
    assert daemon_alive(export["pid"])
    qemu_io(nbd_url(info["data"]), "read -P 0x11 0 4096")

    # Killed while tearing it down: the restarted worker finishes, the export is gone.
    hosts.start("storage", **STORAGE, pause_at="volume.terminate_connection")
    cloud.detach(server_id, volume_id)
    kill_storage_at(hosts, "volume.terminate_connection")
    assert cloud.volume_status(volume_id) == "detaching"
    assert daemon_alive(export["pid"])
    hosts.start("storage", **STORAGE, pause_at="")
    cloud.wait_volume(volume_id, "available", timeout=30)
    assert_export_gone(hosts, volume_id, info, export["pid"])
    assert hosts.query("SELECT kind FROM tasks") == []


def test_restored_export_and_delete_on_termination(hosts: Hosts, cloud: Cloud) -> None:
    """A restart of the storage host brings a dead export back on its port and name; deleting
    the server then deletes the volume (delete_on_termination), export and file."""
    server_id, volume_id = cloud.boot(), cloud.volume()
    resp = cloud.http.post(f"/servers/{server_id}/os-volume_attachments", headers={
        "X-OpenStack-Nova-API-Version": "2.79"}, json={"volumeAttachment": {
            "volumeId": volume_id, "delete_on_termination": True}})
    assert resp.status_code == 200, resp.text
    cloud.wait_volume(volume_id, "in-use")
    info = cloud.connection_info(volume_id)
    export = hosts.export(volume_id)
    hosts.procs["storage"].stop()
    os.kill(export["pid"], 9)  # as after a reboot of the storage host
    wait_for(lambda: daemon_alive(export["pid"]), lambda alive: not alive, timeout=10)
    hosts.start("storage", **STORAGE)
    restored = hosts.export(volume_id)
    assert restored["pid"] != export["pid"] and daemon_alive(restored["pid"])
    assert (restored["port"], restored["name"]) == (export["port"], export["name"])
    qemu_io(nbd_url(info["data"]), "read -P 0 0 4096")  # the guest's address works again

    assert cloud.http.delete(f"/servers/{server_id}").status_code == 204
    gone = wait_for(lambda: cloud.http.get(f"/os-volumes/{volume_id}").status_code,
                    lambda code: code == 404, timeout=30)
    assert gone == 404
    assert_export_gone(hosts, volume_id, info, restored["pid"])
    assert not (hosts.root / "storage" / "volumes" / f"volume-{volume_id}.raw").exists()


@pytest.fixture
def libvirt_hosts(tmp_path: Path) -> Iterator[Hosts]:
    lg.require_libvirt()
    url = postgres.shared_cluster().database(f"remote_{uuid.uuid4().hex[:12]}")
    hosts = Hosts(tmp_path, url)
    try:
        hosts.start("api", timeout=120, role="api")  # generous: guests load the machine
        hosts.start("storage", timeout=120, **STORAGE)
        hosts.start("host-b", timeout=120, role="compute", compute_host="host-b",
                    compute_driver="libvirt", libvirt_max_memory_mb=256,
                    guest_image_dir=str(tmp_path / "guest-image"),
                    libvirt_detach_timeout=lg.DETACH_TIMEOUT)
        yield hosts
    finally:
        hosts.stop()
        lg.destroy_domains_of(tmp_path / "host-b")
        lg.stop_started_daemons()


def test_a_guest_on_another_host_writes_to_an_nbd_volume(libvirt_hosts: Hosts) -> None:
    hosts = libvirt_hosts
    token, _ = hosts.procs["api"].token("admin")
    with httpx.Client(base_url=hosts.procs["api"].url + "/v2.1", timeout=60,
                      headers={"X-Auth-Token": token}) as admin:
        server_id = lg.running_guest(admin, "remote")
        volume_id = new_volume(admin)
        attach_and_wait(admin, server_id, volume_id)
        disk = lg.disk_with_serial(server_id, volume_id)
        assert disk, "the guest does not see the volume"
        sources = fromstring(lg.connection().lookupByName(
            f"stackvol-{server_id}").XMLDesc(0)).findall("./devices/disk/source[@protocol='nbd']")
        assert [s.find("host").get("name") for s in sources] == ["127.0.0.1"]
        pattern = f"stackvol-nbd-{volume_id}"
        lg.guest(server_id, f"printf '{pattern}' | dd of=/dev/{disk} bs=512 conv=fsync")
        detach_and_wait(admin, server_id, volume_id)
        delete_server(admin, server_id)
    volume_file = hosts.root / "storage" / "volumes" / f"volume-{volume_id}.raw"
    assert volume_file.read_bytes()[:len(pattern)] == pattern.encode()
    assert not list(hosts.exports_dir.glob("*.json"))


# --- the Cinder connection API answered by an API process that runs no backend ---------------


class Cinder:
    """Block Storage v3 on the API process (admin, microversion 3.54)."""

    def __init__(self, hosts: Hosts) -> None:
        token, body = hosts.procs["api"].token("admin")
        self.hosts = hosts
        self.http = httpx.Client(
            base_url=f"{hosts.procs['api'].url}/volume/v3/{body['project']['id']}", timeout=60,
            headers={"X-Auth-Token": token, "OpenStack-API-Version": "volume 3.54"})

    def action(self, volume_id: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(f"/volumes/{volume_id}/action", json=body)

    def initialize(self, volume_id: str, host: str) -> dict[str, Any]:
        started = time.monotonic()
        resp = self.action(volume_id, {"os-initialize_connection": {"connector": {
            "host": host, "initiator": "iqn.1993-08.org.debian:01:x"}}})
        assert resp.status_code == 200, resp.text
        print(f"\nos-initialize_connection for {host} via the API process: "
              f"{time.monotonic() - started:.3f} s")
        return resp.json()["connection_info"]

    def status(self, volume_id: str) -> str:
        return self.http.get(f"/volumes/{volume_id}").json()["volume"]["status"]

    def attachment(self, volume_id: str, connector: dict[str, Any] | None) -> httpx.Response:
        body: dict[str, Any] = {"volume_uuid": volume_id, "instance_uuid": str(uuid.uuid4())}
        if connector:
            body["connector"] = connector
        return self.http.post("/attachments", json={"attachment": body})


@pytest.fixture
def cinder(hosts: Hosts) -> Iterator[Cinder]:
    cinder = Cinder(hosts)
    yield cinder
    cinder.http.close()


def assert_served_by_storage(hosts: Hosts, volume_id: str, info: dict[str, Any],
                             holder: str) -> dict[str, Any]:
    """An NBD export of the storage host's process: its record under the storage host's data
    dir, and bytes written over it land in the storage host's file."""
    assert info["driver_volume_type"] == "nbd", info
    data = info["data"]
    assert (data["exporter"], data["volume_id"], data["access_mode"]) == (
        "storage-1", volume_id, "rw")
    export = hosts.export(volume_id)
    assert export is not None and (export["port"], export["name"]) == (data["port"],
                                                                        data["export"])
    assert holder in export["holders"] and daemon_alive(export["pid"])
    assert not list((hosts.root / "api").rglob(f"{volume_id}.json"))  # no export on the API
    pattern = 0x30 + len(export["holders"]) + int(time.monotonic()) % 64
    qemu_io(nbd_url(data), f"write -P {pattern} 65536 4096")
    volume_file = hosts.root / "storage" / "volumes" / f"volume-{volume_id}.raw"
    with open(volume_file, "rb") as fh:
        fh.seek(65536)
        assert fh.read(4096) == bytes([pattern]) * 4096
    return export


def test_cinder_connection_api_on_an_api_process(hosts: Hosts, cloud: Cloud,
                                                 cinder: Cinder) -> None:
    volume_id = cloud.volume()

    # Legacy actions: an export for another host, the file's path for the storage host.
    info = cinder.initialize(volume_id, "host-b")
    export = assert_served_by_storage(hosts, volume_id, info, "host-b")
    assert cinder.initialize(volume_id, "host-b")["data"]["port"] == info["data"]["port"]
    local = cinder.initialize(volume_id, "storage-1")
    assert local["driver_volume_type"] == "file"
    assert local["data"]["device_path"] == str(
        hosts.root / "storage" / "volumes" / f"volume-{volume_id}.raw")
    resp = cinder.action(volume_id, {"os-terminate_connection": {"connector": {
        "host": "host-b"}}})
    assert resp.status_code == 202, resp.text
    assert_export_gone(hosts, volume_id, info, export["pid"])
    assert cinder.status(volume_id) == "available"
    assert hosts.query("SELECT kind FROM tasks") == []
    assert hosts.query("SELECT kind FROM connection_calls") == []

    # Attachments API: created with a connector (3.54), the storage host connects it at once.
    resp = cinder.attachment(volume_id, {"host": "host-b", "mode": "rw"})
    assert resp.status_code == 200, resp.text
    att = resp.json()["attachment"]
    assert (att["status"], att["attach_mode"]) == ("attaching", "rw")
    export = assert_served_by_storage(hosts, volume_id, att["connection_info"], att["id"])
    assert cinder.status(volume_id) == "attaching"
    assert cinder.http.delete(f"/attachments/{att['id']}").json() == {"attachments": []}
    assert cinder.status(volume_id) == "available"
    wait_for(lambda: hosts.export(volume_id), lambda e: e is None, timeout=30)
    assert_export_gone(hosts, volume_id, att["connection_info"], export["pid"])

    # Reserved, then updated with a connector, completed and deleted.
    resp = cinder.attachment(volume_id, None)
    att = resp.json()["attachment"]
    assert (resp.status_code, att["status"]) == (200, "reserved"), resp.text
    resp = cinder.http.put(f"/attachments/{att['id']}", json={"attachment": {"connector": {
        "host": "host-b", "mountpoint": "/dev/vdc"}}})
    assert resp.status_code == 200, resp.text
    updated = resp.json()["attachment"]
    assert updated["status"] == "attaching" and cinder.status(volume_id) == "attaching"
    export = assert_served_by_storage(hosts, volume_id, updated["connection_info"], att["id"])
    assert cinder.http.post(f"/attachments/{att['id']}/action",
                            json={"os-complete": {}}).status_code == 204
    assert cinder.status(volume_id) == "in-use"
    assert cinder.http.delete(f"/attachments/{att['id']}").status_code == 200
    wait_for(lambda: hosts.export(volume_id), lambda e: e is None, timeout=30)
    assert_export_gone(hosts, volume_id, updated["connection_info"], export["pid"])
    assert cinder.status(volume_id) == "available"
    assert wait_for(lambda: hosts.query("SELECT kind FROM tasks"), lambda t: t == [],
                    timeout=30) == []
    assert hosts.query("SELECT kind FROM connection_calls") == []


def test_cinder_connection_call_times_out_without_a_storage_worker(
        hosts: Hosts, cloud: Cloud) -> None:
    volume_id = cloud.volume()
    hosts.procs["api"].stop()
    hosts.start("api", role="api", rpc_response_timeout=2)
    hosts.procs["storage"].stop()
    cinder = Cinder(hosts)
    fault = {"computeFault": {"code": 500, "message": "The server has either erred or is "
                              "incapable of performing the requested operation."}}

    def timed(call: Any) -> httpx.Response:
        started = time.monotonic()
        resp = call()
        took = time.monotonic() - started
        assert 2 <= took < 5, took
        return resp

    resp = timed(lambda: cinder.action(volume_id, {"os-initialize_connection": {
        "connector": {"host": "host-b"}}}))
    assert (resp.status_code, resp.json()) == (500, fault)
    resp = timed(lambda: cinder.action(volume_id, {"os-terminate_connection": {
        "connector": {"host": "host-b"}}}))
    assert (resp.status_code, resp.json()) == (500, fault)
    resp = timed(lambda: cinder.attachment(volume_id, {"host": "host-b"}))
    assert (resp.status_code, resp.json()["computeFault"]["message"]) == (
        500, "Unable to create attachment for volume.")
    assert cinder.status(volume_id) == "available"
    assert cinder.http.get("/attachments").json()["attachments"] == []
    att = cinder.attachment(volume_id, None).json()["attachment"]
    resp = timed(lambda: cinder.http.put(f"/attachments/{att['id']}", json={
        "attachment": {"connector": {"host": "host-b"}}}))
    assert (resp.status_code, resp.json()["computeFault"]["message"]) == (
        500, "Unable to update the attachment.")
    shown = cinder.http.get(f"/attachments/{att['id']}").json()["attachment"]
    assert (shown["status"], shown["connection_info"]) == ("reserved", None)
    assert cinder.status(volume_id) == "reserved"
    # Nothing half-done: no call or task left for the storage host to act on once back.
    assert hosts.query("SELECT kind FROM tasks") == []
    assert hosts.query("SELECT kind FROM connection_calls") == []
    hosts.start("storage", **STORAGE)
    time.sleep(1)
    assert hosts.export(volume_id) is None
    cinder.http.close()


def test_storage_worker_killed_mid_call_answers_once_back(hosts: Hosts, cloud: Cloud) -> None:
    """Killed after starting the export but before answering: the restarted worker runs the
    call again, reuses that export (no second daemon) and the waiting API answers."""
    volume_id = cloud.volume()
    point = "volume.call.initialize_connection:made"
    hosts.procs["storage"].stop()
    hosts.start("storage", **STORAGE, pause_at=point)
    cinder = Cinder(hosts)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(cinder.initialize, volume_id, "host-b")
        made = wait_for(lambda: hosts.export(volume_id), bool, timeout=30)
        kill_storage_at(hosts, "volume.call.initialize_connection")
        assert daemon_alive(made["pid"]) and not answer.done()
        hosts.start("storage", **STORAGE, pause_at="")
        info = answer.result(timeout=60)
    export = assert_served_by_storage(hosts, volume_id, info, "host-b")
    assert (export["pid"], export["port"]) == (made["pid"], made["port"])
    daemons = subprocess.run(["pgrep", "-f", export["name"]], capture_output=True, text=True,
                             check=False).stdout.split()
    assert daemons == [str(made["pid"])]
    assert cinder.action(volume_id, {"os-terminate_connection": {"connector": {
        "host": "host-b"}}}).status_code == 202
    assert_export_gone(hosts, volume_id, info, made["pid"])
    assert hosts.query("SELECT kind FROM tasks") == []
    assert hosts.query("SELECT kind FROM connection_calls") == []
    cinder.http.close()
