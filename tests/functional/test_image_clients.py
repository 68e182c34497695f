"""Today's clients, unchanged, against the Image service: python-openstackclient (a subprocess,
with the server's clouds.yaml), openstacksdk's image and compute proxies, and novaclient."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest

from tests.support.openstack_clients import nova, osc, sdk_connection
from tests.support.server import StackvolProcess

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img (qemu-utils) is not installed")


def qcow2(path: Path, size: str = "32M") -> Path:
    raw = path.with_suffix(".raw")
    raw.write_bytes(uuid.uuid4().bytes * 65536)  # 1 MiB of data inside the image
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw),
                    str(path)], check=True)
    subprocess.run(["qemu-img", "resize", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cloud(server: StackvolProcess,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[openstack.connection.Connection]:
    with sdk_connection(server, monkeypatch, "demo") as conn:
        yield conn


def test_openstackclient_image_lifecycle(server: StackvolProcess, tmp_path: Path) -> None:
    disk = qcow2(tmp_path / "osc.qcow2")
    name = f"osc-img-{uuid.uuid4().hex[:6]}"
    created = osc(server, "image", "create", "--file", str(disk), "--disk-format", "qcow2",
                  "--container-format", "bare", "--property", "os_distro=cirros", name,
                  "-f", "json")
    assert created["name"] == name and created["status"] == "active"
    assert created["size"] == disk.stat().st_size
    assert created["checksum"] == hashlib.md5(disk.read_bytes()).hexdigest()

    listed = osc(server, "image", "list", "-f", "json")
    assert created["id"] in [image["ID"] for image in listed]
    shown = osc(server, "image", "show", name, "-f", "json")
    assert shown["id"] == created["id"] and shown["virtual_size"] == 32 * 1024 * 1024
    assert shown["properties"]["os_distro"] == "cirros"

    saved = tmp_path / "saved.qcow2"
    osc(server, "image", "save", "--file", str(saved), name)
    assert sha256(saved) == sha256(disk)

    osc(server, "image", "set", "--property", "hw_disk_bus=virtio", "--min-ram", "128", name)
    shown = osc(server, "image", "show", name, "-f", "json")
    assert shown["properties"]["hw_disk_bus"] == "virtio" and shown["min_ram"] == 128

    osc(server, "image", "delete", name)
    assert created["id"] not in [i["ID"] for i in osc(server, "image", "list", "-f", "json")]
    assert not (server.data_dir / "images" / created["id"]).exists()


def test_openstacksdk_images_and_compute_proxy(cloud: openstack.connection.Connection,
                                               tmp_path: Path) -> None:
    disk = qcow2(tmp_path / "sdk.qcow2")
    name = f"sdk-img-{uuid.uuid4().hex[:6]}"
    image = cloud.create_image(name, filename=str(disk), disk_format="qcow2",
                               container_format="bare", wait=True, timeout=60)
    assert image.status == "active" and image.size == disk.stat().st_size
    assert image.checksum == hashlib.md5(disk.read_bytes()).hexdigest()
    assert name in [i.name for i in cloud.image.images()]
    fetched = cloud.image.get_image(image.id)
    assert fetched.virtual_size == 32 * 1024 * 1024

    downloaded = tmp_path / "down.qcow2"
    cloud.image.download_image(fetched, output=str(downloaded))
    assert sha256(downloaded) == sha256(disk)

    # Compute's /images proxy (no microversion header: 2.1) sees the same images.
    proxied = {i.id: i for i in cloud.compute.images()}
    assert {i.id for i in cloud.image.images()} == set(proxied)
    detail = cloud.compute.get_image(image.id)
    assert detail.status == "ACTIVE" and detail.size == disk.stat().st_size

    kernel_id = str(uuid.uuid4())
    cloud.image.update_image(image, kernel_id=kernel_id, os_distro="cirros")
    updated = cloud.image.get_image(image.id)
    assert (updated.os_distro, updated.kernel_id) == ("cirros", kernel_id)
    cloud.image.delete_image(image)
    assert cloud.image.find_image(name) is None


def test_novaclient_sees_images_through_both_services(server: StackvolProcess,
                                                      cloud: openstack.connection.Connection,
                                                      tmp_path: Path) -> None:
    name = f"nova-img-{uuid.uuid4().hex[:6]}"
    image = cloud.create_image(name, filename=str(qcow2(tmp_path / "n.qcow2")),
                               disk_format="qcow2", container_format="bare", wait=True)
    client = nova(server, "2.35")
    assert client.glance.find_image(name).id == image.id  # novaclient asks the Image service
    assert client.glance.find_image(image.id).name == name
    cloud.image.delete_image(image)
