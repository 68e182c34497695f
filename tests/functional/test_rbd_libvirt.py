"""RBD volumes in real guests: libvirt attaches them as network disks that QEMU's own librbd
client opens with the cephx key libvirt holds in a secret (no kernel rbd, no host path).

Needs a libvirt daemon (CI starts one) and Ceph (tests/support/ceph.py); skips where either
is missing.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from stackvol.storage.rbd import SECRET_NAMESPACE
from tests.functional.test_cinder_api import cinder, make_volume
from tests.functional.test_libvirt_e2e import (
    BOOT,
    attach,
    delete_server,
    detach,
    new_volume,
    running_guest,
    volume_status,
)
from tests.functional.test_rbd_api import parent_of
from tests.support import libvirt_guest as lg
from tests.support.ceph import CephCluster
from tests.support.server import StackvolProcess, wait_for


@pytest.fixture(scope="module")
def cloud(ceph: CephCluster, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[StackvolProcess]:
    with lg.libvirt_cloud(tmp_path_factory.mktemp("rbd-libvirt"),
                          before_daemons_stop=lambda: _undefine_secrets(ceph.fsid),
                          **ceph.stackvol_settings()) as proc:
        yield proc


def _undefine_secrets(fsid: str) -> None:
    """The secrets this cluster's volumes made (one per cluster and user): the cluster is gone."""
    wanted = str(uuid.uuid5(SECRET_NAMESPACE, f"{fsid}/client.stackvol"))
    conn = lg.connection()
    try:
        for secret in conn.listAllSecrets(0):
            if secret.UUIDString() == wanted:
                secret.undefine()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def admin(cloud: StackvolProcess) -> Iterator[httpx.Client]:
    with cloud.client("admin") as client:
        yield client


def rbd_disk_sources(server_id: str) -> list[dict[str, str]]:
    """The live domain's rbd network disks: their source attributes and auth."""
    conn = lg.connection()
    try:
        xml = fromstring(conn.lookupByName(f"stackvol-{server_id}").XMLDesc(0))
    finally:
        conn.close()
    found = []
    for disk in xml.iterfind("devices/disk[@type='network']"):
        source = disk.find("source")
        if source is not None and source.get("protocol") == "rbd":
            secret = disk.find("auth/secret")
            found.append({"name": source.get("name"), "user": disk.find("auth").get("username"),
                          "secret": secret.get("uuid"), "host": source.find("host").get("port")})
    return found


def assert_in_ceph(ceph: CephCluster, image: str, offset: int, pattern: str,
                   server_id: str, disk: str) -> None:
    """What the guest wrote (and flushed) is what librbd reads from the cluster; on failure,
    say what the guest itself reads there, to tell a lost write from a wrong read."""
    seen = wait_for(lambda: ceph.read(image, offset, len(pattern)),
                    lambda data: data == pattern.encode(), timeout=10, interval=0.2)
    assert seen == pattern.encode(), (
        f"librbd reads {seen!r} at {offset} of {image}; the guest reads "
        f"{lg.read_disk(server_id, disk, offset, len(pattern))!r} on /dev/{disk}")


def test_a_guest_writes_an_rbd_volume_and_reads_a_clone_of_its_snapshot(
        ceph: CephCluster, cloud: StackvolProcess, admin: httpx.Client) -> None:
    server_id = running_guest(admin, "rbd-writer")
    volume_id = new_volume(admin)
    image = f"volume-{volume_id}"
    pattern = f"stackvol-rbd-{secrets.token_hex(12)}"

    attach(admin, server_id, volume_id)
    disks = rbd_disk_sources(server_id)
    assert [d["name"] for d in disks] == [f"volumes/{image}"]
    assert disks[0]["user"] == "stackvol" and disks[0]["host"] == str(ceph.mon_port)
    disk = lg.disk_with_serial(server_id, volume_id)
    assert disk, lg.guest(server_id, "ls /sys/block; cat /sys/block/*/serial")
    lg.guest(server_id, f"printf '%s' {pattern} | dd of=/dev/{disk} bs=512 seek=4096 "
                        f"conv=notrunc,fsync 2>/dev/null && sync")
    # The guest's bytes are in Ceph, read back through librbd (not through the guest).
    assert_in_ceph(ceph, image, 4096 * 512, pattern, server_id, disk)

    detach(admin, server_id, volume_id)
    assert rbd_disk_sources(server_id) == []
    with cloud.client("admin", prefix="/v2.1") as nova:
        resp = nova.post("/os-snapshots", json={"snapshot": {"volume_id": volume_id}})
        assert resp.status_code == 200, resp.text
        snapshot_id = resp.json()["snapshot"]["id"]
        wait_for(lambda: nova.get(f"/os-snapshots/{snapshot_id}").json()["snapshot"]["status"],
                 lambda s: s == "available")
    ceph.write(image, 4096 * 512, b"X" * len(pattern))  # after the snapshot: not in the clone

    # A volume made from the snapshot is a clone; the guest reads the snapshot's bytes in it.
    with cinder(cloud, "admin") as volumes:
        clone_id = make_volume(volumes, size=1, snapshot_id=snapshot_id)["id"]
        attach(admin, server_id, clone_id)
        clone_disk = lg.disk_with_serial(server_id, clone_id)
        assert clone_disk
        assert lg.read_disk(server_id, clone_disk, 4096 * 512, len(pattern)) == pattern
        # Deleting the snapshot flattens the clone while QEMU has it open (librbd hands the
        # work to the lock owner); the guest still reads the same bytes.
        assert volumes.delete(f"/snapshots/{snapshot_id}").status_code == 202
        wait_for(lambda: volumes.get(f"/snapshots/{snapshot_id}").status_code,
                 lambda c: c == 404)
        assert parent_of(ceph, f"volume-{clone_id}") is None
        lg.guest(server_id, "echo 3 > /proc/sys/vm/drop_caches")
        assert lg.read_disk(server_id, clone_disk, 4096 * 512, len(pattern)) == pattern
        delete_server(admin, server_id)  # detaches the clone
        volume_status(admin, clone_id, "available", timeout=BOOT)
        for path in (f"/volumes/{clone_id}", f"/volumes/{volume_id}"):
            assert volumes.delete(path).status_code == 202, path
            wait_for(lambda p=path: volumes.get(p).status_code, lambda c: c == 404)
    assert not {image, f"volume-{clone_id}"} & set(ceph.images())
