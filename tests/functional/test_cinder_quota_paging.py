"""Quotas enforced by counting (413 on Cinder, 403 on Nova, never exceeded by concurrent creates)
and keyset pagination through ``volumes_links``, on a server of their own."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.clients import cinder, project_id
from tests.support.server import StackvolProcess, running
from tests.support.volumes import wait_volume


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackvolProcess]:
    with running(tmp_path_factory.mktemp("cinder-quota") / "data") as proc:
        yield proc


def _set_quota(admin: httpx.Client, project: str, **limits: int) -> None:
    resp = admin.put(f"/os-quota-sets/{project}", json={"quota_set": limits})
    assert resp.status_code == 200, resp.text


def test_over_quota_is_413_with_cinders_body(own_server: StackvolProcess) -> None:
    with cinder(own_server, "admin") as admin, cinder(own_server, "demo") as demo, \
            own_server.client("demo") as nova:
        project = project_id(demo)
        _set_quota(admin, project, volumes=2, gigabytes=3)
        first = demo.post("/volumes", json={"volume": {"size": 2}})
        assert first.status_code == 202
        too_big = demo.post("/volumes", json={"volume": {"size": 2}})
        assert too_big.status_code == 413
        assert too_big.headers["retry-after"] == "0"
        assert too_big.json() == {"overLimit": {
            "code": 413, "retryAfter": "0",
            "message": "Requested volume or snapshot exceeds allowed gigabytes quota. "
                       "Requested 2G, quota is 3G and 2G has been consumed."}}
        second = demo.post("/volumes", json={"volume": {"size": 1}})
        assert second.status_code == 202
        too_many = demo.post("/volumes", json={"volume": {"size": 1}})
        assert too_many.status_code == 413
        assert too_many.json()["overLimit"]["message"] == (
            "Maximum number of volumes allowed (2) exceeded for quota 'volumes'.")
        # The same limits hold on Nova's os-volumes, where going over is a 403.
        nova_resp = nova.post("/os-volumes", json={"volume": {"size": 1}})
        assert nova_resp.status_code == 403
        assert "Maximum number of volumes" in nova_resp.json()["forbidden"]["message"]
        # Snapshots count against gigabytes too (as in Cinder).
        vol_id = first.json()["volume"]["id"]
        wait_volume(demo, vol_id, "available")
        _set_quota(admin, project, volumes=10, snapshots=1)
        snap = demo.post("/snapshots", json={"snapshot": {"volume_id": vol_id}})
        assert snap.status_code == 413 and "gigabytes quota" in snap.text
        _set_quota(admin, project, gigabytes=100)
        assert demo.post("/snapshots", json={"snapshot": {"volume_id": vol_id}}).status_code \
            == 202
        snap_over = demo.post("/snapshots", json={"snapshot": {"volume_id": vol_id}})
        assert snap_over.json()["overLimit"]["message"] == (
            "Maximum number of snapshots allowed (1) exceeded")
        # Growing counts too.
        _set_quota(admin, project, gigabytes=7)  # 2 + 1 volumes, 2 of snapshot: 5 used
        extend = demo.post(f"/volumes/{vol_id}/action", json={"os-extend": {"new_size": 5}})
        assert extend.status_code == 413
        per_type = admin.put(f"/os-quota-sets/{project}",
                             json={"quota_set": {"volumes___DEFAULT__": 2, "volumes": 10}})
        assert per_type.status_code == 200
        typed = demo.post("/volumes", json={"volume": {"size": 1}})
        assert typed.json()["overLimit"]["message"] == (
            "Maximum number of volumes allowed (2) exceeded for quota 'volumes___DEFAULT__'.")
        assert admin.delete(f"/os-quota-sets/{project}").status_code == 200


def test_concurrent_creates_never_exceed_quota(own_server: StackvolProcess) -> None:
    with cinder(own_server, "admin") as admin:
        project = project_id(admin)
        before = admin.get(f"/os-quota-sets/{project}", params={"usage": "true"}).json()
        used = before["quota_set"]["volumes"]["in_use"]
        _set_quota(admin, project, volumes=used + 5)

        def create(_: int) -> int:
            return admin.post("/volumes", json={"volume": {"size": 1}}).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(create, range(20)))
        assert sorted(codes) == [202] * 5 + [413] * 15
        after = admin.get(f"/os-quota-sets/{project}", params={"usage": "true"}).json()
        assert after["quota_set"]["volumes"]["in_use"] == used + 5
        assert admin.delete(f"/os-quota-sets/{project}").status_code == 200


def test_paging_2500_volumes_through_links(own_server: StackvolProcess) -> None:
    with cinder(own_server, "admin") as admin:
        project = project_id(admin)
        existing = {v["id"] for v in admin.get("/volumes").json()["volumes"]}

        def create(i: int) -> str:
            resp = admin.post("/volumes", json={"volume": {"size": 1, "name": f"p{i}"}})
            assert resp.status_code == 202, resp.text
            return resp.json()["volume"]["id"]

        with ThreadPoolExecutor(max_workers=8) as pool:
            made = set(pool.map(create, range(2500)))
        assert len(made) == 2500
        seen: list[str] = []
        url: str | None = f"{own_server.url}/volume/v3/{project}/volumes?limit=100"
        pages = 0
        while url:
            body = admin.get(url).json()
            assert len(body["volumes"]) <= 100
            seen += [v["id"] for v in body["volumes"]]
            links = body.get("volumes_links", [])
            assert all(link["rel"] == "next" for link in links)
            url = links[0]["href"] if links else None
            pages += 1
        assert len(seen) == len(set(seen))  # each exactly once
        assert set(seen) == made | existing
        assert pages == (len(seen) + 99) // 100 + (1 if len(seen) % 100 == 0 else 0)
        # The detail list pages the same way, sorted by name this time.
        detail = admin.get("/volumes/detail", params={"limit": 1000, "sort": "name:asc"})
        assert len(detail.json()["volumes"]) == 1000
        assert "/volumes/detail?" in detail.json()["volumes_links"][0]["href"]
        names = [v["name"] for v in detail.json()["volumes"]]
        assert names == sorted(names, key=lambda n: n or "")
        assert Path(own_server.data_dir / "volumes").exists()
