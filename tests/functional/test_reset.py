"""``POST /admin/reset``: admins return the cloud to its bootstrap state (for tool developers);
everyone else gets a 403 and nothing changes."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from stackvol.services.images.api import BUILTIN_IMAGE_ID
from tests.support.identity_helpers import osc
from tests.support.server import StackvolProcess, query, wait_for
from tests.support.volumes import new_attached_pair, new_volume, volume_status


def test_reset_keeps_only_the_bootstrap_objects(tmp_path: Path) -> None:
    server = StackvolProcess(tmp_path / "data").start()
    data = server.data_dir
    try:
        with server.client("demo") as demo:
            server_id, volume_id = new_attached_pair(demo)
            snap = demo.post("/os-snapshots", json={"snapshot": {"volume_id": volume_id,
                                                                 "force": True}})
            assert snap.status_code == 200, snap.text
            image = httpx.post(server.url + "/image/v2/images", headers=demo.headers,
                               json={"name": "mine", "disk_format": "raw",
                                     "container_format": "bare"}).json()
            assert httpx.put(server.url + f"/image/v2/images/{image['id']}/file",
                             headers={**demo.headers, "Content-Type":
                                      "application/octet-stream"},
                             content=b"\0" * 1024).status_code == 204
        project = f"p-{uuid.uuid4().hex[:6]}"
        assert osc(server, "project", "create", project).returncode == 0
        assert osc(server, "user", "create", "--password", "pw", "--project", project,
                   f"u-{project}").returncode == 0
        assert osc(server, "role", "create", "tester").returncode == 0
        assert (data / "volumes" / f"volume-{volume_id}.raw").exists()

        with server.client("demo", prefix="") as demo:
            refused = demo.post("/admin/reset")
            assert refused.status_code == 403, refused.text
            assert "forbidden" in refused.json()
        assert query(data, "SELECT count(*) FROM volumes") == [(1,)]

        with server.client("admin", prefix="") as admin:
            resp = admin.post("/admin/reset")
            assert resp.status_code == 200, resp.text
            removed = resp.json()["reset"]["removed"]
            assert admin.get("/admin/reset").status_code in (404, 405)
        assert (removed["volumes"], removed["servers"], removed["snapshots"],
                removed["attachments"], removed["images"], removed["users"],
                removed["projects"], removed["roles"]) == (1, 1, 1, 1, 1, 1, 1, 1)

        # The bootstrap users' tokens still work; everything they made is gone.
        with server.client("demo") as demo:
            assert demo.get("/servers").json()["servers"] == []
            assert demo.get("/os-volumes").json()["volumes"] == []
            assert demo.get("/os-snapshots").json()["snapshots"] == []
            images = httpx.get(server.url + "/image/v2/images", headers=demo.headers).json()
            assert [i["id"] for i in images["images"]] == [BUILTIN_IMAGE_ID]
            # and it works as a fresh cloud: a new volume becomes available
            volume_status(demo, new_volume(demo), "available")
        assert sorted(r[0] for r in query(data, "SELECT name FROM users")) == ["admin", "demo"]
        assert sorted(r[0] for r in query(data, "SELECT name FROM projects")) == \
            ["admin", "demo"]
        assert sorted(r[0] for r in query(data, "SELECT name FROM roles")) == \
            ["admin", "member", "reader"]
        assert not (data / "volumes" / f"volume-{volume_id}.raw").exists()
        assert not (data / "images" / image["id"]).exists()
        assert not (data / "compute" / "simulated" / f"{server_id}.json").exists()
        assert wait_for(lambda: query(data, "SELECT count(*) FROM tasks"),
                        lambda n: n == [(0,)]) == [(0,)]
    finally:
        server.stop()
