"""Today's clients, unchanged, against the real server: python-openstackclient (as a subprocess,
with our clouds.yaml) and openstacksdk's block-storage proxy.

``openstack server create --image`` needs an Image service, which stackvol does not have, so the
server boots from a volume (``--volume``) instead.
"""

from __future__ import annotations

import uuid
from typing import Any

import openstack
import pytest

from tests.support.clients import cinder
from tests.support.openstack_clients import osc
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import IMAGE
from tests.support.volumes import wait_gone, wait_volume


def osc_volume(server: StackvolProcess, name: str) -> dict[str, Any]:
    return osc(server, "volume", "show", name, "-f", "json")


def wait_status(server: StackvolProcess, volume_id: str, status: str) -> dict[str, Any]:
    """Poll over plain HTTP (an openstackclient run costs seconds)."""
    with cinder(server) as client:
        return wait_volume(client, volume_id, status)


def test_openstackclient_volumes_snapshots_and_servers(server: StackvolProcess) -> None:
    tag = uuid.uuid4().hex[:6]
    data, boot, vm = f"osc-data-{tag}", f"osc-boot-{tag}", f"osc-vm-{tag}"
    created = osc(server, "volume", "create", "--size", "1", "--description", "from osc",
                  "--property", "team=storage", data, "-f", "json")
    assert created["name"] == data and created["size"] == 1
    wait_status(server, created["id"], "available")
    listed = osc(server, "volume", "list", "-f", "json")
    assert data in [v["Name"] for v in listed]
    osc(server, "volume", "set", "--name", data + "-r", "--property", "tier=gold", data)
    data += "-r"
    shown = osc_volume(server, data)
    assert shown["properties"] == {"team": "storage", "tier": "gold"}
    assert shown["description"] == "from osc" and shown["type"] == "__DEFAULT__"

    snap = osc(server, "volume", "snapshot", "create", "--volume", data, f"osc-snap-{tag}",
               "-f", "json")
    with cinder(server) as client:
        wait_for(lambda: client.get(f"/snapshots/{snap['id']}").json()["snapshot"]["status"],
                 lambda status: status == "available")
        snaps = osc(server, "volume", "snapshot", "list", "-f", "json")
        assert snap["id"] in [s["ID"] for s in snaps]
        osc(server, "volume", "snapshot", "delete", snap["id"])
        wait_gone(client, f"/snapshots/{snap['id']}")

    types = osc(server, "volume", "type", "list", "-f", "json")
    assert "__DEFAULT__" in [t["Name"] for t in types]
    quota = osc(server, "quota", "show", "--volume", "-f", "json")
    assert {"volumes", "snapshots", "gigabytes"} <= {q["Resource"] for q in quota}

    boot_id = osc(server, "volume", "create", "--size", "1", boot, "-f", "json")["id"]
    wait_status(server, boot_id, "available")
    made = osc(server, "server", "create", "--flavor", "m1.tiny", "--volume", boot, "--wait",
               vm, "-f", "json")
    assert made["status"] == "ACTIVE"
    wait_status(server, boot_id, "in-use")
    osc(server, "server", "add", "volume", vm, data)
    attached = wait_status(server, created["id"], "in-use")
    assert attached["attachments"][0]["server_id"] == made["id"]
    assert "in-use" in osc(server, "volume", "list", "-f", "value", "-c", "Name", "-c",
                           "Status").split(data)[1].splitlines()[0]
    osc(server, "server", "remove", "volume", vm, data)
    wait_status(server, created["id"], "available")

    osc(server, "server", "delete", "--wait", vm)
    osc(server, "volume", "delete", data, boot)
    with cinder(server) as client:
        for volume_id in (created["id"], boot_id):
            wait_gone(client, f"/volumes/{volume_id}")


@pytest.fixture
def sdk(server: StackvolProcess, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(server.clouds_yaml))
    return openstack.connect(cloud="stackvol-demo")


def test_openstacksdk_block_storage_attach_detach(sdk: openstack.connection.Connection) -> None:
    volume = sdk.create_volume(size=1, name="sdk-vol", wait=True, timeout=60)
    assert volume.status == "available"
    assert sdk.block_storage.get_volume(volume.id).name == "sdk-vol"
    flavor = sdk.compute.find_flavor("m1.tiny", ignore_missing=False)
    vm = sdk.compute.create_server(name="sdk-vm", image_id=IMAGE, flavor_id=flavor.id,
                                   networks="none")
    vm = sdk.compute.wait_for_server(vm, status="ACTIVE", wait=60)
    sdk.attach_volume(vm, volume, wait=True, timeout=60)
    in_use = sdk.block_storage.get_volume(volume.id)
    assert in_use.status == "in-use"
    assert [a["server_id"] for a in in_use.attachments] == [vm.id]
    sdk.block_storage.extend_volume(volume, 2)  # in-use extend (3.42+)
    sdk.block_storage.wait_for_status(sdk.block_storage.get_volume(volume.id),
                                      status="in-use", wait=60)
    assert sdk.block_storage.get_volume(volume.id).size == 2
    sdk.detach_volume(vm, volume, wait=True, timeout=60)
    assert sdk.block_storage.get_volume(volume.id).status == "available"
    assert sdk.delete_volume(volume.id, wait=True, timeout=60)
    assert sdk.block_storage.find_volume(volume.id) is None
    sdk.compute.delete_server(vm)
