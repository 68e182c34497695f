"""Image service images for tests: small qcow2 files made with qemu-img, uploaded through the
real API, and compared byte for byte with the volumes made from them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import StackvolProcess

MiB = 1024 * 1024
MARKER = b"stackvol image bytes"
OCTET = {"Content-Type": "application/octet-stream"}


def qemu_img(*args: str) -> str:
    """Run ``qemu-img`` (it must succeed); its output."""
    done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def made_image(tmp: Path, name: str, virtual_mib: int = 64) -> Path:
    """A small qcow2 image: a marker at 1 MiB and at its last MiB, holes elsewhere."""
    raw = tmp / f"{name}.raw"
    with open(raw, "wb") as fh:
        fh.truncate(virtual_mib * MiB)
        for offset in (MiB, (virtual_mib - 1) * MiB):
            fh.seek(offset)
            fh.write(MARKER + name.encode())
    image = tmp / f"{name}.qcow2"
    qemu_img("convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(image))
    return image


def create_image(server: StackvolProcess, path: Path | None, name: str, user: str = "admin",
                 disk_format: str = "qcow2", container_format: str = "bare",
                 **attributes: Any) -> str:
    """Create an image (public unless told) and upload ``path`` into it (None: no data)."""
    attributes.setdefault("visibility", "public" if user == "admin" else "private")
    with server.client(user, prefix="/image/v2") as client:
        resp = client.post("/images", json={"name": name, "disk_format": disk_format,
                                             "container_format": container_format,
                                             **attributes})
        assert resp.status_code == 201, resp.text
        image_id = resp.json()["id"]
        if path is not None:
            put = client.put(f"/images/{image_id}/file", content=path.read_bytes(),
                             headers=OCTET)
            assert put.status_code == 204, put.text
            assert client.get(f"/images/{image_id}").json()["status"] == "active"
    return image_id


def upload(client: httpx.Client, image_id: str, data: bytes) -> httpx.Response:
    """``PUT /v2/images/{id}/file`` on an Image service client, the answer unchecked."""
    return client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)


def same_bytes(image: Path, volume: Path) -> None:
    """qemu-img compare: equal content (the volume's extra space reads as zeros)."""
    fmt = "qcow2" if volume.suffix == ".qcow2" else "raw"
    done = subprocess.run(["qemu-img", "compare", "-U", "-f", "qcow2", "-F", fmt, str(image),
                           str(volume)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
