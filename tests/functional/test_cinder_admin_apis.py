"""Cinder's admin APIs on the real server: extensions, capabilities, qos-specs (and their way to
the hypervisor), quota classes, os-hosts, and os-services enable/disable/freeze/thaw with the
scheduler skipping a disabled backend; some through python-openstackclient."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.clients import cinder
from tests.support.openstack_clients import osc
from tests.support.server import StackvolProcess, running
from tests.support.volumes import make_volume, wait_volume

QOS_KEYS = {"id", "name", "consumer", "specs"}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _qos(client: httpx.Client, **specs: Any) -> dict[str, Any]:
    resp = client.post("/qos-specs", json={"qos_specs": {"name": _name("qos"), **specs}})
    assert resp.status_code == 200, resp.text
    return resp.json()["qos_specs"]


def _type(client: httpx.Client, **extra_specs: str) -> dict[str, Any]:
    resp = client.post("/types", json={"volume_type": {"name": _name("type"),
                                                       "extra_specs": extra_specs}})
    assert resp.status_code == 200, resp.text
    return resp.json()["volume_type"]


def _volume_host(client: httpx.Client) -> str:
    services = client.get("/os-services", params={"binary": "cinder-volume"}).json()
    return services["services"][0]["host"]


# --- extensions and capabilities ------------------------------------------------------------


def test_extensions_list_as_cinder(vdemo: httpx.Client) -> None:
    resp = vdemo.get("/extensions")
    assert resp.status_code == 200, resp.text
    extensions = resp.json()["extensions"]
    aliases = {e["alias"] for e in extensions}
    assert {"qos-specs", "os-hosts", "os-quota-class-sets", "capabilities",
            "os-services"} <= aliases
    for ext in extensions:
        assert set(ext) == {"alias", "name", "updated", "description", "links"}
        assert ext["updated"].endswith("T00:00:00+00:00") and ext["links"] == []


def test_capabilities_of_a_pool_match_its_stats(vadmin: httpx.Client,
                                                vdemo: httpx.Client) -> None:
    pools = vadmin.get("/scheduler-stats/get_pools", params={"detail": "true"}).json()["pools"]
    name = pools[0]["name"]
    for host in (name, name.partition("#")[0]):  # a pool, or its host@backend
        resp = vadmin.get(f"/capabilities/{host}")
        assert resp.status_code == 200, resp.text
        caps = resp.json()
        assert set(caps) == {"namespace", "vendor_name", "volume_backend_name", "pool_name",
                             "driver_version", "storage_protocol", "display_name",
                             "description", "visibility", "replication_targets", "properties"}
        assert caps["namespace"] == f"OS::Storage::Capabilities::{name.partition('#')[0]}"
        for key in ("vendor_name", "volume_backend_name", "storage_protocol",
                    "driver_version"):
            assert caps[key] == pools[0]["capabilities"][key]
        for prop in caps["properties"].values():
            assert set(prop) == {"type", "description", "title"}
    assert vadmin.get("/capabilities/no-such-host").status_code == 404
    assert vdemo.get(f"/capabilities/{name}").status_code == 403


# --- QoS specs ------------------------------------------------------------------------------


def test_qos_specs_crud_keys_and_faults(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    created = _qos(vadmin, consumer="front-end", read_iops_sec="2000", total_bytes_sec=1024)
    assert set(created) == QOS_KEYS
    assert created["consumer"] == "front-end"
    assert created["specs"] == {"read_iops_sec": "2000", "total_bytes_sec": "1024"}
    qid = created["id"]
    shown = vadmin.get(f"/qos-specs/{qid}").json()
    assert shown["qos_specs"] == created and shown["links"][0]["rel"] == "self"
    assert created in vadmin.get("/qos-specs").json()["qos_specs"]
    # Default consumer is back-end; bad consumer, missing/blank name, duplicate name.
    assert _qos(vadmin)["consumer"] == "back-end"
    bad = vadmin.post("/qos-specs", json={"qos_specs": {"name": _name("q"), "consumer": "x"}})
    assert bad.status_code == 400 and "consumer" in bad.json()["badRequest"]["message"]
    for body in ({"qos_specs": {}}, {"qos_specs": {"name": "  "}}, {"nope": {}}):
        assert vadmin.post("/qos-specs", json=body).status_code == 400, body
    assert vadmin.post("/qos-specs", json={"qos_specs": {"name": created["name"]}}
                       ).status_code == 409
    # Set and unset keys.
    resp = vadmin.put(f"/qos-specs/{qid}", json={"qos_specs": {"iops_bytes": "500"}})
    assert resp.status_code == 200 and resp.json() == {"qos_specs": {"iops_bytes": "500"}}
    assert vadmin.get(f"/qos-specs/{qid}").json()["qos_specs"]["specs"]["iops_bytes"] == "500"
    resp = vadmin.put(f"/qos-specs/{qid}/delete_keys", json={"keys": ["iops_bytes"]})
    assert resp.status_code == 202, resp.text
    assert "iops_bytes" not in vadmin.get(f"/qos-specs/{qid}").json()["qos_specs"]["specs"]
    assert vadmin.put(f"/qos-specs/{qid}/delete_keys", json={"keys": ["iops_bytes"]}
                      ).status_code == 404
    assert vadmin.put(f"/qos-specs/{qid}", json={"qos_specs": {"consumer": "sideways"}}
                      ).status_code == 400
    # Not found, and members may not look.
    missing = str(uuid.uuid4())
    for call in (lambda: vadmin.get(f"/qos-specs/{missing}"),
                 lambda: vadmin.delete(f"/qos-specs/{missing}"),
                 lambda: vadmin.put(f"/qos-specs/{missing}", json={"qos_specs": {"a": "1"}}),
                 lambda: vadmin.get(f"/qos-specs/{missing}/associations")):
        assert call().status_code == 404
    assert vdemo.get("/qos-specs").status_code == 403
    assert vdemo.post("/qos-specs", json={"qos_specs": {"name": _name("q")}}).status_code == 403
    assert vadmin.delete(f"/qos-specs/{qid}").status_code == 202
    assert vadmin.get(f"/qos-specs/{qid}").status_code == 404


def test_qos_associations_with_types(vadmin: httpx.Client) -> None:
    qos, other = _qos(vadmin, consumer="both"), _qos(vadmin)
    types = [_type(vadmin) for _ in range(3)]
    for vtype in types:
        resp = vadmin.get(f"/qos-specs/{qos['id']}/associate",
                          params={"vol_type_id": vtype["id"]})
        assert resp.status_code == 202, resp.text
    listed = vadmin.get(f"/qos-specs/{qos['id']}/associations").json()["qos_associations"]
    assert sorted(a["id"] for a in listed) == sorted(t["id"] for t in types)
    assert {a["association_type"] for a in listed} == {"volume_type"}
    assert vadmin.get(f"/types/{types[0]['id']}").json()["volume_type"]["qos_specs_id"] == \
        qos["id"]
    # A type has one spec; a type that does not exist; no type named.
    resp = vadmin.get(f"/qos-specs/{other['id']}/associate",
                      params={"vol_type_id": types[0]["id"]})
    assert resp.status_code == 400, resp.text
    assert vadmin.get(f"/qos-specs/{qos['id']}/associate",
                      params={"vol_type_id": str(uuid.uuid4())}).status_code == 404
    assert vadmin.get(f"/qos-specs/{qos['id']}/associate").status_code == 400
    # In use: delete refused without force (Cinder: 400), allowed with it.
    resp = vadmin.delete(f"/qos-specs/{qos['id']}")
    assert resp.status_code == 400 and "in use" in resp.text
    assert vadmin.get(f"/qos-specs/{qos['id']}/disassociate",
                      params={"vol_type_id": types[0]["id"]}).status_code == 202
    assert vadmin.get(f"/types/{types[0]['id']}").json()["volume_type"]["qos_specs_id"] is None
    assert vadmin.get(f"/qos-specs/{qos['id']}/disassociate_all").status_code == 202
    assert vadmin.get(f"/qos-specs/{qos['id']}/associations").json() == {
        "qos_associations": []}
    assert vadmin.get(f"/qos-specs/{other['id']}/associate",
                      params={"vol_type_id": types[1]["id"]}).status_code == 202
    assert vadmin.delete(f"/qos-specs/{other['id']}", params={"force": "True"}
                         ).status_code == 202
    assert vadmin.get(f"/types/{types[1]['id']}").json()["volume_type"]["qos_specs_id"] is None


def test_front_end_qos_reaches_the_connection_info(vadmin: httpx.Client) -> None:
    """Cinder's initialize_connection gives the type's front-end (or both) specs as
    ``data.qos_specs``, per-GB keys scaled to the volume; back-end specs stay out."""
    front = _qos(vadmin, consumer="front-end", total_bytes_sec="1048576",
                 read_iops_sec_per_gb="10", read_iops_sec_per_gb_min="50")
    back = _qos(vadmin, consumer="back-end", total_iops_sec="100")
    connector = {"connector": {"initiator": "iqn.test", "host": "qos-host"}}
    seen = []
    for qos in (front, back):
        vtype = _type(vadmin)
        vadmin.get(f"/qos-specs/{qos['id']}/associate", params={"vol_type_id": vtype["id"]})
        volume = make_volume(vadmin, size=2, volume_type=vtype["name"])
        resp = vadmin.post(f"/volumes/{volume['id']}/action",
                           json={"os-initialize_connection": connector})
        assert resp.status_code == 200, resp.text
        seen.append(resp.json()["connection_info"]["data"]["qos_specs"])
        vadmin.post(f"/volumes/{volume['id']}/action",
                    json={"os-terminate_connection": connector})
    assert seen == [{"total_bytes_sec": "1048576", "read_iops_sec": "50"}, None]


def test_qos_with_openstackclient(server: StackvolProcess, vadmin: httpx.Client) -> None:
    name, type_name = _name("osc-qos"), _name("osc-type")
    created = osc(server, "volume", "qos", "create", "--consumer", "front-end", "--property",
                  "total_iops_sec=300", name, "-f", "json")
    assert created["consumer"] == "front-end"
    osc(server, "volume", "type", "create", type_name)
    osc(server, "volume", "qos", "set", "--property", "write_bytes_sec=4096", name)
    osc(server, "volume", "qos", "associate", name, type_name)
    shown = osc(server, "volume", "qos", "show", name, "-f", "json")
    assert shown["properties"] == {"total_iops_sec": "300", "write_bytes_sec": "4096"}
    assert type_name in str(shown["associations"])
    listed = osc(server, "volume", "qos", "list", "-f", "json")
    assert name in [q["Name"] for q in listed]
    osc(server, "volume", "qos", "delete", "--force", name)
    assert vadmin.get(f"/qos-specs/{created['id']}").status_code == 404


# --- quota classes --------------------------------------------------------------------------


def test_quota_class_defaults_are_every_projects_defaults(tmp_path: Any) -> None:
    with running(tmp_path / "data") as proc, cinder(proc, "admin") as admin, \
            cinder(proc, "demo") as demo:
        shown = admin.get("/os-quota-class-sets/default").json()["quota_class_set"]
        assert shown["id"] == "default"
        assert {"volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes",
                "per_volume_gigabytes", "groups"} <= set(shown)
        vtype = _type(admin)
        resp = admin.put("/os-quota-class-sets/default", json={"quota_class_set": {
            "volumes": 1, "gigabytes": "5", f"volumes_{vtype['name']}": 3, "nonsense": 4}})
        assert resp.status_code == 200, resp.text
        updated = resp.json()["quota_class_set"]
        assert "id" not in updated and "nonsense" not in updated
        assert (updated["volumes"], updated["gigabytes"],
                updated[f"volumes_{vtype['name']}"]) == (1, 5, 3)
        demo_project = demo.get("/limits").url.path.split("/")[3]
        defaults = demo.get(f"/os-quota-sets/{demo_project}/defaults").json()["quota_set"]
        assert (defaults["volumes"], defaults["gigabytes"]) == (1, 5)
        # Enforced: demo (no limits of its own) may hold one volume.
        make_volume(demo)
        over = demo.post("/volumes", json={"volume": {"size": 1}})
        assert over.status_code == 413, over.text
        assert admin.put("/os-quota-class-sets/default", json={"quota_class_set": {
            "volumes": -2}}).status_code == 400
        assert demo.get("/os-quota-class-sets/default").status_code == 403
        assert demo.put("/os-quota-class-sets/default", json={"quota_class_set": {
            "volumes": 9}}).status_code == 403
        # openstackclient sets the class; its defaults are what `quota show --default` shows.
        osc(proc, "quota", "set", "--class", "--volumes", "2", "--gigabytes", "7", "default")
        out = osc(proc, "quota", "show", "--default", "--volume", "-f", "json")
        found = {row["Resource"]: row["Limit"] for row in out} if isinstance(out, list) \
            else out
        assert (found["volumes"], found["gigabytes"]) == (2, 7), out


# --- os-hosts and os-services actions -------------------------------------------------------


def test_hosts_list_and_usage(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    hosts = vadmin.get("/os-hosts").json()["hosts"]
    assert {h["service"] for h in hosts} == {"cinder-scheduler", "cinder-volume"}
    for host in hosts:
        assert set(host) == {"service-status", "service", "zone", "service-state",
                             "host_name", "last-update"}
        assert host["service-status"] == "available" and host["service-state"] == "enabled"
    volume_host = _volume_host(vadmin)
    volume = make_volume(vdemo, size=2)
    rows = vadmin.get(f"/os-hosts/{volume_host}").json()["host"]
    total = rows[0]["resource"]
    assert total["project"] == "(total)" and int(total["volume_count"]) >= 1
    demo_project = volume["os-vol-tenant-attr:tenant_id"] if \
        "os-vol-tenant-attr:tenant_id" in volume else vdemo.get("/limits").url.path.split("/")[3]
    mine = [r["resource"] for r in rows if r["resource"]["project"] == demo_project]
    assert mine and int(mine[0]["total_volume_gb"]) >= 2
    assert all(isinstance(v, str) for r in rows for v in r["resource"].values())
    assert vadmin.get("/os-hosts/no-such-host").status_code == 404
    assert vdemo.get("/os-hosts").status_code == 403


def test_disabled_backend_gets_no_new_volumes(tmp_path: Any) -> None:
    with running(tmp_path / "data") as proc, cinder(proc, "admin") as admin:
        host = _volume_host(admin)
        body = {"host": host, "binary": "cinder-volume", "disabled_reason": "maintenance"}
        resp = admin.put("/os-services/disable-log-reason", json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"disabled": True, "status": "disabled", "host": host,
                               "service": "", "binary": "cinder-volume",
                               "disabled_reason": "maintenance"}
        listed = admin.get("/os-services", params={"binary": "cinder-volume"}).json()
        row = listed["services"][0]
        assert (row["status"], row["disabled_reason"]) == ("disabled", "maintenance")
        hosts = {h["host_name"]: h for h in admin.get("/os-hosts").json()["hosts"]}
        assert hosts[host]["service-state"] == "disabled"
        assert admin.get(f"/os-hosts/{host}").status_code == 404  # as Cinder: disabled
        # The scheduler skips it: the volume goes to error.
        created = admin.post("/volumes", json={"volume": {"size": 1}}).json()["volume"]
        failed = wait_volume(admin, created["id"], "error")
        assert failed["id"] == created["id"]
        log = (proc.data_dir.parent / "server.log").read_text() if (
            proc.data_dir.parent / "server.log").exists() else ""
        assert not log or "No valid backend was found" in log
        # Enabled again: volumes are made.
        resp = admin.put("/os-services/enable", json={"host": host, "binary": "cinder-volume"})
        assert resp.json() == {"disabled": False, "status": "enabled", "host": host,
                               "service": "", "binary": "cinder-volume",
                               "disabled_reason": None}
        make_volume(admin)
        # Plain disable (no reason key), through the CLI; enable again.
        resp = admin.put("/os-services/disable", json={"host": host,
                                                       "binary": "cinder-volume"})
        assert set(resp.json()) == {"disabled", "status", "host", "service", "binary"}
        osc(proc, "volume", "service", "set", "--enable", host, "cinder-volume")
        osc(proc, "volume", "service", "set", "--disable", "--disable-reason", "by osc", host,
            "cinder-volume")
        listed = osc(proc, "volume", "service", "list", "--long", "-f", "json")
        mine = next(s for s in listed if s["Host"] == host)
        assert (mine["Status"], mine["Disabled Reason"]) == ("disabled", "by osc")
        osc(proc, "volume", "service", "set", "--enable", host, "cinder-volume")
        make_volume(admin)


def test_freeze_thaw_and_service_faults(tmp_path: Any) -> None:
    with running(tmp_path / "data") as proc, cinder(proc, "admin") as admin, \
            cinder(proc, "demo") as demo:
        host = _volume_host(admin)
        resp = admin.put("/os-services/freeze", json={"host": host})
        assert resp.status_code == 200, resp.text
        row = admin.get("/os-services", params={"binary": "cinder-volume"}).json()[
            "services"][0]
        assert (row["frozen"], row["status"], row["disabled_reason"]) == (
            True, "disabled", "frozen")
        created = admin.post("/volumes", json={"volume": {"size": 1}}).json()["volume"]
        wait_volume(admin, created["id"], "error")
        assert admin.put("/os-services/thaw", json={"host": host}).status_code == 200
        row = admin.get("/os-services", params={"binary": "cinder-volume"}).json()[
            "services"][0]
        assert (row["frozen"], row["status"]) == (False, "enabled")
        make_volume(admin)
        # Faults as Cinder (and Tempest's negative tests) expect them.
        cases = [("enable", {"host": "invalid_host", "binary": "cinder-volume"}, 404),
                 ("disable", {"host": host, "binary": "invalid_binary"}, 404),
                 ("disable-log-reason", {"host": host, "binary": "cinder-volume",
                                         "disabled_reason": None}, 400),
                 ("disable-log-reason", {"host": host, "binary": "cinder-volume",
                                         "disabled_reason": "x" * 256}, 400),
                 ("enable", {"binary": "cinder-volume"}, 400),
                 ("enable", {"host": host}, 400),
                 ("freeze", {"host": "invalid_host"}, 400),
                 ("thaw", {"host": "invalid_host"}, 400),
                 ("no-such-action", {"host": host}, 400)]
        for action, body, code in cases:
            resp = admin.put(f"/os-services/{action}", json=body)
            assert resp.status_code == code, (action, body, resp.text)
        for action in ("enable", "freeze"):
            assert demo.put(f"/os-services/{action}", json={
                "host": host, "binary": "cinder-volume"}).status_code == 403
        assert admin.get("/os-services", params={"binary": "cinder-volume"}).json()[
            "services"][0]["status"] == "enabled"


# --- the hypervisor's side ------------------------------------------------------------------


def test_libvirt_disk_carries_front_end_qos_as_iotune() -> None:
    """The disk XML the libvirt driver plugs: ``qos_specs`` in the connection data become
    ``<iotune>`` limits (Nova's keys only, whole numbers only); none without specs."""
    from stackvol.virt.libvirt_disks import disk_xml

    volume_id = str(uuid.uuid4())
    info = {"driver_volume_type": "file", "data": {
        "volume_id": volume_id, "device_path": "/tmp/v.raw", "access_mode": "rw",
        "qos_specs": {"total_bytes_sec": "1048576", "read_iops_sec": "50",
                      "write_iops_sec_max": 200, "iops_bytes": "7", "write_bytes_sec": "x"}}}
    disk = disk_xml(info, "vdb")
    iotune = disk.find("iotune")
    assert iotune is not None
    assert {child.tag: child.text for child in iotune} == {
        "total_bytes_sec": "1048576", "read_iops_sec": "50", "write_iops_sec_max": "200"}
    info["data"]["qos_specs"] = None
    assert disk_xml(info, "vdb").find("iotune") is None
