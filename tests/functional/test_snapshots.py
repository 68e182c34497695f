"""``/os-snapshots`` against the real server: the bytes on the file backend, the API, Nova's
samples, and a kill -9 in the middle of a snapshot."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.server import StackvolProcess, running, wait_for
from tests.support.servers import IMAGE
from tests.support.shapes import assert_same_shape, load
from tests.support.sparse import ISLANDS, WRITTEN, allocated, assert_holds, write_islands
from tests.support.volumes import create_volume, volume_file, volume_status, wait_gone

SAMPLES_DIR = "doc/api_samples/os-snapshots"
# Data-dependent: a snapshot created without names shows them as null.
NULLABLE = frozenset({"displayName", "displayDescription"})


def snapshot_file(server: StackvolProcess, snapshot_id: str) -> Path:
    return server.data_dir / "snapshots" / f"snapshot-{snapshot_id}.raw"


def post_snapshot(client: httpx.Client, volume_id: str, **fields: object) -> httpx.Response:
    return client.post("/os-snapshots", json={"snapshot": {"volume_id": volume_id, **fields}})


def create_snapshot(client: httpx.Client, volume_id: str, **fields: object) -> dict:
    resp = post_snapshot(client, volume_id, **fields)
    assert resp.status_code == 200, resp.text
    return resp.json()["snapshot"]


def snapshot_status(client: httpx.Client, snapshot_id: str, status: str) -> dict:
    snap = wait_for(lambda: client.get(f"/os-snapshots/{snapshot_id}").json()["snapshot"],
                    lambda s: s["status"] == status)
    assert snap["status"] == status, snap
    return snap


def ready_volume(client: httpx.Client, **fields: object) -> dict:
    return volume_status(client, create_volume(client, **fields)["id"], "available")


def ready_snapshot(client: httpx.Client, volume_id: str, **fields: object) -> dict:
    return snapshot_status(client, create_snapshot(client, volume_id, **fields)["id"],
                           "available")


@pytest.fixture(scope="module")
def snapshot(admin: httpx.Client) -> dict:
    """One available snapshot of the admin project, shared by the read-only tests."""
    volume = ready_volume(admin, display_name="snap-source")
    return ready_snapshot(admin, volume["id"], display_name="shared",
                          display_description="read-only tests")


# --- (a) the bytes ------------------------------------------------------------------------


def test_snapshot_keeps_the_bytes_and_seeds_a_bigger_volume(server: StackvolProcess,
                                                            admin: httpx.Client) -> None:
    volume = ready_volume(admin)
    write_islands(volume_file(server, volume["id"]))
    snap = ready_snapshot(admin, volume["id"])
    snap_path = snapshot_file(server, snap["id"])
    assert_holds(snap_path)
    assert snap_path.stat().st_size == 1024**3
    assert WRITTEN <= allocated(snap_path) < WRITTEN + 64 * 1024, "the snapshot is not sparse"

    # The volume moves on; the snapshot and a volume made from it keep the old bytes.
    overwritten = [(offset, b"\x00\xee" * (len(data) // 2)) for offset, data in ISLANDS]
    write_islands(volume_file(server, volume["id"]), overwritten)
    resp = admin.post("/os-volumes", json={"volume": {"size": 3, "snapshot_id": snap["id"]}})
    assert resp.status_code == 200, resp.text
    clone = volume_status(admin, resp.json()["volume"]["id"], "available")
    assert clone["snapshotId"] == snap["id"] and clone["size"] == 3
    clone_path = volume_file(server, clone["id"])
    assert_holds(clone_path)
    assert clone_path.stat().st_size == 3 * 1024**3
    assert allocated(clone_path) < WRITTEN + 64 * 1024
    assert_holds(volume_file(server, volume["id"]), overwritten)

    # Deleting the snapshot removes its file and nothing else.
    assert admin.delete(f"/os-snapshots/{snap['id']}").status_code == 202
    wait_gone(admin, f"/os-snapshots/{snap['id']}")
    assert not snap_path.exists()
    assert_holds(clone_path)


# --- (b) the API --------------------------------------------------------------------------


def test_lifecycle_create_list_show_delete(server: StackvolProcess, admin: httpx.Client) -> None:
    volume = ready_volume(admin, size=2)
    created = create_snapshot(admin, volume["id"], display_name="nightly",
                              display_description="before the upgrade", force=False)
    assert created["status"] == "creating"
    assert created["volumeId"] == volume["id"]
    assert created["size"] == 2
    snap = snapshot_status(admin, created["id"], "available")
    assert snap["displayName"] == "nightly"
    assert snap["displayDescription"] == "before the upgrade"
    assert snap["createdAt"] == created["createdAt"]
    for path in ("/os-snapshots", "/os-snapshots/detail"):
        listed = {s["id"]: s for s in admin.get(path).json()["snapshots"]}
        assert listed[snap["id"]] == snap

    resp = admin.delete(f"/os-volumes/{volume['id']}")
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        f"Invalid volume: Volume {volume['id']} still has 1 dependent snapshots.")

    resp = admin.delete(f"/os-snapshots/{snap['id']}")
    assert resp.status_code == 202 and resp.content == b""
    missing = wait_gone(admin, f"/os-snapshots/{snap['id']}")
    assert missing.json() == {"itemNotFound": {
        "code": 404, "message": f"Snapshot {snap['id']} could not be found."}}
    assert not snapshot_file(server, snap["id"]).exists()
    assert admin.delete(f"/os-volumes/{volume['id']}").status_code == 202


def test_names_are_optional(admin: httpx.Client, snapshot: dict) -> None:
    snap = create_snapshot(admin, snapshot["volumeId"])
    assert snap["displayName"] is None and snap["displayDescription"] is None
    snapshot_status(admin, snap["id"], "available")
    assert admin.delete(f"/os-snapshots/{snap['id']}").status_code == 202


def test_storage_failure_ends_in_error_and_can_be_deleted(server: StackvolProcess,
                                                          admin: httpx.Client) -> None:
    volume = ready_volume(admin)
    volume_file(server, volume["id"]).unlink()  # the backend lost the bytes: the copy fails
    snap = create_snapshot(admin, volume["id"])
    final = wait_for(lambda: admin.get(f"/os-snapshots/{snap['id']}").json()["snapshot"],
                     lambda s: s["status"] != "creating")
    assert final["status"] == "error"
    assert not list((server.data_dir / "snapshots").glob(f"*{snap['id']}*"))
    resp = admin.post("/os-volumes", json={"volume": {"size": 1, "snapshot_id": snap["id"]}})
    assert resp.status_code == 400
    assert "status must be one of 'available' values (it is 'error')" in resp.text
    assert admin.delete(f"/os-snapshots/{snap['id']}").status_code == 202
    wait_gone(admin, f"/os-snapshots/{snap['id']}")
    assert admin.delete(f"/os-volumes/{volume['id']}").status_code == 202


@pytest.mark.parametrize("force", [True, False, "true", "YES", "on", "1", "No", "OFF", "0"])
def test_force_takes_nova_booleans(admin: httpx.Client, snapshot: dict, force: object) -> None:
    snap = create_snapshot(admin, snapshot["volumeId"], force=force)
    snapshot_status(admin, snap["id"], "available")
    assert admin.delete(f"/os-snapshots/{snap['id']}").status_code == 202


@pytest.mark.parametrize(("body", "message"), [
    ({"snapshot": {"volume_id": "x", "force": "maybe"}},
     "Invalid input for field/attribute force. Value: maybe."),
    ({"snapshot": {"volume_id": "x", "force": 1}},
     "Invalid input for field/attribute force. Value: 1."),
    ({"snapshot": {"force": True}},
     "Invalid input for field/attribute snapshot. Value: {'force': True}. "
     "'volume_id' is a required property"),
    ({"snapshot": {"volume_id": "x", "size": 1}},
     "Invalid input for field/attribute snapshot. Value: {'volume_id': 'x', 'size': 1}. "
     "Additional properties are not allowed ('size' was unexpected)"),
    ({"snapshot": {"volume_id": 7}}, "Invalid input for field/attribute volume_id. Value: 7."),
    ({"volume_id": "x"}, "'snapshot' is a required property"),
])
def test_bad_bodies_are_400(admin: httpx.Client, body: dict, message: str) -> None:
    resp = admin.post("/os-snapshots", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"].startswith(message)


def test_unknown_ids_are_404(admin: httpx.Client) -> None:
    missing = "3f2a1c3e-0000-4000-8000-000000000000"
    for resp in (admin.get(f"/os-snapshots/{missing}"), admin.delete(f"/os-snapshots/{missing}")):
        assert resp.status_code == 404
        assert resp.json()["itemNotFound"]["message"] == f"Snapshot {missing} could not be found."
    resp = post_snapshot(admin, missing)
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == f"Volume {missing} could not be found."


def test_other_projects_cannot_see_or_touch(admin: httpx.Client, demo: httpx.Client,
                                            snapshot: dict) -> None:
    assert demo.get(f"/os-snapshots/{snapshot['id']}").status_code == 404
    assert demo.delete(f"/os-snapshots/{snapshot['id']}").status_code == 404
    assert post_snapshot(demo, snapshot["volumeId"]).status_code == 404
    assert snapshot["id"] not in {s["id"] for s in demo.get("/os-snapshots").json()["snapshots"]}
    # Nor take a volume from it.
    resp = demo.post("/os-volumes", json={"volume": {"size": 1, "snapshot_id": snapshot["id"]}})
    assert resp.status_code == 404
    assert admin.get(f"/os-snapshots/{snapshot['id']}").json()["snapshot"]["status"] == "available"


def test_admin_lists_every_project_only_when_asked(admin: httpx.Client,
                                                   demo: httpx.Client) -> None:
    theirs = ready_snapshot(demo, ready_volume(demo)["id"])
    assert theirs["id"] in {s["id"] for s in demo.get("/os-snapshots").json()["snapshots"]}
    mine = {s["id"] for s in admin.get("/os-snapshots").json()["snapshots"]}
    everyone = {s["id"] for s in admin.get("/os-snapshots/detail?all_tenants=1")
                .json()["snapshots"]}
    assert theirs["id"] not in mine and theirs["id"] in everyone
    assert admin.get(f"/os-snapshots/{theirs['id']}").status_code == 200
    # all_tenants is ignored for non-admins (they still see only their own).
    assert {s["id"] for s in demo.get("/os-snapshots?all_tenants=1").json()["snapshots"]} <= (
        everyone - mine)


def test_offset_and_limit_page_newest_first(admin: httpx.Client, snapshot: dict) -> None:
    made = [create_snapshot(admin, snapshot["volumeId"], display_name=f"page-{i}")["id"]
            for i in range(3)]
    everything = [s["id"] for s in admin.get("/os-snapshots").json()["snapshots"]]
    assert everything[:3] == made[::-1]
    window = admin.get("/os-snapshots/detail", params={"offset": 1, "limit": 2}).json()
    assert [s["id"] for s in window["snapshots"]] == everything[1:3]
    assert admin.get("/os-snapshots?limit=x").status_code == 400
    for snap_id in made:
        snapshot_status(admin, snap_id, "available")
        assert admin.delete(f"/os-snapshots/{snap_id}").status_code == 202


def test_volume_from_snapshot_must_not_be_smaller(admin: httpx.Client) -> None:
    volume = ready_volume(admin, size=2)
    snap = ready_snapshot(admin, volume["id"])
    resp = admin.post("/os-volumes", json={"volume": {"size": 1, "snapshot_id": snap["id"]}})
    assert resp.status_code == 400
    assert "cannot be smaller than the snapshot size 2GB" in resp.json()["badRequest"]["message"]


def test_in_use_volume_needs_force(server: StackvolProcess, admin: httpx.Client) -> None:
    with server.client("admin", microversion="2.37") as compute:  # networks "none" needs 2.37
        resp = compute.post("/servers", json={"server": {
            "name": "snap-attach", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}})
        if resp.status_code != 202:
            pytest.skip(f"no server create API to attach with yet ({resp.status_code})")
        server_id = resp.json()["server"]["id"]
        wait_for(lambda: compute.get(f"/servers/{server_id}").json()["server"]["status"],
                 lambda s: s in ("ACTIVE", "ERROR"))
    volume = ready_volume(admin)
    resp = admin.post(f"/servers/{server_id}/os-volume_attachments",
                      json={"volumeAttachment": {"volumeId": volume["id"]}})
    if resp.status_code != 200:  # attach is its own feature, tested in test_attachments.py
        pytest.skip(f"the attach API is not usable yet ({resp.status_code}: {resp.text[:100]})")
    volume_status(admin, volume["id"], "in-use")

    resp = post_snapshot(admin, volume["id"])
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        f"Invalid volume: Volume {volume['id']} status must be available, but current status "
        f"is: in-use.")
    snap = create_snapshot(admin, volume["id"], force="True")
    snapshot_status(admin, snap["id"], "available")


@pytest.mark.parametrize("microversion", ["2.36", "2.90"])
def test_gone_from_2_36(server: StackvolProcess, snapshot: dict, microversion: str) -> None:
    newest = httpx.get(server.url + "/v2.1").json()["version"]["version"]
    if tuple(map(int, newest.split("."))) < tuple(map(int, microversion.split("."))):
        pytest.skip(f"the server's newest microversion is {newest}, below {microversion}")
    with server.client("admin", microversion=microversion) as client:
        calls = [client.get("/os-snapshots"), client.get("/os-snapshots/detail"),
                 client.get(f"/os-snapshots/{snapshot['id']}"),
                 post_snapshot(client, snapshot["volumeId"]),
                 client.delete(f"/os-snapshots/{snapshot['id']}")]
    for resp in calls:
        assert resp.status_code == 404
        assert resp.json() == {"itemNotFound": {
            "code": 404, "message": "The resource could not be found."}}
    with server.client("admin", microversion="2.35") as client:
        assert client.get(f"/os-snapshots/{snapshot['id']}").status_code == 200


def test_project_id_in_the_path_works(server: StackvolProcess, snapshot: dict) -> None:
    _, token = server.token("admin")
    with server.client("admin", prefix=f"/v2.1/{token['project']['id']}") as client:
        assert client.get(f"/os-snapshots/{snapshot['id']}").status_code == 200


# --- (c) Nova's samples -------------------------------------------------------------------


def test_create_sample_request_and_response(admin: httpx.Client, samples: Path,
                                            snapshot: dict) -> None:
    request = load(samples / SAMPLES_DIR / "snapshot-create-req.json")
    request["snapshot"]["volume_id"] = snapshot["volumeId"]
    resp = admin.post("/os-snapshots", json=request)
    assert resp.status_code == 200, resp.text
    ours = resp.json()
    assert_same_shape(ours, load(samples / SAMPLES_DIR / "snapshot-create-resp.json"))
    assert ours["snapshot"]["displayName"] == "snap-001"
    assert ours["snapshot"]["displayDescription"] == "Daily backup"
    snapshot_status(admin, ours["snapshot"]["id"], "available")
    assert admin.delete(f"/os-snapshots/{ours['snapshot']['id']}").status_code == 202


def test_show_matches_sample(admin: httpx.Client, samples: Path, snapshot: dict) -> None:
    ours = admin.get(f"/os-snapshots/{snapshot['id']}").json()
    assert_same_shape(ours, load(samples / SAMPLES_DIR / "snapshots-show-resp.json"))


@pytest.mark.parametrize(("path", "sample_file"), [
    ("/os-snapshots", "snapshots-list-resp.json"),
    ("/os-snapshots/detail", "snapshots-detail-resp.json"),
])
def test_lists_match_samples(admin: httpx.Client, samples: Path, snapshot: dict, path: str,
                             sample_file: str) -> None:
    ours = admin.get(path).json()
    assert ours["snapshots"], "the list must hold the shared snapshot"
    assert_same_shape(ours, load(samples / SAMPLES_DIR / sample_file), NULLABLE)


# --- (d) crashes --------------------------------------------------------------------------


def test_kill_mid_snapshot_then_restart_finishes_it(tmp_path: Path) -> None:
    with running(tmp_path / "data", pause_at="snapshot.create") as server:
        with server.client("admin") as client:
            volume = ready_volume(client)
            write_islands(volume_file(server, volume["id"]))
            snap = create_snapshot(client, volume["id"])
            # The worker has claimed the task and parked at the pause point.
            wait_for(lambda: server.log_path.read_text(),
                     lambda text: "paused at snapshot.create" in text)
            assert "paused at snapshot.create" in server.log_path.read_text()
            assert client.get(f"/os-snapshots/{snap['id']}").json()["snapshot"]["status"] == (
                "creating")
            # Neither the snapshot nor its volume may go while the copy is in flight.
            resp = client.delete(f"/os-snapshots/{snap['id']}")
            assert resp.status_code == 400
            assert "current status is: creating" in resp.json()["badRequest"]["message"]
            assert client.delete(f"/os-volumes/{volume['id']}").status_code == 400
        server.kill()
        # What a kill in the middle of the copy would have left under the temporary name.
        snapshots_dir = server.data_dir / "snapshots"
        (snapshots_dir / f".snapshot-{snap['id']}.raw.part").write_bytes(b"partial")
        server.start()
        with server.client("admin") as client:
            snapshot_status(client, snap["id"], "available")
        assert sorted(p.name for p in snapshots_dir.iterdir()) == [f"snapshot-{snap['id']}.raw"]
        assert_holds(snapshot_file(server, snap["id"]))


def test_kill_mid_delete_then_restart_finishes_it(tmp_path: Path) -> None:
    with running(tmp_path / "data", pause_at="snapshot.delete") as server:
        with server.client("admin") as client:
            snap = ready_snapshot(client, ready_volume(client)["id"])
            assert client.delete(f"/os-snapshots/{snap['id']}").status_code == 202
            assert client.get(f"/os-snapshots/{snap['id']}").json()["snapshot"]["status"] == (
                "deleting")
        server.kill()
        server.start()
        with server.client("admin") as client:
            wait_gone(client, f"/os-snapshots/{snap['id']}")
        assert list((server.data_dir / "snapshots").iterdir()) == []


def test_snapshot_feeding_a_volume_being_created_cannot_be_deleted(tmp_path: Path) -> None:
    with running(tmp_path / "data") as server:
        with server.client("admin") as client:
            snap = ready_snapshot(client, ready_volume(client)["id"])
        server.stop()
        server.start(pause_at="volume.create")
        with server.client("admin") as client:
            resp = client.post("/os-volumes",
                               json={"volume": {"size": 1, "snapshot_id": snap["id"]}})
            assert resp.status_code == 200, resp.text
            resp = client.delete(f"/os-snapshots/{snap['id']}")
            assert resp.status_code == 400
            assert resp.json()["badRequest"]["message"] == (
                f"Invalid snapshot: Snapshot {snap['id']} is the source of 1 volume(s) still "
                f"being created.")
            assert client.get(f"/os-snapshots/{snap['id']}").json()["snapshot"]["status"] == (
                "available")
