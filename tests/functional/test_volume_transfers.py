"""Volume transfers between two projects on the real server: the legacy ``os-volume-transfer``
and the 3.55+ ``volume-transfers`` paths, shapes by microversion, the volume and its snapshots
changing project, quotas moving with them (or nothing moving when the receiver is over quota),
and python-openstackclient's ``volume transfer request`` commands.

Each test works in projects of its own, made through Keystone as the admin.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support import clients
from tests.support.clients import account_cinder
from tests.support.identity_helpers import OPENSTACK, Account, make_account
from tests.support.quotas import put_quota
from tests.support.server import StackvolProcess, query
from tests.support.volumes import make_snapshot, make_volume

TRANSFER_KEYS = {"id", "volume_id", "name", "links"}
DETAIL_KEYS = TRANSFER_KEYS | {"created_at"}


@pytest.fixture
def giver(server: StackvolProcess, keystone: httpx.Client) -> Account:
    return make_account(server, keystone, "member")


@pytest.fixture
def receiver(server: StackvolProcess, keystone: httpx.Client) -> Account:
    return make_account(server, keystone, "member")


def cinder(account: Account, version: str = "3.57") -> httpx.Client:
    """The account's Block Storage client, by default at a microversion with the 3.55+ path."""
    return account_cinder(account, version)


def offer(client: httpx.Client, volume_id: str, path: str = "/volume-transfers",
          **fields: Any) -> dict[str, Any]:
    resp = client.post(path, json={"transfer": {"volume_id": volume_id, **fields}})
    assert resp.status_code == 202, resp.text
    return resp.json()["transfer"]


def usage(server: StackvolProcess, project_id: str) -> dict[str, int]:
    with clients.cinder(server, version=None) as admin:
        shown = admin.get(f"/os-quota-sets/{project_id}", params={"usage": "true"})
        assert shown.status_code == 200, shown.text
        return {name: value["in_use"] for name, value in shown.json()["quota_set"].items()
                if isinstance(value, dict)}


def test_accept_moves_the_volume_its_snapshots_and_quota(
        server: StackvolProcess, giver: Account, receiver: Account) -> None:
    with cinder(giver) as mine, cinder(receiver) as theirs:
        vol = make_volume(mine, size=2)
        snap = make_snapshot(mine, vol["id"])
        created = offer(mine, vol["id"], name="  for you  ")
        assert set(created) == DETAIL_KEYS | {"auth_key", "no_snapshots", "source_project_id",
                                              "destination_project_id", "accepted"}
        assert created["name"] == "for you" and created["volume_id"] == vol["id"]
        assert len(created["auth_key"]) == 16
        assert (created["source_project_id"], created["destination_project_id"],
                created["accepted"], created["no_snapshots"]) == (
            giver.project_id, None, False, False)
        assert created["links"][0]["href"].endswith(f"/volume-transfers/{created['id']}")
        assert mine.get(f"/volumes/{vol['id']}").json()["volume"]["status"] == \
            "awaiting-transfer"

        shown = mine.get(f"/volume-transfers/{created['id']}")
        assert shown.status_code == 200 and "auth_key" not in shown.json()["transfer"]
        listed = mine.get("/volume-transfers").json()["transfers"]
        assert [(t["id"], set(t)) for t in listed] == [(created["id"], TRANSFER_KEYS)]
        detailed = mine.get("/volume-transfers/detail").json()["transfers"]
        assert detailed[0]["source_project_id"] == giver.project_id
        # Only the owner sees its transfers.
        assert theirs.get("/volume-transfers").json()["transfers"] == []
        assert theirs.get(f"/volume-transfers/{created['id']}").status_code == 404

        wrong = theirs.post(f"/volume-transfers/{created['id']}/accept",
                            json={"accept": {"auth_key": "0" * 16}})
        assert wrong.status_code == 400 and "invalid auth key" in \
            wrong.json()["badRequest"]["message"]
        before = usage(server, giver.project_id)
        assert (before["volumes"], before["snapshots"], before["gigabytes"]) == (1, 1, 4)

        accepted = theirs.post(f"/volume-transfers/{created['id']}/accept",
                               json={"accept": {"auth_key": created["auth_key"]}})
        assert accepted.status_code == 202, accepted.text
        assert set(accepted.json()["transfer"]) == TRANSFER_KEYS
        assert accepted.json()["transfer"]["volume_id"] == vol["id"]

        moved = theirs.get(f"/volumes/{vol['id']}").json()["volume"]
        assert moved["status"] == "available"
        assert moved["os-vol-tenant-attr:tenant_id"] == receiver.project_id
        assert moved["user_id"] == receiver.user_id
        assert mine.get(f"/volumes/{vol['id']}").status_code == 404
        assert theirs.get(f"/snapshots/{snap['id']}").json()["snapshot"]["volume_id"] == \
            vol["id"]
        assert mine.get(f"/snapshots/{snap['id']}").status_code == 404
        assert mine.get(f"/volume-transfers/{created['id']}").status_code == 404
        assert usage(server, giver.project_id)["gigabytes"] == 0
        after = usage(server, receiver.project_id)
        assert (after["volumes"], after["snapshots"], after["gigabytes"]) == (1, 1, 4)
        # The receiver owns it now: it can offer it on, or delete it.
        assert theirs.delete(f"/snapshots/{snap['id']}").status_code == 202


def test_over_quota_moves_nothing(server: StackvolProcess, giver: Account,
                                  receiver: Account) -> None:
    with (cinder(giver) as mine, cinder(receiver) as theirs,
          clients.cinder(server, version=None) as admin):
        vol = make_volume(mine, size=3)
        created = offer(mine, vol["id"])
        assert put_quota(admin, receiver.project_id, gigabytes=2).status_code == 200
        refused = theirs.post(f"/volume-transfers/{created['id']}/accept",
                              json={"accept": {"auth_key": created["auth_key"]}})
        assert refused.status_code == 413, refused.text
        assert "gigabytes" in refused.json()["overLimit"]["message"]
        still = mine.get(f"/volumes/{vol['id']}").json()["volume"]
        assert (still["status"], still["os-vol-tenant-attr:tenant_id"]) == (
            "awaiting-transfer", giver.project_id)
        assert mine.get(f"/volume-transfers/{created['id']}").status_code == 200
        assert usage(server, receiver.project_id)["volumes"] == 0

        assert put_quota(admin, receiver.project_id, gigabytes=3).status_code == 200
        accepted = theirs.post(f"/volume-transfers/{created['id']}/accept",
                               json={"accept": {"auth_key": created["auth_key"]}})
        assert accepted.status_code == 202, accepted.text


def test_cancel_and_refusals_on_the_legacy_path(server: StackvolProcess, giver: Account,
                                                receiver: Account) -> None:
    with cinder(giver, "3.0") as mine, cinder(receiver, "3.0") as theirs:
        vol = make_volume(mine)
        created = offer(mine, vol["id"], path="/os-volume-transfer")
        # Before 3.55 the shapes are Cinder's first ones (Tempest's base schema).
        assert set(created) == DETAIL_KEYS | {"auth_key"} and created["name"] is None
        assert created["links"][0]["href"].endswith(f"/os-volume-transfer/{created['id']}")
        assert set(mine.get(f"/os-volume-transfer/{created['id']}").json()["transfer"]) == \
            DETAIL_KEYS
        assert mine.get("/volume-transfers").status_code == 404  # 3.55+
        # Offered: nothing else starts on it, and it cannot be offered twice.
        again = mine.post("/os-volume-transfer", json={"transfer": {"volume_id": vol["id"]}})
        assert again.status_code == 400 and "available" in again.json()["badRequest"]["message"]
        assert mine.delete(f"/volumes/{vol['id']}").status_code == 400
        no_snaps = mine.post("/os-volume-transfer", json={"transfer": {
            "volume_id": vol["id"], "no_snapshots": True}})
        assert no_snaps.status_code == 400  # no_snapshots only on volume-transfers (3.55)
        assert theirs.delete(f"/os-volume-transfer/{created['id']}").status_code == 404

        assert mine.delete(f"/os-volume-transfer/{created['id']}").status_code == 202
        assert mine.get(f"/volumes/{vol['id']}").json()["volume"]["status"] == "available"
        assert mine.get(f"/os-volume-transfer/{created['id']}").status_code == 404
        gone = theirs.post(f"/os-volume-transfer/{created['id']}/accept",
                           json={"accept": {"auth_key": created["auth_key"]}})
        assert gone.status_code == 404
        missing = mine.post("/os-volume-transfer", json={"transfer": {}})
        assert missing.status_code == 400
        unknown = mine.post("/os-volume-transfer", json={"transfer": {
            "volume_id": "0c9e4f0a-6a4e-4b8e-9a0e-3a1c1c1c1c1c"}})
        assert unknown.status_code == 404


def test_no_snapshots_leaves_them_with_the_giver(giver: Account, receiver: Account) -> None:
    with cinder(giver, "3.55") as mine, cinder(receiver, "3.55") as theirs:
        vol = make_volume(mine)
        snap = make_snapshot(mine, vol["id"])
        created = offer(mine, vol["id"], no_snapshots=True)
        assert created["no_snapshots"] is True and "source_project_id" not in created
        accepted = theirs.post(f"/volume-transfers/{created['id']}/accept",
                               json={"accept": {"auth_key": created["auth_key"]}})
        assert accepted.status_code == 202, accepted.text
        assert theirs.get(f"/volumes/{vol['id']}").status_code == 200
        assert mine.get(f"/snapshots/{snap['id']}").status_code == 200
        assert theirs.get(f"/snapshots/{snap['id']}").status_code == 404


def test_one_of_two_concurrent_accepts_wins(server: StackvolProcess, giver: Account,
                                            receiver: Account, keystone: httpx.Client) -> None:
    third = make_account(server, keystone, "member")
    with cinder(giver) as mine:
        vol = make_volume(mine)
        created = offer(mine, vol["id"])

    def accept(account: Account) -> int:
        with cinder(account) as client:
            return client.post(f"/volume-transfers/{created['id']}/accept",
                               json={"accept": {"auth_key": created["auth_key"]}}).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(accept, [receiver, third]))
    assert codes[0] == 202 and codes[1] in (400, 404), codes
    owners = query(server.data_dir, "SELECT project_id FROM volumes WHERE id = ?", vol["id"])
    assert owners[0][0] in (receiver.project_id, third.project_id)


def test_auth_key_is_kept_only_as_a_salted_hash(server: StackvolProcess,
                                                giver: Account) -> None:
    with cinder(giver) as mine:
        vol = make_volume(mine)
        created = offer(mine, vol["id"])
    (row,) = query(server.data_dir, "SELECT salt, crypt_hash FROM transfers WHERE id = ?",
                   created["id"])
    salt, crypt_hash = row
    assert salt and crypt_hash and created["auth_key"] not in (salt, crypt_hash)
    other = offer(cinder(giver), make_volume(cinder(giver))["id"])
    (row2,) = query(server.data_dir, "SELECT salt FROM transfers WHERE id = ?", other["id"])
    assert row2[0] != salt


# --- python-openstackclient -------------------------------------------------------------------


def osc_as(account: Account, *args: str, version: str | None = None) -> Any:
    """``openstack ARGS`` as ``account`` (credentials in the environment, no clouds.yaml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_URL=f"{account.server.url}/identity", OS_USERNAME=account.user,
               OS_PASSWORD=account.password, OS_PROJECT_NAME=account.project,
               OS_USER_DOMAIN_ID="default", OS_PROJECT_DOMAIN_ID="default",
               OS_IDENTITY_API_VERSION="3", OS_REGION_NAME="RegionOne")
    if version:
        env["OS_VOLUME_API_VERSION"] = version
    done = subprocess.run([OPENSTACK, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"openstack {' '.join(args)} failed:\n{done.stderr}"
    out = done.stdout.strip()
    return json.loads(out) if out[:1] in ("{", "[") else out


@pytest.mark.parametrize("version", [None, "3.0"])
def test_openstackclient_transfer_requests(giver: Account, receiver: Account,
                                           version: str | None) -> None:
    with cinder(giver) as mine:
        vol = make_volume(mine)
        spare = make_volume(mine)
    created = osc_as(giver, "volume", "transfer", "request", "create", "--name", "osc-gift",
                     vol["id"], "-f", "json", version=version)
    assert created["volume_id"] == vol["id"] and created["name"] == "osc-gift"
    listed = osc_as(giver, "volume", "transfer", "request", "list", "-f", "json",
                    version=version)
    assert [t["ID"] for t in listed] == [created["id"]]
    # By name, the SDK lists /volume-transfers, which Cinder too serves only from 3.55.
    shown = osc_as(giver, "volume", "transfer", "request", "show",
                   created["id"] if version == "3.0" else "osc-gift", "-f", "json",
                   version=version)
    assert shown["id"] == created["id"] and "auth_key" not in shown
    accepted = osc_as(receiver, "volume", "transfer", "request", "accept", "--auth-key",
                      created["auth_key"], created["id"], "-f", "json", version=version)
    assert accepted["volume_id"] == vol["id"]
    moved = osc_as(receiver, "volume", "show", vol["id"], "-f", "json", version=version)
    assert moved["status"] == "available"

    cancelled = osc_as(giver, "volume", "transfer", "request", "create", spare["id"],
                       "-f", "json", version=version)
    osc_as(giver, "volume", "transfer", "request", "delete", cancelled["id"], version=version)
    assert osc_as(giver, "volume", "transfer", "request", "list", "-f", "json",
                  version=version) == []
    with cinder(giver) as mine:
        assert mine.get(f"/volumes/{spare['id']}").json()["volume"]["status"] == "available"
