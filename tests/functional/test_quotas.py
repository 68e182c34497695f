"""Quotas on both faces: Nova's ``os-quota-sets`` (views per microversion, detail, update,
reset), server creates held to instances/cores/ram, python-openstackclient's ``quota set`` and
``quota show``, concurrent creates that never exceed a quota, and counting that stays bounded.

Every test works in a project of its own, so the shared server's other tests are unaffected.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from stackvol.db.engine import create_engine
from stackvol.db.migrate import upgrade
from stackvol.db.schema import volumes
from stackvol.services.quotas import api as quotas
from tests.support.clients import account_cinder, cinder
from tests.support.identity_helpers import Account, make_account, osc
from tests.support.quotas import put_quota
from tests.support.server import StackvolProcess, query, wait_for
from tests.support.servers import IMAGE, wait_status

MAX = "2.101"
NOVA_2_57 = {"id", "instances", "cores", "ram", "metadata_items", "key_pairs", "server_groups",
             "server_group_members"}
INJECTED = {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
NETWORK = {"fixed_ips", "floating_ips", "security_groups", "security_group_rules"}


@pytest.fixture
def member(server: StackvolProcess, keystone: httpx.Client) -> Account:
    """A member of a brand-new project."""
    return make_account(server, keystone, "member")


def nova(server: StackvolProcess, microversion: str = "2.1") -> httpx.Client:
    return server.client("admin", microversion=microversion)


def boot(client: httpx.Client, **fields: Any) -> httpx.Response:
    body = {"name": "q", "imageRef": IMAGE, "flavorRef": "1", **fields}
    return client.post("/servers", json={"server": body})


# --- Nova's os-quota-sets -----------------------------------------------------------------

def test_views_follow_the_microversion(server: StackvolProcess, member: Account) -> None:
    project = member.project_id
    with nova(server) as v21, nova(server, "2.36") as v236, nova(server, MAX) as newest:
        shown = v21.get(f"/os-quota-sets/{project}").json()["quota_set"]
        assert set(shown) == NOVA_2_57 | INJECTED | NETWORK
        assert shown["id"] == project
        # Nova's defaults for what stackvol does not count; instances/cores/ram as configured.
        assert (shown["metadata_items"], shown["key_pairs"], shown["injected_files"],
                shown["fixed_ips"]) == (128, 100, 5, -1)
        assert (shown["instances"], shown["cores"], shown["ram"]) == (-1, -1, -1)
        assert set(v236.get(f"/os-quota-sets/{project}").json()["quota_set"]) == \
            NOVA_2_57 | INJECTED
        assert set(newest.get(f"/os-quota-sets/{project}").json()["quota_set"]) == NOVA_2_57
        defaults = newest.get(f"/os-quota-sets/{project}/defaults").json()["quota_set"]
        assert set(defaults) == NOVA_2_57 and defaults["server_groups"] == 10
        detail = newest.get(f"/os-quota-sets/{project}/detail").json()["quota_set"]
        assert detail["instances"] == {"limit": -1, "in_use": 0, "reserved": 0}
        assert detail["id"] == project and set(detail) == NOVA_2_57
        # Volume quotas are Cinder's business: never on Nova's face.
        assert "volumes" not in shown and "gigabytes" not in detail


def test_update_validates_like_nova(server: StackvolProcess, member: Account) -> None:
    project = member.project_id
    with nova(server, MAX) as newest, nova(server) as v21:
        resp = put_quota(newest, project, instances=4, cores="8")
        assert resp.status_code == 200, resp.text
        body = resp.json()["quota_set"]
        assert "id" not in body and set(body) == NOVA_2_57 - {"id"}
        assert (body["instances"], body["cores"], body["key_pairs"]) == (4, 8, 100)
        # 2.57 refuses what it no longer shows; 2.1 takes it.
        refused = put_quota(newest, project, injected_files=3)
        assert refused.status_code == 400
        assert "Additional properties are not allowed ('injected_files' was unexpected)" in \
            refused.json()["badRequest"]["message"]
        assert put_quota(v21, project, injected_files=3).json()["quota_set"][
            "injected_files"] == 3
        assert put_quota(newest, project, volumes=3).status_code == 400  # Cinder's resource
        assert put_quota(newest, project, ram=-2).status_code == 400
        assert put_quota(v21, project, networks=1).json() == {"badRequest": {
            "code": 400, "message": "The networks quota is disabled"}}
        unknown = put_quota(newest, "no-such-project", instances=1)
        assert unknown.json()["badRequest"]["message"] == \
            "Project ID no-such-project is not a valid project."
        # Only admins set quotas; a member reads its own.
        with member.compute(MAX) as own:
            assert own.get(f"/os-quota-sets/{project}").json()["quota_set"]["instances"] == 4
            assert put_quota(own, project, instances=40).status_code == 403
        # DELETE puts the defaults back (202, no body), and only Nova's: Cinder's stay.
        with cinder(server, version=None) as volume_admin:
            assert put_quota(volume_admin, project, volumes=7).status_code == 200
            reset = newest.delete(f"/os-quota-sets/{project}")
            assert (reset.status_code, reset.content) == (202, b"")
            after = v21.get(f"/os-quota-sets/{project}").json()["quota_set"]
            assert (after["instances"], after["cores"], after["injected_files"]) == (-1, -1, 5)
            assert volume_admin.get(f"/os-quota-sets/{project}").json()["quota_set"][
                "volumes"] == 7


def test_server_creates_are_held_to_the_quota(server: StackvolProcess,
                                              member: Account) -> None:
    project = member.project_id
    with nova(server, MAX) as admin, member.compute() as own:
        assert put_quota(admin, project, instances=3).status_code == 200
        # max_count is cut down to what fits, as Nova does: 2 of 5 with room for 3 - 1.
        first = boot(own)
        assert first.status_code == 202, first.text
        many = boot(own, min_count=1, max_count=5)
        assert many.status_code == 202, many.text
        assert len(own.get("/servers").json()["servers"]) == 3
        over = boot(own)
        assert over.status_code == 403
        assert over.json() == {"forbidden": {"code": 403, "message":
                               "Quota exceeded for instances: Requested 1, but already used "
                               "3 of 3 instances"}}
        # cores and ram count the flavors (m1.tiny: 1 vCPU, 512 MiB; m1.medium: 2, 4096).
        assert put_quota(admin, project, instances=-1, cores=4, ram=2048).status_code == 200
        too_big = boot(own, flavorRef="3", min_count=1)
        assert too_big.json()["forbidden"]["message"] == (
            "Quota exceeded for cores, ram: Requested 2, 4096, but already used 3, 1536 of "
            "4, 2048 cores, ram")
        detail = admin.get(f"/os-quota-sets/{project}/detail").json()["quota_set"]
        assert detail["instances"]["in_use"] == 3
        assert (detail["cores"]["in_use"], detail["ram"]["in_use"]) == (3, 1536)
        # A limit under what is used is refused unless forced.
        low = put_quota(admin, project, instances=2)
        assert low.json()["badRequest"]["message"] == (
            "Quota limit 2 for instances must be greater than or equal to already used and "
            "reserved 3.")
        assert put_quota(admin, project, instances=2, force=True).status_code == 200
        # Deleting a server gives its share back.
        server_id = first.json()["server"]["id"]
        wait_status(own, server_id, "ACTIVE")
        assert put_quota(admin, project, instances=3, cores=-1, ram=-1).status_code == 200
        assert own.delete(f"/servers/{server_id}").status_code == 204
        again = wait_for(lambda: boot(own), lambda r: r.status_code == 202)
        assert again.status_code == 202, again.text


# --- python-openstackclient ---------------------------------------------------------------

def _osc_json(server: StackvolProcess, *args: str) -> Any:
    done = osc(server, *args, "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_openstackclient_quota_set_and_show(server: StackvolProcess, member: Account) -> None:
    project = member.project_id
    done = osc(server, "quota", "set", "--volumes", "2", "--gigabytes", "5", project)
    assert done.returncode == 0, done.stderr
    done = osc(server, "quota", "set", "--instances", "7", "--cores", "9", project)
    assert done.returncode == 0, done.stderr
    shown = {row["Resource"]: row["Limit"] for row in
             _osc_json(server, "quota", "show", project)}
    assert (shown["volumes"], shown["gigabytes"]) == (2, 5)
    assert (shown["instances"], shown["cores"], shown["key-pairs"]) == (7, 9, 100)
    with account_cinder(member) as volumes_api, member.compute() as own:
        assert volumes_api.post("/volumes", json={"volume": {"size": 3}}).status_code == 202
        too_big = volumes_api.post("/volumes", json={"volume": {"size": 3}})
        assert too_big.status_code == 413
        assert too_big.json() == {"overLimit": {
            "code": 413, "retryAfter": "0",
            "message": "Requested volume or snapshot exceeds allowed gigabytes quota. "
                       "Requested 3G, quota is 5G and 3G has been consumed."}}
        assert own.post("/os-volumes", json={"volume": {"size": 1}}).status_code == 200
        too_many = own.post("/os-volumes", json={"volume": {"size": 1}})
        assert too_many.status_code == 403
        assert too_many.json() == {"forbidden": {"code": 403, "message":
                                   "Maximum number of volumes allowed (2) exceeded for quota "
                                   "'volumes'."}}
        too_many = volumes_api.post("/volumes", json={"volume": {"size": 1}})
        assert too_many.json()["overLimit"]["message"] == (
            "Maximum number of volumes allowed (2) exceeded for quota 'volumes'.")
    usage = {row["Resource"]: row for row in
             _osc_json(server, "quota", "show", "--usage", project)}
    assert (usage["volumes"]["In Use"], usage["gigabytes"]["In Use"]) == (2, 4)
    assert usage["instances"]["In Use"] == 0


# --- concurrency --------------------------------------------------------------------------

def _race(post: Callable[[], int]) -> list[int]:
    with ThreadPoolExecutor(max_workers=20) as pool:
        return sorted(pool.map(lambda _: post(), range(20)))


@pytest.mark.parametrize("face", ["cinder", "nova"])
def test_twenty_concurrent_creates_against_five(server: StackvolProcess, member: Account,
                                                face: str) -> None:
    """20 creates at once with room for 5, ten times: exactly 5 succeed each time. Odd runs
    are limited by ``volumes``, even ones by ``gigabytes`` (1 GiB each)."""
    project = member.project_id
    if face == "cinder":
        client, ok, over, path = account_cinder(member), 202, 413, "/volumes"
    else:
        client, ok, over, path = member.compute(), 200, 403, "/os-volumes"
    with cinder(server, version=None) as admin, client:
        for run in range(10):
            room = 5 * (run + 1)
            limits = {"volumes": room, "gigabytes": -1} if run % 2 == 0 else \
                {"volumes": -1, "gigabytes": room}
            assert put_quota(admin, project, **limits).status_code == 200
            codes = _race(lambda: client.post(
                path, json={"volume": {"size": 1}}).status_code)
            assert codes == [ok] * 5 + [over] * 15, f"run {run}: {codes}"
        (count,) = query(server.data_dir, "SELECT count(*) FROM volumes WHERE project_id = ?",
                         project)[0]
        assert count == 50


# --- counting cost ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """A migrated SQLite database holding 3,000 volumes of one project (2 GiB each)."""
    path = Path(tmp_path_factory.mktemp("quota-db")) / "q.sqlite"
    eng = create_engine(f"sqlite:///{path}")
    upgrade(eng)
    rows = [{"id": f"00000000-0000-0000-0000-{i:012d}", "project_id": "p", "user_id": "u",
             "status": "available", "size": 2, "availability_zone": "nova",
             "volume_type": "__DEFAULT__" if i % 3 else "gold", "metadata": {},
             "backend": "file", "created_at": dt.datetime(2024, 1, 1)} for i in range(3000)]
    with eng.begin() as conn:
        conn.execute(volumes.insert(), rows)
    yield eng
    eng.dispose()


def _statements(engine: sa.Engine, work: Callable[[sa.Connection], Any]) -> list[str]:
    """The SQL SQLite itself ran for ``work`` (also the prepared statements, which skip
    SQLAlchemy's execution events)."""
    seen: list[str] = []
    with engine.begin() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.set_trace_callback(seen.append)
        try:
            work(conn)
        finally:
            driver.set_trace_callback(None)
    return seen


def test_unlimited_resources_are_not_counted(engine: sa.Engine) -> None:
    seen = _statements(engine, lambda conn: quotas.enforce(
        conn, {**quotas.DEFAULTS, "volumes": -1, "gigabytes": -1}, "p", "__DEFAULT__",
        volumes=1, gigabytes=1, volume_size=1))
    assert seen and not [s for s in seen if "FROM volumes" in s], seen


def test_finite_limits_read_a_bounded_number_of_rows(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        # Exact under the bound, over it whenever the truth is (3,000 volumes, 6,000 GiB).
        assert quotas.used(conn, "p", "volumes", bound=10) == 11
        assert quotas.used(conn, "p", "volumes") == 3000
        assert quotas.used(conn, "p", "gigabytes", bound=10) == 22
        assert quotas.used(conn, "p", "gigabytes") == 6000
        assert quotas.used(conn, "p", "volumes", "gold", bound=5000) == 1000
        assert quotas.used(conn, "p", "gigabytes", "gold", bound=10) > 10
        assert quotas.used(conn, "other", "gigabytes", bound=10) == 0

    def over(conn: sa.Connection) -> None:
        with pytest.raises(quotas.OverQuota, match="6000G has been consumed"):
            quotas.enforce(conn, {**quotas.DEFAULTS, "gigabytes": 100}, "p", None,
                           gigabytes=1)

    seen = _statements(engine, over)
    reads = [s for s in seen if "FROM volumes" in s and "sum" in s]
    assert reads and "LIMIT" in reads[0]
    with engine.connect() as conn:
        # The volume sum is read from the covering index alone (no table lookups).
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT sum(size) FROM volumes WHERE project_id = 'p'").all()
        assert "COVERING INDEX ix_volumes_project_id_volume_type_size" in str(plan), plan
