"""Several storage backends at once, chosen by volume type (``volume_backend_name``), on real
servers: one process serving two file backends (raw in one directory, qcow2 in another), and a
deployment of an API process with one volume worker per backend."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackvol.config import load_settings
from stackvol.storage.registry import Backends, UnknownBackend
from tests.support import postgres
from tests.support.clients import cinder
from tests.support.server import StackvolProcess, running, wait_for
from tests.support.servers import new_server
from tests.support.volumes import wait_gone, wait_volume

BACKENDS = {"fast": ("FAST", "qcow2"), "slow": ("SLOW", "raw")}


def write_config(root: Path, **extra: Any) -> Path:
    """A TOML config with the two file backends under ``root`` (slow is the default)."""
    lines = ['enabled_backends = ["fast", "slow"]', 'default_backend = "slow"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    for name, (backend_name, fmt) in BACKENDS.items():
        lines += [f"[backends.{name}]", 'driver = "file"',
                  f'volume_backend_name = "{backend_name}"', f'volume_format = "{fmt}"',
                  f'volumes_dir = "{root / name}"']
    path = root / "stackvol.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("volume-*")} if directory.exists() else set()


def image_format(path: Path) -> str:
    done = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["format"]


def make_type(vadmin: httpx.Client, name: str, backend_name: str) -> None:
    resp = vadmin.post("/types", json={"volume_type": {
        "name": name, "extra_specs": {"volume_backend_name": backend_name}}})
    assert resp.status_code == 200, resp.text


def create(client: httpx.Client, **fields: Any) -> str:
    resp = client.post("/volumes", json={"volume": {"size": 1, **fields}})
    assert resp.status_code == 202, resp.text
    return resp.json()["volume"]["id"]


# --- the configuration --------------------------------------------------------------------------


def test_backends_from_toml_beside_a_stackvol_table(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACKVOL_CONFIG", raising=False)
    config = tmp_path / "c.toml"
    config.write_text('[stackvol]\nenabled_backends = ["file", "fast"]\n'
                      'default_backend = "fast"\n[backends.fast]\nvolume_format = "qcow2"\n'
                      'volume_backend_name = "FAST"\n')
    settings = load_settings(config, data_dir=tmp_path / "data")
    backends = Backends.from_settings(settings)
    assert backends.names == ["file", "fast"] and backends.default == "fast"
    # The backend named "file" keeps a single-backend data directory's layout.
    plain = backends.get("file")
    assert plain.volumes_dir == tmp_path / "data" / "volumes"
    assert plain.snapshots_dir == tmp_path / "data" / "snapshots"
    fast = backends.get("fast")
    assert fast.volumes_dir == tmp_path / "data" / "backends" / "fast" and fast.format == "qcow2"
    assert backends.for_type({}) == ["fast"]
    assert backends.for_type({"volume_backend_name": "FAST"}) == ["fast"]
    assert backends.for_type({"capabilities:volume_backend_name": "file"}) == ["file"]
    assert backends.for_type({"volume_backend_name": "nope"}) == []
    with pytest.raises(UnknownBackend, match="'gone' is not enabled"):
        backends.get("gone")


def test_backends_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACKVOL_CONFIG", raising=False)
    monkeypatch.setenv("STACKVOL_ENABLED_BACKENDS", "a, b")
    monkeypatch.setenv("STACKVOL_BACKENDS", json.dumps({"b": {"volume_backend_name": "B"}}))
    settings = load_settings(data_dir=tmp_path)
    assert settings.enabled_backends == ["a", "b"] and settings.served_backend == "a"
    backends = Backends.from_settings(settings)
    assert backends.pool("b") == "B" and backends.for_type({"volume_backend_name": "B"}) == ["b"]
    monkeypatch.setenv("STACKVOL_ENABLED_BACKENDS", '["b"]')
    assert load_settings(data_dir=tmp_path).enabled_backends == ["b"]


# --- one process, two backends ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackvolProcess]:
    root = tmp_path_factory.mktemp("backends")
    with running(root / "data", config=write_config(root)) as proc:
        yield proc


@pytest.fixture(scope="module")
def vadmin(two: StackvolProcess) -> Iterator[httpx.Client]:
    with cinder(two, "admin") as client:
        for name, (backend_name, _) in BACKENDS.items():
            make_type(client, name.upper(), backend_name)
        make_type(client, "NOWHERE", "NO-SUCH-BACKEND")
        yield client


def backend_dir(two: StackvolProcess, name: str) -> Path:
    return two.data_dir.parent / name


def test_types_place_volumes_on_their_backends(two: StackvolProcess,
                                               vadmin: httpx.Client) -> None:
    fast = create(vadmin, volume_type="FAST")
    slow_id = vadmin.get("/types/SLOW").json()["volume_type"]["id"]
    slow = create(vadmin, volume_type=slow_id)  # Cinder takes a type's id as well
    with two.client("admin") as nova:  # Nova's os-volumes, untyped: the default backend
        resp = nova.post("/os-volumes", json={"volume": {"size": 1}})
        assert resp.status_code == 200, resp.text
        untyped = resp.json()["volume"]["id"]
        resp = nova.post("/os-volumes", json={"volume": {"size": 1, "volume_type": "FAST"}})
        nova_fast = resp.json()["volume"]["id"]
    placed = {vid: wait_volume(vadmin, vid, "available") for vid in (fast, slow, untyped,
                                                                     nova_fast)}
    host = {vid: v["os-vol-host-attr:host"] for vid, v in placed.items()}
    assert re.fullmatch(r".+@fast#FAST", host[fast]) and host[nova_fast] == host[fast]
    assert re.fullmatch(r".+@slow#SLOW", host[slow]) and host[untyped] == host[slow]
    assert placed[untyped]["volume_type"] == "__DEFAULT__"

    assert files(backend_dir(two, "fast")) == {f"volume-{v}.qcow2" for v in (fast, nova_fast)}
    assert files(backend_dir(two, "slow")) == {f"volume-{v}.raw" for v in (slow, untyped)}
    assert image_format(backend_dir(two, "fast") / f"volume-{fast}.qcow2") == "qcow2"
    assert image_format(backend_dir(two, "slow") / f"volume-{slow}.raw") == "raw"
    assert not (two.data_dir / "volumes").exists() or not files(two.data_dir / "volumes")

    for vid in placed:
        assert vadmin.delete(f"/volumes/{vid}").status_code == 202
        wait_gone(vadmin, f"/volumes/{vid}")
    assert files(backend_dir(two, "fast")) == files(backend_dir(two, "slow")) == set()


def test_snapshots_and_their_volumes_stay_on_the_source_backend(two: StackvolProcess,
                                                                vadmin: httpx.Client) -> None:
    source = create(vadmin, volume_type="FAST")
    wait_volume(vadmin, source, "available")
    resp = vadmin.post("/snapshots", json={"snapshot": {"volume_id": source}})
    assert resp.status_code == 202, resp.text
    snap = resp.json()["snapshot"]["id"]
    wait_for(lambda: vadmin.get(f"/snapshots/{snap}").json()["snapshot"]["status"],
             lambda s: s == "available")
    snapshots_dir = backend_dir(two, "fast") / "snapshots"
    assert [p.name for p in snapshots_dir.iterdir()] == [f"snapshot-{snap}.qcow2"]

    # Untyped, or even typed for the other backend: made where its snapshot is (as Cinder).
    copy = create(vadmin, snapshot_id=snap, size=2)
    typed = create(vadmin, snapshot_id=snap, volume_type="SLOW")
    made = {vid: wait_volume(vadmin, vid, "available") for vid in (copy, typed)}
    assert made[copy]["volume_type"] == "FAST"  # the source's type
    assert all(v["os-vol-host-attr:host"].endswith("@fast#FAST") for v in made.values())
    assert files(backend_dir(two, "fast")) == {f"volume-{v}.qcow2"
                                               for v in (source, copy, typed)}
    assert files(backend_dir(two, "slow")) == set()

    for vid in (copy, typed):
        vadmin.delete(f"/volumes/{vid}")
        wait_gone(vadmin, f"/volumes/{vid}")
    assert vadmin.delete(f"/snapshots/{snap}").status_code == 202
    wait_gone(vadmin, f"/snapshots/{snap}")
    assert list(snapshots_dir.iterdir()) == []
    vadmin.delete(f"/volumes/{source}")
    wait_gone(vadmin, f"/volumes/{source}")
    assert files(backend_dir(two, "fast")) == set()


def test_a_type_naming_no_backend_leaves_the_volume_in_error(two: StackvolProcess,
                                                             vadmin: httpx.Client) -> None:
    before = files(backend_dir(two, "fast")) | files(backend_dir(two, "slow"))
    vid = create(vadmin, volume_type="NOWHERE")
    volume = wait_volume(vadmin, vid, "error")
    assert volume["os-vol-host-attr:host"] is None and volume["volume_type"] == "NOWHERE"
    time.sleep(0.3)  # no worker makes anything of it, later either
    assert files(backend_dir(two, "fast")) | files(backend_dir(two, "slow")) == before
    assert vadmin.get(f"/volumes/{vid}").json()["volume"]["status"] == "error"
    # The reason is the admin's (the database row, the log), as Cinder's scheduler records.
    log = two.log_path.read_text()
    assert f"volume {vid}: No valid backend was found" in log and "NO-SUCH-BACKEND" in log
    assert vadmin.delete(f"/volumes/{vid}").status_code == 202
    wait_gone(vadmin, f"/volumes/{vid}")


def test_volumes_of_both_backends_attach(two: StackvolProcess, vadmin: httpx.Client) -> None:
    with two.client("admin") as nova:
        server_id = new_server(nova, "cinder-vm")
        volumes = {name: create(vadmin, volume_type=name.upper()) for name in BACKENDS}
        for vid in volumes.values():
            wait_volume(vadmin, vid, "available")
            resp = nova.post(f"/servers/{server_id}/os-volume_attachments",
                             json={"volumeAttachment": {"volumeId": vid}})
            assert resp.status_code == 200, resp.text
            wait_volume(vadmin, vid, "in-use")
        state = json.loads((two.data_dir / "compute" / "simulated" /
                            f"{server_id}.json").read_text())
        for name, vid in volumes.items():
            data = state["volumes"][vid]["connection_info"]["data"]
            fmt = BACKENDS[name][1]
            assert data["device_path"] == str(backend_dir(two, name) / f"volume-{vid}.{fmt}")
            assert data["format"] == fmt
        assert nova.delete(f"/servers/{server_id}").status_code == 204
        for vid in volumes.values():
            wait_volume(vadmin, vid, "available")
            vadmin.delete(f"/volumes/{vid}")
            wait_gone(vadmin, f"/volumes/{vid}")


def test_services_and_pools_list_each_backend(vadmin: httpx.Client) -> None:
    found = vadmin.get("/os-services", params={"binary": "cinder-volume"}).json()["services"]
    assert sorted(s["host"].split("@")[1] for s in found) == ["fast", "slow"]
    assert all(s["state"] == "up" for s in found)
    pools = vadmin.get("/scheduler-stats/get_pools").json()["pools"]
    assert sorted(p["name"].split("@")[1] for p in pools) == ["fast#FAST", "slow#SLOW"]
    detailed = vadmin.get("/scheduler-stats/get_pools", params={"detail": "true"}).json()
    caps = {p["name"].split("@")[1]: p["capabilities"] for p in detailed["pools"]}
    assert caps["fast#FAST"]["volume_backend_name"] == "FAST"
    assert caps["slow#SLOW"]["storage_protocol"] == "file"
    assert caps["slow#SLOW"]["total_capacity_gb"] >= caps["slow#SLOW"]["free_capacity_gb"] > 0


def test_pools_are_for_admins(two: StackvolProcess) -> None:
    with cinder(two, "demo") as vdemo:
        assert vdemo.get("/scheduler-stats/get_pools").status_code == 403


# --- bad configurations stop the process at start, saying why -----------------------------------


@pytest.mark.parametrize(("extra", "table", "message"), [
    ({"default_backend": "medium"}, "", "default_backend 'medium' is not one of enabled_backends"),
    ({}, '[backends.slow]\ndriver = "lvm"\n', "unknown driver 'lvm'"),
    ({}, '[backends.fast]\ncolour = "red"\n', "unknown options colour"),
    ({"storage_backend": "medium"}, "", "'medium' is not one of enabled_backends"),
])
def test_bad_backend_settings_are_refused(tmp_path: Path, extra: dict[str, str], table: str,
                                          message: str) -> None:
    lines = ['enabled_backends = ["fast", "slow"]']
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    config = tmp_path / "bad.toml"
    config.write_text("\n".join(lines) + "\n" + table)
    done = subprocess.run([sys.executable, "-m", "stackvol", "serve", "--config", str(config),
                           "--data-dir", str(tmp_path / "data"), "--port", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr


# --- an API process and one volume worker per backend -------------------------------------------


def shared_database(root: Path) -> str:
    if postgres.wanted():
        return postgres.shared_cluster().database(f"backends_{uuid.uuid4().hex[:12]}")
    return f"sqlite:///{root / 'shared.sqlite'}"


def created_by(proc: StackvolProcess) -> set[str]:
    return set(re.findall(r"volume (\S+) available", proc.log_path.read_text()))


def test_each_volume_worker_serves_only_its_backend(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    common = {"config": config, "database_url": shared_database(tmp_path),
              "task_poll_seconds": 0.1, "heartbeat_seconds": 0.5}
    api = StackvolProcess(tmp_path / "api", role="api", **common)
    workers = {name: StackvolProcess(tmp_path / f"worker-{name}", role="volume",
                                     storage_backend=name, worker_name=f"volume-{name}",
                                     **common) for name in BACKENDS}
    try:
        api.start()
        for worker in workers.values():
            worker.start()
        with cinder(api, "admin") as vadmin:
            for name, (backend_name, _) in BACKENDS.items():
                make_type(vadmin, name.upper(), backend_name)
            _serve_by_backend(vadmin, api, workers)
    finally:
        for proc in (api, *workers.values()):
            proc.stop()


def _serve_by_backend(vadmin: httpx.Client, api: StackvolProcess,
                      workers: dict[str, StackvolProcess]) -> None:
    root = api.data_dir.parent
    made = {name: [create(vadmin, volume_type=name.upper()) for _ in range(3)]
            for name in BACKENDS}
    for vid in (v for ids in made.values() for v in ids):
        wait_volume(vadmin, vid, "available")
    for name, (_, fmt) in BACKENDS.items():
        assert files(root / name) == {f"volume-{v}.{fmt}" for v in made[name]}
        assert created_by(workers[name]) == set(made[name])
    # The API process made no directory of a backend: it only chooses where volumes go.
    assert not (api.data_dir / "backends").exists()

    # Without the slow worker, fast volumes are still made; slow ones wait in creating.
    workers["slow"].kill()
    later = {name: [create(vadmin, volume_type=name.upper()) for _ in range(2)]
             for name in BACKENDS}
    for vid in later["fast"]:
        wait_volume(vadmin, vid, "available")
    time.sleep(1.0)
    assert {vadmin.get(f"/volumes/{v}").json()["volume"]["status"]
            for v in later["slow"]} == {"creating"}
    workers["slow"].start()
    for vid in later["slow"]:
        wait_volume(vadmin, vid, "available")
    for name, (_, fmt) in BACKENDS.items():
        mine = set(made[name] + later[name])
        assert files(root / name) == {f"volume-{v}.{fmt}" for v in mine}
        assert created_by(workers[name]) == mine  # each worker only ever made its own
