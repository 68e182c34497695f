"""Boot from volume against the real server: ``block_device_mapping_v2`` and the legacy
``block_device_mapping`` of ``os-volumes_boot``, volume sources, faults, and what a server's
volumes look like from every side (attachments, volumes, ``volumes_attached``, the driver)."""

from __future__ import annotations

import concurrent.futures
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.images import create_image, made_image, same_bytes
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import IMAGE, delete_server
from tests.support.volumes import attach, new_volume, volume_file, volume_status

GiB = 1024**3


def bdm(source: str, uuid_: str | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"source_type": source, "destination_type": "volume", **extra}
    if uuid_:
        item["uuid"] = uuid_
    return item


def create(client: httpx.Client, path: str = "/servers", **server: Any) -> httpx.Response:
    return client.post(path, json={"server": {"name": "bfv", "flavorRef": "1", **server}})


def wait_server(client: httpx.Client, server_id: str, path: str = "/servers") -> dict:
    found = wait_for(lambda: client.get(f"{path}/{server_id}").json()["server"],
                     lambda s: s["status"] != "BUILD")
    assert found["status"] == "ACTIVE", found
    return found


def boot(client: httpx.Client, **server: Any) -> dict:
    resp = create(client, **server)
    assert resp.status_code == 202, resp.text
    return wait_server(client, resp.json()["server"]["id"])


def attachments(client: httpx.Client, server_id: str) -> dict[str, dict]:
    listed = client.get(f"/servers/{server_id}/os-volume_attachments").json()
    return {a["volumeId"]: a for a in listed["volumeAttachments"]}


def driver_volumes(server: StackvolProcess, server_id: str) -> dict[str, str]:
    path = server.data_dir / "compute" / "simulated" / f"{server_id}.json"
    state = json.loads(path.read_text())
    return {vol: entry["device"] for vol, entry in state["volumes"].items()}


def test_boot_from_an_existing_volume(server: StackvolProcess, admin: httpx.Client) -> None:
    root = new_volume(admin)
    active = boot(admin, block_device_mapping_v2=[bdm("volume", root, boot_index=0)])
    server_id = active["id"]
    assert active["image"] == ""  # no imageRef: Nova shows an empty string
    assert active["os-extended-volumes:volumes_attached"] == [{"id": root}]
    assert attachments(admin, server_id)[root]["device"] == "/dev/vda"
    volume = volume_status(admin, root, "in-use")
    assert volume["attachments"][0]["serverId"] == server_id
    assert volume["attachments"][0]["device"] == "/dev/vda"
    assert driver_volumes(server, server_id) == {root: "/dev/vda"}

    refused = admin.delete(f"/servers/{server_id}/os-volume_attachments/{root}")
    assert refused.status_code == 400
    assert refused.json()["badRequest"]["message"] == "Cannot detach a root device volume"
    # Another volume takes the next free device, and may be detached.
    extra = new_volume(admin)
    assert attach(admin, server_id, extra).json()["volumeAttachment"]["device"] == "/dev/vdb"
    volume_status(admin, extra, "in-use")

    delete_server(admin, server_id)
    assert volume_status(admin, root, "available")["attachments"] == [{}]
    volume_status(admin, extra, "available")
    assert volume_file(server, root).exists()


def test_new_volumes_from_snapshot_blank_and_image(server: StackvolProcess, admin: httpx.Client,
                                                   tmp_path: Path) -> None:
    image_file = made_image(tmp_path, "data")
    image = create_image(server, image_file, "data-image")
    source = new_volume(admin)
    with open(volume_file(server, source), "r+b") as fh:
        fh.seek(GiB - 4096)
        fh.write(b"root filesystem")
    snap = admin.post("/os-snapshots", json={"snapshot": {"volume_id": source}}).json()
    snapshot_id = snap["snapshot"]["id"]
    wait_for(lambda: admin.get(f"/os-snapshots/{snapshot_id}").json()["snapshot"]["status"],
             lambda s: s == "available")
    with server.client("admin", microversion="2.89") as client:  # device tags: 2.42+
        active = boot(client, imageRef="", networks="none", block_device_mapping_v2=[
            bdm("snapshot", snapshot_id, boot_index=0, volume_size=2),
            bdm("blank", volume_size=1, delete_on_termination=True, device_name="vdd"),
            bdm("image", image, volume_size=1, boot_index=1, delete_on_termination=True,
                tag="data"),
        ])
    server_id = active["id"]
    found = attachments(admin, server_id)
    assert len(found) == 3
    by_device = {a["device"]: volume_id for volume_id, a in found.items()}
    assert set(by_device) == {"/dev/vda", "/dev/vdd", "/dev/vdb"}
    assert driver_volumes(server, server_id) == {v: d for d, v in by_device.items()}

    root = admin.get(f"/os-volumes/{by_device['/dev/vda']}").json()["volume"]
    assert (root["status"], root["size"], root["snapshotId"]) == ("in-use", 2, snapshot_id)
    with open(volume_file(server, root["id"]), "rb") as fh:
        fh.seek(GiB - 4096)
        assert fh.read(15) == b"root filesystem"  # the snapshot's bytes
    blank = admin.get(f"/os-volumes/{by_device['/dev/vdd']}").json()["volume"]
    assert blank["displayName"] == f"{server_id}-blank-vol"
    assert blank["status"] == "in-use"
    with server.client("admin", microversion="2.89") as client:
        image_att = client.get(f"/servers/{server_id}/os-volume_attachments/"
                               f"{by_device['/dev/vdb']}").json()["volumeAttachment"]
    assert image_att["tag"] == "data"
    same_bytes(image_file, volume_file(server, by_device["/dev/vdb"]))
    assert image_att["delete_on_termination"] is True
    assert image_att["attachment_id"] and image_att["bdm_uuid"]

    delete_server(admin, server_id)
    for device in ("/dev/vdd", "/dev/vdb"):  # delete_on_termination
        volume_id = by_device[device]
        wait_for(lambda v=volume_id: admin.get(f"/os-volumes/{v}").status_code,
                 lambda code: code == 404)
        assert not volume_file(server, volume_id).exists()
    volume_status(admin, by_device["/dev/vda"], "available")


def test_legacy_os_volumes_boot(server: StackvolProcess, admin: httpx.Client) -> None:
    root = new_volume(admin)
    resp = create(admin, "/os-volumes_boot", block_device_mapping=[
        {"volume_id": root, "device_name": "vda", "delete_on_termination": "true"}])
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    assert resp.headers["Location"].endswith(f"/servers/{server_id}")
    shown = wait_server(admin, server_id, "/os-volumes_boot")
    assert shown["id"] == server_id
    assert server_id in [s["id"] for s in admin.get("/os-volumes_boot").json()["servers"]]
    assert attachments(admin, server_id)[root]["device"] == "/dev/vda"
    with server.client("admin", microversion="2.79") as client:
        listed = client.get(f"/servers/{server_id}/os-volume_attachments").json()
    assert listed["volumeAttachments"][0]["delete_on_termination"] is True
    assert admin.delete(f"/os-volumes_boot/{server_id}").status_code == 204
    wait_for(lambda: admin.get(f"/os-volumes/{root}").status_code, lambda c: c == 404)


def test_image_and_data_volume_from_legacy_mapping(admin: httpx.Client) -> None:
    data = new_volume(admin)
    active = boot(admin, imageRef=IMAGE, block_device_mapping=[
        {"volume_id": data, "device_name": "/dev/vdc"}])
    found = attachments(admin, active["id"])
    assert found[data]["device"] == "/dev/vdc"
    # Not the root device: it may be detached.
    assert admin.delete(f"/servers/{active['id']}/os-volume_attachments/{data}"
                        ).status_code == 202
    volume_status(admin, data, "available")
    delete_server(admin, active["id"])


def _message(resp: httpx.Response) -> str:
    body = resp.json()
    return next(iter(body.values()))["message"]


FAULTS = [
    # (case, status, message fragment); the body is built by the test from the case name.
    ("unknown root volume", 400, "Block Device Mapping is Invalid: failed to get volume"),
    ("unknown data volume", 404, "could not be found."),
    ("volume in use", 400, "Invalid volume: Volume"),
    ("unknown root snapshot", 400, "Snapshot"),
    ("unknown data snapshot", 400, "Block Device Mapping is Invalid: failed to get snapshot"),
    ("blank without size", 400, "Blank volumes (source: 'blank', dest: 'volume') need to "
                                "have non-zero size"),
    ("image without size", 400, "need to have a non-zero size specified"),
    ("missing uuid", 400, "Block Device Mapping is Invalid: Missing device UUID."),
    ("blank with uuid", 400, "Block Device Mapping is Invalid: Invalid device UUID."),
    ("boot index gap", 400, "Boot sequence for the instance"),
    ("no root", 400, "Boot sequence for the instance"),
    ("both syntaxes", 400, "Using different block_device_mapping syntaxes"),
    ("legacy vda with image", 400, "same device name as the root device vda"),
    ("legacy unknown key", 400, "Invalid input for field/attribute"),
    ("bad source type", 400, "Invalid input for field/attribute"),
]


def _fault_body(case: str, admin: httpx.Client, in_use: str) -> dict[str, Any]:
    missing = str(uuid.uuid4())
    root: dict[str, Any] = {"boot_index": 0}
    bodies: dict[str, dict[str, Any]] = {
        "unknown root volume": {"block_device_mapping_v2": [bdm("volume", missing, **root)]},
        "unknown data volume": {"imageRef": IMAGE,
                                "block_device_mapping_v2": [bdm("volume", missing)]},
        "volume in use": {"block_device_mapping_v2": [bdm("volume", in_use, **root)]},
        "unknown root snapshot": {"block_device_mapping_v2": [bdm("snapshot", missing,
                                                                  **root)]},
        "unknown data snapshot": {"imageRef": IMAGE,
                                  "block_device_mapping_v2": [bdm("snapshot", missing)]},
        "blank without size": {"imageRef": IMAGE, "block_device_mapping_v2": [bdm("blank")]},
        "image without size": {"block_device_mapping_v2": [bdm("image", IMAGE, **root)]},
        "missing uuid": {"block_device_mapping_v2": [bdm("volume", **root)]},
        "blank with uuid": {"imageRef": IMAGE,
                            "block_device_mapping_v2": [bdm("blank", missing, volume_size=1)]},
        "boot index gap": {"block_device_mapping_v2": [
            bdm("blank", volume_size=1, boot_index=0), bdm("blank", volume_size=1,
                                                           boot_index=2)]},
        "no root": {"block_device_mapping_v2": [bdm("blank", volume_size=1)]},
        "both syntaxes": {"imageRef": IMAGE,
                          "block_device_mapping_v2": [bdm("blank", volume_size=1)],
                          "block_device_mapping": [{"volume_id": missing,
                                                    "device_name": "vdb"}]},
        "legacy vda with image": {"imageRef": IMAGE, "block_device_mapping": [
            {"volume_id": missing, "device_name": "vda"}]},
        "legacy unknown key": {"block_device_mapping": [{"volume_id": missing,
                                                         "device_name": "vda", "x": 1}]},
        "bad source type": {"block_device_mapping_v2": [bdm("floppy", missing, **root)]},
    }
    return bodies[case]


@pytest.fixture(scope="module")
def in_use_volume(admin: httpx.Client) -> str:
    volume_id = new_volume(admin)
    boot(admin, name="holder", block_device_mapping_v2=[bdm("volume", volume_id,
                                                           boot_index=0)])
    return volume_id


@pytest.mark.parametrize(("case", "status", "fragment"), FAULTS, ids=[f[0] for f in FAULTS])
def test_block_device_faults(admin: httpx.Client, in_use_volume: str, case: str, status: int,
                             fragment: str) -> None:
    before = {s["id"] for s in admin.get("/servers").json()["servers"]}
    volumes_before = {v["id"] for v in admin.get("/os-volumes").json()["volumes"]}
    resp = create(admin, **_fault_body(case, admin, in_use_volume))
    assert resp.status_code == status, resp.text
    assert fragment in _message(resp)
    # A refused request leaves nothing behind: no server, no volume, no reservation.
    assert {s["id"] for s in admin.get("/servers").json()["servers"]} == before
    assert {v["id"] for v in admin.get("/os-volumes").json()["volumes"]} == volumes_before
    volume_status(admin, in_use_volume, "in-use")


def test_two_servers_of_one_request_cannot_share_a_volume(admin: httpx.Client) -> None:
    root = new_volume(admin)
    resp = create(admin, name="twins", min_count=2, max_count=2,
                  block_device_mapping_v2=[bdm("volume", root, boot_index=0)])
    assert resp.status_code == 400
    assert "status must be available" in _message(resp)
    assert not [s for s in admin.get("/servers").json()["servers"] if s["name"] == "twins-1"]
    volume_status(admin, root, "available")


def test_each_server_of_a_request_gets_its_own_blank_volume(admin: httpx.Client) -> None:
    resp = create(admin, name="multi", min_count=2, max_count=2,
                  block_device_mapping_v2=[bdm("blank", volume_size=1, boot_index=0,
                                               delete_on_termination=True)])
    assert resp.status_code == 202, resp.text
    names = {f"multi-{i}" for i in (1, 2)}
    ids = [s["id"] for s in admin.get("/servers").json()["servers"] if s["name"] in names]
    assert len(ids) == 2
    roots = set()
    for server_id in ids:
        wait_server(admin, server_id)
        roots |= set(attachments(admin, server_id))
    assert len(roots) == 2
    for server_id in ids:
        delete_server(admin, server_id)


def test_concurrent_boots_from_one_volume_exactly_one_wins(admin: httpx.Client) -> None:
    root = new_volume(admin)

    def post(index: int) -> int:
        return create(admin, name=f"race-bfv-{index}",
                      block_device_mapping_v2=[bdm("volume", root, boot_index=0)]).status_code

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(post, range(10)))
    assert sorted(codes) == [202] + [400] * 9, codes
    volume = volume_status(admin, root, "in-use")
    server_id = volume["attachments"][0]["serverId"]
    delete_server(admin, server_id)
    volume_status(admin, root, "available")


def test_attach_refuses_a_volume_reserved_for_a_booting_server(admin: httpx.Client) -> None:
    other = new_volume(admin)
    booted = boot(admin, imageRef=IMAGE, block_device_mapping_v2=[bdm("volume", other)])
    second = boot(admin, name="second", imageRef=IMAGE)
    resp = attach(admin, second["id"], other)
    assert resp.status_code == 400
    assert "in-use" in _message(resp)
    delete_server(admin, booted["id"])
    delete_server(admin, second["id"])
