"""Cinder's os-retype on the real server: in place on the volume's backend (type, QoS and
per-type quota usage change, the bytes stay), refusals as Cinder's, and openstackclient."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.clients import project_id
from tests.support.openstack_clients import osc
from tests.support.server import StackvolProcess
from tests.support.volumes import make_volume, volume_file, wait_volume


def make_type(client: httpx.Client, **extra_specs: str) -> dict[str, Any]:
    resp = client.post("/types", json={"volume_type": {
        "name": f"retype-{uuid.uuid4().hex[:8]}", "extra_specs": extra_specs}})
    assert resp.status_code == 200, resp.text
    return resp.json()["volume_type"]


def retype(client: httpx.Client, volume_id: str, new_type: str,
           migration_policy: str | None = None) -> httpx.Response:
    args: dict[str, Any] = {"new_type": new_type}
    if migration_policy is not None:
        args["migration_policy"] = migration_policy
    return client.post(f"/volumes/{volume_id}/action", json={"os-retype": args})


def message(resp: httpx.Response) -> str:
    body = resp.json()
    return next(iter(body.values()))["message"]


def test_retype_in_place(server: StackvolProcess, vadmin: httpx.Client,
                         vdemo: httpx.Client) -> None:
    first, second = make_type(vadmin), make_type(vadmin)
    vol = make_volume(vdemo, volume_type=first["name"])
    before = vadmin.get(f"/volumes/{vol['id']}").json()["volume"]
    assert retype(vdemo, vol["id"], second["name"], "never").status_code == 202
    after = vadmin.get(f"/volumes/{vol['id']}").json()["volume"]
    assert after["volume_type"] == second["name"] and after["status"] == "available"
    assert after["os-vol-host-attr:host"] == before["os-vol-host-attr:host"]
    assert after["migration_status"] is None
    assert volume_file(server, vol["id"]).exists()  # the same bytes, where they were
    # By id, migration_policy left out (Cinder's default: never), as Tempest's type CRUD test.
    assert retype(vdemo, vol["id"], first["id"]).status_code == 202
    assert vdemo.get(f"/volumes/{vol['id']}").json()["volume"]["volume_type"] == first["name"]
    # Attached: allowed too (no front-end QoS changes).
    assert vdemo.post(f"/volumes/{vol['id']}/action", json={"os-attach": {
        "instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"}}).status_code == 202
    wait_volume(vdemo, vol["id"], "in-use")
    assert retype(vdemo, vol["id"], second["name"], "on-demand").status_code == 202
    assert wait_volume(vdemo, vol["id"], "in-use")["volume_type"] == second["name"]
    assert vdemo.post(f"/volumes/{vol['id']}/action", json={"os-detach": {}}).status_code == 202
    wait_volume(vdemo, vol["id"], "available")
    assert vdemo.delete(f"/volumes/{vol['id']}").status_code == 202


def test_retype_refusals(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    first, second = make_type(vadmin), make_type(vadmin)
    vid = make_volume(vdemo, volume_type=first["name"])["id"]
    same = retype(vdemo, vid, first["name"])
    assert same.status_code == 400 and "already has type" in message(same)
    assert retype(vdemo, vid, "no-such-type").status_code == 404
    assert retype(vdemo, vid, str(uuid.uuid4())).status_code == 404
    assert retype(vdemo, vid, second["name"], "sometimes").status_code == 400
    assert vdemo.post(f"/volumes/{vid}/action",
                      json={"os-retype": {"migration_policy": "never"}}).status_code == 400
    assert retype(vdemo, str(uuid.uuid4()), second["name"]).status_code == 404
    # A type whose backend is not the volume's: the bytes would have to move.
    elsewhere = make_type(vadmin, volume_backend_name="nowhere")
    for policy, words in (("never", "migration not allowed"), ("on-demand", "does not migrate")):
        refused = retype(vdemo, vid, elsewhere["name"], policy)
        assert refused.status_code == 400 and words in message(refused), refused.text
    multi = make_type(vadmin, multiattach="<is> True")
    assert retype(vdemo, vid, multi["name"]).status_code == 400
    # Only available or in-use volumes.
    assert vadmin.post(f"/volumes/{vid}/action",
                       json={"os-reset_status": {"status": "error"}}).status_code == 202
    wrong = retype(vdemo, vid, second["name"])
    assert wrong.status_code == 400 and "status is error" in message(wrong)
    assert vdemo.get(f"/volumes/{vid}").json()["volume"]["volume_type"] == first["name"]
    assert vdemo.delete(f"/volumes/{vid}").status_code == 202


def test_retype_keeps_front_end_qos_of_attached_volumes(vadmin: httpx.Client,
                                                        vdemo: httpx.Client) -> None:
    plain, limited = make_type(vadmin), make_type(vadmin)
    resp = vadmin.post("/qos-specs", json={"qos_specs": {
        "name": f"qos-{uuid.uuid4().hex[:8]}", "consumer": "front-end",
        "total_iops_sec": "100"}})
    assert resp.status_code == 200, resp.text
    qos_id = resp.json()["qos_specs"]["id"]
    assert vadmin.get(f"/qos-specs/{qos_id}/associate",
                      params={"vol_type_id": limited["id"]}).status_code == 202
    vid = make_volume(vdemo, volume_type=plain["name"])["id"]
    act = f"/volumes/{vid}/action"
    # Available: the new type's QoS reaches the next connection.
    assert retype(vdemo, vid, limited["name"]).status_code == 202
    info = vdemo.post(act, json={"os-initialize_connection": {"connector": {"host": "h"}}})
    assert info.json()["connection_info"]["data"]["qos_specs"] == {"total_iops_sec": "100"}
    # In-use: the hypervisor keeps what it applied, so the front-end QoS may not change.
    assert vdemo.post(act, json={"os-attach": {"instance_uuid": str(uuid.uuid4()),
                                               "mountpoint": "/dev/vdb"}}).status_code == 202
    refused = retype(vdemo, vid, plain["name"])
    assert refused.status_code == 400 and "front-end QoS" in message(refused)
    assert vdemo.post(act, json={"os-detach": {}}).status_code == 202
    assert retype(vdemo, vid, plain["name"]).status_code == 202
    info = vdemo.post(act, json={"os-initialize_connection": {"connector": {"host": "h"}}})
    assert info.json()["connection_info"]["data"]["qos_specs"] is None
    assert vdemo.delete(f"/volumes/{vid}").status_code == 202


def test_retype_moves_per_type_quota_usage(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    first, second = make_type(vadmin), make_type(vadmin)
    project = project_id(vdemo)
    vid = make_volume(vdemo, size=2, volume_type=first["name"])["id"]
    quota = f"/os-quota-sets/{project}"
    assert vadmin.put(quota, json={"quota_set": {
        f"volumes_{second['name']}": 0}}).status_code == 200
    over = retype(vdemo, vid, second["name"])
    assert over.status_code == 413, over.text
    assert vadmin.put(quota, json={"quota_set": {
        f"volumes_{second['name']}": 1, f"gigabytes_{second['name']}": 1}}).status_code == 200
    assert retype(vdemo, vid, second["name"]).status_code == 413  # 2 GiB > 1
    assert vadmin.put(quota, json={"quota_set": {
        f"gigabytes_{second['name']}": 2}}).status_code == 200
    assert retype(vdemo, vid, second["name"]).status_code == 202
    usage = vadmin.get(quota, params={"usage": "true"}).json()["quota_set"]
    assert usage[f"volumes_{second['name']}"]["in_use"] == 1
    assert usage[f"gigabytes_{second['name']}"]["in_use"] == 2
    assert usage[f"volumes_{first['name']}"]["in_use"] == 0
    assert vdemo.delete(f"/volumes/{vid}").status_code == 202
    assert vadmin.delete(quota).status_code == 200


def test_openstackclient_retype(server: StackvolProcess, vadmin: httpx.Client,
                                vdemo: httpx.Client) -> None:
    first, second = make_type(vadmin), make_type(vadmin)
    vid = make_volume(vdemo, volume_type=first["name"])["id"]
    osc(server, "volume", "set", "--type", second["name"], "--retype-policy", "never", vid,
        user="demo")
    assert vdemo.get(f"/volumes/{vid}").json()["volume"]["volume_type"] == second["name"]
    assert vdemo.delete(f"/volumes/{vid}").status_code == 202
