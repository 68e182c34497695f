"""Nova's ``/os-services`` and ``/os-availability-zone`` from the processes' heartbeats."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.support.identity_helpers import osc
from tests.support.server import StackvolProcess


def test_services_list_each_binary_per_host(admin: httpx.Client) -> None:
    resp = admin.get("/os-services")
    assert resp.status_code == 200, resp.text
    found = {s["binary"]: s for s in resp.json()["services"]}
    assert set(found) == {"nova-compute", "nova-conductor", "nova-scheduler"}
    compute = found["nova-compute"]
    assert compute["state"] == "up" and compute["status"] == "enabled"
    assert compute["zone"] == "nova" and found["nova-scheduler"]["zone"] == "internal"
    assert isinstance(compute["id"], int) and "forced_down" not in compute
    only = admin.get("/os-services", params={"binary": "nova-compute"}).json()["services"]
    assert [s["binary"] for s in only] == ["nova-compute"]


def test_services_ids_are_uuids_from_2_53(admin: httpx.Client) -> None:
    resp = admin.get("/os-services", headers={"OpenStack-API-Version": "compute 2.53"})
    services = resp.json()["services"]
    assert all(uuid.UUID(s["id"]) and s["forced_down"] is False for s in services)
    again = admin.get("/os-services", headers={"OpenStack-API-Version": "compute 2.53"})
    assert [s["id"] for s in again.json()["services"]] == [s["id"] for s in services]


def test_services_are_for_admins_only(demo: httpx.Client) -> None:
    resp = demo.get("/os-services")
    assert resp.status_code == 403
    assert "os_compute_api:os-services:list" in resp.json()["forbidden"]["message"]


def test_availability_zones(admin: httpx.Client, demo: httpx.Client) -> None:
    zones = demo.get("/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]
    assert demo.get("/os-availability-zone/detail").status_code == 403
    detail = admin.get("/os-availability-zone/detail").json()["availabilityZoneInfo"]
    hosts = {z["zoneName"]: z["hosts"] for z in detail}
    (compute_host,) = hosts["nova"].values()
    assert compute_host["nova-compute"]["available"] is True


def test_openstackclient_lists_compute_services(server: StackvolProcess) -> None:
    done = osc(server, "compute", "service", "list", "-f", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {r["Binary"] for r in rows} >= {"nova-compute", "nova-scheduler"}
    assert all(r["State"] == "up" for r in rows)
    zones = osc(server, "availability", "zone", "list", "--compute", "-f", "json")
    assert zones.returncode == 0, zones.stderr
    # An admin sees the detail: the compute zone and Nova's "internal" one.
    assert {z["Zone Name"] for z in json.loads(zones.stdout)} == {"nova", "internal"}
