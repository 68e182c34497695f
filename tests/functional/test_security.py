"""Regression tests for the isolation and authentication holes found by probing (issue 12):
another project's volume put on your server through Cinder's attach paths, and passwords
longer than bcrypt's 72 bytes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.identity_helpers import Account, identity, make_account, password_token
from tests.support.server import StackvolProcess, running
from tests.support.servers import new_server
from tests.support.volumes import new_volume

CINDER_ATTACHMENTS = {"OpenStack-API-Version": "volume 3.54"}


@pytest.fixture(scope="module")
def intruder(server: StackvolProcess, keystone: httpx.Client) -> Account:
    """A member of a project of its own (project B)."""
    return make_account(server, keystone, "member")


def cinder(account: Account) -> httpx.Client:
    return httpx.Client(base_url=f"{account.server.url}/volume/v3/{account.project_id}",
                        headers={"X-Auth-Token": account.token()}, timeout=30)


def attachments_of(client: httpx.Client, server_id: str) -> list[dict[str, Any]]:
    resp = client.get(f"/servers/{server_id}/os-volume_attachments")
    assert resp.status_code == 200, resp.text
    return resp.json()["volumeAttachments"]


def test_another_project_cannot_put_its_volume_on_your_server(
        demo: httpx.Client, intruder: Account) -> None:
    victim = new_server(demo, "victim")
    with intruder.compute() as compute, cinder(intruder) as block:
        volume_id = new_volume(compute)
        # Cinder's attachments API (3.54) naming demo's server.
        resp = block.post("/attachments", headers=CINDER_ATTACHMENTS, json={"attachment": {
            "volume_uuid": volume_id, "instance_uuid": victim,
            "connector": {"host": "h", "initiator": "i"}}})
        assert resp.status_code == 404, resp.text
        assert resp.json()["itemNotFound"]["message"] == (
            f"Instance {victim} could not be found.")
        # The older os-attach action naming demo's server.
        resp = block.post(f"/volumes/{volume_id}/action", json={"os-attach": {
            "instance_uuid": victim, "mountpoint": "/dev/vdb"}})
        assert resp.status_code == 404, resp.text
        assert block.get(f"/volumes/{volume_id}").json()["volume"]["status"] == "available"
    assert attachments_of(demo, victim) == []
    server = demo.get(f"/servers/{victim}").json()["server"]
    assert server["os-extended-volumes:volumes_attached"] == []


def test_cinder_only_consumers_and_own_servers_still_attach(
        demo: httpx.Client, intruder: Account) -> None:
    with intruder.compute() as compute, cinder(intruder) as block:
        # A uuid that names no server of ours: a consumer that is not our compute service.
        foreign = str(uuid.uuid4())
        volume_id = new_volume(compute)
        resp = block.post("/attachments", headers=CINDER_ATTACHMENTS, json={"attachment": {
            "volume_uuid": volume_id, "instance_uuid": foreign}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["attachment"]["instance"] == foreign
        # The project's own server.
        own = new_server(compute, "own")
        second = new_volume(compute)
        resp = block.post(f"/volumes/{second}/action", json={"os-attach": {
            "instance_uuid": own, "mountpoint": "/dev/vdc"}})
        assert resp.status_code == 202, resp.text
        assert block.get(f"/volumes/{second}").json()["volume"]["status"] == "in-use"
        assert [a["volumeId"] for a in attachments_of(compute, own)] == [second]


def test_admin_may_attach_to_any_server(server: StackvolProcess, demo: httpx.Client,
                                        admin: httpx.Client) -> None:
    victim = new_server(demo, "admin-target")
    volume_id = new_volume(admin)
    token, body = server.token("admin")
    project = body["project"]["id"]
    with httpx.Client(base_url=f"{server.url}/volume/v3/{project}",
                      headers={"X-Auth-Token": token}, timeout=30) as block:
        resp = block.post(f"/volumes/{volume_id}/action", json={"os-attach": {
            "instance_uuid": victim, "mountpoint": "/dev/vdb"}})
        assert resp.status_code == 202, resp.text


@pytest.mark.parametrize("length", [73, 200, 4096])
def test_long_passwords_work_end_to_end(server: StackvolProcess, keystone: httpx.Client,
                                        length: int) -> None:
    account = make_account(server, keystone, "member")
    password = "p" * length
    resp = keystone.patch(f"/users/{account.user_id}", json={"user": {"password": password}})
    assert resp.status_code == 200, resp.text
    assert password_token(server, account.user, password, account.project).status_code == 201
    # Same 72-byte prefix, different tail: bcrypt alone would have let it in.
    wrong = password[:72] + "q" * (length - 72)
    assert password_token(server, account.user, wrong, account.project).status_code == 401
    # The user changes it again (the self-service call), to another long one.
    own_token = password_token(server, account.user, password, account.project)
    with identity(server, own_token.headers["X-Subject-Token"]) as own:
        resp = own.post(f"/users/{account.user_id}/password", json={"user": {
            "original_password": password, "password": "n" * length}})
        assert resp.status_code == 204, resp.text
    assert password_token(server, account.user, "n" * length).status_code == 201


def test_password_too_long_to_set_is_a_bad_request(keystone: httpx.Client) -> None:
    resp = keystone.post("/users", json={"user": {"name": f"long-{uuid.uuid4().hex[:6]}",
                                                  "password": "x" * 4097}})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == 400


def test_wrong_long_password_is_401_and_tells_nothing(server: StackvolProcess) -> None:
    """A real and an unknown user get the same 401 for any length, with no traceback."""
    logged = server.log_path.stat().st_size
    for user in ("demo", f"nobody-{uuid.uuid4().hex[:6]}"):
        for length in (10, 73, 5000):
            resp = password_token(server, user, "z" * length, "demo")
            assert resp.status_code == 401, (user, length, resp.text)
            assert resp.json()["error"]["code"] == 401
    with server.log_path.open("rb") as log:
        log.seek(logged)
        assert b"Traceback" not in log.read()


def test_unknown_user_costs_a_hash_check_too(tmp_path: Path) -> None:
    """No timing tell: an unknown user's login checks a stand-in hash like a real one (with
    production's 12 rounds, where a check takes far longer than the request around it)."""
    with running(tmp_path / "data", password_hash_rounds=12) as slow:
        def elapsed(user: str) -> float:
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                assert password_token(slow, user, "wrong", "demo").status_code == 401
                best = min(best, time.perf_counter() - start)
            return best

        known, unknown = elapsed("demo"), elapsed(f"nobody-{uuid.uuid4().hex[:6]}")
    assert unknown > known / 2, (known, unknown)
