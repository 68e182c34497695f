"""Cinder's volume and snapshot actions on the real server: reset status, update snapshot
status, force delete, force detach, the read-only flag, and clones (``source_volid``), checked
in the volume files, the simulated hypervisor's state and the database."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackvol.virt.libvirt_disks import disk_xml
from tests.support.clients import cinder, project_id
from tests.support.openstack_clients import osc
from tests.support.server import StackvolProcess, query, running, wait_for
from tests.support.servers import new_server
from tests.support.volumes import (
    make_snapshot,
    make_volume,
    volume_file,
    wait_gone,
    wait_volume,
)

MiB = 1024**2
GiB = 1024**3


def act(client: httpx.Client, kind: str, resource_id: str, name: str,
        args: dict[str, Any] | None = None) -> httpx.Response:
    return client.post(f"/{kind}/{resource_id}/action", json={name: args or {}})


def write_pattern(path: Path) -> None:
    """Distinct bytes at the start, in the middle and at the end of a raw volume file."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        for offset in (0, size // 2 + 4096, size - MiB):
            fh.seek(offset)
            fh.write(os.urandom(MiB))


def same_bytes(a: Path, b: Path, length: int) -> bool:
    done = subprocess.run(["cmp", "-n", str(length), str(a), str(b)], capture_output=True,
                          check=False)
    return done.returncode == 0


def leftovers(data_dir: Path, volume_id: str) -> list[Any]:
    """Rows that would keep a deleted volume's state alive: attachments and tasks."""
    return (query(data_dir, "SELECT id FROM volume_attachments WHERE volume_id = ?", volume_id)
            + query(data_dir, "SELECT kind FROM tasks WHERE resource_id = ?", volume_id))


# --- snapshot actions ---------------------------------------------------------------------------


def test_snapshot_reset_update_status_and_force_delete(server: StackvolProcess,
                                                      vadmin: httpx.Client,
                                                      vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    snap = make_snapshot(vdemo, vol["id"])
    sid = snap["id"]
    assert act(vdemo, "snapshots", sid, "os-reset_status", {"status": "error"}).status_code == 403
    assert act(vadmin, "snapshots", sid, "os-reset_status", {"status": "bogus"}).status_code == 400
    assert act(vadmin, "snapshots", sid, "os-reset_status", {}).status_code == 400
    assert act(vadmin, "snapshots", sid, "os-bogus").status_code == 400
    assert act(vadmin, "snapshots", sid, "os-reset_status",
               {"status": "CREATING"}).status_code == 202
    assert vdemo.get(f"/snapshots/{sid}").json()["snapshot"]["status"] == "creating"

    # os-update_snapshot_status: a member of the project, Cinder's moves only.
    update = "os-update_snapshot_status"
    assert act(vdemo, "snapshots", sid, update,
               {"status": "deleting"}).status_code == 400
    assert act(vdemo, "snapshots", sid, update,
               {"status": "error", "progress": "120%"}).status_code == 400
    assert act(vdemo, "snapshots", sid, update,
               {"status": "error", "progress": "80%"}).status_code == 202
    shown = vadmin.get(f"/snapshots/{sid}").json()["snapshot"]
    assert (shown["status"], shown["os-extended-snapshot-attributes:progress"]) == (
        "error", "80%")
    assert act(vdemo, "snapshots", sid, update, {"status": "available"}).status_code == 400

    # Force delete (admins): from error, and after a reset to deleting or creating.
    assert act(vdemo, "snapshots", sid, "os-force_delete").status_code == 403
    assert act(vadmin, "snapshots", sid, "os-force_delete").status_code == 202
    wait_gone(vdemo, f"/snapshots/{sid}")
    made = [sid]
    for status in ("deleting", "creating", "error_deleting"):
        other = make_snapshot(vdemo, vol["id"])["id"]
        made.append(other)
        assert act(vadmin, "snapshots", other, "os-reset_status",
                   {"status": status}).status_code == 202
        assert act(vadmin, "snapshots", other, "os-force_delete").status_code == 202
        wait_gone(vdemo, f"/snapshots/{other}")
    # The server is shared by the session: only this test's snapshots are looked for.
    assert [p for p in (server.data_dir / "snapshots").glob("*")
            if any(snap in p.name for snap in made)] == []
    assert vdemo.delete(f"/volumes/{vol['id']}").status_code == 202


def test_openstack_cli_snapshot_set_state(server: StackvolProcess, vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    snap = make_snapshot(vdemo, vol["id"])
    osc(server, "volume", "snapshot", "set", "--state", "error", snap["id"])
    assert vdemo.get(f"/snapshots/{snap['id']}").json()["snapshot"]["status"] == "error"
    assert vdemo.delete(f"/snapshots/{snap['id']}").status_code == 202
    wait_gone(vdemo, f"/snapshots/{snap['id']}")


# --- reset status, force delete -----------------------------------------------------------------


def test_reset_status_maintenance_attach_and_migration_status(
        server: StackvolProcess, vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    vol = make_volume(vdemo)
    vid = vol["id"]
    reset = "os-reset_status"
    for body in ({"status": "maintenance"}, {"status": "MAINTENANCE"},
                 {"status": "error_managing"}, {"attach_status": "detached"}):
        assert act(vadmin, "volumes", vid, reset, body).status_code == 202, body
    assert act(vadmin, "volumes", vid, reset, {"status": "maintenance"}).status_code == 202
    assert vdemo.get(f"/volumes/{vid}").json()["volume"]["status"] == "maintenance"
    # Nothing but an admin's force acts on a volume in maintenance.
    assert vdemo.delete(f"/volumes/{vid}").status_code == 400
    assert act(vdemo, "volumes", vid, "os-extend", {"new_size": 2}).status_code == 400
    assert act(vdemo, "volumes", vid, "os-reserve").status_code == 400
    assert act(vadmin, "volumes", vid, reset, {"migration_status": "migrating"}).status_code == 202
    shown = vadmin.get(f"/volumes/{vid}").json()["volume"]
    assert (shown["migration_status"], shown["os-vol-mig-status-attr:migstat"]) == (
        "migrating", "migrating")
    assert act(vadmin, "volumes", vid, reset, {"migration_status": "none"}).status_code == 202
    assert vadmin.get(f"/volumes/{vid}").json()["volume"]["migration_status"] is None
    for bad in ({"migration_status": "sideways"}, {"attach_status": "half"},
                {"status": "bogus"}, {}):
        assert act(vadmin, "volumes", vid, reset, bad).status_code == 400, bad
    assert act(vadmin, "volumes", vid, "os-force_delete").status_code == 202
    wait_gone(vdemo, f"/volumes/{vid}")
    assert not volume_file(server, vid).exists()


@pytest.mark.parametrize("status", ["attaching", "creating", "error", "detaching", "reserved"])
def test_force_delete_after_reset_leaves_nothing(server: StackvolProcess, vadmin: httpx.Client,
                                                 vdemo: httpx.Client, status: str) -> None:
    vid = make_volume(vdemo)["id"]
    assert act(vadmin, "volumes", vid, "os-reset_status", {"status": status}).status_code == 202
    wait_volume(vdemo, vid, status)
    if status != "error":  # which a plain delete takes too
        assert vdemo.delete(f"/volumes/{vid}").status_code == 400
    assert act(vadmin, "volumes", vid, "os-force_delete").status_code == 202
    wait_gone(vdemo, f"/volumes/{vid}")
    assert not volume_file(server, vid).exists()
    assert leftovers(server.data_dir, vid) == []


def test_force_delete_of_an_attaching_volume_ends_its_reservations(
        server: StackvolProcess, vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    # Attaching for real: a Cinder attachment (3.27) being connected, its row attaching.
    vid = make_volume(vdemo)["id"]
    resp = vdemo.post("/attachments", json={"attachment": {
        "volume_uuid": vid, "instance_uuid": str(uuid.uuid4()),
        "connector": {"host": "compute-x", "initiator": "iqn.x"}}})
    assert resp.status_code == 200, resp.text
    assert wait_volume(vdemo, vid, "attaching")["attachments"] == []
    assert act(vadmin, "volumes", vid, "os-force_delete").status_code == 202
    wait_gone(vdemo, f"/volumes/{vid}")
    assert not volume_file(server, vid).exists()
    assert leftovers(server.data_dir, vid) == []
    # Attached (a server holds it): even a forced delete is refused.
    vid = make_volume(vdemo)["id"]
    assert act(vdemo, "volumes", vid, "os-attach", {
        "instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"}).status_code == 202
    assert act(vadmin, "volumes", vid, "os-force_delete").status_code == 400
    assert act(vadmin, "volumes", vid, "os-force_detach").status_code == 202
    wait_volume(vdemo, vid, "available")
    assert vdemo.delete(f"/volumes/{vid}").status_code == 202


# --- force detach -------------------------------------------------------------------------------


def simulated_volumes(server: StackvolProcess, server_id: str) -> dict[str, Any]:
    path = server.data_dir / "compute" / "simulated" / f"{server_id}.json"
    return json.loads(path.read_text())["volumes"]


def test_force_detach(server: StackvolProcess, admin: httpx.Client, demo: httpx.Client,
                      vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    vm = new_server(demo, "cinder-vm")
    # Tempest's case: os-attach (no hypervisor involved), the volume then reset to error.
    vid = make_volume(vdemo)["id"]
    assert act(vdemo, "volumes", vid, "os-attach", {
        "instance_uuid": vm, "mountpoint": "/dev/vdb"}).status_code == 202
    attachment = wait_volume(vdemo, vid, "in-use")["attachments"][0]
    assert act(vadmin, "volumes", vid, "os-reset_status", {"status": "error"}).status_code == 202
    wait_volume(vdemo, vid, "error")
    body = {"attachment_id": attachment["attachment_id"], "connector": None}
    assert act(vdemo, "volumes", vid, "os-force_detach", body).status_code == 403
    missing = act(vadmin, "volumes", vid, "os-force_detach",
                  {"attachment_id": str(uuid.uuid4())})
    assert missing.status_code == 400
    assert act(vadmin, "volumes", vid, "os-force_detach", body).status_code == 202
    assert wait_volume(vdemo, vid, "available")["attachments"] == []
    assert act(vadmin, "volumes", vid, "os-force_detach").status_code == 400  # not attached
    # Tempest's cleanup then detaches as the owner: nothing holds it, so nothing to do (Cinder).
    body = {"attachment_id": attachment["attachment_id"]}
    assert act(vdemo, "volumes", vid, "os-detach", body).status_code == 202
    assert act(vdemo, "volumes", vid, "os-detach").status_code == 202
    assert wait_volume(vdemo, vid, "available")["attachments"] == []

    # Attached through Nova: the compute driver really lets go of it.
    resp = demo.post(f"/servers/{vm}/os-volume_attachments",
                     json={"volumeAttachment": {"volumeId": vid}})
    assert resp.status_code == 200, resp.text
    wait_volume(vdemo, vid, "in-use")
    assert vid in simulated_volumes(server, vm)
    assert act(vadmin, "volumes", vid, "os-force_detach", {"connector": {
        "host": "elsewhere"}}).status_code == 202
    assert wait_volume(vdemo, vid, "available")["attachments"] == []
    assert vid not in simulated_volumes(server, vm)
    assert demo.get(f"/servers/{vm}/os-volume_attachments").json()["volumeAttachments"] == []
    assert leftovers(server.data_dir, vid) == []
    assert vdemo.delete(f"/volumes/{vid}").status_code == 202
    assert demo.delete(f"/servers/{vm}").status_code == 204


def test_detach_of_a_volume_nothing_holds(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    # Left "detaching" with no attachment (os-begin_detaching, then a force detach elsewhere):
    # os-detach settles it to available, as Cinder's manager does; maintenance refuses.
    vid = make_volume(vdemo)["id"]
    assert act(vdemo, "volumes", vid, "os-attach", {
        "instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"}).status_code == 202
    assert act(vdemo, "volumes", vid, "os-begin_detaching").status_code == 202
    assert act(vadmin, "volumes", vid, "os-reset_status",
               {"attach_status": "detached", "status": "detaching"}).status_code == 202
    assert wait_volume(vdemo, vid, "detaching")["attachments"] == []
    assert act(vdemo, "volumes", vid, "os-detach",
               {"attachment_id": str(uuid.uuid4())}).status_code == 202
    assert wait_volume(vdemo, vid, "available")["attachments"] == []
    assert act(vadmin, "volumes", vid, "os-reset_status",
               {"status": "maintenance"}).status_code == 202
    refused = act(vdemo, "volumes", vid, "os-detach")
    assert refused.status_code == 400 and "maintenance" in refused.json()["badRequest"]["message"]
    assert act(vadmin, "volumes", vid, "os-force_delete").status_code == 202
    wait_gone(vdemo, f"/volumes/{vid}")


def test_image_metadata_of_a_plain_volume(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    # Tempest's VolumesImageMetadata works on a volume made from nothing; the maintenance check
    # on this path once answered 500 (an unknown status name): now Cinder's 400.
    vid = make_volume(vdemo)["id"]
    set_meta = {"metadata": {"image_id": str(uuid.uuid4()), "ramdisk_id": "somedisk"}}
    resp = act(vdemo, "volumes", vid, "os-set_image_metadata", set_meta)
    assert resp.status_code == 200 and resp.json() == set_meta, resp.text
    assert act(vdemo, "volumes", vid, "os-unset_image_metadata",
               {"key": "ramdisk_id"}).status_code == 200
    shown = act(vdemo, "volumes", vid, "os-show_image_metadata").json()["metadata"]
    assert shown == {"image_id": set_meta["metadata"]["image_id"]}
    assert act(vadmin, "volumes", vid, "os-reset_status",
               {"status": "maintenance"}).status_code == 202
    refused = act(vdemo, "volumes", vid, "os-set_image_metadata", set_meta)
    assert refused.status_code == 400 and "maintenance" in refused.text, refused.text
    assert act(vadmin, "volumes", vid, "os-force_delete").status_code == 202


# --- read-only volumes --------------------------------------------------------------------------


def test_readonly_flag(server: StackvolProcess, demo: httpx.Client,
                       vdemo: httpx.Client) -> None:
    vid = make_volume(vdemo)["id"]
    flag = "os-update_readonly_flag"
    assert act(vdemo, "volumes", vid, flag, {"readonly": "maybe"}).status_code == 400
    assert act(vdemo, "volumes", vid, flag, {}).status_code == 400
    assert act(vdemo, "volumes", vid, flag, {"readonly": True}).status_code == 202
    assert vdemo.get(f"/volumes/{vid}").json()["volume"]["metadata"] == {"readonly": "True"}
    # Attached read-only: Cinder's access_mode, os-attach refuses rw.
    rw = act(vdemo, "volumes", vid, "os-attach", {"instance_uuid": str(uuid.uuid4()),
                                                 "mountpoint": "/dev/vdb", "mode": "rw"})
    assert rw.status_code == 400
    info = act(vdemo, "volumes", vid, "os-initialize_connection",
               {"connector": {"host": "h", "mode": "rw"}}).json()["connection_info"]
    assert info["data"]["access_mode"] == "ro"
    vm = new_server(demo, "cinder-vm")
    resp = demo.post(f"/servers/{vm}/os-volume_attachments",
                     json={"volumeAttachment": {"volumeId": vid}})
    assert resp.status_code == 200, resp.text
    wait_volume(vdemo, vid, "in-use")
    entry = simulated_volumes(server, vm)[vid]
    assert entry["readonly"] is True
    assert entry["connection_info"]["data"]["access_mode"] == "ro"
    assert act(vdemo, "volumes", vid, flag, {"readonly": False}).status_code == 400  # in-use
    assert demo.delete(f"/servers/{vm}/os-volume_attachments/{vid}").status_code == 202
    wait_volume(vdemo, vid, "available")
    # The CLI's --read-write / --read-only call the same action.
    osc(server, "volume", "set", "--read-write", vid, user="demo")
    assert vdemo.get(f"/volumes/{vid}").json()["volume"]["metadata"]["readonly"] == "False"
    osc(server, "volume", "set", "--read-only", vid, user="demo")
    assert vdemo.get(f"/volumes/{vid}").json()["volume"]["metadata"]["readonly"] == "True"
    assert demo.delete(f"/servers/{vm}").status_code == 204
    assert vdemo.delete(f"/volumes/{vid}").status_code == 202


def test_libvirt_disk_is_readonly_for_ro_connections() -> None:
    def disk(mode: str) -> ET.Element:
        return disk_xml({"driver_volume_type": "file", "data": {
            "device_path": "/srv/v.raw", "format": "raw", "volume_id": "v1",
            "access_mode": mode}}, "vdb")

    assert disk("ro").find("readonly") is not None
    assert disk("rw").find("readonly") is None
    nbd = disk_xml({"driver_volume_type": "nbd", "data": {
        "host": "10.0.0.2", "port": 10809, "export": "v2", "volume_id": "v2",
        "access_mode": "ro"}}, "vdc")
    assert nbd.find("readonly") is not None and nbd.find("source").get("protocol") == "nbd"


# --- clones -------------------------------------------------------------------------------------


def test_clone_copies_the_bytes(server: StackvolProcess, vadmin: httpx.Client,
                                vdemo: httpx.Client) -> None:
    source = make_volume(vdemo, size=1, name="clone-source")
    write_pattern(volume_file(server, source["id"]))
    assert act(vdemo, "volumes", source["id"], "os-set_bootable",
               {"bootable": True}).status_code == 200
    usage = f"/os-quota-sets/{project_id(vdemo)}?usage=true"
    before = vdemo.get(usage).json()["quota_set"]
    clone = make_volume(vdemo, size=2, source_volid=source["id"])
    assert (clone["source_volid"], clone["size"], clone["bootable"]) == (
        source["id"], 2, "true")
    src, dst = volume_file(server, source["id"]), volume_file(server, clone["id"])
    assert dst.stat().st_size == 2 * GiB
    assert same_bytes(src, dst, GiB)
    after = vdemo.get(usage).json()["quota_set"]
    assert after["gigabytes"]["in_use"] == before["gigabytes"]["in_use"] + 2
    assert after["volumes"]["in_use"] == before["volumes"]["in_use"] + 1
    # A clone is independent of its source.
    assert vdemo.delete(f"/volumes/{source['id']}").status_code == 202
    wait_gone(vdemo, f"/volumes/{source['id']}")
    assert dst.exists() and vdemo.delete(f"/volumes/{clone['id']}").status_code == 202


def test_clone_refusals(vadmin: httpx.Client, vdemo: httpx.Client) -> None:
    source = make_volume(vdemo, size=2)
    smaller = vdemo.post("/volumes", json={"volume": {"size": 1,
                                                      "source_volid": source["id"]}})
    assert smaller.status_code == 400
    missing = vdemo.post("/volumes", json={"volume": {"size": 1,
                                                      "source_volid": str(uuid.uuid4())}})
    assert missing.status_code == 404
    assert act(vadmin, "volumes", source["id"], "os-reset_status",
               {"status": "error"}).status_code == 202
    errored = vdemo.post("/volumes", json={"volume": {"size": 2,
                                                      "source_volid": source["id"]}})
    assert errored.status_code == 400
    both = vdemo.post("/volumes", json={"volume": {"size": 2, "source_volid": source["id"],
                                                   "snapshot_id": str(uuid.uuid4())}})
    assert both.status_code == 400
    # Another project's volume is not there to clone.
    with_admin = vadmin.post("/volumes", json={"volume": {"size": 2}})
    other = wait_volume(vadmin, with_admin.json()["volume"]["id"], "available")
    hidden = vdemo.post("/volumes", json={"volume": {"source_volid": other["id"]}})
    assert hidden.status_code == 404
    assert act(vadmin, "volumes", source["id"], "os-force_delete").status_code == 202
    assert vadmin.delete(f"/volumes/{other['id']}").status_code == 202


def test_openstack_cli_volume_create_source(server: StackvolProcess,
                                            vdemo: httpx.Client) -> None:
    source = make_volume(vdemo, size=1)
    write_pattern(volume_file(server, source["id"]))
    name = f"cli-clone-{uuid.uuid4().hex[:6]}"
    created = osc(server, "volume", "create", "--source", source["id"], name, "-f", "json",
                  user="demo")
    clone = wait_volume(vdemo, created["id"], "available")
    assert clone["source_volid"] == source["id"] and clone["size"] == 1
    assert same_bytes(volume_file(server, source["id"]), volume_file(server, clone["id"]), GiB)
    for vid in (clone["id"], source["id"]):
        assert vdemo.delete(f"/volumes/{vid}").status_code == 202


def test_qcow2_clone_and_source_kept_while_cloning(tmp_path: Path) -> None:
    """On a qcow2 backend: a clone being made (parked by the test hook) keeps its source from
    being deleted, forced or not; a volume force-deleted while its create runs is deleted once
    that create ends (here after a restart); the clone's bytes equal the source's."""
    data = tmp_path / "data"
    with running(data, volume_format="qcow2") as proc, cinder(proc) as client:
        source = make_volume(client, size=1)
        path = data / "volumes" / f"volume-{source['id']}.qcow2"
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 3M",
                        "-c", "write -P 0xa5 700M 1M", str(path)], check=True,
                       capture_output=True)
    with running(data, volume_format="qcow2", pause_at="volume.create") as proc, \
            cinder(proc) as client:
        resp = client.post("/volumes", json={"volume": {"source_volid": source["id"]}})
        assert resp.status_code == 202, resp.text
        clone_id = resp.json()["volume"]["id"]
        doomed = client.post("/volumes", json={"volume": {"size": 1}}).json()["volume"]["id"]
        wait_for(lambda: query(data, "SELECT state FROM tasks WHERE resource_id = ?", doomed),
                 lambda rows: rows == [("running",)])
        assert client.delete(f"/volumes/{source['id']}").status_code == 400
        assert act(client, "volumes", source["id"], "os-force_delete").status_code == 400
        assert act(client, "volumes", doomed, "os-force_delete").status_code == 202
        assert client.get(f"/volumes/{doomed}").json()["volume"]["status"] == "deleting"
    with running(data, volume_format="qcow2") as proc, cinder(proc) as client:
        clone = wait_volume(client, clone_id, "available")
        assert clone["source_volid"] == source["id"]
        wait_gone(client, f"/volumes/{doomed}")
        assert not (data / "volumes" / f"volume-{doomed}.qcow2").exists()
        assert leftovers(data, doomed) == []
        clone_path = data / "volumes" / f"volume-{clone_id}.qcow2"
        compare = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2",
                                  str(path), str(clone_path)], capture_output=True, text=True,
                                 check=False)
        assert compare.returncode == 0, compare.stdout + compare.stderr
        assert client.delete(f"/volumes/{source['id']}").status_code == 202
        wait_gone(client, f"/volumes/{source['id']}")


def test_rbd_clone(ceph: Any, tmp_path: Path) -> None:
    """On Ceph a clone is an RBD clone of a ``clone-<id>`` snapshot of its source: gone with
    the clone; a source deleted first flattens its clones (they keep their bytes)."""
    with running(tmp_path / "data", **ceph.stackvol_settings()) as proc, cinder(proc) as client:
        source = make_volume(client, size=1)
        image = f"volume-{source['id']}"
        ceph.write(image, 4096, b"clone-me")
        first = make_volume(client, size=2, source_volid=source["id"])
        second = make_volume(client, source_volid=source["id"])
        for clone in (first, second):
            clone_image = f"volume-{clone['id']}"
            assert ceph.parent(clone_image) == f"{image}@clone-{clone['id']}"
            assert ceph.read(clone_image, 4096, 8) == b"clone-me"
        ceph.write(image, 4096, b"CHANGED!")  # copy-on-write: the clones keep theirs
        assert ceph.read(f"volume-{first['id']}", 4096, 8) == b"clone-me"
        assert client.delete(f"/volumes/{second['id']}").status_code == 202
        wait_gone(client, f"/volumes/{second['id']}")
        assert ceph.snapshots(image) == {f"clone-{first['id']}": True}
        assert client.delete(f"/volumes/{source['id']}").status_code == 202
        wait_gone(client, f"/volumes/{source['id']}")
        first_image = f"volume-{first['id']}"
        assert image not in ceph.images() and ceph.parent(first_image) is None
        assert ceph.read(first_image, 4096, 8) == b"clone-me"
        assert client.delete(f"/volumes/{first['id']}").status_code == 202
        wait_gone(client, f"/volumes/{first['id']}")
