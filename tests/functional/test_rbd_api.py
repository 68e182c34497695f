"""Volumes on Ceph through stackvol's APIs: a stackvol process whose only backend is ``rbd``.

Every call goes through the real HTTP faces (Cinder v3 and Nova os-volumes); what they claim is
checked in the cluster itself (tests/support/ceph.py), image by image and snapshot by snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ceph import CephCluster
from tests.support.clients import cinder
from tests.support.server import StackvolProcess, running, wait_for
from tests.support.volumes import make_volume, wait_gone, wait_snapshot, wait_volume

GiB = 1024**3


@pytest.fixture(scope="module")
def cloud(ceph: CephCluster, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[StackvolProcess]:
    with running(tmp_path_factory.mktemp("rbd") / "data", **ceph.stackvol_settings()) as proc:
        yield proc


@pytest.fixture(scope="module")
def volumes(cloud: StackvolProcess) -> Iterator[httpx.Client]:
    with cinder(cloud, "admin") as client:
        yield client


def test_volumes_snapshots_and_clones_are_rbd_images(ceph: CephCluster, cloud: StackvolProcess,
                                                      volumes: httpx.Client) -> None:
    volume = make_volume(volumes, size=1, name="on-ceph")
    image = f"volume-{volume['id']}"
    assert image in ceph.images()
    assert volume["os-vol-host-attr:host"].endswith("#ceph")
    ceph.write(image, 0, b"snapshot-me")

    resp = volumes.post("/snapshots", json={"snapshot": {"volume_id": volume["id"]}})
    assert resp.status_code == 202, resp.text
    snapshot = wait_snapshot(volumes, resp.json()["snapshot"]["id"], "available")
    assert ceph.snapshots(image) == {f"snapshot-{snapshot['id']}": True}
    ceph.write(image, 0, b"OVERWRITTEN")

    clone = make_volume(volumes, size=2, snapshot_id=snapshot["id"])
    clone_image = f"volume-{clone['id']}"
    assert ceph.parent(clone_image) == f"{image}@snapshot-{snapshot['id']}"
    assert ceph.read(clone_image, 0, 11) == b"snapshot-me"
    with ceph.image(clone_image) as img:
        assert img.size() == 2 * GiB

    resp = volumes.post(f"/volumes/{clone['id']}/action", json={"os-extend": {"new_size": 3}})
    assert resp.status_code == 202, resp.text
    wait_for(lambda: volumes.get(f"/volumes/{clone['id']}").json()["volume"]["size"],
             lambda size: size == 3)
    wait_volume(volumes, clone["id"], "available")
    with ceph.image(clone_image) as img:
        assert img.size() == 3 * GiB

    # The API refuses to delete a volume with snapshots before the driver is asked.
    assert volumes.delete(f"/volumes/{volume['id']}").status_code == 400
    # Deleting the snapshot leaves the clone whole and independent.
    assert volumes.delete(f"/snapshots/{snapshot['id']}").status_code == 202
    wait_gone(volumes, f"/snapshots/{snapshot['id']}")
    assert ceph.snapshots(image) == {}
    assert ceph.parent(clone_image) is None
    assert ceph.read(clone_image, 0, 11) == b"snapshot-me"

    for made in (volume, clone):
        assert volumes.delete(f"/volumes/{made['id']}").status_code == 202
        wait_gone(volumes, f"/volumes/{made['id']}")
    assert not {image, clone_image} & set(ceph.images())  # deletes remove the images


def test_connection_info_and_nova_volumes(ceph: CephCluster, cloud: StackvolProcess,
                                          volumes: httpx.Client) -> None:
    with cloud.client("admin") as nova:
        resp = nova.post("/os-volumes", json={"volume": {"size": 1}})
        assert resp.status_code == 200, resp.text
        volume_id = resp.json()["volume"]["id"]
        wait_for(lambda: nova.get(f"/os-volumes/{volume_id}").json()["volume"]["status"],
                 lambda s: s == "available")
        assert f"volume-{volume_id}" in ceph.images()

        resp = volumes.post(f"/volumes/{volume_id}/action", json={"os-initialize_connection": {
            "connector": {"host": "elsewhere", "initiator": "iqn.test"}}})
        assert resp.status_code == 200, resp.text
        info = resp.json()["connection_info"]
        assert info["driver_volume_type"] == "rbd"
        data = info["data"]
        assert data["name"] == f"volumes/volume-{volume_id}"
        assert (data["hosts"], data["ports"]) == (["127.0.0.1"], [str(ceph.mon_port)])
        assert data["auth_username"] == "stackvol" and data["auth_enabled"] is True
        assert data["key"] in Path(ceph.keyring_path).read_text()

        assert nova.delete(f"/os-volumes/{volume_id}").status_code == 202
        wait_for(lambda: nova.get(f"/os-volumes/{volume_id}").status_code, lambda c: c == 404)
    assert f"volume-{volume_id}" not in ceph.images()
