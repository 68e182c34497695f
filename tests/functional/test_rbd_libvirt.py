"""RBD volumes in real guests: libvirt attaches them as network disks that QEMU's own librbd
client opens with the cephx key libvirt holds in a secret (no kernel rbd, no host path).

Needs a libvirt daemon (CI starts one) and Ceph (tests/support/ceph.py); skips where either
is missing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.support import libvirt_guest as lg
from tests.support.ceph import CephCluster
from tests.support.clients import cinder
from tests.support.rbd_guests import assert_in_ceph, rbd_disk_sources, undefine_secrets
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import delete_server
from tests.support.volumes import (
    attach_and_wait,
    detach_and_wait,
    make_volume,
    new_volume,
    volume_status,
)


@pytest.fixture(scope="module")
def cloud(ceph: CephCluster, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[StackvolProcess]:
    with lg.libvirt_cloud(tmp_path_factory.mktemp("rbd-libvirt"),
                          before_daemons_stop=lambda: undefine_secrets(ceph.fsid),
                          **ceph.stackvol_settings()) as proc:
        yield proc


@pytest.fixture(scope="module")
def admin(cloud: StackvolProcess) -> Iterator[httpx.Client]:
    with cloud.client("admin") as client:
        yield client


def test_a_guest_writes_an_rbd_volume_and_reads_a_clone_of_its_snapshot(
        ceph: CephCluster, cloud: StackvolProcess, admin: httpx.Client) -> None:
    server_id = lg.running_guest(admin, "rbd-writer")
    volume_id = new_volume(admin)
    image = f"volume-{volume_id}"
    pattern = f"stackvol-rbd-{secrets.token_hex(12)}"

    attach_and_wait(admin, server_id, volume_id)
    disks = rbd_disk_sources(server_id)
    assert [d["name"] for d in disks] == [f"volumes/{image}"]
    assert disks[0]["user"] == "stackvol" and disks[0]["host"] == str(ceph.mon_port)
    disk = lg.disk_with_serial(server_id, volume_id)
    assert disk, lg.guest(server_id, "ls /sys/block; cat /sys/block/*/serial")
    lg.guest(server_id, f"printf '%s' {pattern} | dd of=/dev/{disk} bs=512 seek=4096 "
                        f"conv=notrunc,fsync 2>/dev/null && sync")
    # The guest's bytes are in Ceph, read back through librbd (not through the guest).
    assert_in_ceph(ceph, image, 4096 * 512, pattern, server_id, disk)

    detach_and_wait(admin, server_id, volume_id)
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
        attach_and_wait(admin, server_id, clone_id)
        clone_disk = lg.disk_with_serial(server_id, clone_id)
        assert clone_disk
        assert lg.read_disk(server_id, clone_disk, 4096 * 512, len(pattern)) == pattern
        # Deleting the snapshot flattens the clone while QEMU has it open (librbd hands the
        # work to the lock owner); the guest still reads the same bytes.
        assert volumes.delete(f"/snapshots/{snapshot_id}").status_code == 202
        wait_for(lambda: volumes.get(f"/snapshots/{snapshot_id}").status_code,
                 lambda c: c == 404)
        assert ceph.parent(f"volume-{clone_id}") is None
        lg.guest(server_id, "echo 3 > /proc/sys/vm/drop_caches")
        assert lg.read_disk(server_id, clone_disk, 4096 * 512, len(pattern)) == pattern
        delete_server(admin, server_id)  # detaches the clone
        volume_status(admin, clone_id, "available", timeout=lg.BOOT)
        for path in (f"/volumes/{clone_id}", f"/volumes/{volume_id}"):
            assert volumes.delete(path).status_code == 202, path
            wait_for(lambda p=path: volumes.get(p).status_code, lambda c: c == 404)
    assert not {image, f"volume-{clone_id}"} & set(ceph.images())
