"""``/os-volumes`` over plain HTTP against the real server: lifecycle, faults, tenancy, storage."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.support.server import StackvolProcess, wait_for
from tests.support.volumes import create_volume, volume_file, volume_status


def test_lifecycle_create_show_list_delete(server: StackvolProcess, admin: httpx.Client) -> None:
    created = create_volume(admin, display_name="life", display_description="cycle",
                     metadata={"purpose": "test"})
    assert created["status"] == "creating"
    assert created["attachments"] == [{}]
    volume = volume_status(admin, created["id"], "available")
    assert volume["displayName"] == "life"
    assert volume["displayDescription"] == "cycle"
    assert volume["metadata"] == {"purpose": "test"}
    assert volume["size"] == 1
    assert volume["availabilityZone"] == "nova"
    ids = [v["id"] for v in admin.get("/os-volumes").json()["volumes"]]
    detail_ids = [v["id"] for v in admin.get("/os-volumes/detail").json()["volumes"]]
    assert created["id"] in ids and created["id"] in detail_ids

    assert admin.delete(f"/os-volumes/{created['id']}").status_code == 202
    gone = wait_for(lambda: admin.get(f"/os-volumes/{created['id']}"),
                    lambda r: r.status_code == 404)
    assert gone.status_code == 404
    assert gone.json() == {"itemNotFound": {
        "code": 404, "message": f"Volume {created['id']} could not be found."}}
    assert not volume_file(server, created["id"]).exists()


def test_create_answers_location_and_request_ids(admin: httpx.Client) -> None:
    resp = admin.post("/os-volumes", json={"volume": {"size": 1}})
    volume_id = resp.json()["volume"]["id"]
    assert resp.headers["location"].endswith(f"/v2.1/os-volumes/{volume_id}")
    assert resp.headers["x-openstack-request-id"].startswith("req-")
    assert resp.headers["x-compute-request-id"] == resp.headers["x-openstack-request-id"]
    assert resp.headers["openstack-api-version"] == "compute 2.1"


def test_volume_file_is_sparse_with_exact_size(server: StackvolProcess,
                                                admin: httpx.Client) -> None:
    volume = create_volume(admin, size=3)
    volume_status(admin, volume["id"], "available")
    stat = volume_file(server, volume["id"]).stat()
    assert stat.st_size == 3 * 1024**3
    assert stat.st_blocks * 512 <= 64 * 1024  # nothing written up front


def test_one_tebibyte_volume_is_instant(server: StackvolProcess, admin: httpx.Client) -> None:
    started = time.monotonic()
    volume = create_volume(admin, size=1024)
    volume_status(admin, volume["id"], "available")
    assert time.monotonic() - started < 5
    assert volume_file(server, volume["id"]).stat().st_size == 1024**4
    admin.delete(f"/os-volumes/{volume['id']}")


@pytest.mark.parametrize("size", [0, -1, "abc", "0", 1.5, None, 10**9, True])
def test_bad_sizes_are_400(admin: httpx.Client, size: object) -> None:
    resp = admin.post("/os-volumes", json={"volume": {"size": size}})
    assert resp.status_code == 400, resp.text
    fault = resp.json()["badRequest"]
    assert fault["code"] == 400 and fault["message"]


@pytest.mark.parametrize("body", [
    {}, {"volume": {}}, {"volume": {"size": 1, "bogus": 1}}, {"volumes": {"size": 1}},
    {"volume": {"size": 1, "metadata": "x"}}, {"volume": {"size": 1, "display_name": 5}},
    [], "volume",
])
def test_schema_violations_are_400(admin: httpx.Client, body: object) -> None:
    resp = admin.post("/os-volumes", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["code"] == 400


def test_missing_size_message_is_novas(admin: httpx.Client) -> None:
    resp = admin.post("/os-volumes", json={"volume": {}})
    assert resp.json()["badRequest"]["message"] == (
        "Invalid input for field/attribute volume. Value: {}. 'size' is a required property")


def test_malformed_and_empty_bodies_are_400(admin: httpx.Client) -> None:
    for content in (b"{not json", b"", b"   "):
        resp = admin.post("/os-volumes", content=content,
                          headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, (content, resp.text)
        assert "badRequest" in resp.json()


def test_unknown_availability_zone_and_type(admin: httpx.Client) -> None:
    resp = admin.post("/os-volumes", json={"volume": {"size": 1, "availability_zone": "mars"}})
    assert resp.status_code == 400
    resp = admin.post("/os-volumes", json={"volume": {"size": 1, "volume_type": "gold"}})
    assert resp.status_code == 404
    assert "itemNotFound" in resp.json()


def test_unknown_ids_are_404(admin: httpx.Client) -> None:
    for path in ("/os-volumes/8b1f4a3e-0000-4000-8000-000000000000", "/os-volumes/not-a-uuid"):
        resp = admin.get(path)
        assert resp.status_code == 404
        assert resp.json()["itemNotFound"]["code"] == 404
        assert admin.delete(path).status_code == 404


def test_projects_cannot_see_each_other(admin: httpx.Client, demo: httpx.Client) -> None:
    theirs = create_volume(admin, display_name="admin-only")
    assert demo.get(f"/os-volumes/{theirs['id']}").status_code == 404
    assert demo.delete(f"/os-volumes/{theirs['id']}").status_code == 404
    listed = [v["id"] for v in demo.get("/os-volumes/detail").json()["volumes"]]
    assert theirs["id"] not in listed
    # all_tenants widens only an admin's view.
    listed = [v["id"] for v in demo.get("/os-volumes?all_tenants=1").json()["volumes"]]
    assert theirs["id"] not in listed
    mine = create_volume(demo, display_name="demo-own")
    all_ids = [v["id"] for v in admin.get("/os-volumes?all_tenants=1").json()["volumes"]]
    own_ids = [v["id"] for v in admin.get("/os-volumes").json()["volumes"]]
    assert mine["id"] in all_ids and mine["id"] not in own_ids


def test_project_id_in_path(server: StackvolProcess, admin: httpx.Client) -> None:
    _, token = server.token("admin")
    project = token["project"]["id"]
    volume = create_volume(admin)
    resp = admin.get(f"/{project}/os-volumes/{volume['id']}")
    assert resp.status_code == 200
    resp = admin.get(f"/{'0' * 32}/os-volumes/{volume['id']}")
    assert resp.status_code == 400
    assert "Malformed request URL" in resp.json()["badRequest"]["message"]


def test_offset_and_limit(admin: httpx.Client) -> None:
    for i in range(5):
        create_volume(admin, display_name=f"page-{i}")
    everything = admin.get("/os-volumes").json()["volumes"]
    first = admin.get("/os-volumes?limit=2").json()["volumes"]
    second = admin.get("/os-volumes?limit=2&offset=2").json()["volumes"]
    assert [v["id"] for v in first + second] == [v["id"] for v in everything[:4]]
    assert len(admin.get("/os-volumes?limit=0").json()["volumes"]) == len(everything)
    for bad in ("limit=-1", "offset=-3", "limit=abc"):
        resp = admin.get(f"/os-volumes?{bad}")
        assert resp.status_code == 400, bad


def test_newest_first(admin: httpx.Client) -> None:
    a = create_volume(admin, display_name="older")
    b = create_volume(admin, display_name="newer")
    ids = [v["id"] for v in admin.get("/os-volumes?limit=50").json()["volumes"]]
    assert ids.index(b["id"]) < ids.index(a["id"])


def test_microversion_2_36_hides_os_volumes(server: StackvolProcess) -> None:
    with server.client("admin", microversion="2.36") as client:
        resp = client.get("/os-volumes")
        assert resp.status_code == 404
        assert resp.json()["itemNotFound"]["code"] == 404
        assert client.post("/os-volumes", json={"volume": {"size": 1}}).status_code == 404
    with server.client("admin", microversion="2.35") as client:
        assert client.get("/os-volumes").status_code == 200


def test_storage_failure_ends_in_error_not_stuck(server: StackvolProcess,
                                                 admin: httpx.Client) -> None:
    # Make the backend fail for real: the volumes directory stops being writable.
    volumes_dir = server.data_dir / "volumes"
    mode = volumes_dir.stat().st_mode
    if os.geteuid() == 0:
        blocker = volumes_dir.with_name("volumes-moved")
        volumes_dir.rename(blocker)
        volumes_dir.write_text("not a directory")
    else:
        volumes_dir.chmod(0o500)
    try:
        volume = create_volume(admin, display_name="doomed")
        final = wait_for(lambda: admin.get(f"/os-volumes/{volume['id']}").json()["volume"],
                         lambda v: v["status"] != "creating")
        assert final["status"] == "error"
    finally:
        if os.geteuid() == 0:
            volumes_dir.unlink()
            blocker.rename(volumes_dir)
        else:
            volumes_dir.chmod(mode)
    # An errored volume can be deleted.
    assert admin.delete(f"/os-volumes/{volume['id']}").status_code == 202
    wait_for(lambda: admin.get(f"/os-volumes/{volume['id']}"), lambda r: r.status_code == 404)


def test_deleting_twice_is_refused(admin: httpx.Client) -> None:
    volume = create_volume(admin)
    volume_status(admin, volume["id"], "available")
    assert admin.delete(f"/os-volumes/{volume['id']}").status_code == 202
    again = admin.delete(f"/os-volumes/{volume['id']}")
    assert again.status_code in (400, 404)  # 400 while deleting, 404 once gone
