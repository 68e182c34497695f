"""The file backend's snapshot copies on real files: point in time, sparse, independent, atomic."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from stackvol.storage.base import GiB, StorageError
from stackvol.storage.file import FileDriver
from tests.support.sparse import ISLANDS, WRITTEN, allocated, assert_holds, read_at, write_islands


@pytest.fixture
def driver(tmp_path: Path) -> FileDriver:
    return FileDriver(tmp_path / "data")


@pytest.fixture
def volume(driver: FileDriver) -> str:
    location = driver.create_volume("vol-1", 1)
    write_islands(Path(location))
    return location


def test_snapshot_is_a_sparse_point_in_time_copy(driver: FileDriver, volume: str) -> None:
    location = driver.create_snapshot("snap-1", "vol-1", volume)
    snap = Path(location)
    assert snap == driver.snapshots_dir / "snapshot-snap-1.raw"
    assert snap.stat().st_size == 1 * GiB
    assert_holds(snap)
    # Cost follows the data: only the islands are allocated (plus block rounding).
    assert WRITTEN <= allocated(snap) < WRITTEN + 64 * 1024
    # Later writes to the volume do not reach the snapshot.
    write_islands(Path(volume), [(offset, b"\xff" * len(data)) for offset, data in ISLANDS])
    assert_holds(snap)


def test_snapshot_survives_its_volume_and_the_other_way_round(driver: FileDriver,
                                                              volume: str) -> None:
    snap = driver.create_snapshot("snap-1", "vol-1", volume)
    driver.delete_volume("vol-1", volume)
    assert_holds(Path(snap))
    clone = driver.create_volume_from_snapshot("vol-2", 1, snap)
    driver.delete_snapshot("snap-1", snap)
    assert not Path(snap).exists()
    assert_holds(Path(clone))


def test_rerun_after_a_crash_mid_copy_succeeds_and_leaves_no_temp(driver: FileDriver,
                                                                 volume: str) -> None:
    # What a kill -9 in the middle of the copy leaves: a partial file under the temporary name.
    partial = driver.snapshots_dir / ".snapshot-snap-1.raw.part"
    partial.write_bytes(b"half a snapshot")
    location = driver.create_snapshot("snap-1", "vol-1", volume)
    assert sorted(p.name for p in driver.snapshots_dir.iterdir()) == ["snapshot-snap-1.raw"]
    assert_holds(Path(location))


def test_rerun_after_the_copy_completed_keeps_the_snapshot(driver: FileDriver,
                                                          volume: str) -> None:
    # Crash after the rename but before the database recorded it: the copy is complete; a
    # re-run must return it unchanged, not take a new copy of the (since changed) volume.
    first = driver.create_snapshot("snap-1", "vol-1", volume)
    write_islands(Path(volume), [(0, b"B" * 4096)])
    assert driver.create_snapshot("snap-1", "vol-1", volume) == first
    assert_holds(Path(first))


def test_volume_from_snapshot_grows_sparsely(driver: FileDriver, volume: str) -> None:
    snap = driver.create_snapshot("snap-1", "vol-1", volume)
    location = driver.create_volume_from_snapshot("vol-2", 3, snap)
    path = Path(location)
    assert path == driver.path_for("vol-2")
    assert path.stat().st_size == 3 * GiB
    assert_holds(path)
    assert read_at(path, 2 * GiB, 4096) == bytes(4096)
    assert allocated(path) < WRITTEN + 64 * 1024
    # Idempotent: a second run (after a crash) answers the same complete volume.
    assert driver.create_volume_from_snapshot("vol-2", 3, snap) == location
    assert not any(p.name.endswith(".part") for p in driver.volumes_dir.iterdir())


def test_delete_snapshot_is_idempotent_and_clears_leftovers(driver: FileDriver,
                                                            volume: str) -> None:
    snap = driver.create_snapshot("snap-1", "vol-1", volume)
    (driver.snapshots_dir / ".snapshot-snap-1.raw.part").write_bytes(b"x")
    driver.delete_snapshot("snap-1", snap)
    driver.delete_snapshot("snap-1", snap)
    driver.delete_snapshot("snap-1", None)  # an ``error`` snapshot never got a location
    assert list(driver.snapshots_dir.iterdir()) == []


def test_missing_source_fails_cleanly(driver: FileDriver) -> None:
    with pytest.raises(StorageError, match=r"snapshot-snap-9\.raw"):
        driver.create_snapshot("snap-9", "vol-9", str(driver.path_for("vol-9")))
    assert list(driver.snapshots_dir.iterdir()) == []


def _qemu_info(path: Path) -> dict:
    done = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def test_qcow2_snapshots_are_flat_independent_images(tmp_path: Path) -> None:
    driver = FileDriver(tmp_path / "data", volume_format="qcow2")
    raw = tmp_path / "seed.raw"
    raw.write_bytes(b"")
    os.truncate(raw, 1 * GiB)
    write_islands(raw)
    volume = driver.path_for("vol-1")
    subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2", str(raw), str(volume)],
                   check=True)

    snap = Path(driver.create_snapshot("snap-1", "vol-1", str(volume)))
    assert snap.name == "snapshot-snap-1.qcow2"
    info = _qemu_info(snap)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    driver.delete_volume("vol-1", str(volume))

    clone = Path(driver.create_volume_from_snapshot("vol-2", 2, str(snap)))
    driver.delete_snapshot("snap-1", str(snap))
    info = _qemu_info(clone)
    assert info["virtual-size"] == 2 * GiB and "backing-filename" not in info
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-q", "-O", "raw", str(clone), str(back)], check=True)
    assert_holds(back)
