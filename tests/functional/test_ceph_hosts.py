"""Ceph across hosts: an RBD volume written by a guest on one compute host, snapshotted, cloned,
and the clone read by a guest on another compute host.

Four processes on one PostgreSQL stand in for four hosts, each with its own data directory: an
API process, a volume worker for the ``ceph`` backend (host ``storage-1``), and two compute
workers on libvirt (``host-a`` and ``host-b``). No host holds a volume's bytes: QEMU on each
compute host opens the RBD image itself (librbd, cephx secret in libvirt), so a volume made
anywhere attaches anywhere. Needs libvirt and Ceph (both started by CI); skips where either is
missing locally.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import libvirt_guest as lg
from tests.support import postgres
from tests.support.ceph import CephCluster
from tests.support.rbd_guests import assert_in_ceph, rbd_disk_sources, undefine_secrets
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import IMAGE

FAST = {"task_lease_seconds": 5, "task_poll_seconds": 0.2, "heartbeat_seconds": 0.5,
        "service_down_seconds": 5}
COMPUTE_HOSTS = ("host-a", "host-b")
OFFSET = 8192 * 512  # where the guest writes its pattern


@pytest.fixture(scope="module")
def hosts(ceph: CephCluster, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, StackvolProcess]]:
    lg.require_libvirt()
    root = tmp_path_factory.mktemp("ceph-hosts")
    common: dict[str, Any] = {
        "database_url": postgres.shared_cluster().database(f"ceph_{uuid.uuid4().hex[:12]}"),
        **FAST, **ceph.stackvol_settings(), **lg.libvirt_settings(root)}
    roles = {"api": {"role": "api"},
             "storage-1": {"role": "volume", "storage_backend": "ceph",
                           "compute_host": "storage-1"},
             **{host: {"role": "compute", "compute_host": host} for host in COMPUTE_HOSTS}}
    procs = {name: StackvolProcess(root / name, log_name=name, worker_name=name,
                                   **common, **settings) for name, settings in roles.items()}
    try:
        procs["api"].start(timeout=120)  # the first start creates the schema and accounts
        with concurrent.futures.ThreadPoolExecutor(len(procs)) as pool:
            for started in [pool.submit(proc.start, timeout=180)
                            for name, proc in procs.items() if name != "api"]:
                started.result()
        yield procs
    finally:
        lg.delete_all_servers(procs["api"], timeout=90)
        for proc in procs.values():
            proc.stop()
        for host in COMPUTE_HOSTS:
            lg.destroy_domains_of(procs[host].data_dir)
        undefine_secrets(ceph.fsid)
        lg.stop_started_daemons()


@pytest.fixture(scope="module")
def nova(hosts: dict[str, StackvolProcess]) -> Iterator[httpx.Client]:
    with hosts["api"].client("admin") as client:
        client.headers["OpenStack-API-Version"] = "compute 2.35"  # os-snapshots, hosts shown
        yield client


def boot_on_next_host(nova: httpx.Client, name: str) -> tuple[str, str]:
    """A running guest; the API places it on the compute host with the fewest servers."""
    resp = nova.post("/servers", json={"server": {"name": name, "imageRef": IMAGE,
                                                  "flavorRef": lg.FLAVOR}})
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    server = wait_for(lambda: nova.get(f"/servers/{server_id}").json()["server"],
                      lambda s: s["status"] in ("ACTIVE", "ERROR"), lg.BOOT, interval=0.2)
    assert server["status"] == "ACTIVE", server
    lg.wait_agent(server_id, lg.BOOT)
    return server_id, server["OS-EXT-SRV-ATTR:host"]


def wait_status(nova: httpx.Client, path: str, key: str, wanted: str,
                timeout: float = 60) -> dict[str, Any]:
    found = wait_for(lambda: nova.get(path).json()[key],
                     lambda item: item["status"] in (wanted, "error"), timeout, interval=0.1)
    assert found["status"] == wanted, found
    return found


def volume(nova: httpx.Client, **extra: Any) -> str:
    resp = nova.post("/os-volumes", json={"volume": {"size": 1, **extra}})
    assert resp.status_code == 200, resp.text
    volume_id = resp.json()["volume"]["id"]
    wait_status(nova, f"/os-volumes/{volume_id}", "volume", "available")
    return volume_id


def attach(nova: httpx.Client, server_id: str, volume_id: str) -> str:
    """Attach and return the guest's device for the volume (found by its serial)."""
    resp = nova.post(f"/servers/{server_id}/os-volume_attachments",
                     json={"volumeAttachment": {"volumeId": volume_id}})
    assert resp.status_code == 200, resp.text
    wait_status(nova, f"/os-volumes/{volume_id}", "volume", "in-use")
    disk = lg.disk_with_serial(server_id, volume_id)
    assert disk, lg.guest(server_id, "ls /sys/block; cat /sys/block/*/serial")
    return disk


def detach(nova: httpx.Client, server_id: str, volume_id: str) -> None:
    resp = nova.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}")
    assert resp.status_code == 202, resp.text
    wait_status(nova, f"/os-volumes/{volume_id}", "volume", "available")


def gone(nova: httpx.Client, path: str, timeout: float = 90) -> None:
    found = wait_for(lambda: nova.get(path), lambda r: r.status_code == 404, timeout,
                     interval=0.2)
    assert found.status_code == 404, f"{path}: {found.text}"


def test_a_clone_of_a_snapshot_carries_the_bytes_to_a_guest_on_another_host(
        ceph: CephCluster, hosts: dict[str, StackvolProcess], nova: httpx.Client) -> None:
    writer, writer_host = boot_on_next_host(nova, "writer")
    reader, reader_host = boot_on_next_host(nova, "reader")
    assert {writer_host, reader_host} == set(COMPUTE_HOSTS)

    # A thin RBD volume: the storage host made an image, no file exists anywhere.
    volume_id = volume(nova)
    image = f"volume-{volume_id}"
    assert image in ceph.images()
    assert not list(Path(hosts["storage-1"].data_dir).rglob(f"*{volume_id}*"))

    pattern = f"stackvol-ceph-{secrets.token_hex(16)}"
    disk = attach(nova, writer, volume_id)
    assert [d["name"] for d in rbd_disk_sources(writer)] == [f"{ceph.pool}/{image}"]
    lg.guest(writer, f"printf '%s' {pattern} | dd of=/dev/{disk} bs=512 seek={OFFSET // 512} "
                     f"conv=notrunc,fsync 2>/dev/null && sync")
    assert_in_ceph(ceph, image, OFFSET, pattern, writer, disk)
    detach(nova, writer, volume_id)

    resp = nova.post("/os-snapshots", json={"snapshot": {"volume_id": volume_id,
                                                         "display_name": "before"}})
    assert resp.status_code == 200, resp.text
    snapshot_id = resp.json()["snapshot"]["id"]
    wait_status(nova, f"/os-snapshots/{snapshot_id}", "snapshot", "available")
    # The original changes after the snapshot; the clone must not see it.
    overwrite = attach(nova, writer, volume_id)
    lg.guest(writer, f"printf '%s' {'X' * len(pattern)} | dd of=/dev/{overwrite} bs=512 "
                     f"seek={OFFSET // 512} conv=notrunc,fsync 2>/dev/null && sync")
    assert lg.read_disk(writer, overwrite, OFFSET, len(pattern)) == "X" * len(pattern)

    clone_id = volume(nova, snapshot_id=snapshot_id)
    clone_disk = attach(nova, reader, clone_id)  # on the other compute host
    assert [d["name"] for d in rbd_disk_sources(reader)] == [f"{ceph.pool}/volume-{clone_id}"]
    assert lg.read_disk(reader, clone_disk, OFFSET, len(pattern)) == pattern

    # Everything goes, one step after the other (each waits for the last to finish: a
    # hypervisor lets go of an image a moment after its server is gone), and nothing stays
    # in the pool.
    detach(nova, reader, clone_id)
    detach(nova, writer, volume_id)
    for server_id in (writer, reader):
        assert nova.delete(f"/servers/{server_id}").status_code == 204
        gone(nova, f"/servers/{server_id}")
    for path in (f"/os-volumes/{clone_id}", f"/os-snapshots/{snapshot_id}",
                 f"/os-volumes/{volume_id}"):
        assert nova.delete(path).status_code == 202, path
        gone(nova, path)
    assert not {image, f"volume-{clone_id}"} & set(ceph.images())
