"""Real clients against the real server: python-novaclient and openstacksdk, unchanged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import novaclient
import openstack
import pytest
from novaclient import api_versions
from novaclient import exceptions as nova_exc

from tests.support.openstack_clients import nova, sdk_connection
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import IMAGE


def wait_nova_status(client: Any, server_id: str, status: str) -> Any:
    found = wait_for(lambda: client.servers.get(server_id),
                     lambda s: s.status == status
                     and getattr(s, "OS-EXT-STS:task_state") is None)
    assert found.status == status
    return found


def wait_nova_gone(client: Any, server_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.servers.get(server_id)
        except nova_exc.NotFound:
            return
        time.sleep(0.05)
    pytest.fail(f"server {server_id} was not deleted")


# --- python-novaclient ----------------------------------------------------------------------


def test_novaclient_flavors(server: StackvolProcess) -> None:
    client = nova(server, "2.1")
    names = [f.name for f in client.flavors.list()]
    assert names == ["m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"]
    small = client.flavors.get("2")
    assert (small.vcpus, small.ram, small.disk, small.swap) == (1, 2048, 20, "")
    assert small.is_public is True
    with pytest.raises(nova_exc.NotFound):
        client.flavors.get("99")


def test_novaclient_server_lifecycle(server: StackvolProcess) -> None:
    client = nova(server, "2.1")
    created = client.servers.create("nova-life", image=IMAGE, flavor="1",
                                    meta={"from": "novaclient"})
    assert created.adminPass
    active = wait_nova_status(client, created.id, "ACTIVE")
    assert active.metadata == {"from": "novaclient"}
    assert created.id in [s.id for s in client.servers.list()]
    assert [s.id for s in client.servers.list(search_opts={"name": "^nova-life$"})] == [
        created.id]

    client.servers.stop(created.id)
    wait_nova_status(client, created.id, "SHUTOFF")
    with pytest.raises(nova_exc.Conflict, match="while it is in vm_state stopped"):
        client.servers.stop(created.id)
    client.servers.start(created.id)
    wait_nova_status(client, created.id, "ACTIVE")
    client.servers.reboot(created.id, reboot_type="HARD")
    wait_nova_status(client, created.id, "ACTIVE")

    client.servers.delete(created.id)
    wait_nova_gone(client, created.id)


def test_novaclient_at_its_maximum_microversion(server: StackvolProcess) -> None:
    # What the ``nova`` shell does for "latest": ask the server's version document.
    negotiated = api_versions.discover_version(nova(server, "2.1"),
                                               api_versions.APIVersion("2.latest"))
    assert negotiated == novaclient.API_MAX_VERSION  # 2.96: ours goes higher
    client = nova(server, negotiated.get_string())
    created = client.servers.create("nova-max", image=IMAGE, flavor="1", nics="none",
                                    description="newest", tags=["t1"], hostname="nova-max")
    active = wait_nova_status(client, created.id, "ACTIVE")
    assert active.description == "newest"
    assert active.tags == ["t1"]
    assert active.flavor["original_name"] == "m1.tiny"
    assert active.pinned_availability_zone is None
    assert getattr(active, "OS-EXT-SRV-ATTR:hostname") == "nova-max"
    client.servers.update(created.id, name="nova-max-renamed")
    assert client.servers.get(created.id).name == "nova-max-renamed"
    client.servers.delete(created.id)
    wait_nova_gone(client, created.id)


# --- openstacksdk ---------------------------------------------------------------------------


@pytest.fixture
def cloud(server: StackvolProcess,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[openstack.connection.Connection]:
    with sdk_connection(server, monkeypatch) as conn:
        yield conn


def test_openstacksdk_flavors(cloud: openstack.connection.Connection) -> None:
    names = [f.name for f in cloud.compute.flavors()]
    assert names == ["m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"]
    medium = cloud.compute.find_flavor("m1.medium")
    assert (medium.vcpus, medium.ram, medium.disk) == (2, 4096, 40)
    assert cloud.get_flavor("m1.large").id == "4"


def test_openstacksdk_server_lifecycle(cloud: openstack.connection.Connection) -> None:
    flavor = cloud.compute.find_flavor("m1.small")
    created = cloud.compute.create_server(name="sdk-life", image_id=IMAGE, flavor_id=flavor.id,
                                          networks="none")
    active = cloud.compute.wait_for_server(created, status="ACTIVE", wait=30, interval=0.1)
    assert active.flavor.original_name == "m1.small"  # the SDK negotiated 2.47 or later
    assert created.id in [s.id for s in cloud.compute.servers()]

    cloud.compute.stop_server(active)
    cloud.compute.wait_for_server(active, status="SHUTOFF", wait=30, interval=0.1)
    cloud.compute.start_server(active)
    cloud.compute.wait_for_server(active, status="ACTIVE", wait=30, interval=0.1)
    cloud.compute.reboot_server(active, "SOFT")
    cloud.compute.wait_for_server(active, status="ACTIVE", wait=30, interval=0.1)

    cloud.compute.delete_server(active)
    cloud.compute.wait_for_delete(active, wait=30, interval=0.1)
    assert cloud.compute.find_server(created.id) is None


def test_openstacksdk_cloud_layer(cloud: openstack.connection.Connection) -> None:
    created = cloud.create_server("sdk-cloud", image={"id": IMAGE}, flavor="m1.tiny",
                                  auto_ip=False, wait=False)
    active = cloud.wait_for_server(created, auto_ip=False, timeout=30)
    assert active.status == "ACTIVE"
    assert "sdk-cloud" in [s.name for s in cloud.list_servers()]
    assert cloud.delete_server(active.id, wait=True, timeout=30) is True
    assert cloud.get_server(active.id) is None
