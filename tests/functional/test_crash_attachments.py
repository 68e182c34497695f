"""``kill -9`` in the middle of attach, detach, snapshot, volume delete, server spawn and server
delete (a test hook parks the worker at a named point), then restart without the hook: nothing is
left in a transitional status, and the database agrees with the simulated hypervisor's state files
and with the files under ``volumes/`` and ``snapshots/``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import IMAGE, new_server
from tests.support.volumes import (
    attach,
    attach_and_wait,
    new_attached_pair,
    new_volume,
    volume_status,
)

VOLUME_TRANSITIONS = {"creating", "attaching", "detaching", "deleting", "reserved"}
SNAPSHOT_TRANSITIONS = {"creating", "deleting"}


@contextmanager
def client_of(server: StackvolProcess) -> Iterator[httpx.Client]:
    with server.client("admin") as client:
        yield client


def _volumes(client: httpx.Client) -> list[dict]:
    return client.get("/os-volumes/detail").json()["volumes"]


def _snapshots(client: httpx.Client) -> list[dict]:
    return client.get("/os-snapshots/detail").json()["snapshots"]


def _servers(client: httpx.Client) -> list[dict]:
    return client.get("/servers/detail").json()["servers"]


def _settled(client: httpx.Client) -> bool:
    return (all(v["status"] not in VOLUME_TRANSITIONS for v in _volumes(client))
            and all(s["status"] not in SNAPSHOT_TRANSITIONS for s in _snapshots(client))
            and all(s["status"] != "BUILD" and s["OS-EXT-STS:task_state"] is None
                    for s in _servers(client)))


def _driver(server: StackvolProcess) -> dict[str, dict[str, str]]:
    root = server.data_dir / "compute" / "simulated"
    out = {}
    for path in root.glob("*.json"):
        state = json.loads(path.read_text())
        out[path.stem] = {vol: entry["device"] for vol, entry in state["volumes"].items()}
    return out


def assert_consistent(server: StackvolProcess, client: httpx.Client) -> None:
    """Settled, and every view agrees: API, hypervisor state files, storage files."""
    assert wait_for(lambda: _settled(client), bool), (_volumes(client), _servers(client))
    volumes = {v["id"]: v for v in _volumes(client)}
    servers = {s["id"]: s for s in _servers(client)}
    driver = _driver(server)
    assert set(driver) == {s for s, body in servers.items() if body["status"] != "ERROR"}
    for server_id in servers:
        listed = client.get(f"/servers/{server_id}/os-volume_attachments").json()
        rows = {a["volumeId"]: a["device"] for a in listed["volumeAttachments"]}
        assert driver.get(server_id, {}) == rows, server_id
        for volume_id in rows:
            assert volumes[volume_id]["status"] == "in-use"
            assert volumes[volume_id]["attachments"][0]["serverId"] == server_id
    attached = {vol for rows in driver.values() for vol in rows}
    for volume_id, volume in volumes.items():
        assert (volume["status"] == "in-use") == (volume_id in attached), volume
    files = {p.name for p in (server.data_dir / "volumes").iterdir()}
    assert files == {f"volume-{v}.raw" for v, body in volumes.items()
                     if body["status"] != "error"}
    snapshot_files = {p.name for p in (server.data_dir / "snapshots").iterdir()}
    assert snapshot_files == {f"snapshot-{s['id']}.raw" for s in _snapshots(client)}


def crash_at(tmp_path: Path, point: str, setup: Callable[[httpx.Client], Any],
             act: Callable[[httpx.Client, Any], Any]) -> tuple[StackvolProcess, Any, Any]:
    """Prepare without the hook, act with the worker parked at ``point``, kill -9, restart."""
    server = StackvolProcess(tmp_path / "data").start()
    try:
        with client_of(server) as client:
            prepared = setup(client)
            assert wait_for(lambda: _settled(client), bool)
        server.stop()
        server.start(pause_at=point)
        with client_of(server) as client:
            acted = act(client, prepared)
        server.kill()
        server.start()
    except BaseException:
        server.stop()  # the caller never sees this server: do not leave it running
        raise
    return server, prepared, acted


@pytest.fixture
def cleanup() -> Iterator[list[StackvolProcess]]:
    started: list[StackvolProcess] = []
    yield started
    for server in started:
        server.stop()


def _server_and_volume(client: httpx.Client) -> tuple[str, str]:
    return new_server(client), new_volume(client)


def test_kill_mid_attach(tmp_path: Path, cleanup: list[StackvolProcess]) -> None:
    def act(client: httpx.Client, ids: tuple[str, str]) -> None:
        assert attach(client, *ids).status_code == 200
        assert volume_status(client, ids[1], "attaching")

    server, (server_id, volume_id), _ = crash_at(tmp_path, "attachment.attach",
                                                 _server_and_volume, act)
    cleanup.append(server)
    with client_of(server) as client:
        assert_consistent(server, client)
        assert volume_status(client, volume_id, "in-use")
        assert _driver(server)[server_id] == {volume_id: "/dev/vdb"}


def test_kill_mid_detach(tmp_path: Path, cleanup: list[StackvolProcess]) -> None:
    def act(client: httpx.Client, ids: tuple[str, str]) -> None:
        server_id, volume_id = ids
        assert client.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}"
                             ).status_code == 202
        assert volume_status(client, volume_id, "detaching")

    server, (server_id, volume_id), _ = crash_at(tmp_path, "attachment.detach",
                                                 new_attached_pair, act)
    cleanup.append(server)
    with client_of(server) as client:
        assert_consistent(server, client)
        assert volume_status(client, volume_id, "available")
        assert _driver(server)[server_id] == {}


def test_kill_mid_snapshot_of_an_attached_volume(tmp_path: Path,
                                                 cleanup: list[StackvolProcess]) -> None:
    def act(client: httpx.Client, ids: tuple[str, str]) -> str:
        resp = client.post("/os-snapshots", json={"snapshot": {"volume_id": ids[1],
                                                               "force": True}})
        assert resp.status_code == 200, resp.text
        return resp.json()["snapshot"]["id"]

    server, _, snapshot_id = crash_at(tmp_path, "snapshot.create", new_attached_pair, act)
    cleanup.append(server)
    with client_of(server) as client:
        assert_consistent(server, client)
        assert client.get(f"/os-snapshots/{snapshot_id}").json()["snapshot"]["status"] == (
            "available")


def test_kill_mid_volume_delete_after_detach(tmp_path: Path,
                                             cleanup: list[StackvolProcess]) -> None:
    def setup(client: httpx.Client) -> tuple[str, str]:
        server_id, volume_id = new_attached_pair(client)
        client.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}")
        volume_status(client, volume_id, "available")
        return server_id, volume_id

    def act(client: httpx.Client, ids: tuple[str, str]) -> None:
        assert client.delete(f"/os-volumes/{ids[1]}").status_code == 202

    server, (_, volume_id), _ = crash_at(tmp_path, "volume.delete", setup, act)
    cleanup.append(server)
    with client_of(server) as client:
        assert_consistent(server, client)
        assert client.get(f"/os-volumes/{volume_id}").status_code == 404


def _boot_from_volume(client: httpx.Client, root: str) -> str:
    resp = client.post("/servers", json={"server": {
        "name": "bfv", "flavorRef": "1", "block_device_mapping_v2": [
            {"source_type": "volume", "destination_type": "volume", "uuid": root,
             "boot_index": 0},
            {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
             "delete_on_termination": True}]}})
    assert resp.status_code == 202, resp.text
    return resp.json()["server"]["id"]


@pytest.mark.parametrize("point", ["server.spawn", "server.spawn.volumes"])
def test_kill_mid_boot_from_volume(tmp_path: Path, cleanup: list[StackvolProcess],
                                   point: str) -> None:
    def act(client: httpx.Client, root: str) -> str:
        server_id = _boot_from_volume(client, root)
        assert volume_status(client, root, "attaching")
        if point == "server.spawn.volumes":  # parked after the driver built it
            built = tmp_path / "data" / "compute" / "simulated" / f"{server_id}.json"
            assert wait_for(built.exists, bool)
        return server_id

    server, root, server_id = crash_at(tmp_path, point, new_volume, act)
    cleanup.append(server)
    with client_of(server) as client:
        assert_consistent(server, client)
        shown = client.get(f"/servers/{server_id}").json()["server"]
        assert shown["status"] == "ACTIVE"
        assert _driver(server)[server_id][root] == "/dev/vda"
        assert len(_driver(server)[server_id]) == 2


def test_kill_mid_delete_of_a_volume_backed_server(tmp_path: Path,
                                                   cleanup: list[StackvolProcess]) -> None:
    def setup(client: httpx.Client) -> tuple[str, str]:
        root = new_volume(client)
        server_id = _boot_from_volume(client, root)
        wait_for(lambda: client.get(f"/servers/{server_id}").json()["server"]["status"],
                 lambda s: s == "ACTIVE")
        return server_id, root

    def act(client: httpx.Client, ids: tuple[str, str]) -> list[str]:
        server_id, _ = ids
        listed = client.get(f"/servers/{server_id}/os-volume_attachments").json()
        assert client.delete(f"/servers/{server_id}").status_code == 204
        return [a["volumeId"] for a in listed["volumeAttachments"]]

    server, (server_id, root), volume_ids = crash_at(tmp_path, "server.delete", setup, act)
    cleanup.append(server)
    with client_of(server) as client:
        gone = wait_for(lambda: client.get(f"/servers/{server_id}"),
                        lambda r: r.status_code == 404)
        assert gone.status_code == 404
        assert_consistent(server, client)
        assert volume_status(client, root, "available")
        blank = next(v for v in volume_ids if v != root)  # delete_on_termination
        assert wait_for(lambda: client.get(f"/os-volumes/{blank}").status_code,
                        lambda c: c == 404) == 404
    assert server_id not in _driver(server)


def test_restart_reconciles_the_hypervisor_with_the_database(
        tmp_path: Path, cleanup: list[StackvolProcess]) -> None:
    server = StackvolProcess(tmp_path / "data").start()
    cleanup.append(server)
    with client_of(server) as client:
        server_id = new_server(client)
        kept = new_volume(client)
        attach_and_wait(client, server_id, kept)
    server.kill()
    root = server.data_dir / "compute" / "simulated"
    # What a crash between a late spawn and its clean-up could leave: a server with no row...
    orphan = str(uuid.uuid4())
    (root / f"{orphan}.json").write_text(json.dumps({
        "server_id": orphan, "power_state": 1, "volumes": {}}))
    # ...and, on a real server, a connection no attachment row speaks of, while the attached
    # volume's connection is missing.
    path = root / f"{server_id}.json"
    state = json.loads(path.read_text())
    stray = str(uuid.uuid4())
    state["volumes"] = {stray: {"device": "/dev/vdz", "connection_info": {}}}
    path.write_text(json.dumps(state))
    server.start()
    with client_of(server) as client:
        assert_consistent(server, client)
    assert orphan not in _driver(server)
    assert _driver(server)[server_id] == {kept: "/dev/vdb"}
    assert "start-up reconciliation" in server.log_path.read_text()


def test_boot_from_volume_then_image_server_still_consistent(
        tmp_path: Path, cleanup: list[StackvolProcess]) -> None:
    """A plain restart (SIGTERM) of a mix of servers changes nothing."""
    server = StackvolProcess(tmp_path / "data").start()
    cleanup.append(server)
    with client_of(server) as client:
        bfv = _boot_from_volume(client, new_volume(client))
        plain = client.post("/servers", json={"server": {
            "name": "plain", "flavorRef": "1", "imageRef": IMAGE}}).json()["server"]["id"]
        assert_consistent(server, client)
    before = _driver(server)
    server.stop()
    server.start()
    with client_of(server) as client:
        assert_consistent(server, client)
    assert _driver(server) == before
    assert {bfv, plain} <= set(before)
