"""``kill -9`` while work is in flight, then restart: nothing is left in a transitional status."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx

from tests.support.server import running, wait_for

SETTLED = {"available", "error"}


def _statuses(client: httpx.Client) -> dict[str, str]:
    return {v["id"]: v["status"] for v in client.get("/os-volumes/detail").json()["volumes"]}


def test_kill_while_creating_then_restart_settles_every_volume(tmp_path: Path) -> None:
    with running(tmp_path / "data", pause_at="volume.create") as server:
        with server.client("admin") as client:
            ids = [client.post("/os-volumes", json={"volume": {"size": 2}}).json()["volume"]["id"]
                   for _ in range(10)]
            assert set(_statuses(client).values()) == {"creating"}
        server.kill()
        server.start()  # no pause this time
        with server.client("admin") as client:
            final = wait_for(lambda: _statuses(client),
                             lambda s: set(s.values()) <= SETTLED)
        assert set(final) == set(ids)
        assert set(final.values()) == {"available"}
        for volume_id in ids:
            path = server.data_dir / "volumes" / f"volume-{volume_id}.raw"
            assert path.stat().st_size == 2 * 1024**3


def test_kill_during_a_burst_of_creates(tmp_path: Path) -> None:
    with running(tmp_path / "data") as server:
        with server.client("admin") as client:
            def post(_: int) -> int:
                try:
                    return client.post("/os-volumes", json={"volume": {"size": 1}}).status_code
                except httpx.TransportError:
                    return 0

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                futures = [pool.submit(post, i) for i in range(200)]
                wait_for(lambda: sum(f.done() for f in futures), lambda n: n >= 60,
                         timeout=30, interval=0.005)
                server.kill()
                codes = [f.result() for f in futures]
        accepted = codes.count(200)
        assert accepted >= 60
        server.start()
        with server.client("admin") as client:
            final = wait_for(lambda: _statuses(client), lambda s: set(s.values()) <= SETTLED)
        # Every volume the API acknowledged exists, and none is stuck.
        assert len(final) >= accepted
        assert set(final.values()) <= SETTLED
        files = {p.name for p in (server.data_dir / "volumes").iterdir()}
        for volume_id, status in final.items():
            if status == "available":
                assert f"volume-{volume_id}.raw" in files


def test_kill_while_deleting_then_restart_finishes_the_delete(tmp_path: Path) -> None:
    with running(tmp_path / "data", pause_at="volume.delete") as server:
        with server.client("admin") as client:
            volume_id = client.post("/os-volumes",
                                    json={"volume": {"size": 1}}).json()["volume"]["id"]
            wait_for(lambda: _statuses(client), lambda s: s.get(volume_id) == "available")
            assert client.delete(f"/os-volumes/{volume_id}").status_code == 202
            assert _statuses(client)[volume_id] == "deleting"
        server.kill()
        server.start()
        with server.client("admin") as client:
            gone = wait_for(lambda: client.get(f"/os-volumes/{volume_id}"),
                            lambda r: r.status_code == 404)
            assert gone.status_code == 404
        assert not (server.data_dir / "volumes" / f"volume-{volume_id}.raw").exists()
