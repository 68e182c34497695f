"""Servers and volumes from Image service images.

Without libvirt (the session's simulated server): Nova's and Cinder's image checks on server
create, boot-from-volume and volume create, and volumes holding an image's bytes (read back
with ``qemu-img compare``). With libvirt: a bootable disk image (SYSLINUX on a FAT disk holding
the built-in guest) uploaded with ``openstack image create`` boots by BIOS from its qcow2
overlay, a kernel+ramdisk (aki/ari) image boots directly, and a volume made from the disk image
boots a server; the guest's ``/proc/cmdline`` shows which way it came up.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackvol.virt import guest_image
from tests.support import libvirt_guest as lg
from tests.support.clients import cinder
from tests.support.identity_helpers import osc
from tests.support.images import MARKER, create_image, made_image, qemu_img, same_bytes
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import IMAGE, delete_server

GiB = 1024**3


def create_server(client: httpx.Client, **fields: Any) -> httpx.Response:
    body = {"name": "img", "flavorRef": "1", "networks": "none", **fields}
    return client.post("/servers", json={"server": body},
                       headers={"OpenStack-API-Version": "compute 2.37"})


def fault_of(resp: httpx.Response) -> str:
    assert resp.status_code == 400, resp.text
    return resp.json()["badRequest"]["message"]


def wait_server(client: httpx.Client, server_id: str, wanted: str = "ACTIVE",
                timeout: float = 60.0) -> dict[str, Any]:
    found = wait_for(lambda: client.get(f"/servers/{server_id}").json()["server"],
                     lambda s: s["status"] in (wanted, "ERROR"), timeout, interval=0.05)
    assert found["status"] == wanted, found
    return found


def bfv_root(image_id: str, size: int) -> list[dict[str, Any]]:
    return [{"source_type": "image", "destination_type": "volume", "uuid": image_id,
             "boot_index": 0, "volume_size": size, "delete_on_termination": True}]


def root_volume(client: httpx.Client, server_id: str) -> str:
    attachments = client.get(f"/servers/{server_id}/os-volume_attachments").json()
    return next(a["volumeId"] for a in attachments["volumeAttachments"]
                if a["device"] == "/dev/vda")


def volume_path(server: StackvolProcess, volume_id: str) -> Path:
    found = list((server.data_dir / "volumes").glob(f"volume-{volume_id}.*"))
    assert len(found) == 1, found
    return found[0]


# --- without libvirt: the session's (simulated) server ------------------------------------


@pytest.fixture(scope="module")
def images(server: StackvolProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("images")
    small = made_image(tmp, "small")
    big = made_image(tmp, "big", virtual_mib=2048 + 64)  # > 2 GiB virtual, a few KiB of data
    return {"small_path": small, "big_path": big,
            "small": create_image(server, small, f"small-{uuid.uuid4().hex[:6]}"),
            "big": create_image(server, big, "big"),
            "queued": create_image(server, None, "queued"),
            "min_disk": create_image(server, small, "needs-5g", min_disk=5),
            "private": create_image(server, small, "admins-own", visibility="private")}


def test_server_image_faults(demo: httpx.Client, images: dict[str, Any]) -> None:
    cases = {
        str(uuid.uuid4()): "Can not find requested image",
        images["private"]: "Can not find requested image",  # another project's, private
        images["queued"]: f"Image {images['queued']} is not active.",
        images["big"]: "Flavor's disk is too small for requested image. Flavor disk is "
                       f"{GiB} bytes, image is {(2048 + 64) * 1024 * 1024} bytes.",
        images["min_disk"]: "Flavor's disk is smaller than the minimum size specified in "
                            f"image metadata. Flavor disk is {GiB} bytes, minimum size is "
                            f"{5 * GiB} bytes.",
    }
    for image_ref, message in cases.items():
        assert fault_of(create_server(demo, imageRef=image_ref)) == message
    # A bigger flavor takes the big image (m1.small: 20 GiB).
    resp = create_server(demo, imageRef=images["big"], flavorRef="2")
    assert resp.status_code == 202, resp.text
    delete_server(demo, resp.json()["server"]["id"])


def test_server_from_image_records_what_boots(server: StackvolProcess, demo: httpx.Client,
                                             images: dict[str, Any]) -> None:
    link = f"{server.url}/image/v2/images/{images['small']}"  # Nova also takes a URL
    for image_ref, boots in ((images["small"], images["small"]), (link, images["small"]),
                             (IMAGE, None)):
        resp = create_server(demo, imageRef=image_ref)
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["server"]["id"]
        wait_server(demo, server_id)
        state = json.loads((server.data_dir / "compute" / "simulated" /
                            f"{server_id}.json").read_text())
        if boots is None:  # the well-known id: the driver's built-in guest
            assert state["boot_image"] is None
        else:
            boot = state["boot_image"]
            assert boot["id"] == boots and boot["kernel"] is None
            assert boot["disk"]["disk_format"] == "qcow2"
            assert Path(boot["disk"]["path"]).read_bytes() == images["small_path"].read_bytes()
            assert boot["virtual_size"] == 64 * 1024 * 1024
        delete_server(demo, server_id)


def test_volume_from_image_on_block_storage(server: StackvolProcess,
                                            images: dict[str, Any]) -> None:
    with cinder(server, version="3.60") as client:
        unknown = str(uuid.uuid4())
        missing = client.post("/volumes", json={"volume": {"size": 1, "imageRef": unknown}})
        assert missing.status_code == 404, missing.text
        assert missing.json()["itemNotFound"]["message"] == f"Image {unknown} could not be found."
        small = client.post("/volumes", json={"volume": {"size": 2, "imageRef": images["big"]}})
        assert small.status_code == 400
        assert small.json()["badRequest"]["message"] == (
            "Invalid input received: Size of specified image 3GB is larger than volume size "
            "2GB.")
        queued = client.post("/volumes", json={"volume": {"size": 1,
                                                          "imageRef": images["queued"]}})
        assert queued.status_code == 400
        min_disk = client.post("/volumes", json={"volume": {"size": 1,
                                                            "image_id": images["min_disk"]}})
        assert "cannot be smaller than the image minDisk size 5GB" in min_disk.text

        resp = client.post("/volumes", json={"volume": {"size": 1, "name": "from-image",
                                                        "imageRef": images["small"]}})
        assert resp.status_code == 202, resp.text
        volume_id = resp.json()["volume"]["id"]
        volume = wait_for(lambda: client.get(f"/volumes/{volume_id}").json()["volume"],
                          lambda v: v["status"] in ("available", "error"))
    assert volume["status"] == "available", volume
    assert volume["bootable"] == "true"
    meta = volume["volume_image_metadata"]
    size = images["small_path"].stat().st_size
    assert meta["image_id"] == images["small"]
    assert meta["image_name"].startswith("small-")
    assert (meta["disk_format"], meta["container_format"]) == ("qcow2", "bare")
    assert (meta["size"], meta["min_disk"], meta["min_ram"]) == (str(size), "0", "0")
    path = volume_path(server, volume_id)
    same_bytes(images["small_path"], path)
    assert qemu_img("info", "-U", "--output=json", str(path)).count(f'"virtual-size": {GiB}') \
        == 1  # grown to the volume's size


def test_boot_from_volume_made_from_image(server: StackvolProcess, demo: httpx.Client,
                                          images: dict[str, Any]) -> None:
    too_small = create_server(demo, block_device_mapping_v2=bfv_root(images["big"], 1))
    assert fault_of(too_small) == (
        f"Volume is smaller than the minimum size specified in image metadata. Volume size is "
        f"{GiB} bytes, minimum size is {(2048 + 64) * 1024 * 1024} bytes.")
    unknown = create_server(demo, block_device_mapping_v2=bfv_root(str(uuid.uuid4()), 1))
    assert fault_of(unknown) == "Can not find requested image"
    queued = create_server(demo, block_device_mapping_v2=bfv_root(images["queued"], 1))
    assert fault_of(queued) == f"Image {images['queued']} is not active."

    resp = create_server(demo, block_device_mapping_v2=bfv_root(images["small"], 1))
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    wait_server(demo, server_id)
    volume_id = root_volume(demo, server_id)
    volume = demo.get(f"/os-volumes/{volume_id}").json()["volume"]
    assert volume["status"] == "in-use"
    same_bytes(images["small_path"], volume_path(server, volume_id))
    state = json.loads((server.data_dir / "compute" / "simulated" /
                        f"{server_id}.json").read_text())
    # The root volume holds the image: the driver boots it, not a copy of the image.
    assert state["boot_image"]["id"] == images["small"]
    assert state["boot_image"]["disk"] is None
    delete_server(demo, server_id)
    wait_for(lambda: demo.get(f"/os-volumes/{volume_id}").status_code, lambda c: c == 404)


# --- with libvirt: real guests ------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackvolProcess]:
    with lg.libvirt_cloud(tmp_path_factory.mktemp("libvirt-images")) as proc:
        yield proc


@pytest.fixture(scope="module")
def guest_files(cloud: StackvolProcess) -> Path:
    """The built-in guest's kernel, initramfs and bootable disk images (built once)."""
    cache = cloud.data_dir.parent / "guest-image"
    guest_image.boot_disk(cache, "qcow2")
    return cache


@pytest.fixture(scope="module")
def vadmin(cloud: StackvolProcess) -> Iterator[httpx.Client]:
    with cloud.client("admin") as client:
        yield client


def cmdline(server_id: str) -> str:
    lg.wait_agent(server_id, lg.BOOT)
    # The agent can answer a first command with nothing while the guest is still settling.
    return wait_for(lambda: lg.guest(server_id, "cat /proc/cmdline"), lambda out: out.strip(),
                    timeout=30, interval=0.5)


def overlay_of(cloud: StackvolProcess, server_id: str) -> Path:
    return cloud.data_dir / "compute" / "libvirt" / server_id / "disk"


def test_disk_image_boots_by_bios(cloud: StackvolProcess, vadmin: httpx.Client,
                                  guest_files: Path) -> None:
    name = "syslinux-guest"
    made = osc(cloud, "image", "create", "--file", str(guest_files / "boot-disk.qcow2"),
               "--disk-format", "qcow2", "--container-format", "bare", "--public",
               "-f", "json", name)
    assert made.returncode == 0, made.stderr
    image_id = json.loads(made.stdout)["id"]
    start = time.monotonic()
    created = osc(cloud, "--os-compute-api-version", "2.37", "server", "create", "--image",
                  name, "--flavor", "m1.tiny", "--nic", "none", "--wait", "-f", "json", "bios")
    active_after = time.monotonic() - start
    assert created.returncode == 0, created.stderr
    server = json.loads(created.stdout)
    assert server["status"] == "ACTIVE"
    server_id = server["id"]
    line = cmdline(server_id)
    booted_after = time.monotonic() - start
    print(f"\nserver create --wait -> ACTIVE: {active_after:.1f} s (CLI included); "
          f"guest agent answering: {booted_after:.1f} s")
    assert guest_image.DISK_MARKER in line  # SYSLINUX read it from the disk's syslinux.cfg
    assert lg.guest(server_id, "cat /sys/block/vda/size").strip() == str(GiB // 512)
    overlay = overlay_of(cloud, server_id)
    info = json.loads(qemu_img("info", "-U", "--output=json", str(overlay)))
    assert info["format"] == "qcow2" and info["virtual-size"] == GiB  # the flavor's disk
    assert Path(info["backing-filename"]).parent.name == "_base"
    assert Path(info["backing-filename"]).name == image_id

    volume = vadmin.post("/os-volumes", json={"volume": {"size": 1}}).json()["volume"]
    wait_for(lambda: vadmin.get(f"/os-volumes/{volume['id']}").json()["volume"]["status"],
             lambda s: s == "available")
    attach = vadmin.post(f"/servers/{server_id}/os-volume_attachments",
                         json={"volumeAttachment": {"volumeId": volume["id"]}})
    assert attach.status_code == 200, attach.text
    assert attach.json()["volumeAttachment"]["device"] == "/dev/vdb"
    assert lg.disk_with_serial(server_id, volume["id"]) == "vdb"

    delete_server(vadmin, server_id)
    assert f"stackvol-{server_id}" not in lg.domain_names()
    assert not overlay.exists() and not overlay.parent.exists()


def test_kernel_and_ramdisk_image_boots_directly(cloud: StackvolProcess, vadmin: httpx.Client,
                                                 guest_files: Path, tmp_path: Path) -> None:
    kernel = create_image(cloud, guest_files / "vmlinuz", "guest-kernel", disk_format="aki",
                    container_format="aki")
    ramdisk = create_image(cloud, guest_files / "initrd.img", "guest-ramdisk", disk_format="ari",
                     container_format="ari")
    root = made_image(tmp_path, "ami-root", virtual_mib=16)
    image = create_image(cloud, root, "guest-ami", kernel_id=kernel, ramdisk_id=ramdisk,
                   os_command_line="console=ttyS0 quiet stackvol.boot=ami")
    resp = create_server(vadmin, imageRef=image)
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    wait_server(vadmin, server_id, timeout=lg.BOOT)
    line = cmdline(server_id)
    assert "stackvol.boot=ami" in line and guest_image.DISK_MARKER not in line
    # vda is the image's overlay: the marker the image holds at 1 MiB reads back.
    data = lg.guest(server_id, "dd if=/dev/vda bs=1M skip=1 count=1 2>/dev/null | head -c 30")
    assert data.startswith((MARKER + b"ami-root").decode())
    delete_server(vadmin, server_id)
    assert not overlay_of(cloud, server_id).exists()


def test_volume_from_disk_image_boots(cloud: StackvolProcess, vadmin: httpx.Client,
                                      guest_files: Path) -> None:
    image = create_image(cloud, guest_files / "boot-disk.qcow2", "bfv-disk")
    resp = create_server(vadmin, block_device_mapping_v2=bfv_root(image, 1))
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    wait_server(vadmin, server_id, timeout=lg.BOOT)
    volume_id = root_volume(vadmin, server_id)
    same_bytes(guest_files / "boot-disk.qcow2", volume_path(cloud, volume_id))
    assert guest_image.DISK_MARKER in cmdline(server_id)  # SYSLINUX on the volume booted
    assert lg.disk_with_serial(server_id, volume_id) == "vda"
    assert not overlay_of(cloud, server_id).exists()  # the volume is the root disk
    delete_server(vadmin, server_id)
