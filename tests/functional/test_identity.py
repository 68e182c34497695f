"""Keystone v3 tokens and the catalog, through plain HTTP and openstacksdk's keystoneauth."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import openstack
import pytest

from tests.support.server import StackvolProcess, query, running


def password_body(user: str, password: str, project: dict | None = None) -> dict:
    body: dict = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}}
    if project is not None:
        body["auth"]["scope"] = {"project": project}
    return body


def test_version_discovery(server: StackvolProcess) -> None:
    root = httpx.get(server.url + "/identity")
    assert root.status_code == 300
    (v3,) = root.json()["versions"]["values"]
    assert v3["id"].startswith("v3.") and v3["status"] == "stable"
    assert v3["links"][0]["href"] == server.url + "/identity/v3/"
    doc = httpx.get(server.url + "/identity/v3").json()["version"]
    assert doc["id"] == v3["id"]
    assert doc["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"


def test_password_token_has_user_project_roles_and_catalog(server: StackvolProcess) -> None:
    token_id, token = server.token("admin")
    assert token_id
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "admin"
    assert token["project"]["name"] == "admin"
    assert {"admin", "member", "reader"} <= {r["name"] for r in token["roles"]}
    assert token["expires_at"].endswith("Z")
    types = {entry["type"]: entry for entry in token["catalog"]}
    assert {"identity", "compute", "block-storage"} <= set(types)
    compute = types["compute"]["endpoints"]
    assert {e["interface"] for e in compute} == {"public", "internal", "admin"}
    assert all(e["region"] == "RegionOne" for e in compute)
    assert compute[0]["url"] == server.url + "/compute/v2.1"
    block = types["block-storage"]["endpoints"][0]["url"]
    assert block == f"{server.url}/volume/v3/{token['project']['id']}"


def test_demo_is_a_member_not_an_admin(server: StackvolProcess) -> None:
    _, token = server.token("demo")
    names = {r["name"] for r in token["roles"]}
    assert "member" in names and "reader" in names and "admin" not in names


def test_scope_by_project_id_and_nocatalog(server: StackvolProcess) -> None:
    cred = server.credentials()["demo"]
    _, first = server.token("demo")
    body = password_body("demo", cred["password"], {"id": first["project"]["id"]})
    resp = httpx.post(server.url + "/identity/v3/auth/tokens?nocatalog", json=body)
    assert resp.status_code == 201
    assert "catalog" not in resp.json()["token"]
    assert resp.json()["token"]["project"]["id"] == first["project"]["id"]


def test_token_method_rescopes(server: StackvolProcess) -> None:
    token_id, token = server.token("admin")
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token_id}},
                     "scope": {"project": {"id": token["project"]["id"]}}}}
    resp = httpx.post(server.url + "/identity/v3/auth/tokens", json=body)
    assert resp.status_code == 201
    assert resp.json()["token"]["methods"] == ["token"]
    assert resp.json()["token"]["expires_at"] == token["expires_at"]


@pytest.mark.parametrize(("user", "password"), [("admin", "wrong"), ("nobody", "x")])
def test_bad_credentials_are_401_with_keystone_body(server: StackvolProcess, user: str,
                                                    password: str) -> None:
    resp = httpx.post(server.url + "/identity/v3/auth/tokens",
                      json=password_body(user, password))
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["code"] == 401 and error["title"] == "Unauthorized" and error["message"]


def test_project_the_user_has_no_role_on(server: StackvolProcess) -> None:
    cred = server.credentials()["demo"]
    body = password_body("demo", cred["password"], {"name": "admin",
                                                    "domain": {"name": "Default"}})
    assert httpx.post(server.url + "/identity/v3/auth/tokens", json=body).status_code == 401


@pytest.mark.parametrize("body", [{}, {"auth": {}}, {"auth": {"identity": {"methods": "x"}}}])
def test_malformed_auth_is_400(server: StackvolProcess, body: dict) -> None:
    resp = httpx.post(server.url + "/identity/v3/auth/tokens", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == 400


def test_validate_and_check_token(server: StackvolProcess) -> None:
    admin_token, _ = server.token("admin")
    demo_token, demo = server.token("demo")
    url = server.url + "/identity/v3/auth/tokens"
    resp = httpx.get(url, headers={"X-Auth-Token": admin_token, "X-Subject-Token": demo_token})
    assert resp.status_code == 200
    assert resp.headers["x-subject-token"] == demo_token
    assert resp.json()["token"]["user"]["id"] == demo["user"]["id"]
    head = httpx.head(url, headers={"X-Auth-Token": demo_token, "X-Subject-Token": demo_token})
    assert head.status_code == 200
    bad = httpx.get(url, headers={"X-Auth-Token": admin_token, "X-Subject-Token": "garbage"})
    assert bad.status_code == 404
    other = httpx.get(url, headers={"X-Auth-Token": demo_token,
                                    "X-Subject-Token": admin_token})
    assert other.status_code == 403


def test_compute_rejects_missing_and_bad_tokens(server: StackvolProcess) -> None:
    for headers in ({}, {"X-Auth-Token": "nonsense"}):
        resp = httpx.get(server.url + "/v2.1/os-volumes", headers=headers)
        assert resp.status_code == 401
        assert resp.json() == {"unauthorized": {
            "code": 401, "message": "The request you have made requires authentication."}}
        assert resp.headers["www-authenticate"].startswith("Keystone uri=")
        assert resp.headers["x-openstack-request-id"].startswith("req-")


def test_expired_token_is_401(tmp_path: Path) -> None:
    # Long enough for the first call to be in time on a loaded machine.
    with running(tmp_path / "data", token_ttl_seconds=4) as short:
        token_id, _ = short.token("admin")
        headers = {"X-Auth-Token": token_id}
        assert httpx.get(short.url + "/v2.1/os-volumes", headers=headers).status_code == 200
        time.sleep(4.5)
        resp = httpx.get(short.url + "/v2.1/os-volumes", headers=headers)
        assert resp.status_code == 401
        assert "unauthorized" in resp.json()


def test_passwords_are_stored_hashed(server: StackvolProcess) -> None:
    password = server.credentials()["admin"]["password"]
    hashes = [row[0] for row in query(server.data_dir, "SELECT password_hash FROM users")]
    # bcrypt over a sha256 digest of the password (bcrypt alone reads only 72 bytes).
    assert hashes and all(h.startswith("$sha256$$2b$04$") and password not in h
                          for h in hashes)


def test_openstacksdk_authenticates_with_printed_clouds_yaml(server: StackvolProcess,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             ) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(server.clouds_yaml))
    for key in [k for k in os.environ if k.startswith("OS_") and k != "OS_CLIENT_CONFIG_FILE"]:
        monkeypatch.delenv(key)
    conn = openstack.connect(cloud="stackvol-demo")
    try:
        conn.authorize()
        assert conn.current_project.name == "demo"
        created = conn.compute.post("/os-volumes", json={"volume": {"size": 1}}).json()
        listed = conn.compute.get("/os-volumes").json()["volumes"]
        assert created["volume"]["id"] in {v["id"] for v in listed}
        endpoint = conn.endpoint_for("compute")
        assert endpoint.rstrip("/") == server.url + "/compute/v2.1"
    finally:
        conn.close()


def test_noauth_mode_trusts_headers(tmp_path: Path) -> None:
    with running(tmp_path / "data", noauth=True) as open_server:
        headers = {"X-Auth-Project-Id": "p1", "X-Auth-User-Id": "u1"}
        resp = httpx.post(open_server.url + "/v2.1/os-volumes", headers=headers,
                          json={"volume": {"size": 1}})
        assert resp.status_code == 200
        volume_id = resp.json()["volume"]["id"]
        other = httpx.get(f"{open_server.url}/v2.1/os-volumes/{volume_id}",
                          headers={"X-Auth-Project-Id": "p2", "X-Auth-User-Id": "u2"})
        assert other.status_code == 404
