"""Response shapes Tempest's schemas (tempest/lib/api_schema) hold us to, as exact key sets.

Tempest's schemas refuse keys they do not list (``additionalProperties: False``), so an extra
key is as fatal as a missing one: each test here pins the whole set of one answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.clients import cinder
from tests.support.images import create_image
from tests.support.server import StackvolProcess
from tests.support.volumes import wait_volume

# Cinder's volume view without any extension's attributes (create and update answers).
VOLUME = {"attachments", "availability_zone", "bootable", "consistencygroup_id", "created_at",
          "description", "encrypted", "id", "links", "metadata", "multiattach", "name",
          "replication_status", "size", "snapshot_id", "source_volid", "status", "updated_at",
          "user_id", "volume_type"}
# What 3.71 adds for an admin: 3.13 group_id, 3.21 provider_id, 3.48 shared_targets and
# service_uuid, 3.61 cluster_name, 3.63 volume_type_id, 3.65 consumes_quota.
ADMIN_371 = {"migration_status", "group_id", "provider_id", "shared_targets", "service_uuid",
             "cluster_name", "volume_type_id", "consumes_quota"}
# The extensions' attributes, on show and the detailed list only.
EXTENDED_ADMIN = {"os-vol-tenant-attr:tenant_id", "os-vol-host-attr:host",
                  "os-vol-mig-status-attr:migstat", "os-vol-mig-status-attr:name_id"}

TYPE = {"id", "name", "is_public", "description", "extra_specs"}


@pytest.fixture(scope="module")
def clients(server: StackvolProcess) -> Iterator[dict[str, httpx.Client]]:
    made = {"admin": cinder(server, version=None), "admin-3.71": cinder(server),
            "demo": cinder(server, "demo", version=None)}
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(scope="module")
def image_id(server: StackvolProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    raw = tmp_path_factory.mktemp("image") / "small.raw"
    raw.write_bytes(b"\0" * 1024 * 1024)
    return create_image(server, raw, f"schema-{uuid.uuid4().hex[:6]}", disk_format="raw")


def created(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    resp = client.post("/volumes", json={"volume": {"size": 1, **fields}})
    assert resp.status_code == 202, resp.text
    return resp.json()["volume"]


@pytest.mark.parametrize(("who", "expected"), [
    ("demo", VOLUME), ("admin", VOLUME | {"migration_status"}), ("admin-3.71", VOLUME | ADMIN_371),
])
def test_volume_create_and_update_carry_no_extension_attributes(
        clients: dict[str, httpx.Client], who: str, expected: set[str]) -> None:
    client = clients[who]
    volume = created(client, name="schema")
    assert set(volume) == expected
    wait_volume(client, volume["id"], "available")
    resp = client.put(f"/volumes/{volume['id']}", json={"volume": {"name": "renamed"}})
    assert resp.status_code == 200, resp.text
    assert set(resp.json()["volume"]) == expected
    assert resp.json()["volume"]["name"] == "renamed"


def test_volume_show_and_detail_list_carry_them(clients: dict[str, httpx.Client]) -> None:
    demo, admin = clients["demo"], clients["admin"]
    volume = created(demo)
    shown = wait_volume(demo, volume["id"], "available")
    assert set(shown) == VOLUME | {"os-vol-tenant-attr:tenant_id"}
    as_admin = admin.get(f"/volumes/{volume['id']}").json()["volume"]
    assert set(as_admin) == VOLUME | {"migration_status"} | EXTENDED_ADMIN
    listed = demo.get("/volumes/detail").json()["volumes"]
    assert all(set(item) == set(shown) for item in listed)


def test_volume_from_image_shows_image_metadata_only_on_show(
        clients: dict[str, httpx.Client], image_id: str) -> None:
    demo = clients["demo"]
    volume = created(demo, imageRef=image_id)
    assert "volume_image_metadata" not in volume
    assert set(volume) == VOLUME
    shown = wait_volume(demo, volume["id"], "available")
    assert shown["volume_image_metadata"]["image_id"] == image_id


def test_volume_type_create_update_show_keys(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    resp = admin.post("/types", json={"volume_type": {"name": f"schema-{uuid.uuid4().hex[:8]}"}})
    assert resp.status_code == 200, resp.text
    made = resp.json()["volume_type"]
    assert set(made) == TYPE | {"os-volume-type-access:is_public"}  # no qos_specs_id
    resp = admin.put(f"/types/{made['id']}", json={"volume_type": {"description": "d"}})
    assert resp.status_code == 200, resp.text
    assert set(resp.json()["volume_type"]) == TYPE  # neither qos_specs_id nor type access
    shown = admin.get(f"/types/{made['id']}").json()["volume_type"]
    assert set(shown) == TYPE | {"os-volume-type-access:is_public", "qos_specs_id"}
    assert admin.delete(f"/types/{made['id']}").status_code == 202


def test_volume_summary(server: StackvolProcess) -> None:
    """``GET /volumes/summary``: count and GiB of the caller's volumes, metadata since 3.36."""
    with cinder(server, "demo", version="3.36") as demo, \
            cinder(server, "demo", version="3.11") as old:
        volume = created(demo, size=2, metadata={"tier": "gold"})
        resp = demo.get("/volumes/summary")
        assert resp.status_code == 200, resp.text
        found = resp.json()["volume-summary"]
        assert set(resp.json()) == {"volume-summary"}
        assert set(found) == {"total_count", "total_size", "metadata"}
        listed = demo.get("/volumes/detail").json()["volumes"]
        assert (found["total_count"], found["total_size"]) == (
            len(listed), sum(v["size"] for v in listed))
        assert "gold" in found["metadata"]["tier"]
        with cinder(server, "demo", version="3.12") as v312:
            assert set(v312.get("/volumes/summary").json()["volume-summary"]) == {
                "total_count", "total_size"}
        assert old.get("/volumes/summary").status_code == 404
        wait_volume(demo, volume["id"], "available")


def test_volume_image_metadata_actions(clients: dict[str, httpx.Client], image_id: str) -> None:
    """os-set/unset/show_image_metadata (Tempest's VolumesImageMetadata)."""
    demo = clients["demo"]
    volume = wait_volume(demo, created(demo, imageRef=image_id)["id"], "available")
    path = f"/volumes/{volume['id']}/action"
    resp = demo.post(path, json={"os-set_image_metadata": {"metadata": {
        "kernel_id": "k", "ramdisk_id": "r"}}})
    assert resp.status_code == 200, resp.text
    assert set(resp.json()) == {"metadata"}
    assert resp.json()["metadata"]["kernel_id"] == "k"
    assert resp.json()["metadata"]["image_id"] == image_id  # what it had stays
    resp = demo.post(path, json={"os-unset_image_metadata": {"key": "ramdisk_id"}})
    assert resp.status_code == 200, resp.text
    shown = demo.post(path, json={"os-show_image_metadata": None})
    assert shown.status_code == 200, shown.text
    assert "ramdisk_id" not in shown.json()["metadata"]
    assert demo.get(f"/volumes/{volume['id']}").json()["volume"]["volume_image_metadata"][
        "kernel_id"] == "k"
    missing = demo.post(path, json={"os-unset_image_metadata": {"key": "ramdisk_id"}})
    assert missing.status_code == 404, missing.text
    bad = demo.post(path, json={"os-set_image_metadata": {"metadata": "x"}})
    assert bad.status_code == 400, bad.text
