"""Volume → image (``os-volume_upload_image``) on the real server: the image record goes
queued → saving → active while the volume is ``uploading``, the image's bytes are the volume's
(``qemu-img compare``) in the format asked for, an attached volume needs ``force``, and
python-openstackclient's ``image create --volume`` and ``image save`` work on the result."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import cinder
from tests.support.openstack_clients import osc
from tests.support.server import StackvolProcess, running, wait_for
from tests.support.servers import new_server
from tests.support.volumes import make_volume, volume_file, wait_volume

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img (qemu-utils) is not installed")
UPLOAD_KEYS = {"id", "updated_at", "status", "display_description", "size", "volume_type",
               "image_id", "container_format", "disk_format", "image_name"}
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def vdemo(server: StackvolProcess) -> Iterator[httpx.Client]:
    with cinder(server, "demo", "3.1") as client:
        yield client


@pytest.fixture(scope="module")
def glance(server: StackvolProcess) -> Iterator[httpx.Client]:
    with server.client("demo", prefix="/image") as client:
        yield client


def fill(path: Path) -> bytes:
    """Write recognisable data at a few offsets of a volume's raw file (the rest stays holes)."""
    data = os.urandom(MiB)
    with open(path, "r+b") as fh:
        for offset in (0, 7 * MiB + 512, 300 * MiB):
            fh.seek(offset)
            fh.write(data)
    return data


def upload(client: httpx.Client, volume_id: str, **fields: Any) -> httpx.Response:
    return client.post(f"/volumes/{volume_id}/action",
                       json={"os-volume_upload_image": fields})


def wait_image(glance: httpx.Client, image_id: str) -> dict[str, Any]:
    image = wait_for(lambda: glance.get(f"/v2/images/{image_id}").json(),
                     lambda i: i.get("status") == "active", timeout=60)
    assert image["status"] == "active", image
    return image


def download(glance: httpx.Client, image_id: str, target: Path) -> Path:
    with glance.stream("GET", f"/v2/images/{image_id}/file") as resp:
        assert resp.status_code == 200
        with open(target, "wb") as fh:
            for chunk in resp.iter_bytes():
                fh.write(chunk)
    return target


def same_disk(volume: Path, image: Path, image_format: str) -> None:
    done = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", image_format, str(volume),
                           str(image)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("disk_format", ["qcow2", "raw"])
def test_upload_copies_the_volume_into_an_active_image(
        server: StackvolProcess, vdemo: httpx.Client, glance: httpx.Client, tmp_path: Path,
        disk_format: str) -> None:
    vol = make_volume(vdemo, name="to-image", description="source")
    source = volume_file(server, vol["id"])
    fill(source)
    name = f"from-volume-{uuid.uuid4().hex[:6]}"
    resp = upload(vdemo, vol["id"], image_name=name, disk_format=disk_format,
                  container_format="bare", visibility="private", protected=False)
    assert resp.status_code == 202, resp.text
    body = resp.json()["os-volume_upload_image"]
    assert set(body) == UPLOAD_KEYS | {"visibility", "protected"}
    assert (body["id"], body["status"], body["image_name"], body["disk_format"],
            body["container_format"], body["size"], body["display_description"],
            body["visibility"], body["protected"]) == (
        vol["id"], "uploading", name, disk_format, "bare", 1, "source", "private", False)
    assert body["volume_type"]["name"] == vol["volume_type"]

    image = wait_image(glance, body["image_id"])
    assert (image["name"], image["disk_format"], image["container_format"],
            image["visibility"], image["virtual_size"]) == (
        name, disk_format, "bare", "private", 1024 * MiB)
    wait_volume(vdemo, vol["id"], "available")
    saved = download(glance, image["id"], tmp_path / f"image.{disk_format}")
    assert saved.stat().st_size == image["size"]
    same_disk(source, saved, disk_format)
    if disk_format == "qcow2":  # holes stay out of the image
        assert image["size"] < 16 * MiB
    # The image boots a new volume like any other: the bytes come back.
    copy = make_volume(vdemo, imageRef=image["id"])
    same_disk(source, volume_file(server, copy["id"]), "raw")
    for volume_id in (vol["id"], copy["id"]):
        vdemo.delete(f"/volumes/{volume_id}")
    assert glance.delete(f"/v2/images/{image['id']}").status_code == 204


def test_attached_volume_needs_force_and_stays_in_use(
        server: StackvolProcess, demo: httpx.Client, vdemo: httpx.Client,
        glance: httpx.Client, tmp_path: Path) -> None:
    server_id = new_server(demo, "cinder-vm")
    vol = make_volume(vdemo)
    fill(volume_file(server, vol["id"]))
    attached = demo.post(f"/servers/{server_id}/os-volume_attachments",
                         json={"volumeAttachment": {"volumeId": vol["id"]}})
    assert attached.status_code == 200, attached.text
    wait_volume(vdemo, vol["id"], "in-use")

    refused = upload(vdemo, vol["id"], image_name="attached")
    assert refused.status_code == 400
    assert refused.json()["badRequest"]["message"] == \
        "Invalid volume: Volume status must be available."
    forced = upload(vdemo, vol["id"], image_name="attached", force=True)
    assert forced.status_code == 202, forced.text
    image = wait_image(glance, forced.json()["os-volume_upload_image"]["image_id"])
    in_use = wait_volume(vdemo, vol["id"], "in-use")
    assert in_use["attachments"][0]["server_id"] == server_id
    same_disk(volume_file(server, vol["id"]), download(glance, image["id"], tmp_path / "i"),
              "raw")
    demo.delete(f"/servers/{server_id}")
    glance.delete(f"/v2/images/{image['id']}")


def test_refusals(server: StackvolProcess, vdemo: httpx.Client, glance: httpx.Client) -> None:
    vol = make_volume(vdemo)
    for fields in ({}, {"image_name": ""}, {"image_name": "x", "disk_format": "iso"},
                   {"image_name": "x", "container_format": "ovf"},
                   {"image_name": "x", "force": "maybe"},
                   {"image_name": "x", "visibility": "everyone"}):
        resp = upload(vdemo, vol["id"], **fields)
        assert resp.status_code == 400, (fields, resp.text)
    public = upload(vdemo, vol["id"], image_name="x", visibility="public")
    assert public.status_code == 403  # publicising is the admin's
    assert upload(vdemo, str(uuid.uuid4()), image_name="x").status_code == 404
    # Nothing was left behind by the refusals: no image, the volume untouched.
    names = [i["name"] for i in glance.get("/v2/images").json()["images"]]
    assert "x" not in names
    assert vdemo.get(f"/volumes/{vol['id']}").json()["volume"]["status"] == "available"
    # Before 3.1, visibility and protected are not answered (nor read).
    with cinder(server, "demo", "3.0") as old:
        resp = upload(old, vol["id"], image_name="old", visibility="public")
        assert resp.status_code == 202, resp.text
        body = resp.json()["os-volume_upload_image"]
        assert set(body) == UPLOAD_KEYS
    image = wait_image(glance, body["image_id"])
    assert image["visibility"] == "shared"
    wait_volume(vdemo, vol["id"], "available")
    glance.delete(f"/v2/images/{image['id']}")
    vdemo.delete(f"/volumes/{vol['id']}")


def test_openstackclient_image_create_from_volume_and_save(
        server: StackvolProcess, vdemo: httpx.Client, tmp_path: Path) -> None:
    vol = make_volume(vdemo)
    source = volume_file(server, vol["id"])
    fill(source)
    name = f"osc-from-volume-{uuid.uuid4().hex[:6]}"
    created = osc(server, "image", "create", "--volume", vol["id"], "--disk-format", "qcow2",
                  name, "-f", "json", user="demo")
    assert created["image_name"] == name and created["disk_format"] == "qcow2"
    assert created["status"] == "uploading" and created["volume_type"] == vol["volume_type"]
    shown = wait_for(lambda: osc(server, "image", "show", name, "-f", "json", user="demo"),
                     lambda i: i["status"] == "active", timeout=60, interval=0.5)
    assert shown["status"] == "active" and shown["id"] == created["image_id"]
    saved = tmp_path / "saved.qcow2"
    osc(server, "image", "save", "--file", str(saved), name, user="demo")
    same_disk(source, saved, "qcow2")
    wait_volume(vdemo, vol["id"], "available")
    osc(server, "image", "delete", name, user="demo")
    vdemo.delete(f"/volumes/{vol['id']}")


def test_upload_cut_off_by_a_crash_finishes_after_restart(tmp_path: Path) -> None:
    with running(tmp_path / "data", pause_at="volume.upload_image") as own:
        with cinder(own, "demo", "3.1") as client:
            vol = make_volume(client)
            source = volume_file(own, vol["id"])
            fill(source)
            resp = upload(client, vol["id"], image_name="crash", disk_format="qcow2")
            assert resp.status_code == 202, resp.text
            image_id = resp.json()["os-volume_upload_image"]["image_id"]
        with own.client("demo", prefix="/image") as images:
            # Parked mid-copy: the image is being saved, the volume uploading.
            saving = wait_for(lambda: images.get(f"/v2/images/{image_id}").json(),
                              lambda i: i["status"] == "saving")
            assert saving["status"] == "saving"
        own.kill()
        own.start()
        with own.client("demo", prefix="/image") as images, \
                cinder(own, "demo", "3.1") as client:
            wait_image(images, image_id)
            wait_volume(client, vol["id"], "available")
            same_disk(source, download(images, image_id, tmp_path / "after.qcow2"), "qcow2")
        leftovers = [p.name for p in (own.data_dir / "images").iterdir()
                     if p.name.startswith(".")]
        assert leftovers == []
