"""The Image service (Glance v2 subset at ``/image``) over HTTP, with real image files made by
``qemu-img``, and Compute's ``/images`` proxy over the same images."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import postgres
from tests.support.clients import image_client
from tests.support.identity_helpers import Account, make_account
from tests.support.images import OCTET, upload
from tests.support.server import StackvolProcess, query, query_url, wait_for

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img (qemu-utils) is not installed")


@pytest.fixture(scope="module")
def members(server: StackvolProcess, keystone: httpx.Client) -> tuple[Account, Account]:
    """Two members of two different projects."""
    return make_account(server, keystone, "member"), make_account(server, keystone, "member")


def qcow2_file(path: Path, size: str = "64M", pattern: bool = True) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    if pattern:  # some real data in the image, so the file has clusters beyond its header
        raw = path.with_suffix(".raw")
        raw.write_bytes(os.urandom(2 * MiB))
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw),
                        str(path)], check=True)
        subprocess.run(["qemu-img", "resize", "-q", "-f", "qcow2", str(path), size],
                       check=True)
    return path


def create(client: httpx.Client, **attrs: Any) -> dict[str, Any]:
    body = {"name": f"img-{uuid.uuid4().hex[:8]}", "disk_format": "qcow2",
            "container_format": "bare", **attrs}
    resp = client.post("/v2/images", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def patch(client: httpx.Client, image_id: str, *ops: dict[str, Any]) -> httpx.Response:
    return client.patch(f"/v2/images/{image_id}", json=list(ops), headers=PATCH)


def store_files(server: StackvolProcess) -> list[str]:
    return sorted(p.name for p in (server.data_dir / "images").iterdir())


# --- versions and catalog -----------------------------------------------------------------


def test_version_documents_and_catalog(server: StackvolProcess) -> None:
    root = httpx.get(server.url + "/image", timeout=10)
    assert root.status_code == 300
    versions = root.json()["versions"]
    assert versions[0]["status"] == "CURRENT" and versions[0]["id"].startswith("v2.")
    assert versions[0]["links"][0]["href"] == server.url + "/image/v2/"
    assert {v["id"] for v in versions} >= {"v2.0", "v2.1"}
    assert httpx.get(server.url + "/image/versions", timeout=10).status_code == 200
    _, token = server.token("demo")
    (entry,) = [s for s in token["catalog"] if s["type"] == "image"]
    assert entry["name"] == "glance"
    assert {e["interface"] for e in entry["endpoints"]} == {"public", "internal", "admin"}
    assert all(e["url"] == server.url + "/image" for e in entry["endpoints"])
    unauthenticated = httpx.get(server.url + "/image/v2/images", timeout=10)
    assert unauthenticated.status_code == 401


def test_schemas(glance: httpx.Client) -> None:
    image = glance.get("/v2/schemas/image").json()
    assert image["name"] == "image" and image["additionalProperties"] == {"type": "string"}
    assert "qcow2" in image["properties"]["disk_format"]["enum"]
    assert glance.get("/v2/schemas/images").json()["name"] == "images"


# --- data ---------------------------------------------------------------------------------


def test_qcow2_upload_download_and_delete(server: StackvolProcess, glance: httpx.Client,
                                          tmp_path: Path) -> None:
    data = qcow2_file(tmp_path / "disk.qcow2").read_bytes()
    image = create(glance, os_distro="cirros")
    assert image["status"] == "queued" and image["size"] is None
    assert image["visibility"] == "shared" and image["os_distro"] == "cirros"
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert glance.get(f"/v2/images/{image['id']}/file").status_code == 204  # no data yet

    resp = upload(glance, image["id"], data)
    assert resp.status_code == 204, resp.text
    shown = glance.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["virtual_size"] == 64 * MiB
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["created_at"].endswith("Z") and shown["updated_at"].endswith("Z")

    got = glance.get(f"/v2/images/{image['id']}/file")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-md5"] == shown["checksum"]
    assert int(got.headers["content-length"]) == len(data)
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()

    again = upload(glance, image["id"], data)
    assert again.status_code == 409  # active images take no second upload
    assert image["id"] in store_files(server)
    assert glance.delete(f"/v2/images/{image['id']}").status_code == 204
    assert glance.get(f"/v2/images/{image['id']}").status_code == 404
    assert image["id"] not in store_files(server)


def test_raw_upload_streams_a_body_larger_than_any_request_limit(
        server: StackvolProcess, glance: httpx.Client) -> None:
    data = os.urandom(9 * MiB + 123)  # beyond the JSON body limit and several write batches
    image = create(glance, disk_format="raw")

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to trust
        for start in range(0, len(data), MiB):
            yield data[start:start + MiB]

    resp = glance.put(f"/v2/images/{image['id']}/file", content=chunks(), headers=OCTET)
    assert resp.status_code == 204, resp.text
    shown = glance.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["size"], shown["virtual_size"]) == ("active", len(data),
                                                                      len(data))
    with glance.stream("GET", f"/v2/images/{image['id']}/file") as got:
        digest = hashlib.sha256()
        for chunk in got.iter_bytes():
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(data).digest()
    assert (server.data_dir / "images" / image["id"]).stat().st_size == len(data)


@pytest.mark.parametrize(("declared", "content"), [
    ("qcow2", "random"), ("raw", "qcow2"), ("qcow2", "empty-raw-header")])
def test_bytes_not_of_the_declared_format_are_refused(
        server: StackvolProcess, glance: httpx.Client, tmp_path: Path, declared: str,
        content: str) -> None:
    data = {"random": os.urandom(MiB),
            "qcow2": qcow2_file(tmp_path / "x.qcow2", pattern=False).read_bytes(),
            "empty-raw-header": b"QFI\xfb" + b"\0" * 100}[content]
    image = create(glance, disk_format=declared)
    resp = upload(glance, image["id"], data)
    assert resp.status_code == 400, resp.text
    assert "disk" in resp.json()["message"] or "image" in resp.json()["message"].lower()
    shown = glance.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "queued" and shown["size"] is None
    assert image["id"] not in store_files(server)
    assert not [f for f in store_files(server) if image["id"] in f]  # no temporary left


def test_interrupted_upload_leaves_the_image_queued(server: StackvolProcess,
                                                    glance: httpx.Client) -> None:
    image = create(glance, disk_format="raw")
    token = glance.headers["X-Auth-Token"]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall((f"PUT /image/v2/images/{image['id']}/file HTTP/1.1\r\n"
                      f"Host: 127.0.0.1\r\nX-Auth-Token: {token}\r\n"
                      f"Content-Type: application/octet-stream\r\n"
                      f"Content-Length: {100 * MiB}\r\n\r\n").encode())
        sock.sendall(os.urandom(6 * MiB))
        midway = wait_for(lambda: glance.get(f"/v2/images/{image['id']}").json()["status"],
                          lambda status: status == "saving")
        assert midway == "saving"
    shown = wait_for(lambda: glance.get(f"/v2/images/{image['id']}").json(),
                     lambda body: body["status"] == "queued")
    assert shown["status"] == "queued" and shown["checksum"] is None
    assert not [f for f in store_files(server) if image["id"] in f]
    resp = upload(glance, image["id"], b"complete now")  # and it may be uploaded again
    assert resp.status_code == 204
    assert glance.get(f"/v2/images/{image['id']}").json()["size"] == len(b"complete now")


def test_upload_needs_formats_and_octet_stream(glance: httpx.Client) -> None:
    bare = glance.post("/v2/images", json={"name": "no-formats"}).json()
    assert bare["disk_format"] is None and bare["container_format"] is None
    resp = upload(glance, bare["id"], b"data")
    assert resp.status_code == 400
    assert "disk_format, container_format" in resp.json()["message"]
    image = create(glance, disk_format="raw")
    resp = glance.put(f"/v2/images/{image['id']}/file", content=b"x",
                      headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415


def test_kernel_and_ramdisk_images(glance: httpx.Client) -> None:
    kernel = create(glance, disk_format="aki", container_format="aki")
    ramdisk = create(glance, disk_format="ari", container_format="ari")
    assert upload(glance, kernel["id"], os.urandom(300_000)).status_code == 204
    assert upload(glance, ramdisk["id"], os.urandom(200_000)).status_code == 204
    machine = create(glance, disk_format="ami", container_format="ami",
                     kernel_id=kernel["id"], ramdisk_id=ramdisk["id"])
    assert upload(glance, machine["id"], os.urandom(100_000)).status_code == 204
    shown = glance.get(f"/v2/images/{machine['id']}").json()
    assert (shown["kernel_id"], shown["ramdisk_id"]) == (kernel["id"], ramdisk["id"])
    assert shown["status"] == "active"
    for image in (kernel, ramdisk):
        body = glance.get(f"/v2/images/{image['id']}").json()
        assert body["status"] == "active" and body["virtual_size"] is None
    listed = glance.get("/v2/images", params={"disk_format": "in:aki,ari",
                                               "limit": 1000}).json()["images"]
    assert {kernel["id"], ramdisk["id"]} <= {i["id"] for i in listed}
    assert all(i["disk_format"] in ("aki", "ari") for i in listed)
    bad = glance.post("/v2/images", json={"name": "x", "kernel_id": "not-a-uuid"})
    assert bad.status_code == 400


# --- records ------------------------------------------------------------------------------


def test_list_filters_sorting_and_paging(glance: httpx.Client) -> None:
    batch = uuid.uuid4().hex[:8]
    made = [create(glance, name=f"{batch}-{n}", batch=batch, min_ram=i * 64)
            for i, n in enumerate(("c", "a", "b"))]
    listed = glance.get("/v2/images", params={"batch": batch}).json()
    assert listed["schema"] == "/v2/schemas/images" and listed["first"] == "/v2/images"
    assert [i["id"] for i in listed["images"]] == [m["id"] for m in reversed(made)]
    by_name = glance.get("/v2/images", params={"batch": batch, "sort_key": "name",
                                               "sort_dir": "asc"}).json()["images"]
    assert [i["name"] for i in by_name] == [f"{batch}-a", f"{batch}-b", f"{batch}-c"]
    by_sort = glance.get("/v2/images", params={"batch": batch,
                                               "sort": "name:desc"}).json()["images"]
    assert [i["name"] for i in by_sort] == [f"{batch}-c", f"{batch}-b", f"{batch}-a"]
    named = glance.get("/v2/images", params={"name": f"{batch}-a"}).json()["images"]
    assert [i["id"] for i in named] == [made[1]["id"]]

    first = glance.get("/v2/images", params={"batch": batch, "limit": 2}).json()
    assert len(first["images"]) == 2 and "next" in first
    assert first["next"].startswith("/v2/images?")
    second = glance.get(first["next"]).json()  # relative to the endpoint, as Glance's
    assert [i["id"] for i in first["images"] + second["images"]] == \
        [m["id"] for m in reversed(made)]
    assert "next" not in second

    queued = glance.get("/v2/images", params={"batch": batch, "status": "queued"}).json()
    assert len(queued["images"]) == 3
    assert glance.get("/v2/images", params={"batch": batch,
                                            "status": "active"}).json()["images"] == []
    for params in ({"marker": str(uuid.uuid4())}, {"sort_dir": "sideways"},
                   {"sort_key": "nope"}, {"limit": "x"}, {"limit": "-1"},
                   {"visibility": "everyone"}, {"protected": "maybe"}):
        assert glance.get("/v2/images", params=params).status_code == 400, params


def test_patch_attributes_and_properties(glance: httpx.Client) -> None:
    image = create(glance, os_distro="debian")
    iid = image["id"]
    resp = patch(glance, iid, {"op": "replace", "path": "/name", "value": "renamed"},
                 {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
                 {"op": "replace", "path": "/min_ram", "value": 512},
                 {"op": "remove", "path": "/os_distro"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["name"], body["hw_disk_bus"], body["min_ram"]) == ("renamed", "virtio", 512)
    assert "os_distro" not in body
    assert glance.get(f"/v2/images/{iid}").json()["hw_disk_bus"] == "virtio"

    assert patch(glance, iid, {"op": "replace", "path": "/nothing",
                               "value": "x"}).status_code == 409
    assert patch(glance, iid, {"op": "remove", "path": "/nothing"}).status_code == 409
    assert patch(glance, iid, {"op": "replace", "path": "/status",
                               "value": "active"}).status_code == 403
    assert patch(glance, iid, {"op": "replace", "path": "/min_ram",
                               "value": "lots"}).status_code == 400
    assert patch(glance, iid, {"op": "add", "path": "/prop", "value": 5}).status_code == 400
    assert patch(glance, iid, {"op": "move", "path": "/name"}).status_code == 400
    assert patch(glance, iid, {"op": "add", "path": "/a/b", "value": "x"}).status_code == 400
    not_patch = glance.patch(f"/v2/images/{iid}", json=[])
    assert not_patch.status_code == 415
    assert upload(glance, iid, os.urandom(1024)).status_code == 400  # not a qcow2
    raw = create(glance, disk_format="raw")
    assert upload(glance, raw["id"], b"bytes").status_code == 204
    assert patch(glance, raw["id"], {"op": "replace", "path": "/disk_format",
                                     "value": "qcow2"}).status_code == 403

    assert glance.put(f"/v2/images/{iid}/tags/blue").status_code == 204
    assert glance.put(f"/v2/images/{iid}/tags/green").status_code == 204
    assert glance.get(f"/v2/images/{iid}").json()["tags"] == ["blue", "green"]
    tagged = glance.get("/v2/images", params={"tag": "blue"}).json()["images"]
    assert iid in [i["id"] for i in tagged]
    assert glance.delete(f"/v2/images/{iid}/tags/blue").status_code == 204
    assert glance.delete(f"/v2/images/{iid}/tags/blue").status_code == 404
    assert glance.get(f"/v2/images/{iid}").json()["tags"] == ["green"]


def test_bad_requests(glance: httpx.Client) -> None:
    bad_json = glance.post("/v2/images", content=b"{not json",
                           headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    body = glance.post("/v2/images", json={"name": "x", "disk_format": "floppy"})
    assert body.status_code == 400 and "floppy" in body.json()["message"]
    assert glance.post("/v2/images", json={"container_format": "tar"}).status_code == 400
    assert glance.post("/v2/images", json=["list"]).status_code == 400
    assert glance.post("/v2/images", json={"min_disk": -1}).status_code == 400
    assert glance.post("/v2/images", json={"status": "active"}).status_code == 403
    missing = glance.get(f"/v2/images/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "404 Not Found"
    assert "No image found" in missing.json()["message"]
    assert glance.get("/v2/images/not-a-uuid").status_code == 404
    assert glance.delete(f"/v2/images/{uuid.uuid4()}").status_code == 404
    assert glance.get("/v2/nothing-here").status_code == 404
    own_id = str(uuid.uuid4())
    assert create(glance, id=own_id)["id"] == own_id
    assert glance.post("/v2/images", json={"id": own_id}).status_code == 409
    protected = create(glance, protected=True)
    assert glance.delete(f"/v2/images/{protected['id']}").status_code == 403
    assert patch(glance, protected["id"], {"op": "replace", "path": "/protected",
                                           "value": False}).status_code == 200
    assert glance.delete(f"/v2/images/{protected['id']}").status_code == 204


def test_visibility_between_projects(server: StackvolProcess, glance: httpx.Client,
                                     members: tuple[Account, Account]) -> None:
    alice, bob = members
    with image_client(server, alice.token()) as a, image_client(server, bob.token()) as b:
        private = create(a, visibility="private")
        assert private["owner"] == alice.project_id
        assert b.get(f"/v2/images/{private['id']}").status_code == 404
        assert private["id"] not in [i["id"] for i in b.get("/v2/images").json()["images"]]
        assert b.delete(f"/v2/images/{private['id']}").status_code == 404
        assert glance.get(f"/v2/images/{private['id']}").status_code == 200  # admin

        refused = patch(a, private["id"], {"op": "replace", "path": "/visibility",
                                           "value": "public"})
        assert refused.status_code == 403
        assert "publicize_image" in refused.json()["message"]
        assert a.post("/v2/images", json={"visibility": "public"}).status_code == 403
        assert patch(glance, private["id"], {"op": "replace", "path": "/visibility",
                                             "value": "public"}).status_code == 200
        assert b.get(f"/v2/images/{private['id']}").json()["visibility"] == "public"
        assert private["id"] in [i["id"] for i in b.get("/v2/images").json()["images"]]
        assert patch(b, private["id"], {"op": "replace", "path": "/name",
                                        "value": "mine now"}).status_code == 403
        assert b.delete(f"/v2/images/{private['id']}").status_code == 403

        community = create(a, visibility="community")
        assert b.get(f"/v2/images/{community['id']}").status_code == 200
        default = [i["id"] for i in b.get("/v2/images").json()["images"]]
        assert community["id"] not in default  # Glance lists community images on request
        chosen = b.get("/v2/images", params={"visibility": "community"}).json()["images"]
        assert community["id"] in [i["id"] for i in chosen]
        assert a.post("/v2/images", json={"owner": bob.project_id}).status_code == 403


# --- Compute's image proxy ----------------------------------------------------------------


def test_compute_image_proxy(server: StackvolProcess, glance: httpx.Client,
                             tmp_path: Path) -> None:
    image = create(glance, name=f"proxy-{uuid.uuid4().hex[:6]}", min_disk=1, os_type="linux")
    data = qcow2_file(tmp_path / "p.qcow2", "16M").read_bytes()
    assert upload(glance, image["id"], data).status_code == 204
    queued = create(glance)
    with server.client("admin", microversion="2.35") as nova:
        listed = nova.get("/images", params={"limit": 1000}).json()["images"]
        mine = next(i for i in listed if i["id"] == image["id"])
        assert set(mine) == {"id", "name", "links"}
        assert [link["rel"] for link in mine["links"]] == ["self", "bookmark", "alternate"]
        assert mine["links"][2]["href"] == f"{server.url}/image/images/{image['id']}"
        shown = nova.get(f"/images/{image['id']}").json()["image"]
        assert shown["status"] == "ACTIVE" and shown["progress"] == 100
        assert (shown["minDisk"], shown["minRam"]) == (1, 0)
        assert shown["OS-EXT-IMG-SIZE:size"] == len(data)
        assert shown["metadata"] == {"os_type": "linux"}
        assert shown["created"].endswith("Z") and shown["updated"].endswith("Z")
        detail = nova.get("/images/detail", params={"limit": 1000}).json()["images"]
        saving = next(i for i in detail if i["id"] == queued["id"])
        assert (saving["status"], saving["progress"]) == ("SAVING", 25)
        glance_ids = {i["id"] for i in glance.get("/v2/images",
                                                  params={"limit": 1000}).json()["images"]}
        assert {i["id"] for i in detail} == glance_ids
        active = nova.get("/images/detail", params={"status": "ACTIVE",
                                                    "limit": 1000}).json()["images"]
        assert all(i["status"] == "ACTIVE" for i in active)
        paged = nova.get("/images", params={"limit": 1}).json()
        assert len(paged["images"]) == 1 and paged["images_links"][0]["rel"] == "next"
        missing = nova.get(f"/images/{uuid.uuid4()}")
        assert missing.status_code == 404
        assert missing.json() == {"itemNotFound": {"code": 404, "message": "Image not found."}}
        assert nova.delete(f"/images/{queued['id']}").status_code == 204
        assert glance.get(f"/v2/images/{queued['id']}").status_code == 404
    with server.client("admin", microversion="2.36") as nova:
        assert nova.get("/images").status_code == 404
        assert nova.get(f"/images/{image['id']}").status_code == 404


# --- uploads a dead process left ------------------------------------------------------------


class SlowUpload:
    """A streamed (chunked) upload whose body trickles in from a thread, as from a slow
    client, until the server goes away under it."""

    def __init__(self, server: StackvolProcess, image_id: str, token: str) -> None:
        self.sent = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._put, args=(
            f"{server.url}/image/v2/images/{image_id}/file", token), daemon=True)
        self.thread.start()

    def _body(self) -> Iterator[bytes]:
        for _ in range(600):  # a minute at most
            yield os.urandom(64 * 1024)
            self.sent += 1
            time.sleep(0.1)

    def _put(self, url: str, token: str) -> None:
        try:
            httpx.put(url, content=self._body(), timeout=120,
                      headers={**OCTET, "X-Auth-Token": token})
        except httpx.HTTPError as exc:
            self.error = exc


def upload_record(server: StackvolProcess, image_id: str) -> tuple[Any, ...]:
    """What the image's row says of its upload (on the server's own database)."""
    sql = "SELECT status, upload_owner, upload_started_at FROM images WHERE id = ?"
    url = server.settings.get("database_url")
    return (query_url(url, sql, image_id) if url else query(server.data_dir, sql, image_id))[0]


def temp_files(store: Path, image_id: str) -> list[str]:
    return [p.name for p in store.glob(f".upload-{image_id}-*")]


def kill_mid_upload(proc: StackvolProcess, store: Path, owner: str) -> str:
    """An image whose upload into ``proc`` is under way when ``proc`` gets ``kill -9``."""
    token, _ = proc.token("admin")
    with image_client(proc, token) as client:
        image_id = create(client, disk_format="raw")["id"]
        upload = SlowUpload(proc, image_id, token)
        wait_for(lambda: temp_files(store, image_id) and upload.sent, bool)
        status, recorded_owner, started_at = upload_record(proc, image_id)
        assert (status, recorded_owner) == ("saving", owner) and started_at is not None
    proc.kill()
    upload.thread.join(30)
    assert upload.error is not None  # the client saw the server go
    assert temp_files(store, image_id)  # the partial bytes are still there
    return image_id


def test_an_upload_cut_off_by_kill_9_is_queued_again_at_restart(tmp_path: Path) -> None:
    proc = StackvolProcess(tmp_path / "data", worker_name="images-1").start()
    try:
        store = proc.data_dir / "images"
        image_id = kill_mid_upload(proc, store, "images-1")
        proc.start()
        token, _ = proc.token("admin")
        with image_client(proc, token) as client:
            shown = client.get(f"/v2/images/{image_id}").json()
            assert shown["status"] == "queued" and shown["size"] is None
            assert upload_record(proc, image_id) == ("queued", None, None)
            assert temp_files(store, image_id) == []
            data = os.urandom(3 * MiB)
            assert upload(client, image_id, data).status_code == 204
            shown = client.get(f"/v2/images/{image_id}").json()
            assert (shown["status"], shown["size"]) == ("active", len(data))
            assert client.get(f"/v2/images/{image_id}/file").content == data
        assert store_files(proc) == [image_id]
    finally:
        proc.stop()


def test_another_process_queues_an_upload_whose_process_stays_down(tmp_path: Path) -> None:
    url = postgres.shared_cluster().database(f"images_{uuid.uuid4().hex[:12]}")
    store = tmp_path / "image-store"  # shared, as between API processes behind one name
    common = {"database_url": url, "image_dir": str(store), "role": "api",
              "heartbeat_seconds": 0.5, "service_down_seconds": 4}
    first = StackvolProcess(tmp_path / "a", worker_name="images-a", **common).start()
    second = StackvolProcess(tmp_path / "b", worker_name="images-b", **common)
    try:
        second.start()
        token, _ = first.token("admin")  # the first start bootstrapped the accounts
        image_id = kill_mid_upload(first, store, "images-a")
        with image_client(second, token) as client:
            shown = wait_for(lambda: client.get(f"/v2/images/{image_id}").json(),
                             lambda body: body["status"] == "queued", timeout=30)
            assert shown["status"] == "queued"
            assert temp_files(store, image_id) == []
            # Not before the dead process's last heartbeat was service_down_seconds old.
            (silent_for,) = query_url(url, "SELECT i.updated_at - s.heartbeat_at FROM images i, "
                                           "services s WHERE i.id = ? AND s.name = ?",
                                      image_id, "images-a")[0]
            assert silent_for.total_seconds() >= common["service_down_seconds"]
            assert upload(client, image_id, b"whole").status_code == 204
            assert client.get(f"/v2/images/{image_id}").json()["status"] == "active"
    finally:
        second.stop()
        first.stop()
