"""``os-volume_attachments`` against the real server: every microversion family, the samples,
faults, and the attach/detach state machine under concurrency."""

from __future__ import annotations

import concurrent.futures
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import new_server
from tests.support.shapes import assert_same_shape, load
from tests.support.volumes import attach, new_volume, volume_status

SAMPLES_DIR = "doc/api_samples/os-volume_attachments"
FAMILIES = ["2.1", "2.49", "2.70", "2.79", "2.85", "2.89", "2.101"]


def mv(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


@pytest.fixture(scope="module")
def server_id(admin: httpx.Client) -> str:
    return new_server(admin)


def versioned(server: StackvolProcess, microversion: str) -> httpx.Client:
    return server.client("admin", microversion=microversion)


@pytest.mark.parametrize("microversion", FAMILIES)
def test_attach_list_show_detach_match_samples(server: StackvolProcess, admin: httpx.Client,
                                               samples: Path, server_id: str,
                                               microversion: str) -> None:
    folder = samples / SAMPLES_DIR / ("" if microversion == "2.1" else f"v{microversion}")
    with versioned(server, microversion) as client:
        volume_id = new_volume(admin)
        request = load(folder / "attach-volume-to-server-req.json")
        request["volumeAttachment"]["volumeId"] = volume_id
        request["volumeAttachment"].pop("device", None)  # let stackvol choose
        resp = client.post(f"/servers/{server_id}/os-volume_attachments", json=request)
        if microversion == "2.101":
            assert resp.status_code == 202 and resp.content == b""
        else:
            assert resp.status_code == 200, resp.text
            assert_same_shape(resp.json(), load(folder / "attach-volume-to-server-resp.json"))
            assert resp.json()["volumeAttachment"]["device"].startswith("/dev/vd")
        volume = volume_status(admin, volume_id, "in-use")
        assert volume["attachments"][0]["serverId"] == server_id
        listed = client.get(f"/servers/{server_id}/os-volume_attachments").json()
        assert_same_shape(listed, load(folder / "list-volume-attachments-resp.json"),
                          nullable=frozenset({"tag"}))
        shown = client.get(f"/servers/{server_id}/os-volume_attachments/{volume_id}")
        assert shown.status_code == 200
        assert_same_shape(shown.json(), load(folder / "volume-attachment-detail-resp.json"),
                          nullable=frozenset({"tag"}))
        if "tag" in request["volumeAttachment"] and mv(microversion) >= mv("2.70"):
            assert shown.json()["volumeAttachment"]["tag"] == request["volumeAttachment"]["tag"]
        detach = client.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}")
        assert detach.status_code == 202
    assert volume_status(admin, volume_id, "available")["attachments"] == [{}]


def test_attached_volume_view_matches_sample(admin: httpx.Client, samples: Path,
                                             server_id: str) -> None:
    volume_id = new_volume(admin, display_name="Volume Name",
                           display_description="Volume Description")
    assert attach(admin, server_id, volume_id).status_code == 200
    volume = volume_status(admin, volume_id, "in-use")
    sample = load(samples / "doc/api_samples/os-volumes/os-volumes-get-resp.json")
    assert_same_shape({"volume": volume}, sample, nullable=frozenset({"snapshotId"}))
    item = volume["attachments"][0]
    assert item["id"] == volume_id and item["volumeId"] == volume_id
    assert item["device"].startswith("/dev/vd")


def test_devices_are_assigned_in_order_and_unique(admin: httpx.Client) -> None:
    server_id = new_server(admin, "devices")
    devices = []
    for _ in range(3):
        resp = attach(admin, server_id, new_volume(admin))
        devices.append(resp.json()["volumeAttachment"]["device"])
    assert devices == ["/dev/vdb", "/dev/vdc", "/dev/vdd"]
    taken = attach(admin, server_id, new_volume(admin), device="/dev/vdc")
    assert taken.status_code == 409
    assert taken.json()["conflictingRequest"]["message"]
    chosen = attach(admin, server_id, new_volume(admin), device="/dev/vdz")
    assert chosen.json()["volumeAttachment"]["device"] == "/dev/vdz"


def test_attach_faults(admin: httpx.Client, demo: httpx.Client, server_id: str) -> None:
    volume_id = new_volume(admin)
    missing = str(uuid.uuid4())
    assert attach(admin, missing, volume_id).status_code == 404
    assert attach(admin, server_id, missing).status_code == 404
    bad = attach(admin, server_id, "not-a-uuid")
    assert bad.status_code == 400 and "badRequest" in bad.json()
    extra = admin.post(f"/servers/{server_id}/os-volume_attachments",
                       json={"volumeAttachment": {"volumeId": volume_id, "tag": "x"}})
    assert extra.status_code == 400  # tag needs 2.49
    assert attach(admin, server_id, volume_id).status_code == 200
    again = attach(admin, server_id, volume_id)
    assert again.status_code == 400
    assert volume_id in again.json()["badRequest"]["message"]
    # Another project sees neither the server nor the volume.
    assert attach(demo, server_id, new_volume(demo)).status_code == 404
    assert demo.get(f"/servers/{server_id}/os-volume_attachments").status_code == 404


def test_attach_to_a_second_server_is_refused_naming_status(admin: httpx.Client,
                                                            server_id: str) -> None:
    volume_id = new_volume(admin, display_name="Volume Name",
                           display_description="Volume Description")
    assert attach(admin, server_id, volume_id).status_code == 200
    other = new_server(admin, "other")
    resp = attach(admin, other, volume_id)
    assert resp.status_code == 400
    message = resp.json()["badRequest"]["message"]
    assert "attaching" in message or "in-use" in message


def test_deleting_an_attached_volume_is_refused(admin: httpx.Client, server_id: str) -> None:
    volume_id = new_volume(admin)
    attach(admin, server_id, volume_id)
    volume_status(admin, volume_id, "in-use")
    resp = admin.delete(f"/os-volumes/{volume_id}")
    assert resp.status_code == 400
    assert volume_status(admin, volume_id, "in-use")


def test_detach_faults(admin: httpx.Client, server_id: str) -> None:
    volume_id = new_volume(admin)
    resp = admin.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}")
    assert resp.status_code == 404
    assert admin.get(f"/servers/{server_id}/os-volume_attachments/{volume_id}"
                     ).status_code == 404


def test_server_state_forbids_attach(admin: httpx.Client) -> None:
    server_id = new_server(admin, "stopping")
    assert admin.post(f"/servers/{server_id}/action", json={"os-stop": None}
                      ).status_code == 202
    stopped = wait_for(lambda: admin.get(f"/servers/{server_id}").json()["server"],
                       lambda s: s["status"] == "SHUTOFF")
    assert stopped["status"] == "SHUTOFF"
    # Nova allows attaching to a stopped server.
    assert attach(admin, server_id, new_volume(admin)).status_code == 200


def test_list_pagination_and_strict_query(server: StackvolProcess, admin: httpx.Client) -> None:
    server_id = new_server(admin, "paging")
    volumes = [new_volume(admin) for _ in range(3)]
    for volume_id in volumes:
        attach(admin, server_id, volume_id)
    base = f"/servers/{server_id}/os-volume_attachments"
    page = admin.get(base + "?limit=2&offset=1").json()["volumeAttachments"]
    assert [a["volumeId"] for a in page] == volumes[1:3]
    assert admin.get(base + "?foo=1").status_code == 200  # ignored before 2.75
    with versioned(server, "2.75") as strict:
        assert strict.get(base + "?foo=1").status_code == 400


def test_update_delete_on_termination_and_swap(server: StackvolProcess, admin: httpx.Client,
                                               demo: httpx.Client, server_id: str) -> None:
    with versioned(server, "2.85") as client:
        volume_id = new_volume(admin)
        attach(client, server_id, volume_id)
        url = f"/servers/{server_id}/os-volume_attachments/{volume_id}"
        resp = client.put(url, json={"volumeAttachment": {
            "volumeId": volume_id, "delete_on_termination": True}})
        assert resp.status_code == 202
        assert client.get(url).json()["volumeAttachment"]["delete_on_termination"] is True
        immutable = client.put(url, json={"volumeAttachment": {
            "volumeId": volume_id, "tag": "changed"}})
        assert immutable.status_code == 400
        swap = client.put(url, json={"volumeAttachment": {
            "volumeId": new_volume(admin)}})
        assert swap.status_code == 409
    assert demo.put(url, json={"volumeAttachment": {"volumeId": volume_id}}).status_code == 404
    # Below 2.85 every PUT is a swap; to the same volume it is not a migration either.
    assert admin.put(url, json={"volumeAttachment": {"volumeId": volume_id}}).status_code == 202


def test_fifty_concurrent_attaches_exactly_one_wins(admin: httpx.Client) -> None:
    servers = [new_server(admin, f"race-{i}") for i in range(50)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for _ in range(20):
            volume_id = new_volume(admin)
            codes = list(pool.map(lambda s, v=volume_id: attach(admin, s, v).status_code,
                                  servers))
            assert codes.count(200) == 1, codes
            assert set(codes) == {200, 400}
            volume = volume_status(admin, volume_id, "in-use")
            assert len(volume["attachments"]) == 1


def test_fifty_concurrent_detach_and_delete_pairs(admin: httpx.Client) -> None:
    server_id = new_server(admin, "pairs")
    volumes = [new_volume(admin) for _ in range(50)]
    for volume_id in volumes:
        assert attach(admin, server_id, volume_id).status_code == 200
    for volume_id in volumes:
        volume_status(admin, volume_id, "in-use")

    def detach_and_delete(volume_id: str) -> tuple[int, int]:
        detach = admin.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}")
        delete = admin.delete(f"/os-volumes/{volume_id}")
        return detach.status_code, delete.status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(detach_and_delete, volumes))
    assert all(detach == 202 for detach, _ in results), results

    def settled() -> dict[str, str]:
        out = {}
        for volume_id in volumes:
            resp = admin.get(f"/os-volumes/{volume_id}")
            out[volume_id] = "gone" if resp.status_code == 404 else resp.json()["volume"]["status"]
        return out

    final = wait_for(settled, lambda s: set(s.values()) <= {"available", "gone"})
    assert set(final.values()) <= {"available", "gone"}, final
    for (volume_id, (_, delete)) in zip(volumes, results, strict=True):
        assert (final[volume_id] == "gone") == (delete == 202), (volume_id, delete)
    remaining = admin.get(f"/servers/{server_id}/os-volume_attachments").json()
    assert remaining["volumeAttachments"] == []
