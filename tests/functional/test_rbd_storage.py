"""The rbd storage driver against a real Ceph cluster (tests/support/ceph.py: one mon, one
memstore OSD).

Bytes are written and read through librbd as client.admin, next to the driver (which connects
as client.stackvol with ``profile rbd`` caps), so each test checks what Ceph really holds.
"""

from __future__ import annotations

import configparser
import uuid
from collections.abc import Iterator

import pytest

from stackvol.storage.base import GiB, StorageError
from stackvol.storage.rbd import SECRET_NAMESPACE, RbdDriver
from tests.support.ceph import CephCluster

MiB = 1024**2


@pytest.fixture
def driver(ceph: CephCluster) -> Iterator[RbdDriver]:
    made = RbdDriver.from_options("ceph", ceph.backend_options())
    yield made
    made.close()


@pytest.fixture(autouse=True)
def nothing_left(ceph: CephCluster) -> Iterator[None]:
    """Each test removes the images it made (another module's leftovers are not its own)."""
    before = set(ceph.images())
    yield
    assert set(ceph.images()) <= before, "the test left RBD images behind"


def vid() -> str:
    return str(uuid.uuid4())


def test_a_new_volume_is_thin_and_layered(ceph: CephCluster, driver: RbdDriver) -> None:
    import rbd

    volume_id = vid()
    location = driver.create_volume(volume_id, 10)
    assert location == f"volume-{volume_id}"
    assert driver.volume_exists(volume_id, location)
    with ceph.image(location) as img:
        assert img.size() == 10 * GiB
        assert img.features() & rbd.RBD_FEATURE_LAYERING
    assert ceph.used_bytes(location) == 0  # no object until written
    ceph.write(location, 5 * GiB, b"x" * 4096)
    assert 0 < ceph.used_bytes(location) <= 4 * MiB  # one object, not 10 GiB
    assert driver.create_volume(volume_id, 10) == location  # a re-run is a no-op
    driver.delete_volume(volume_id, location)
    assert not driver.volume_exists(volume_id, location)
    driver.delete_volume(volume_id, location)  # already gone: not an error
    driver.delete_volume(volume_id, None)


def test_a_clone_reads_the_snapshot_not_later_writes(ceph: CephCluster,
                                                     driver: RbdDriver) -> None:
    volume_id, snapshot_id, clone_id = vid(), vid(), vid()
    location = driver.create_volume(volume_id, 1)
    ceph.write(location, 3 * MiB, b"before-snapshot")
    snap = driver.create_snapshot(snapshot_id, volume_id, location)
    assert snap == f"{location}@snapshot-{snapshot_id}"
    assert driver.create_snapshot(snapshot_id, volume_id, location) == snap  # re-run
    with ceph.image(location) as img:
        assert [s["name"] for s in img.list_snaps()] == [f"snapshot-{snapshot_id}"]
        assert img.is_protected_snap(f"snapshot-{snapshot_id}")
    ceph.write(location, 3 * MiB, b"AFTER--SNAPSHOT")

    clone = driver.create_volume_from_snapshot(clone_id, 2, snap)
    assert clone == f"volume-{clone_id}"
    assert driver.create_volume_from_snapshot(clone_id, 2, snap) == clone  # re-run
    assert ceph.read(clone, 3 * MiB, 15) == b"before-snapshot"
    assert ceph.read(location, 3 * MiB, 15) == b"AFTER--SNAPSHOT"
    with ceph.image(clone) as img:
        assert img.size() == 2 * GiB  # grown to the size asked for
    assert ceph.parent_spec(clone)["image_name"] == location  # copy-on-write, not a copy
    assert ceph.used_bytes(clone) == 0

    # The clone has a life of its own.
    ceph.write(clone, 3 * MiB, b"written-to-clone")
    assert ceph.read(location, 3 * MiB, 15) == b"AFTER--SNAPSHOT"
    assert ceph.read(location, 3 * MiB, 15, snapshot=f"snapshot-{snapshot_id}") == \
        b"before-snapshot"
    for image_id, image in ((clone_id, clone), (volume_id, location)):
        if image == location:
            driver.delete_snapshot(snapshot_id, snap)
        driver.delete_volume(image_id, image)


def test_deleting_a_snapshot_flattens_its_clones(ceph: CephCluster, driver: RbdDriver) -> None:
    volume_id, snapshot_id, clone_id = vid(), vid(), vid()
    location = driver.create_volume(volume_id, 1)
    ceph.write(location, 0, b"parent-bytes")
    snap = driver.create_snapshot(snapshot_id, volume_id, location)
    clone = driver.create_volume_from_snapshot(clone_id, 1, snap)
    assert ceph.parent_spec(clone) is not None

    driver.delete_snapshot(snapshot_id, snap)
    assert ceph.parent_spec(clone) is None  # independent now
    assert ceph.read(clone, 0, 12) == b"parent-bytes"  # the shared bytes were copied
    with ceph.image(location) as img:
        assert list(img.list_snaps()) == []
    driver.delete_snapshot(snapshot_id, snap)  # already gone: not an error
    driver.delete_volume(volume_id, location)  # nothing depends on it any more
    assert ceph.read(clone, 0, 12) == b"parent-bytes"
    driver.delete_volume(clone_id, clone)


def test_a_volume_with_snapshots_is_not_deleted(ceph: CephCluster, driver: RbdDriver) -> None:
    volume_id, snapshot_id = vid(), vid()
    location = driver.create_volume(volume_id, 1)
    driver.create_snapshot(snapshot_id, volume_id, location)
    with pytest.raises(StorageError, match=f"still has snapshots .*snapshot-{snapshot_id}"):
        driver.delete_volume(volume_id, location)
    assert driver.volume_exists(volume_id, location)
    # A snapshot whose location was lost is found by its name.
    driver.delete_snapshot(snapshot_id, None)
    driver.delete_volume(volume_id, location)
    assert not driver.volume_exists(volume_id, location)


def test_flatten_when_configured_or_too_deep(ceph: CephCluster) -> None:
    flat = RbdDriver.from_options("flat", ceph.backend_options(
        rbd_flatten_volume_from_snapshot="true"))
    shallow = RbdDriver.from_options("shallow", ceph.backend_options(rbd_max_clone_depth=1))
    base, s1, c1, s2, c2, c3 = (vid() for _ in range(6))
    base_loc = shallow.create_volume(base, 1)
    ceph.write(base_loc, 0, b"generation-0")
    snap1 = shallow.create_snapshot(s1, base, base_loc)

    flattened = flat.create_volume_from_snapshot(c3, 1, snap1)
    assert ceph.parent_spec(flattened) is None
    assert ceph.read(flattened, 0, 12) == b"generation-0"

    first = shallow.create_volume_from_snapshot(c1, 1, snap1)  # depth 1: kept as a clone
    assert ceph.parent_spec(first) is not None
    snap2 = shallow.create_snapshot(s2, c1, first)
    second = shallow.create_volume_from_snapshot(c2, 1, snap2)  # depth 2 > 1: flattened
    assert ceph.parent_spec(second) is None
    assert ceph.read(second, 0, 12) == b"generation-0"

    for snapshot_id, snap in ((s2, snap2), (s1, snap1)):
        shallow.delete_snapshot(snapshot_id, snap)
    for volume_id, image in ((c2, second), (c1, first), (c3, flattened), (base, base_loc)):
        shallow.delete_volume(volume_id, image)
    for made in (flat, shallow):
        made.close()


def test_extend_grows_and_never_shrinks(ceph: CephCluster, driver: RbdDriver) -> None:
    volume_id = vid()
    location = driver.create_volume(volume_id, 1)
    ceph.write(location, 0, b"keep-me")
    driver.extend_volume(volume_id, location, 3)
    driver.extend_volume(volume_id, location, 3)  # re-run
    driver.extend_volume(volume_id, location, 2)  # smaller: never shrinks
    with ceph.image(location) as img:
        assert img.size() == 3 * GiB
    assert ceph.read(location, 0, 7) == b"keep-me"
    driver.delete_volume(volume_id, location)
    with pytest.raises(StorageError, match="does not exist"):
        driver.extend_volume(volume_id, location, 4)
    with pytest.raises(StorageError, match="does not exist"):
        driver.create_snapshot(vid(), volume_id, location)
    with pytest.raises(StorageError, match="does not exist"):
        driver.create_volume_from_snapshot(vid(), 1, f"{location}@snapshot-{vid()}")


def test_connection_info_reaches_the_image_as_the_cephx_user(ceph: CephCluster,
                                                            driver: RbdDriver) -> None:
    volume_id = vid()
    location = driver.create_volume(volume_id, 1)
    info = driver.connection_info(volume_id, location).as_dict()
    keyring = configparser.ConfigParser()
    keyring.read(ceph.keyring_path)
    assert info == {"driver_volume_type": "rbd", "data": {
        "name": f"volumes/{location}", "hosts": ["127.0.0.1"], "ports": [str(ceph.mon_port)],
        "auth_enabled": True, "auth_username": "stackvol", "secret_type": "ceph",
        "secret_uuid": str(uuid.uuid5(SECRET_NAMESPACE, f"{ceph.fsid}/client.stackvol")),
        "key": keyring.get("client.stackvol", "key"), "cluster_name": "ceph",
        "volume_id": volume_id}}
    # Without rbd_keyring the key is found through ceph.conf's keyring setting.
    options = {k: v for k, v in ceph.backend_options().items() if k != "rbd_keyring"}
    other = RbdDriver.from_options("other", {**options, "rbd_secret_uuid": str(uuid.UUID(
        int=1))})
    data = other.connection_info(volume_id, location).data
    assert data["key"] == info["data"]["key"]
    assert data["secret_uuid"] == "00000000-0000-0000-0000-000000000001"
    other.close()
    # What the connection info says really opens the image, as a client on another host would.
    import rados
    import rbd

    client = rados.Rados(rados_id="stackvol", conf={
        "mon_host": f"{info['data']['hosts'][0]}:{info['data']['ports'][0]}",
        "key": info["data"]["key"], "keyring": "/dev/null"})
    client.connect(timeout=30)
    try:
        pool, image = info["data"]["name"].split("/")
        with client.open_ioctx(pool) as ioctx, rbd.Image(ioctx, image) as img:
            img.write(b"from-elsewhere", 0)
    finally:
        client.shutdown()
    assert ceph.read(location, 0, 14) == b"from-elsewhere"
    driver.delete_volume(volume_id, location)


def test_bad_options_and_missing_pools_fail_clearly(ceph: CephCluster) -> None:
    with pytest.raises(ValueError, match="unknown options rbd_poool"):
        RbdDriver.from_options("x", {"rbd_poool": "volumes"})
    with pytest.raises(ValueError, match="not a boolean"):
        RbdDriver.from_options("x", ceph.backend_options(rbd_flatten_volume_from_snapshot="x"))
    nowhere = RbdDriver.from_options("x", ceph.backend_options(rbd_pool="no-such-pool"))
    with pytest.raises(StorageError, match="pool 'no-such-pool' does not exist"):
        nowhere.create_volume(vid(), 1)
    nowhere.close()
    no_conf = RbdDriver.from_options("x", {"rbd_ceph_conf": "/nonexistent/ceph.conf",
                                           "rbd_connect_timeout": 2})
    with pytest.raises(StorageError, match="cannot connect to Ceph"):
        no_conf.create_volume(vid(), 1)
