"""The Block Storage v3 face on the real server: views, errors, actions, and one store with Nova."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import httpx

from tests.support.clients import CINDER_MAX as MAX
from tests.support.clients import cinder, project_id
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import new_server
from tests.support.volumes import make_volume, volume_file, wait_gone, wait_volume

GiB = 1024**3


# --- versions, microversions, errors ----------------------------------------------------------


def test_version_documents(server: StackvolProcess) -> None:
    root = httpx.get(server.url + "/volume/")
    assert root.status_code == 300
    assert root.headers["x-openstack-request-id"].startswith("req-")
    (entry,) = root.json()["versions"]
    assert (entry["id"], entry["status"], entry["min_version"], entry["version"]) == (
        "v3.0", "CURRENT", "3.0", MAX)
    assert {"rel": "self", "href": f"{server.url}/volume/v3/"} in entry["links"]
    v3 = httpx.get(server.url + "/volume/v3/")
    assert v3.status_code == 200 and v3.json() == root.json()


def test_microversion_negotiation(server: StackvolProcess) -> None:
    with cinder(server, version=None) as client:
        resp = client.get("/volumes")
        assert resp.headers["openstack-api-version"] == "volume 3.0"
        assert "OpenStack-API-Version" in resp.headers["vary"]
        latest = client.get("/volumes", headers={"OpenStack-API-Version": "volume latest"})
        assert latest.headers["openstack-api-version"] == f"volume {MAX}"
        too_new = client.get("/volumes", headers={"OpenStack-API-Version": "volume 3.99"})
        assert too_new.status_code == 406
        assert too_new.json()["notAcceptable"]["code"] == 406
        bad = client.get("/volumes", headers={"OpenStack-API-Version": "volume 3.x"})
        assert bad.status_code == 400 and "badRequest" in bad.json()


def test_routes_with_and_without_project(server: StackvolProcess, vadmin: httpx.Client) -> None:
    vol = make_volume(vadmin, name="no-project-path")
    with cinder(server, with_project=False) as bare:
        assert bare.get(f"/volumes/{vol['id']}").json()["volume"]["name"] == "no-project-path"
    wrong = vadmin.get(server.url + f"/volume/v3/{uuid.uuid4().hex}/volumes")
    assert wrong.status_code == 400
    assert wrong.json()["badRequest"]["message"] == "Malformed request url"
    assert httpx.get(server.url + "/volume/v3/volumes").status_code == 401


def test_errors_are_cinder_faults(vadmin: httpx.Client) -> None:
    missing = vadmin.get(f"/volumes/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert set(missing.json()) == {"itemNotFound"}
    assert missing.json()["itemNotFound"]["code"] == 404
    assert missing.headers["x-openstack-request-id"].startswith("req-")
    bad = vadmin.post("/volumes", json={"volume": {"size": 0}})
    assert bad.status_code == 400
    assert "size" in bad.json()["badRequest"]["message"]
    strict = vadmin.post("/volumes", json={"volume": {"size": 1, "bogus": 1}})
    assert strict.status_code == 400  # 3.53+: unknown properties are refused
    relaxed = vadmin.post("/volumes", json={"volume": {"size": 1, "bogus": 1}},
                          headers={"OpenStack-API-Version": "volume 3.52"})
    assert relaxed.status_code == 202
    missing = str(uuid.uuid4())
    image = vadmin.post("/volumes", json={"volume": {"size": 1, "imageRef": missing}})
    assert image.status_code == 404
    assert image.json()["itemNotFound"]["message"] == f"Image {missing} could not be found."
    clone = vadmin.post("/volumes", json={"volume": {"size": 1,
                                                     "source_volid": str(uuid.uuid4())}})
    assert clone.status_code == 404  # as Cinder (Tempest's nonexistent source_volid test)
    action = vadmin.post(f"/volumes/{relaxed.json()['volume']['id']}/action",
                         json={"os-bogus": {}})
    assert action.status_code == 400
    assert action.json()["badRequest"]["message"] == "There is no such action: os-bogus"


# --- volumes ------------------------------------------------------------------------------------


def test_volume_lifecycle_and_views(server: StackvolProcess, vadmin: httpx.Client) -> None:
    resp = vadmin.post("/volumes", json={"volume": {
        "size": 1, "name": "life", "description": "d", "metadata": {"k": "v"}}})
    assert resp.status_code == 202
    created = resp.json()["volume"]
    assert created["status"] == "creating"
    vol = wait_volume(vadmin, created["id"], "available")
    for key in ("attachments", "availability_zone", "bootable", "created_at", "description",
                "encrypted", "id", "links", "metadata", "multiattach", "name",
                "os-vol-tenant-attr:tenant_id", "replication_status", "size", "snapshot_id",
                "source_volid", "status", "updated_at", "user_id", "volume_type",
                "consistencygroup_id", "group_id", "shared_targets", "service_uuid",
                "volume_type_id", "consumes_quota", "os-vol-host-attr:host", "provider_id",
                "cluster_name", "migration_status"):
        assert key in vol, key
    assert (vol["name"], vol["description"], vol["metadata"], vol["bootable"]) == (
        "life", "d", {"k": "v"}, "false")
    assert vol["volume_type"] == "__DEFAULT__"
    assert vol["links"][0]["href"].endswith(f"/volume/v3/{project_id(vadmin)}/volumes/"
                                            f"{vol['id']}")
    assert "/volume/v3/" not in vol["links"][1]["href"]
    old = vadmin.get(f"/volumes/{vol['id']}",
                     headers={"OpenStack-API-Version": "volume 3.0"}).json()["volume"]
    assert "group_id" not in old and "volume_type_id" not in old and "consumes_quota" not in old
    with cinder(server, "demo") as demo:
        assert demo.get(f"/volumes/{vol['id']}").status_code == 404
    summary = [v for v in vadmin.get("/volumes").json()["volumes"] if v["id"] == vol["id"]]
    assert summary and set(summary[0]) == {"id", "name", "links"}

    updated = vadmin.put(f"/volumes/{vol['id']}", json={"volume": {
        "name": "life2", "description": "", "metadata": {"n": "1"}}})
    assert updated.status_code == 200
    assert (updated.json()["volume"]["name"], updated.json()["volume"]["description"],
            updated.json()["volume"]["metadata"]) == ("life2", "", {"n": "1"})
    assert vadmin.put(f"/volumes/{vol['id']}", json={"volume": {}}).status_code == 400

    assert vadmin.delete(f"/volumes/{vol['id']}").status_code == 202
    wait_gone(vadmin, f"/volumes/{vol['id']}")
    assert not volume_file(server, vol["id"]).exists()


def test_list_filters_sort_and_count(vdemo: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    made = [make_volume(vdemo, name=f"{tag}-{i}", metadata={"tag": tag, "i": str(i)})
            for i in range(3)]
    ids = [v["id"] for v in made]

    def names(**params: Any) -> list[str]:
        return [v["name"] for v in vdemo.get("/volumes/detail", params=params).json()["volumes"]]

    assert names(name=f"{tag}-1") == [f"{tag}-1"]
    assert names(**{"name~": tag}) == [f"{tag}-2", f"{tag}-1", f"{tag}-0"]  # newest first
    assert names(**{"name~": tag, "sort": "name:asc"}) == [f"{tag}-0", f"{tag}-1", f"{tag}-2"]
    assert names(metadata=str({"tag": tag, "i": "2"})) == [f"{tag}-2"]
    assert names(metadata=f'{{"tag": "{tag}"}}', status="error") == []
    counted = vdemo.get("/volumes", params={"name~": tag, "with_count": "true", "limit": 1})
    assert counted.json()["count"] == 3 and len(counted.json()["volumes"]) == 1
    assert "count" not in vdemo.get("/volumes", params={"with_count": "true"}, headers={
        "OpenStack-API-Version": "volume 3.44"}).json()
    bad = vdemo.get("/volumes", params={"bogus": "x"})
    assert bad.status_code == 400
    assert bad.json()["badRequest"]["message"] == ("Invalid input received: Invalid filters "
                                                   "bogus are found in query options.")
    ignored = vdemo.get("/volumes", params={"bogus": "x"},
                        headers={"OpenStack-API-Version": "volume 3.30"})
    assert ignored.status_code == 200
    assert vdemo.get("/volumes", params={"sort": "nope:asc"}).status_code == 400
    assert vdemo.get("/volumes", params={"marker": str(uuid.uuid4())}).status_code == 404
    for vol_id in ids:
        vdemo.delete(f"/volumes/{vol_id}")


def test_bootable_filter_reads_values_as_cinder_at_each_version(vdemo: httpx.Client) -> None:
    # Regression (issue 12): before 3.2 ``bootable=false`` matched nothing (read as true).
    tag = uuid.uuid4().hex[:8]
    boot = make_volume(vdemo, name="boot", metadata={"tag": tag})
    plain = make_volume(vdemo, name="plain", metadata={"tag": tag})
    act = f"/volumes/{boot['id']}/action"
    assert vdemo.post(act, json={"os-set_bootable": {"bootable": True}}).status_code == 200

    def listed(version: str, value: str) -> list[str] | int:
        resp = vdemo.get("/volumes", params={"metadata": f'{{"tag": "{tag}"}}',
                                             "bootable": value},
                         headers={"OpenStack-API-Version": f"volume {version}"})
        return resp.status_code if resp.status_code != 200 else sorted(
            v["name"] for v in resp.json()["volumes"])

    # Before 3.2: False/false/FALSE are false, any other non-empty text is true.
    for value in ("false", "False", "FALSE", ""):
        assert listed("3.0", value) == ["plain"], value
    for value in ("true", "TRUE", "0", "no", "maybe"):
        assert listed("3.1", value) == ["boot"], value
    # From 3.2 the values are parsed strictly, and anything else is refused.
    for value in ("false", "0", "no", "f", "OFF"):
        assert listed("3.2", value) == ["plain"], value
    for value in ("true", "1", "yes", "t"):
        assert listed("3.2", value) == ["boot"], value
    assert listed("3.2", "maybe") == 400
    for vol in (boot, plain):
        vdemo.delete(f"/volumes/{vol['id']}")


def test_all_tenants_is_for_admins(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    theirs = make_volume(vdemo, name="demo-owned")
    mine = {v["id"] for v in vadmin.get("/volumes").json()["volumes"]}
    everyone = {v["id"] for v in vadmin.get("/volumes", params={"all_tenants": 1}).json()[
        "volumes"]}
    assert theirs["id"] not in mine and theirs["id"] in everyone
    demo_all = {v["id"] for v in vdemo.get("/volumes", params={"all_tenants": 1}).json()[
        "volumes"]}
    assert everyone - demo_all  # the admin's own volumes stay hidden from demo
    vdemo.delete(f"/volumes/{theirs['id']}")


def test_volume_metadata_subresource(vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo, metadata={"a": "1"})
    base = f"/volumes/{vol['id']}/metadata"
    assert vdemo.get(base).json() == {"metadata": {"a": "1"}}
    assert vdemo.post(base, json={"metadata": {"b": "2"}}).json() == {
        "metadata": {"a": "1", "b": "2"}}
    assert vdemo.put(base, json={"metadata": {"c": "3"}}).json() == {"metadata": {"c": "3"}}
    assert vdemo.get(base + "/c").json() == {"meta": {"c": "3"}}
    assert vdemo.put(base + "/c", json={"meta": {"c": "4"}}).json() == {"meta": {"c": "4"}}
    mismatch = vdemo.put(base + "/c", json={"meta": {"d": "4"}})
    assert mismatch.json()["badRequest"]["message"] == "Request body and URI mismatch"
    many = vdemo.put(base + "/c", json={"meta": {"c": "1", "d": "2"}})
    assert many.json()["badRequest"]["message"] == "Request body contains too many items"
    assert vdemo.delete(base + "/c").status_code == 200
    missing = vdemo.get(base + "/c")
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["message"] == "Metadata item was not found"
    vdemo.delete(f"/volumes/{vol['id']}")


# --- actions ------------------------------------------------------------------------------------


def test_extend_grows_the_file_and_keeps_data(server: StackvolProcess,
                                              vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    path = volume_file(server, vol["id"])
    payload = os.urandom(4096)
    with open(path, "r+b") as fh:
        fh.seek(123 * 4096)
        fh.write(payload)
    resp = vdemo.post(f"/volumes/{vol['id']}/action", json={"os-extend": {"new_size": 3}})
    assert resp.status_code == 202
    grown = wait_for(lambda: vdemo.get(f"/volumes/{vol['id']}").json()["volume"],
                     lambda v: v["status"] == "available" and v["size"] == 3)
    assert (grown["status"], grown["size"]) == ("available", 3)
    assert path.stat().st_size == 3 * GiB
    assert path.stat().st_blocks * 512 < 16 * 1024 * 1024  # still sparse
    with open(path, "rb") as fh:
        fh.seek(123 * 4096)
        assert fh.read(4096) == payload
    same = vdemo.post(f"/volumes/{vol['id']}/action", json={"os-extend": {"new_size": 3}})
    assert same.status_code == 400
    assert "New size for extend must be greater than current size" in same.text
    vdemo.delete(f"/volumes/{vol['id']}")


def test_reset_status_reconciles_with_backend(server: StackvolProcess, vadmin: httpx.Client,
                                              vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    act = f"/volumes/{vol['id']}/action"
    denied = vdemo.post(act, json={"os-reset_status": {"status": "error"}})
    assert denied.status_code == 403
    assert vadmin.post(act, json={"os-reset_status": {"status": "error"}}).status_code == 202
    assert vdemo.get(f"/volumes/{vol['id']}").json()["volume"]["status"] == "error"
    no_attachment = vadmin.post(act, json={"os-reset_status": {"status": "in-use"}})
    assert no_attachment.status_code == 400
    assert vadmin.post(act, json={"os-reset_status": {"status": "bogus"}}).status_code == 400
    volume_file(server, vol["id"]).unlink()
    assert vadmin.post(act, json={"os-reset_status": {"status": "available"}}).status_code == 202
    # The backend holds no bytes: the volume cannot be available.
    assert vdemo.get(f"/volumes/{vol['id']}").json()["volume"]["status"] == "error"
    assert vadmin.post(act, json={"os-force_delete": {}}).status_code == 202
    wait_gone(vdemo, f"/volumes/{vol['id']}")


def test_force_delete_and_bootable(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    act = f"/volumes/{vol['id']}/action"
    assert vdemo.post(act, json={"os-set_bootable": {"bootable": True}}).status_code == 200
    assert vdemo.get(f"/volumes/{vol['id']}").json()["volume"]["bootable"] == "true"
    assert vdemo.post(act, json={"os-set_bootable": {"bootable": "maybe"}}).status_code == 400
    vadmin.post(act, json={"os-reset_status": {"status": "creating"}})
    assert vdemo.delete(f"/volumes/{vol['id']}").status_code == 400
    assert vdemo.post(act, json={"os-force_delete": {}}).status_code == 403
    assert vadmin.post(act, json={"os-force_delete": {}}).status_code == 202
    wait_gone(vdemo, f"/volumes/{vol['id']}")


def test_delete_refusals_and_cascade(server: StackvolProcess, vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    snap = vdemo.post("/snapshots", json={"snapshot": {"volume_id": vol["id"], "name": "s"}})
    assert snap.status_code == 202
    snap_id = snap.json()["snapshot"]["id"]
    wait_for(lambda: vdemo.get(f"/snapshots/{snap_id}").json()["snapshot"]["status"],
             lambda s: s == "available")
    refused = vdemo.delete(f"/volumes/{vol['id']}")
    assert refused.status_code == 400 and "dependent snapshots" in refused.text
    assert vdemo.delete(f"/volumes/{vol['id']}", params={"cascade": "true"}).status_code == 202
    wait_gone(vdemo, f"/volumes/{vol['id']}")
    assert vdemo.get(f"/snapshots/{snap_id}").status_code == 404
    assert not list((server.data_dir / "snapshots").glob(f"snapshot-{snap_id}*"))


# --- snapshots ----------------------------------------------------------------------------------


def test_snapshot_lifecycle(vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    resp = vdemo.post("/snapshots", json={"snapshot": {
        "volume_id": vol["id"], "name": "s1", "description": "d", "metadata": {"m": "1"}}})
    assert resp.status_code == 202
    snap = resp.json()["snapshot"]
    assert (snap["name"], snap["volume_id"], snap["size"], snap["metadata"]) == (
        "s1", vol["id"], 1, {"m": "1"})
    shown = wait_for(lambda: vdemo.get(f"/snapshots/{snap['id']}").json()["snapshot"],
                     lambda s: s["status"] == "available")
    assert shown["os-extended-snapshot-attributes:progress"] == "100%"
    assert shown["os-extended-snapshot-attributes:project_id"] == project_id(vdemo)
    assert {"user_id", "group_snapshot_id", "consumes_quota"} <= set(shown)
    listed = vdemo.get("/snapshots", params={"volume_id": vol["id"]}).json()["snapshots"]
    assert [s["id"] for s in listed] == [snap["id"]]
    assert "os-extended-snapshot-attributes:progress" not in listed[0]
    detail = vdemo.get("/snapshots/detail", params={"name": "s1", "volume_id": vol["id"]})
    assert [s["id"] for s in detail.json()["snapshots"]] == [snap["id"]]
    renamed = vdemo.put(f"/snapshots/{snap['id']}", json={"snapshot": {"name": "s2"}})
    assert renamed.json()["snapshot"]["name"] == "s2"
    meta = f"/snapshots/{snap['id']}/metadata"
    assert vdemo.post(meta, json={"metadata": {"x": "y"}}).json() == {
        "metadata": {"m": "1", "x": "y"}}
    assert vdemo.get(meta + "/x").json() == {"meta": {"x": "y"}}
    assert vdemo.delete(f"/snapshots/{snap['id']}").status_code == 202
    wait_gone(vdemo, f"/snapshots/{snap['id']}")
    vdemo.delete(f"/volumes/{vol['id']}")


def test_snapshot_sort_keys_as_cinder(vdemo: httpx.Client) -> None:
    # Regression (issue 12): ``sort_key=display_name`` was a 400; Cinder sorts by any column.
    vol = make_volume(vdemo)
    made = []
    for name in ("b-snap", "a-snap"):
        resp = vdemo.post("/snapshots", json={"snapshot": {"volume_id": vol["id"],
                                                           "name": name}})
        assert resp.status_code == 202, resp.text
        made.append(resp.json()["snapshot"]["id"])
    listed = wait_for(lambda: vdemo.get("/snapshots", params={"volume_id": vol["id"]}).json(),
                      lambda b: all(s["status"] == "available" for s in b["snapshots"]))
    assert {s["status"] for s in listed["snapshots"]} == {"available"}

    def names(version: str, **params: str) -> list[str] | int:
        resp = vdemo.get("/snapshots", params={"volume_id": vol["id"], **params},
                         headers={"OpenStack-API-Version": f"volume {version}"})
        return resp.status_code if resp.status_code != 200 else [
            s["name"] for s in resp.json()["snapshots"]]

    for version in ("3.0", "3.71"):
        assert names(version, sort_key="display_name", sort_dir="asc") == ["a-snap", "b-snap"]
        assert names(version, sort="display_name:desc") == ["b-snap", "a-snap"]
    assert names("3.29", sort_key="name") == 400  # ``name`` is a sort key from 3.30
    assert names("3.30", sort_key="name", sort_dir="asc") == ["a-snap", "b-snap"]
    # Cinder's other columns sort too; one value for all leaves created_at (newest first).
    for key in ("volume_size", "display_description", "user_id", "project_id", "deleted",
                "group_snapshot_id"):
        assert names("3.0", sort_key=key) == ["a-snap", "b-snap"], key
    assert names("3.0", sort_key="deleted", sort_dir="asc") == ["b-snap", "a-snap"]
    assert names("3.0", sort_key="bogus") == 400
    for snap_id in made:
        vdemo.delete(f"/snapshots/{snap_id}")
        wait_gone(vdemo, f"/snapshots/{snap_id}")
    vdemo.delete(f"/volumes/{vol['id']}")


def test_snapshot_of_null_volume_is_404(vdemo: httpx.Client) -> None:
    # Regression (issue 12): Cinder's schema allows ``volume_id: null``; the volume is not found.
    resp = vdemo.post("/snapshots", json={"snapshot": {"volume_id": None}})
    assert resp.status_code == 404, resp.text
    assert resp.json()["itemNotFound"]["message"] == "Volume None could not be found."
    assert vdemo.post("/snapshots", json={"snapshot": {"volume_id": "x"}}).status_code == 400


def test_snapshot_of_in_use_volume_needs_force_before_366(server: StackvolProcess,
                                                          vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    act = f"/volumes/{vol['id']}/action"
    assert vdemo.post(act, json={"os-attach": {"instance_uuid": str(uuid.uuid4()),
                                               "mountpoint": "/dev/vdb"}}).status_code == 202
    body = {"snapshot": {"volume_id": vol["id"]}}
    old = vdemo.post("/snapshots", json=body, headers={"OpenStack-API-Version": "volume 3.65"})
    assert old.status_code == 400
    forced_false = vdemo.post("/snapshots", json={"snapshot": {**body["snapshot"],
                                                               "force": False}})
    assert forced_false.status_code == 400
    new = vdemo.post("/snapshots", json=body)
    assert new.status_code == 202
    snap_id = new.json()["snapshot"]["id"]
    wait_for(lambda: vdemo.get(f"/snapshots/{snap_id}").json()["snapshot"]["status"],
             lambda s: s == "available")
    vdemo.delete(f"/snapshots/{snap_id}")
    wait_gone(vdemo, f"/snapshots/{snap_id}")
    assert vdemo.post(act, json={"os-detach": {}}).status_code == 202
    vdemo.delete(f"/volumes/{vol['id']}")


# --- volume types, quotas, limits, zones, services ----------------------------------------------


def test_volume_types(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    names = [t["name"] for t in vdemo.get("/types").json()["volume_types"]]
    assert "__DEFAULT__" in names
    name = f"gold-{uuid.uuid4().hex[:6]}"
    specs = {"volume_backend_name": "file", "multiattach": "<is> False"}
    body = {"volume_type": {"name": name, "description": "fast", "extra_specs": specs}}
    assert vdemo.post("/types", json=body).status_code == 403
    created = vadmin.post("/types", json=body)
    assert created.status_code == 200
    gold = created.json()["volume_type"]
    assert gold["extra_specs"] == body["volume_type"]["extra_specs"]
    assert gold["os-volume-type-access:is_public"] is True
    assert vadmin.post("/types", json=body).status_code == 409
    seen = vdemo.get(f"/types/{gold['id']}").json()["volume_type"]
    assert seen["extra_specs"] == {"multiattach": "<is> False"}  # the user-visible ones
    assert vdemo.get(f"/types/{name}").json()["volume_type"]["id"] == gold["id"]
    assert vdemo.get("/types/default").json()["volume_type"]["name"] == "__DEFAULT__"

    specs = f"/types/{gold['id']}/extra_specs"
    assert vadmin.post(specs, json={"extra_specs": {"k": "v"}}).status_code == 200
    assert vadmin.get(specs + "/k").json() == {"k": "v"}
    assert vadmin.put(specs + "/k", json={"k": "w"}).json() == {"k": "w"}
    assert vadmin.delete(specs + "/k").status_code == 202
    assert vadmin.get(specs + "/k").status_code == 404

    by_name = make_volume(vdemo, volume_type=name)
    by_id = make_volume(vdemo, volume_type=gold["id"])
    assert by_name["volume_type"] == by_id["volume_type"] == name
    assert by_id["volume_type_id"] == gold["id"]
    missing = vdemo.post("/volumes", json={"volume": {"size": 1, "volume_type": "nope"}})
    assert missing.status_code == 404
    in_use = vadmin.delete(f"/types/{gold['id']}")
    assert in_use.status_code == 400 and "still in use" in in_use.text
    default_id = vdemo.get("/types/default").json()["volume_type"]["id"]
    assert vadmin.delete(f"/types/{default_id}").status_code == 400
    for vol in (by_name, by_id):
        vdemo.delete(f"/volumes/{vol['id']}")
        wait_gone(vdemo, f"/volumes/{vol['id']}")
    assert vadmin.delete(f"/types/{gold['id']}").status_code == 202
    assert vdemo.get(f"/types/{gold['id']}").status_code == 404


def test_quota_sets_and_limits(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    demo_project = project_id(vdemo)
    shown = vdemo.get(f"/os-quota-sets/{demo_project}").json()["quota_set"]
    assert shown["id"] == demo_project
    assert {"volumes", "snapshots", "gigabytes", "per_volume_gigabytes",
            "volumes___DEFAULT__", "gigabytes___DEFAULT__"} <= set(shown)
    assert vdemo.get(f"/os-quota-sets/{project_id(vadmin)}").status_code == 403
    assert vdemo.put(f"/os-quota-sets/{demo_project}",
                     json={"quota_set": {"volumes": 5}}).status_code == 403
    updated = vadmin.put(f"/os-quota-sets/{demo_project}",
                         json={"quota_set": {"volumes": 500, "gigabytes": "900"}})
    assert updated.status_code == 200
    assert (updated.json()["quota_set"]["volumes"], updated.json()["quota_set"]["gigabytes"]) \
        == (500, 900)
    bad = vadmin.put(f"/os-quota-sets/{demo_project}", json={"quota_set": {"bogus": 1}})
    assert bad.status_code == 400 and "Bad key(s)" in bad.text
    vol = make_volume(vdemo, size=2)
    usage = vdemo.get(f"/os-quota-sets/{demo_project}", params={"usage": "true"}).json()[
        "quota_set"]
    assert usage["volumes"]["limit"] == 500 and usage["volumes"]["in_use"] >= 1
    assert usage["gigabytes"]["in_use"] >= 2
    limits = vdemo.get("/limits").json()["limits"]
    assert limits["rate"] == []
    assert limits["absolute"]["maxTotalVolumes"] == 500
    assert limits["absolute"]["totalVolumesUsed"] == usage["volumes"]["in_use"]
    assert limits["absolute"]["totalGigabytesUsed"] == usage["gigabytes"]["in_use"]
    defaults = vdemo.get(f"/os-quota-sets/{demo_project}/defaults").json()["quota_set"]
    assert defaults["volumes"] == -1
    assert vadmin.delete(f"/os-quota-sets/{demo_project}").status_code == 200
    assert vdemo.get(f"/os-quota-sets/{demo_project}").json()["quota_set"]["volumes"] == -1
    vdemo.delete(f"/volumes/{vol['id']}")


def test_zones_and_services(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    zones = vdemo.get("/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}}]
    assert vdemo.get("/os-services").status_code == 403
    found = vadmin.get("/os-services").json()["services"]
    assert {s["binary"] for s in found} == {"cinder-scheduler", "cinder-volume"}
    assert all(s["state"] == "up" and s["status"] == "enabled" for s in found)
    only = vadmin.get("/os-services", params={"binary": "cinder-volume"}).json()["services"]
    assert [s["binary"] for s in only] == ["cinder-volume"] and only[0]["backend_state"] == "up"


def test_services_host_filter_matches_as_cinder(vadmin: httpx.Client) -> None:
    # Regression (issue 12): Cinder's host filter takes a bare host to mean also its
    # ``host@backend`` (and ``#pool``) services; ``host@backend`` also its pools.
    found = vadmin.get("/os-services").json()["services"]
    volume_host = next(s["host"] for s in found if s["binary"] == "cinder-volume")
    bare = volume_host.partition("@")[0]

    def hosts(host: str) -> list[tuple[str, str]]:
        listed = vadmin.get("/os-services", params={"host": host}).json()["services"]
        return sorted((s["binary"], s["host"]) for s in listed)

    everything = sorted((s["binary"], s["host"]) for s in found)
    assert hosts(bare) == everything  # the scheduler on ``bare`` and each backend of it
    assert ("cinder-scheduler", bare) in everything
    assert hosts(volume_host) == [("cinder-volume", volume_host)]
    assert hosts(f"{volume_host}#pool") == []  # a pool name matches only itself
    assert hosts(bare[:-1]) == [] and hosts(f"{bare}@") == []
    assert hosts("") == everything  # empty: no filter


# --- one store with Nova ------------------------------------------------------------------------


def test_same_volumes_through_nova_and_cinder(demo: httpx.Client, vdemo: httpx.Client) -> None:
    through_cinder = make_volume(vdemo, name="from-cinder")
    nova_view = demo.get(f"/os-volumes/{through_cinder['id']}").json()["volume"]
    assert (nova_view["status"], nova_view["displayName"]) == ("available", "from-cinder")
    resp = demo.post("/os-volumes", json={"volume": {"size": 1, "display_name": "from-nova"}})
    nova_id = resp.json()["volume"]["id"]
    cinder_view = wait_volume(vdemo, nova_id, "available")
    assert cinder_view["name"] == "from-nova"
    assert demo.get(f"/os-volumes/{nova_id}").json()["volume"]["status"] == "available"
    vdemo.delete(f"/volumes/{nova_id}")
    assert demo.get(f"/os-volumes/{nova_id}").json()["volume"]["status"] in (
        "deleting", "available")  # the same row: Nova sees Cinder's delete
    wait_gone(vdemo, f"/volumes/{nova_id}")
    assert demo.get(f"/os-volumes/{nova_id}").status_code == 404
    demo.delete(f"/os-volumes/{through_cinder['id']}")
    wait_gone(vdemo, f"/volumes/{through_cinder['id']}")


def test_nova_attach_shows_in_cinder(demo: httpx.Client, vdemo: httpx.Client) -> None:
    server_id = new_server(demo, "cinder-vm")
    vol = make_volume(vdemo)
    resp = demo.post(f"/servers/{server_id}/os-volume_attachments",
                     json={"volumeAttachment": {"volumeId": vol["id"]}})
    assert resp.status_code == 200
    in_use = wait_volume(vdemo, vol["id"], "in-use")
    (att,) = in_use["attachments"]
    assert (att["server_id"], att["volume_id"], att["device"]) == (
        server_id, vol["id"], resp.json()["volumeAttachment"]["device"])
    listed = vdemo.get("/attachments", params={"volume_id": vol["id"]}).json()["attachments"]
    assert listed == [{"id": att["attachment_id"], "status": "attached", "instance": server_id,
                       "volume_id": vol["id"]}]
    shown = vdemo.get(f"/attachments/{att['attachment_id']}").json()["attachment"]
    assert shown["connection_info"]["driver_volume_type"] == "file"
    assert demo.get(f"/os-volumes/{vol['id']}").json()["volume"]["status"] == "in-use"
    assert vdemo.delete(f"/volumes/{vol['id']}").status_code == 400  # attached
    demo.delete(f"/servers/{server_id}/os-volume_attachments/{vol['id']}")
    wait_volume(vdemo, vol["id"], "available")
    assert vdemo.get("/attachments", params={"volume_id": vol["id"]}).json()[
        "attachments"] == []
    demo.delete(f"/servers/{server_id}")
    vdemo.delete(f"/volumes/{vol['id']}")


def test_attachments_api(demo: httpx.Client, vdemo: httpx.Client) -> None:
    server_id = new_server(demo, "cinder-vm")
    vol = make_volume(vdemo)
    body = {"attachment": {"volume_uuid": vol["id"], "instance_uuid": server_id}}
    assert vdemo.post("/attachments", json=body,
                      headers={"OpenStack-API-Version": "volume 3.26"}).status_code == 404
    created = vdemo.post("/attachments", json=body)
    assert created.status_code == 200
    att = created.json()["attachment"]
    assert (att["status"], att["instance"], att["connection_info"], att["attach_mode"]) == (
        "reserved", server_id, None, "null")
    assert vdemo.get(f"/volumes/{vol['id']}").json()["volume"]["status"] == "reserved"
    assert vdemo.post("/attachments", json=body).status_code == 400  # not available
    # This host reads the file backend by path (another host would get an NBD export:
    # tests/functional/test_remote_attach.py).
    connector = {"host": socket.gethostname(), "initiator": "iqn.x", "mountpoint": "/dev/vdc",
                 "mode": "rw"}
    updated = vdemo.put(f"/attachments/{att['id']}", json={"attachment": {
        "connector": connector}}).json()["attachment"]
    assert updated["status"] == "attaching" and updated["attach_mode"] == "rw"
    assert updated["connection_info"]["driver_volume_type"] == "file"
    assert updated["connection_info"]["data"]["device_path"].endswith(f"{vol['id']}.raw")
    complete = f"/attachments/{att['id']}/action"
    assert vdemo.post(complete, json={"os-complete": {}}, headers={
        "OpenStack-API-Version": "volume 3.43"}).status_code == 404
    assert vdemo.post(complete, json={"os-complete": {}}).status_code == 204
    assert vdemo.get(f"/volumes/{vol['id']}").json()["volume"]["status"] == "in-use"
    # The same row Nova shows for the server.
    nova = demo.get(f"/servers/{server_id}/os-volume_attachments").json()["volumeAttachments"]
    assert [(a["volumeId"], a["device"]) for a in nova] == [(vol["id"], "/dev/vdc")]
    detail = vdemo.get("/attachments/detail", params={"instance_id": server_id}).json()
    assert [a["id"] for a in detail["attachments"]] == [att["id"]]
    assert vdemo.delete(f"/attachments/{att['id']}").json() == {"attachments": []}
    assert vdemo.get(f"/volumes/{vol['id']}").json()["volume"]["status"] == "available"
    assert vdemo.get(f"/attachments/{att['id']}").status_code == 404
    demo.delete(f"/servers/{server_id}")
    vdemo.delete(f"/volumes/{vol['id']}")


def test_legacy_attach_actions(vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    act = f"/volumes/{vol['id']}/action"

    def status() -> str:
        return vdemo.get(f"/volumes/{vol['id']}").json()["volume"]["status"]

    assert vdemo.post(act, json={"os-reserve": None}).status_code == 202
    assert status() == "attaching"
    assert vdemo.post(act, json={"os-reserve": {}}).status_code == 400
    assert vdemo.post(act, json={"os-unreserve": {}}).status_code == 202
    assert status() == "available"
    info = vdemo.post(act, json={"os-initialize_connection": {"connector": {
        "host": socket.gethostname()}}})
    assert info.status_code == 200
    assert info.json()["connection_info"]["driver_volume_type"] == "file"
    assert info.json()["connection_info"]["data"]["access_mode"] == "rw"
    instance = str(uuid.uuid4())
    assert vdemo.post(act, json={"os-attach": {"instance_uuid": instance,
                                               "mountpoint": "/dev/vdb"}}).status_code == 202
    shown = vdemo.get(f"/volumes/{vol['id']}").json()["volume"]
    assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == instance
    assert vdemo.post(act, json={"os-begin_detaching": {}}).status_code == 202
    assert status() == "detaching"
    assert vdemo.post(act, json={"os-roll_detaching": {}}).status_code == 202
    assert status() == "in-use"
    assert vdemo.post(act, json={"os-terminate_connection": {"connector": {}}}).status_code \
        == 202
    attachment_id = shown["attachments"][0]["attachment_id"]
    assert vdemo.post(act, json={"os-detach": {"attachment_id": attachment_id}}).status_code \
        == 202
    assert status() == "available"
    assert vdemo.post(act, json={"os-attach": {"mountpoint": "/dev/vdb"}}).status_code == 400
    vdemo.delete(f"/volumes/{vol['id']}")
