"""Cinder's volume type access on the real server: a private type exists only for admins and
the projects given access (list, show, volume create), the access list and its refusals, and
openstackclient's ``volume type set/unset --project``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.clients import CINDER_MAX, account_cinder, project_id
from tests.support.identity_helpers import make_account
from tests.support.openstack_clients import osc
from tests.support.server import StackvolProcess, query
from tests.support.volumes import wait_gone


@pytest.fixture(scope="module")
def vother(server: StackvolProcess, keystone: httpx.Client) -> Iterator[httpx.Client]:
    """A member of a third project."""
    account = make_account(server, keystone, "member")
    with account_cinder(account, CINDER_MAX) as client:
        yield client


def private_type(client: httpx.Client) -> dict[str, Any]:
    resp = client.post("/types", json={"volume_type": {
        "name": f"private-{uuid.uuid4().hex[:8]}", "os-volume-type-access:is_public": False}})
    assert resp.status_code == 200, resp.text
    return resp.json()["volume_type"]


def access(client: httpx.Client, type_id: str, action: str, project: str) -> httpx.Response:
    return client.post(f"/types/{type_id}/action", json={action: {"project": project}})


def listed(client: httpx.Client, **params: str) -> set[str]:
    resp = client.get("/types", params=params)
    assert resp.status_code == 200, resp.text
    return {t["id"] for t in resp.json()["volume_types"]}


def create_volume(client: httpx.Client, volume_type: str) -> httpx.Response:
    return client.post("/volumes", json={"volume": {"size": 1, "volume_type": volume_type}})


def test_private_type_is_for_projects_given_access(vadmin: httpx.Client, vdemo: httpx.Client,
                                                   vother: httpx.Client) -> None:
    vtype = private_type(vadmin)
    tid, name = vtype["id"], vtype["name"]
    demo, other = project_id(vdemo), project_id(vother)
    # Without access: it does not exist for members.
    assert tid not in listed(vdemo)
    for key in (tid, name):
        assert vdemo.get(f"/types/{key}").status_code == 404
        assert create_volume(vdemo, key).status_code == 404
    assert tid in listed(vadmin) and tid in listed(vadmin, is_public="false")
    assert vadmin.get(f"/types/{tid}/os-volume-type-access").json() == {"volume_type_access": []}
    # Given to demo: listed, shown and usable there only.
    assert access(vadmin, tid, "addProjectAccess", demo).status_code == 202
    assert tid in listed(vdemo) and tid not in listed(vother)
    assert vdemo.get(f"/types/{tid}").json()["volume_type"]["is_public"] is False
    resp = create_volume(vdemo, tid)
    assert resp.status_code == 202, resp.text
    volume = resp.json()["volume"]
    assert volume["volume_type"] == name
    assert create_volume(vother, name).status_code == 404
    # The access list, as Tempest reads it.
    assert access(vadmin, tid, "addProjectAccess", other).status_code == 202
    shown = vadmin.get(f"/types/{tid}/os-volume-type-access").json()["volume_type_access"]
    assert shown == [{"volume_type_id": tid, "project_id": demo},
                     {"volume_type_id": tid, "project_id": other}]
    assert tid in listed(vother)
    # Taken back: gone for demo again, its volume keeps its type.
    assert access(vadmin, tid, "removeProjectAccess", demo).status_code == 202
    assert tid not in listed(vdemo) and vdemo.get(f"/types/{tid}").status_code == 404
    assert vdemo.get(f"/volumes/{volume['id']}").json()["volume"]["volume_type"] == name
    assert vdemo.delete(f"/volumes/{volume['id']}").status_code == 202
    wait_gone(vdemo, f"/volumes/{volume['id']}")
    assert vadmin.delete(f"/types/{tid}").status_code == 202


def test_access_refusals(server: StackvolProcess, vadmin: httpx.Client,
                         vdemo: httpx.Client) -> None:
    tid = private_type(vadmin)["id"]
    demo = project_id(vdemo)
    assert access(vdemo, tid, "addProjectAccess", demo).status_code == 403
    assert access(vadmin, tid, "addProjectAccess", demo).status_code == 202
    assert access(vadmin, tid, "addProjectAccess", demo).status_code == 409
    assert vdemo.get(f"/types/{tid}/os-volume-type-access").status_code == 403
    assert access(vdemo, tid, "removeProjectAccess", demo).status_code == 403
    assert access(vadmin, tid, "addProjectAccess", uuid.uuid4().hex).status_code == 404
    assert access(vadmin, str(uuid.uuid4()), "addProjectAccess", demo).status_code == 404
    for body in ({"addProjectAccess": {}}, {"addProjectAccess": {"project": 7}},
                 {"grantEverything": {"project": demo}}, [], {}):
        assert vadmin.post(f"/types/{tid}/action", json=body).status_code == 400, body
    # Public types have no access list.
    public = vadmin.post("/types", json={"volume_type": {"name": f"pub-{uuid.uuid4().hex[:8]}"}})
    pid = public.json()["volume_type"]["id"]
    assert access(vadmin, pid, "addProjectAccess", demo).status_code == 400
    assert vadmin.get(f"/types/{pid}/os-volume-type-access").status_code == 404
    assert access(vadmin, tid, "removeProjectAccess", demo).status_code == 202
    assert access(vadmin, tid, "removeProjectAccess", demo).status_code == 404
    assert access(vadmin, tid, "addProjectAccess", demo).status_code == 202
    assert vadmin.delete(f"/types/{tid}").status_code == 202
    assert query(server.data_dir, "SELECT count(*) FROM volume_type_projects "
                 "WHERE volume_type_id = ?", tid) == [(0,)]
    assert vadmin.delete(f"/types/{pid}").status_code == 202


def test_openstackclient_type_access(server: StackvolProcess, vadmin: httpx.Client,
                                     vdemo: httpx.Client) -> None:
    vtype = private_type(vadmin)
    demo = project_id(vdemo)
    osc(server, "volume", "type", "set", "--project", demo, vtype["name"])
    shown = osc(server, "volume", "type", "show", vtype["id"], "-f", "json")
    assert demo in str(shown["access_project_ids"])
    assert vtype["id"] in listed(vdemo)
    osc(server, "volume", "type", "unset", "--project", demo, vtype["name"])
    assert vtype["id"] not in listed(vdemo)
    assert vadmin.delete(f"/types/{vtype['id']}").status_code == 202
