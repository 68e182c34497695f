"""The built-in guest as a real image: seeded at bootstrap (public, protected), listed and shown
by the openstack client, booted by `server create --image`, its bytes (the bootable qcow2 disk of
``guest_image``) built on first download or volume, and ``python -m
stackvol.virt.guest_image`` failing in one line when what it needs is missing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackvol.services.images.api import BUILTIN_IMAGE_ID, BUILTIN_IMAGE_NAME
from stackvol.virt import guest_image
from tests.support.identity_helpers import osc
from tests.support.server import StackvolProcess, wait_for


def require_guest_build() -> None:
    """Building the guest needs busybox-static, syslinux, mtools... (scripts/setup installs
    them): skip without them locally, fail under CI."""
    try:
        guest_image.check_prerequisites(disk=True)
    except guest_image.GuestImageError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs the guest build tools, yet: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackvolProcess]:
    server = StackvolProcess(tmp_path_factory.mktemp("builtin") / "data").start()
    yield server
    server.stop()


def _json(done: subprocess.CompletedProcess[str]) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_listed_and_shown_by_the_openstack_client(cloud: StackvolProcess) -> None:
    for user in ("admin", "demo"):
        listed = _json(osc(cloud, "image", "list", "-f", "json", cloud=f"stackvol-{user}"))
        assert {"ID": BUILTIN_IMAGE_ID, "Name": BUILTIN_IMAGE_NAME,
                "Status": "active"} in listed, listed
    shown = _json(osc(cloud, "image", "show", BUILTIN_IMAGE_NAME, "-f", "json",
                      cloud="stackvol-demo"))
    assert shown["id"] == BUILTIN_IMAGE_ID and shown["visibility"] == "public"
    assert (shown["disk_format"], shown["container_format"]) == ("qcow2", "bare")
    assert shown["protected"] is True
    with cloud.client("admin", prefix="/v2.1") as nova:  # the Compute images proxy too
        assert nova.get(f"/images/{BUILTIN_IMAGE_ID}").json()["image"]["name"] == \
            BUILTIN_IMAGE_NAME
    # Protected: not even an admin deletes it by accident.
    refused = osc(cloud, "image", "delete", BUILTIN_IMAGE_ID)
    assert refused.returncode != 0
    with cloud.client("admin", prefix="/image") as glance:
        assert glance.delete(f"/v2/images/{BUILTIN_IMAGE_ID}").status_code == 403


def test_server_create_with_the_builtin_image(cloud: StackvolProcess) -> None:
    made = _json(osc(cloud, "server", "create", "--image", BUILTIN_IMAGE_ID, "--flavor", "1",
                     "--wait", "-f", "json", "guest-1", cloud="stackvol-demo"))
    assert made["status"] == "ACTIVE", made
    by_name = _json(osc(cloud, "server", "create", "--image", BUILTIN_IMAGE_NAME, "--flavor",
                        "1", "--wait", "-f", "json", "guest-2", cloud="stackvol-demo"))
    assert by_name["status"] == "ACTIVE", by_name
    for server in (made, by_name):
        assert osc(cloud, "server", "delete", "--wait", server["id"],
                   cloud="stackvol-demo").returncode == 0


def test_bytes_built_on_first_download_then_volumes_from_it(cloud: StackvolProcess) -> None:
    require_guest_build()
    with cloud.client("demo", prefix="/image") as glance:
        before = glance.get(f"/v2/images/{BUILTIN_IMAGE_ID}").json()
        assert before["size"] is None  # nothing built at bootstrap
        resp = glance.get(f"/v2/images/{BUILTIN_IMAGE_ID}/file", timeout=600)
        assert resp.status_code == 200, resp.text
        data = resp.content
        after = glance.get(f"/v2/images/{BUILTIN_IMAGE_ID}").json()
    assert data[:4] == b"QFI\xfb"  # a qcow2 image: the bootable disk of guest_image
    assert after["size"] == len(data) and after["checksum"] == hashlib.md5(data).hexdigest()
    assert after["virtual_size"] == guest_image.DISK_MIB * 1024 * 1024
    log = cloud.log_path.read_text()
    for step in ("building the built-in guest's disk on first use", "downloading linux-image",
                 "making the initramfs", "making its bootable qcow2 disk",
                 "the built-in guest is stored"):
        assert step in log, step

    volume = _json(osc(cloud, "volume", "create", "--image", BUILTIN_IMAGE_ID, "--size", "1",
                       "-f", "json", "from-guest", cloud="stackvol-demo"))
    shown = wait_for(lambda: _json(osc(cloud, "volume", "show", volume["id"], "-f", "json",
                                       cloud="stackvol-demo")),
                     lambda v: v["status"] not in ("creating", "downloading"), 120)
    assert shown["status"] == "available" and shown["bootable"] in (True, "true"), shown
    assert shown["volume_image_metadata"]["image_id"] == BUILTIN_IMAGE_ID
    raw = cloud.data_dir / "volumes" / f"volume-{volume['id']}.raw"
    with raw.open("rb") as disk:  # the disk's FAT boot sector, SYSLINUX's signature
        assert disk.read(512)[510:] == b"\x55\xaa"
    assert osc(cloud, "volume", "delete", volume["id"], cloud="stackvol-demo").returncode == 0


def test_a_failed_build_is_a_503_naming_the_cause(tmp_path: Path) -> None:
    blocker = tmp_path / "guest-image"
    (blocker / ".lock").mkdir(parents=True)  # the builder's lock file cannot be opened
    server = StackvolProcess(tmp_path / "data", guest_image_dir=str(blocker)).start()
    try:
        with server.client("demo", prefix="/image") as glance:
            resp = glance.get(f"/v2/images/{BUILTIN_IMAGE_ID}/file")
            assert resp.status_code == 503, resp.text
            assert "could not be built" in resp.text
            assert glance.get(f"/v2/images/{BUILTIN_IMAGE_ID}").json()["status"] == "active"
    finally:
        server.stop()


def test_guest_image_command_says_what_is_missing_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "stackvol.virt.guest_image",
                           str(tmp_path / "g"), "qcow2"], capture_output=True, text=True,
                          env={**os.environ, "PATH": str(tmp_path)}, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("guest_image: error: cannot build the built-in guest: "
                                  "missing apt-get (package apt)")
    assert "apt-get install -y" in done.stderr and not (tmp_path / "g").exists()


def test_missing_busybox_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(guest_image, "BUSYBOX", tmp_path / "no-busybox")
    assert guest_image.main([str(tmp_path / "g")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "busybox-static" in err and "Traceback" not in err
    assert guest_image.main([]) == 2
