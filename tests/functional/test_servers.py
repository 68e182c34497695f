"""``/servers`` over plain HTTP against the real server: lifecycle, state machine, faults,
tenancy, paging, filters and the fields of each microversion."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.keys import ssh_public_key
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import IMAGE, mv, show, wait_gone, wait_status
from tests.support.volumes import attached_volume, volume_status

MAX = "2.101"

# Every key Nova's 2.96 server-get sample has (a non-admin's view of an ACTIVE server).
SHOW_296 = {
    "accessIPv4", "accessIPv6", "addresses", "config_drive", "created", "description",
    "flavor", "hostId", "id", "image", "key_name", "links", "locked", "locked_reason",
    "metadata", "name", "OS-DCF:diskConfig", "OS-EXT-AZ:availability_zone",
    "OS-EXT-SRV-ATTR:hostname", "OS-EXT-STS:power_state", "OS-EXT-STS:task_state",
    "OS-EXT-STS:vm_state", "os-extended-volumes:volumes_attached", "OS-SRV-USG:launched_at",
    "OS-SRV-USG:terminated_at", "pinned_availability_zone", "progress", "security_groups",
    "server_groups", "status", "tags", "tenant_id", "trusted_image_certificates", "updated",
    "user_id",
}
# What 2.1 shows everyone: the base view plus the old extensions' attributes.
SHOW_21 = SHOW_296 - {"description", "locked", "locked_reason", "OS-EXT-SRV-ATTR:hostname",
                      "pinned_availability_zone", "server_groups", "tags",
                      "trusted_image_certificates"}
# From 2.100 the hints the server was created with are shown too.
SHOW_MAX = SHOW_296 | {"scheduler_hints"}
ADMIN_21 = {"OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name",
            "OS-EXT-SRV-ATTR:hypervisor_hostname"}
ADMIN_23 = ADMIN_21 | {f"OS-EXT-SRV-ATTR:{k}" for k in (
    "reservation_id", "launch_index", "hostname", "kernel_id", "ramdisk_id", "root_device_name",
    "user_data")}


def boot(client: httpx.Client, version: str = "2.1", **fields: object) -> dict:
    body = {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", **fields}
    if version != "2.1" and "networks" not in fields:
        body["networks"] = "none"
    resp = client.post("/servers", json={"server": body}, headers=mv(version))
    assert resp.status_code == 202, resp.text
    return resp.json()["server"]


def act(client: httpx.Client, server_id: str, body: dict) -> httpx.Response:
    return client.post(f"/servers/{server_id}/action", json=body)


@pytest.fixture(scope="module")
def active(demo: httpx.Client) -> dict:
    """One ACTIVE server of the demo project, shared by the read-only tests."""
    server = boot(demo, name="shared")
    return wait_status(demo, server["id"], "ACTIVE")


def simulated_state(server: StackvolProcess, server_id: str) -> dict | None:
    path = server.data_dir / "compute" / "simulated" / f"{server_id}.json"
    return json.loads(path.read_text()) if path.exists() else None


# --- lifecycle ----------------------------------------------------------------------------


def test_create_answers_like_nova(demo: httpx.Client) -> None:
    resp = demo.post("/servers", json={"server": {"name": "c", "imageRef": IMAGE,
                                                  "flavorRef": "2"}})
    assert resp.status_code == 202
    created = resp.json()["server"]
    assert set(created) == {"id", "links", "OS-DCF:diskConfig", "security_groups", "adminPass"}
    assert created["security_groups"] == [{"name": "default"}]
    assert created["OS-DCF:diskConfig"] == "MANUAL"
    assert len(created["adminPass"]) == 12
    assert resp.headers["location"] == created["links"][0]["href"]
    self_link, bookmark = created["links"]
    assert self_link["rel"] == "self" and "/v2.1/servers/" in self_link["href"]
    assert bookmark["rel"] == "bookmark" and "/v2.1/" not in bookmark["href"]
    building = show(demo, created["id"])
    assert building["status"] in ("BUILD", "ACTIVE")
    demo.delete(f"/servers/{created['id']}")


def test_lifecycle_build_stop_start_reboot_delete(server: StackvolProcess,
                                                  demo: httpx.Client) -> None:
    created = boot(demo, name="life", metadata={"role": "test"})
    active = wait_status(demo, created["id"], "ACTIVE")
    assert active["OS-EXT-STS:vm_state"] == "active"
    assert active["OS-EXT-STS:power_state"] == 1
    assert active["OS-SRV-USG:launched_at"] is not None
    assert active["metadata"] == {"role": "test"}
    assert simulated_state(server, created["id"])["power_state"] == 1

    assert act(demo, created["id"], {"os-stop": None}).status_code == 202
    stopped = wait_status(demo, created["id"], "SHUTOFF")
    assert (stopped["OS-EXT-STS:vm_state"], stopped["OS-EXT-STS:power_state"]) == ("stopped", 4)
    assert simulated_state(server, created["id"])["power_state"] == 4

    assert act(demo, created["id"], {"os-start": None}).status_code == 202
    wait_status(demo, created["id"], "ACTIVE")

    assert act(demo, created["id"], {"reboot": {"type": "SOFT"}}).status_code == 202
    wait_status(demo, created["id"], "ACTIVE")
    assert simulated_state(server, created["id"])["boots"] == 2

    resp = demo.delete(f"/servers/{created['id']}")
    assert resp.status_code == 204
    assert wait_gone(demo, created["id"]).json() == {"itemNotFound": {
        "code": 404, "message": f"Instance {created['id']} could not be found."}}
    assert simulated_state(server, created["id"]) is None


def test_hard_reboot_starts_a_stopped_server(demo: httpx.Client) -> None:
    server_id = boot(demo, name="hard")["id"]
    wait_status(demo, server_id, "ACTIVE")
    act(demo, server_id, {"os-stop": None})
    wait_status(demo, server_id, "SHUTOFF")
    soft = act(demo, server_id, {"reboot": {"type": "SOFT"}})
    assert soft.status_code == 409
    assert act(demo, server_id, {"reboot": {"type": "hard"}}).status_code == 202
    assert wait_status(demo, server_id, "ACTIVE")["OS-EXT-STS:power_state"] == 1
    demo.delete(f"/servers/{server_id}")


def test_delete_is_idempotent_and_goes_through_deleting(demo: httpx.Client) -> None:
    server_id = boot(demo, name="del")["id"]
    wait_status(demo, server_id, "ACTIVE")
    assert demo.delete(f"/servers/{server_id}").status_code == 204
    again = demo.delete(f"/servers/{server_id}")
    assert again.status_code in (204, 404)
    wait_gone(demo, server_id)


def test_delete_while_building_leaves_nothing_behind(server: StackvolProcess,
                                                     demo: httpx.Client) -> None:
    server_id = boot(demo, name="quick")["id"]
    assert demo.delete(f"/servers/{server_id}").status_code == 204
    wait_gone(demo, server_id)
    assert wait_for(lambda: simulated_state(server, server_id), lambda s: s is None) is None


def test_max_count_builds_several_named_servers(demo: httpx.Client) -> None:
    resp = demo.post("/servers", json={"server": {
        "name": "multi", "imageRef": IMAGE, "flavorRef": "1", "min_count": 2,
        "max_count": 2, "return_reservation_id": True}})
    assert resp.status_code == 202
    reservation = resp.json()["reservation_id"]
    found = demo.get("/servers/detail", params={"reservation_id": reservation}).json()
    assert sorted(s["name"] for s in found["servers"]) == ["multi-1", "multi-2"]
    for item in found["servers"]:
        demo.delete(f"/servers/{item['id']}")


# --- state conflicts --------------------------------------------------------------------


def test_state_conflicts_use_novas_message(demo: httpx.Client, active: dict) -> None:
    resp = act(demo, active["id"], {"os-start": None})
    assert resp.status_code == 409
    assert resp.json() == {"conflictingRequest": {
        "code": 409,
        "message": f"Cannot 'start' instance {active['id']} while it is in vm_state active"}}


def test_stop_of_stopped_server_is_409(demo: httpx.Client) -> None:
    server_id = boot(demo, name="stopper")["id"]
    wait_status(demo, server_id, "ACTIVE")
    act(demo, server_id, {"os-stop": None})
    wait_status(demo, server_id, "SHUTOFF")
    resp = act(demo, server_id, {"os-stop": None})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Cannot 'stop' instance {server_id} while it is in vm_state stopped")
    demo.delete(f"/servers/{server_id}")


def test_action_while_building_is_409(demo: httpx.Client) -> None:
    server_id = boot(demo, name="busy")["id"]
    resp = act(demo, server_id, {"os-stop": None})  # still building
    assert resp.status_code == 409
    message = resp.json()["conflictingRequest"]["message"]
    assert message.startswith(f"Cannot 'stop' instance {server_id} while it is in vm_state ")
    demo.delete(f"/servers/{server_id}")


def test_unknown_action_and_bad_reboot_are_400(demo: httpx.Client, active: dict) -> None:
    resp = act(demo, active["id"], {"os-frobnicate": None})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == "There is no such action: os-frobnicate"
    assert act(demo, active["id"], {"reboot": {"type": "GENTLE"}}).status_code == 400
    assert act(demo, active["id"], {"reboot": {}}).status_code == 400


# --- faults -------------------------------------------------------------------------------


def test_other_projects_servers_are_404(admin: httpx.Client, demo: httpx.Client,
                                        active: dict) -> None:
    mine = boot(admin, name="admins")
    for resp in (demo.get(f"/servers/{mine['id']}"), demo.delete(f"/servers/{mine['id']}"),
                 act(demo, mine["id"], {"os-stop": None}),
                 demo.get(f"/servers/{mine['id']}/ips")):
        assert resp.status_code == 404
        assert resp.json()["itemNotFound"]["message"] == (
            f"Instance {mine['id']} could not be found.")
    listed = [s["id"] for s in demo.get("/servers").json()["servers"]]
    assert mine["id"] not in listed
    assert show(admin, active["id"])["tenant_id"] == active["tenant_id"]  # admins see all
    admin.delete(f"/servers/{mine['id']}")


def test_unknown_flavor_is_400(demo: httpx.Client) -> None:
    resp = demo.post("/servers", json={"server": {"name": "x", "imageRef": IMAGE,
                                                  "flavorRef": "999"}})
    assert resp.status_code == 400
    assert resp.json() == {"badRequest": {"code": 400,
                                          "message": "Flavor 999 could not be found."}}


def test_flavor_ref_may_be_a_link(demo: httpx.Client, server: StackvolProcess) -> None:
    created = boot(demo, flavorRef=f"{server.url}/v2.1/flavors/3")
    assert show(demo, created["id"])["flavor"]["id"] == "3"
    demo.delete(f"/servers/{created['id']}")


@pytest.mark.parametrize(("version", "body", "field"), [
    ("2.1", {"imageRef": IMAGE, "flavorRef": "1"}, "server"),  # no name
    ("2.1", {"name": "", "imageRef": IMAGE, "flavorRef": "1"}, "name"),
    ("2.1", {"name": " x", "imageRef": IMAGE, "flavorRef": "1"}, "name"),
    ("2.1", {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "bogus": 1}, None),
    ("2.1", {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "description": "d"}, None),
    ("2.37", {"name": "x", "imageRef": IMAGE, "flavorRef": "1"}, "server"),  # networks
    ("2.37", {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "networks": "some"}, None),
    ("2.57", {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "networks": "none",
              "personality": []}, None),
    ("2.1", {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "metadata": {"k": 1}}, "k"),
])
def test_schema_errors_are_400(demo: httpx.Client, version: str, body: dict,
                               field: str | None) -> None:
    resp = demo.post("/servers", json={"server": body}, headers=mv(version))
    assert resp.status_code == 400, resp.text
    message = resp.json()["badRequest"]["message"]
    if field:
        assert message.startswith(f"Invalid input for field/attribute {field}.")


def test_boot_without_image_or_root_volume_is_400(demo: httpx.Client) -> None:
    resp = demo.post("/servers", json={"server": {"name": "x", "flavorRef": "1"}})
    assert resp.status_code == 400
    assert "Boot sequence for the instance" in resp.json()["badRequest"]["message"]


def test_unknown_availability_zone_is_400(demo: httpx.Client) -> None:
    resp = demo.post("/servers", json={"server": {"name": "x", "imageRef": IMAGE,
                                                  "flavorRef": "1",
                                                  "availability_zone": "mars"}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "The requested availability zone is not available")


def test_block_device_mapping_v2_is_accepted(demo: httpx.Client) -> None:
    volume = demo.post("/os-volumes", json={"volume": {"size": 1}}).json()["volume"]
    volume_status(demo, volume["id"], "available")
    created = boot(demo, imageRef="", block_device_mapping_v2=[{
        "boot_index": 0, "uuid": volume["id"],
        "source_type": "volume", "destination_type": "volume"}])
    server = wait_status(demo, created["id"], "ACTIVE")
    assert server["image"] == ""
    demo.delete(f"/servers/{created['id']}")


# --- views by microversion ----------------------------------------------------------------


def test_non_admin_fields_at_21_and_max(demo: httpx.Client, active: dict) -> None:
    assert set(show(demo, active["id"], "2.1")) == SHOW_21
    assert set(show(demo, active["id"], "2.96")) == SHOW_296
    assert set(show(demo, active["id"], MAX)) == SHOW_MAX
    detail = demo.get("/servers/detail", headers=mv(MAX)).json()["servers"]
    mine = next(s for s in detail if s["id"] == active["id"])
    assert set(mine) == SHOW_MAX - {"server_groups"}  # only show, update and rebuild have it


def test_admin_fields_by_microversion(admin: httpx.Client, active: dict) -> None:
    assert set(show(admin, active["id"], "2.1")) == SHOW_21 | ADMIN_21
    assert set(show(admin, active["id"], "2.3")) == SHOW_21 | ADMIN_23
    at_max = show(admin, active["id"], MAX)
    assert set(at_max) == SHOW_MAX | ADMIN_23 | {"host_status"}
    assert at_max["host_status"] == "UP"
    assert at_max["OS-EXT-SRV-ATTR:root_device_name"] == "/dev/vda"


def test_flavor_embedded_from_247(demo: httpx.Client, active: dict,
                                  server: StackvolProcess) -> None:
    old = show(demo, active["id"], "2.46")["flavor"]
    assert old["id"] == "1"
    assert old["links"] == [{"rel": "bookmark", "href": f"{server.url}/flavors/1"}]
    assert show(demo, active["id"], "2.47")["flavor"] == {
        "vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0,
        "original_name": "m1.tiny", "extra_specs": {}}


def test_versioned_fields_appear_at_their_microversion(demo: httpx.Client,
                                                       active: dict) -> None:
    steps = [("2.9", "locked"), ("2.19", "description"), ("2.26", "tags"),
             ("2.63", "trusted_image_certificates"), ("2.71", "server_groups"),
             ("2.73", "locked_reason"), ("2.90", "OS-EXT-SRV-ATTR:hostname"),
             ("2.96", "pinned_availability_zone"), ("2.100", "scheduler_hints")]
    for version, key in steps:
        major, minor = version.split(".")
        before = f"{major}.{int(minor) - 1}"
        assert key not in show(demo, active["id"], before), (key, before)
        assert key in show(demo, active["id"], version), (key, version)


def test_create_fields_are_shown(demo: httpx.Client) -> None:
    public_key, _ = ssh_public_key()  # key_name must name one of the user's keypairs
    key = demo.post("/os-keypairs", json={"keypair": {"name": "k", "public_key": public_key}})
    assert key.status_code in (200, 409), key.text
    created = boot(demo, MAX, name="Full Name_1", description="about", tags=["a", "b"],
                   availability_zone="nova", key_name="k", hostname="custom",
                   config_drive=True, **{"OS-DCF:diskConfig": "AUTO"})
    server = show(demo, created["id"], MAX)
    assert server["description"] == "about"
    assert server["tags"] == ["a", "b"]
    assert server["pinned_availability_zone"] == "nova"
    assert server["OS-EXT-SRV-ATTR:hostname"] == "custom"
    assert server["key_name"] == "k"
    assert server["config_drive"] == "True"
    assert server["OS-DCF:diskConfig"] == "AUTO"
    assert "security_groups" not in server  # networks "none": no ports, no groups
    assert created["OS-DCF:diskConfig"] == "AUTO"
    demo.delete(f"/servers/{created['id']}")


def test_image_properties_and_scheduler_hints(demo: httpx.Client) -> None:
    resp = demo.post("/servers", headers=mv(MAX), json={
        "server": {"name": "hinted", "imageRef": IMAGE, "flavorRef": "1", "networks": "auto"},
        "os:scheduler_hints": {"same_host": [IMAGE]}})
    server_id = resp.json()["server"]["id"]
    assert show(demo, server_id, "2.99")["image"] == {
        "id": IMAGE, "links": show(demo, server_id, "2.97")["image"]["links"],
        "properties": {}}
    assert "properties" not in show(demo, server_id, "2.97")["image"]
    assert show(demo, server_id, MAX)["scheduler_hints"] == {"same_host": [IMAGE]}
    demo.delete(f"/servers/{server_id}")


def test_update_renames(demo: httpx.Client, active: dict) -> None:
    resp = demo.put(f"/servers/{active['id']}", json={"server": {"description": "new"}},
                    headers=mv("2.74"))
    assert resp.status_code == 200
    partial = resp.json()["server"]
    assert partial["description"] == "new"
    assert "OS-EXT-STS:vm_state" not in partial  # before 2.75 PUT shows the base view
    full = demo.put(f"/servers/{active['id']}", json={"server": {"name": "shared"}},
                    headers=mv(MAX)).json()["server"]
    assert set(full) == SHOW_MAX


def test_simulated_addresses(demo: httpx.Client, active: dict) -> None:
    ips = demo.get(f"/servers/{active['id']}/ips").json()["addresses"]
    assert list(ips) == ["private"] and len(ips["private"]) == 1
    address = ips["private"][0]
    assert set(address) == {"version", "addr"} and address["version"] == 4
    detailed = show(demo, active["id"])["addresses"]["private"][0]
    assert detailed["addr"] == address["addr"]
    assert detailed["OS-EXT-IPS:type"] == "fixed"
    assert detailed["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e:")
    found = demo.get("/servers", params={"ip": f"^{address['addr']}$"}).json()["servers"]
    assert [s["id"] for s in found] == [active["id"]]
    unplugged = boot(demo, "2.37", name="no-net", networks="none")
    assert wait_status(demo, unplugged["id"], "ACTIVE")["addresses"] == {}
    demo.delete(f"/servers/{unplugged['id']}")


# --- listing --------------------------------------------------------------------------------


def test_list_filters_by_name_and_status(demo: httpx.Client, active: dict) -> None:
    by_name = demo.get("/servers", params={"name": "^shar"}).json()["servers"]
    assert [s["id"] for s in by_name] == [active["id"]]
    assert set(by_name[0]) == {"id", "name", "links"}
    by_status = demo.get("/servers/detail", params={"status": "ACTIVE"}).json()["servers"]
    assert active["id"] in [s["id"] for s in by_status]
    assert all(s["status"] == "ACTIVE" for s in by_status)
    shutoff = demo.get("/servers", params={"status": "SHUTOFF", "name": "^shared$"}).json()
    assert shutoff["servers"] == []


def test_invalid_status_filter_from_238(demo: httpx.Client) -> None:
    assert demo.get("/servers", params={"status": "nope"}).json() == {"servers": []}
    resp = demo.get("/servers", params={"status": "nope"}, headers=mv("2.38"))
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == "Invalid status value"


def test_unknown_query_parameter_is_400_from_275(demo: httpx.Client) -> None:
    assert demo.get("/servers", params={"bogus": "1"}, headers=mv("2.74")).status_code == 200
    assert demo.get("/servers", params={"bogus": "1"}, headers=mv("2.75")).status_code == 400


def test_paging_with_limit_and_marker(demo: httpx.Client) -> None:
    ids = [boot(demo, name=f"page-{i}")["id"] for i in range(3)]
    first = demo.get("/servers", params={"name": "^page-", "limit": 2}).json()
    assert [s["id"] for s in first["servers"]] == ids[::-1][:2]  # newest first
    next_href = first["servers_links"][0]["href"]
    assert first["servers_links"][0]["rel"] == "next" and f"marker={ids[1]}" in next_href
    rest = demo.get(next_href).json()
    assert [s["id"] for s in rest["servers"]] == [ids[0]]
    assert "servers_links" not in rest
    bad = demo.get("/servers", params={"marker": "missing"})
    assert bad.status_code == 400
    assert bad.json()["badRequest"]["message"] == "marker [missing] not found"
    for server_id in ids:
        demo.delete(f"/servers/{server_id}")


def test_all_tenants_for_admins_only(admin: httpx.Client, demo: httpx.Client,
                                     active: dict) -> None:
    own = [s["id"] for s in admin.get("/servers").json()["servers"]]
    assert active["id"] not in own
    everyone = [s["id"] for s in admin.get("/servers", params={"all_tenants": "1"}).json()[
        "servers"]]
    assert active["id"] in everyone
    scoped = admin.get("/servers", params={"all_tenants": "1",
                                           "project_id": active["tenant_id"]}).json()
    assert {s["id"] for s in scoped["servers"]} <= set(everyone)
    assert active["id"] in [s["id"] for s in scoped["servers"]]
    resp = demo.get("/servers", params={"all_tenants": "1"})
    assert resp.status_code == 403


def test_project_id_in_path_is_kept_in_links(server: StackvolProcess, active: dict) -> None:
    _, token = server.token("demo")
    project = token["project"]["id"]
    with server.client("demo", prefix=f"/compute/v2.1/{project}") as client:
        links = client.get(f"/servers/{active['id']}").json()["server"]["links"]
    assert links[0]["href"] == f"{server.url}/compute/v2.1/{project}/servers/{active['id']}"
    assert links[1]["href"] == f"{server.url}/compute/{project}/servers/{active['id']}"


# --- attachments in the server view ---------------------------------------------------------


def test_volumes_attached_lists_live_attachments(demo: httpx.Client, active: dict) -> None:
    volume = attached_volume(demo, active["id"])
    assert show(demo, active["id"])["os-extended-volumes:volumes_attached"] == [
        {"id": volume["id"]}]
    assert show(demo, active["id"], "2.3")["os-extended-volumes:volumes_attached"] == [
        {"id": volume["id"], "delete_on_termination": False}]
    demo.delete(f"/servers/{active['id']}/os-volume_attachments/{volume['id']}")
    wait_for(lambda: show(demo, active["id"]),
             lambda s: s["os-extended-volumes:volumes_attached"] == [])


def test_deleting_a_server_frees_its_volumes(demo: httpx.Client) -> None:
    server_id = boot(demo, name="holder")["id"]
    wait_status(demo, server_id, "ACTIVE")
    volume = attached_volume(demo, server_id)
    demo.delete(f"/servers/{server_id}")
    wait_gone(demo, server_id)
    freed = volume_status(demo, volume["id"], "available")
    assert freed["attachments"] == [{}]


# --- restarts -------------------------------------------------------------------------------


def test_restart_keeps_servers_flavors_and_driver_state(tmp_path) -> None:
    from tests.support.server import running

    with running(tmp_path / "data") as proc, proc.client("demo") as client:
        server_id = boot(client, name="durable")["id"]
        wait_status(client, server_id, "ACTIVE")
        act(client, server_id, {"os-stop": None})
        wait_status(client, server_id, "SHUTOFF")
    with running(tmp_path / "data") as proc, proc.client("demo") as client:
        assert len(client.get("/flavors").json()["flavors"]) == 5  # seeding is idempotent
        assert show(client, server_id)["status"] == "SHUTOFF"
        assert simulated_state(proc, server_id)["power_state"] == 4
        act(client, server_id, {"os-start": None})
        wait_status(client, server_id, "ACTIVE")
