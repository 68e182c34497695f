"""Volume attachments through the real clients, unchanged: python-novaclient
(``volumes.create_server_volume`` and friends) and openstacksdk (``compute.*volume_attachment*``)
at every microversion family of ``os-volume_attachments``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openstack
import pytest
from novaclient import exceptions as nova_exc

from tests.support.openstack_clients import nova
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import new_server
from tests.support.volumes import new_volume, volume_status

FAMILIES = ["2.1", "2.49", "2.70", "2.79", "2.85", "2.89"]


def mv(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


@pytest.fixture(scope="module")
def demo_server(demo: httpx.Client) -> str:
    return new_server(demo, "clients")


def _attach_kwargs(version: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if mv(version) >= (2, 49):
        kwargs["tag"] = f"t{version}"
    if mv(version) >= (2, 79):
        kwargs["delete_on_termination"] = True
    return kwargs


@pytest.mark.parametrize("version", FAMILIES)
def test_novaclient_attach_list_show_update_detach(server: StackvolProcess, demo: httpx.Client,
                                                   demo_server: str, version: str) -> None:
    client = nova(server, version)
    volume_id = new_volume(demo)
    created = client.volumes.create_server_volume(demo_server, volume_id,
                                                  **_attach_kwargs(version))
    assert created.volumeId == volume_id
    assert created.serverId == demo_server
    assert created.device.startswith("/dev/vd")
    assert (getattr(created, "tag", None) == f"t{version}") == (mv(version) >= (2, 70))
    volume_status(demo, volume_id, "in-use")

    listed = {a.volumeId: a for a in client.volumes.get_server_volumes(demo_server)}
    assert volume_id in listed
    shown = client.volumes.get_server_volume(demo_server, volume_id)
    assert shown.device == created.device
    assert hasattr(shown, "id") == (mv(version) < (2, 89))
    assert hasattr(shown, "attachment_id") == (mv(version) >= (2, 89))
    if mv(version) >= (2, 79):
        assert shown.delete_on_termination is True
    if mv(version) >= (2, 85):
        client.volumes.update_server_volume(demo_server, volume_id, volume_id,
                                            delete_on_termination=False)
        assert client.volumes.get_server_volume(demo_server,
                                                volume_id).delete_on_termination is False
    else:  # below 2.85 a PUT is a swap: admin-only by policy (and only Cinder may ask)
        with pytest.raises(nova_exc.Forbidden, match="os-volumes-attachments:swap"):
            client.volumes.update_server_volume(demo_server, volume_id, new_volume(demo))

    client.volumes.delete_server_volume(demo_server, volume_id)
    volume_status(demo, volume_id, "available")
    with pytest.raises(nova_exc.NotFound):
        client.volumes.get_server_volume(demo_server, volume_id)


def test_novaclient_faults(server: StackvolProcess, demo: httpx.Client,
                           demo_server: str) -> None:
    client = nova(server, "2.79")
    volume_id = new_volume(demo)
    client.volumes.create_server_volume(demo_server, volume_id)
    with pytest.raises(nova_exc.BadRequest, match="already attached"):
        client.volumes.create_server_volume(demo_server, volume_id)
    with pytest.raises(nova_exc.NotFound):
        client.volumes.create_server_volume(demo_server, "5c1dc2fa-5e8e-4a4b-9b1e-c1b0c1d2e3f4")
    with pytest.raises(nova_exc.Conflict, match="is in use"):
        client.volumes.create_server_volume(demo_server, new_volume(demo),
                                            device=client.volumes.get_server_volume(
                                                demo_server, volume_id).device)
    swapper = nova(server, "2.79", user="admin")
    with pytest.raises(nova_exc.Conflict, match="is not migrating"):
        swapper.volumes.update_server_volume(demo_server, volume_id, new_volume(demo))
    client.volumes.delete_server_volume(demo_server, volume_id)
    volume_status(demo, volume_id, "available")


def test_novaclient_root_volume_cannot_be_detached(server: StackvolProcess,
                                                   demo: httpx.Client) -> None:
    client = nova(server, "2.89")
    root = new_volume(demo)
    created = client.servers.create("nova-bfv", image=None, flavor="1", nics="none",
                                    block_device_mapping_v2=[{
                                        "source_type": "volume", "destination_type": "volume",
                                        "uuid": root, "boot_index": 0}])
    wait_for(lambda: client.servers.get(created.id).status, lambda s: s == "ACTIVE")
    (boot,) = client.volumes.get_server_volumes(created.id)
    assert (boot.volumeId, boot.device) == (root, "/dev/vda")
    with pytest.raises(nova_exc.BadRequest, match="Cannot detach a root device volume"):
        client.volumes.delete_server_volume(created.id, root)
    client.servers.delete(created.id)
    volume_status(demo, root, "available")


@contextmanager
def sdk(server: StackvolProcess, version: str) -> Iterator[openstack.connection.Connection]:
    """An SDK connection from the session's ``clouds.yaml`` pinned to one microversion."""
    conn = openstack.connect(cloud="stackvol-admin", compute_default_microversion=version)
    try:
        yield conn
    finally:
        conn.close()


@pytest.mark.parametrize("version", FAMILIES)
def test_openstacksdk_attach_list_get_delete(server: StackvolProcess, admin: httpx.Client,
                                             monkeypatch: pytest.MonkeyPatch,
                                             version: str) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(server.clouds_yaml))
    server_id = new_server(admin, "sdk-att")
    volume_id = new_volume(admin)
    with sdk(server, version) as cloud:
        created = cloud.compute.create_volume_attachment(server_id, volume_id,
                                                         **_attach_kwargs(version))
        assert created.volume_id == volume_id
        assert created.device == "/dev/vdb"
        volume_status(admin, volume_id, "in-use")

        listed = list(cloud.compute.volume_attachments(server_id))
        assert [a.volume_id for a in listed] == [volume_id]
        fetched = cloud.compute.get_volume_attachment(server_id, volume_id)
        assert fetched.device == "/dev/vdb"
        assert fetched.tag == (f"t{version}" if mv(version) >= (2, 70) else None)
        assert fetched.delete_on_termination is (True if mv(version) >= (2, 79) else None)
        if mv(version) >= (2, 89):
            assert fetched.attachment_id and fetched.bdm_id
        else:
            assert fetched.attachment_id is None

        cloud.compute.delete_volume_attachment(server_id, volume_id)
        volume_status(admin, volume_id, "available")
        assert list(cloud.compute.volume_attachments(server_id)) == []
        with pytest.raises(openstack.exceptions.NotFoundException):
            cloud.compute.get_volume_attachment(server_id, volume_id)
    admin.delete(f"/servers/{server_id}")
