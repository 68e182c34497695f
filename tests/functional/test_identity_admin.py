"""Keystone v3 administration against the real server: python-openstackclient, the raw API
(projects, users, roles, grants, role assignments, domains, catalog, application credentials),
token revocation across processes, and what roles let a caller do on the Compute API."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

from stackvol.http.compute.face import ROUTES
from stackvol.services.identity.api import CACHE_SECONDS
from tests.support.identity_helpers import (
    identity,
    make_account,
    make_project,
    osc,
    password_token,
    role_id,
    unique,
)
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import new_server
from tests.support.volumes import attach, attach_and_wait, new_volume

KEYSTONE_ERROR_KEYS = {"code", "title", "message"}


def assert_keystone_error(resp: httpx.Response, code: int) -> dict[str, Any]:
    assert resp.status_code == code, resp.text
    error = resp.json()["error"]
    assert set(error) == KEYSTONE_ERROR_KEYS and error["code"] == code and error["message"]
    return error


# --- python-openstackclient -----------------------------------------------------------------


def test_openstackclient_creates_project_user_and_role(server: StackvolProcess) -> None:
    project, user = unique("osc-proj"), unique("osc-user")
    made = osc(server, "project", "create", project, "--description", "made by osc",
               "-f", "json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["name"] == project
    created = osc(server, "user", "create", "--password", "s3cret-pw", "--project", project,
                  user, "-f", "json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["name"] == user
    added = osc(server, "role", "add", "--project", project, "--user", user, "member")
    assert added.returncode == 0, added.stderr
    listed = osc(server, "role", "assignment", "list", "--project", project, "--names",
                 "-f", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == [
        ("member", f"{user}@Default", f"{project}@Default")]
    by_user = osc(server, "role", "assignment", "list", "--user", user, "--effective",
                  "--names", "-f", "json")
    assert by_user.returncode == 0, by_user.stderr
    assert {r["Role"] for r in json.loads(by_user.stdout)} == {"member", "reader"}
    # The new account works, with the new password, through openstackclient too.
    as_user = osc(server, "token", "issue", "-f", "json", cloud="", env={
        "OS_AUTH_URL": server.url + "/identity", "OS_USERNAME": user,
        "OS_PASSWORD": "s3cret-pw", "OS_PROJECT_NAME": project, "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default", "OS_IDENTITY_API_VERSION": "3"})
    assert as_user.returncode == 0, as_user.stderr
    assert json.loads(as_user.stdout)["project_id"]
    duplicate = osc(server, "project", "create", project)
    assert duplicate.returncode != 0 and "409" in duplicate.stderr


def test_openstackclient_token_revoke_makes_the_token_401(server: StackvolProcess) -> None:
    issued = osc(server, "token", "issue", "-f", "value", "-c", "id")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    headers = {"X-Auth-Token": token}
    assert httpx.get(server.url + "/v2.1/os-volumes", headers=headers).status_code == 200
    revoked = osc(server, "token", "revoke", token)
    assert revoked.returncode == 0, revoked.stderr
    compute = httpx.get(server.url + "/v2.1/os-volumes", headers=headers)
    assert compute.status_code == 401
    assert compute.json()["unauthorized"]["code"] == 401
    assert_keystone_error(httpx.get(server.url + "/identity/v3/projects", headers=headers), 401)
    other, _ = server.token("admin")
    check = httpx.get(server.url + "/identity/v3/auth/tokens",
                      headers={"X-Auth-Token": other, "X-Subject-Token": token})
    assert_keystone_error(check, 404)
    # Revoking one token leaves the user's others alone.
    assert httpx.get(server.url + "/v2.1/os-volumes",
                     headers={"X-Auth-Token": other}).status_code == 200


def test_revocation_reaches_another_process_within_the_cache_window(tmp_path: Path) -> None:
    first = StackvolProcess(tmp_path / "data").start()
    second = StackvolProcess(tmp_path / "data", worker_name="second:all")
    try:
        second.start()
        token, _ = first.token("admin")
        headers = {"X-Auth-Token": token}
        for proc in (first, second):  # both have validated (and cached) it
            assert httpx.get(proc.url + "/v2.1/os-volumes", headers=headers).status_code == 200
        resp = httpx.delete(first.url + "/identity/v3/auth/tokens",
                            headers={"X-Auth-Token": token, "X-Subject-Token": token})
        assert resp.status_code == 204
        revoked_at = time.monotonic()
        assert httpx.get(first.url + "/v2.1/os-volumes", headers=headers).status_code == 401
        seen = wait_for(lambda: httpx.get(second.url + "/v2.1/os-volumes",
                                          headers=headers).status_code,
                        lambda code: code == 401, timeout=CACHE_SECONDS + 5, interval=0.1)
        assert seen == 401
        assert time.monotonic() - revoked_at <= CACHE_SECONDS + 1.5
    finally:
        second.stop()
        first.stop()


# --- projects, users, roles, grants ---------------------------------------------------------


def test_projects_crud_with_keystone_bodies(server: StackvolProcess,
                                            keystone: httpx.Client) -> None:
    name = unique("crud")
    project = make_project(keystone, name)
    assert project["domain_id"] == "default" and project["enabled"] is True
    assert project["links"]["self"] == f"{server.url}/identity/v3/projects/{project['id']}"
    error = assert_keystone_error(keystone.post("/projects", json={"project": {"name": name}}),
                                  409)
    assert error["title"] == "Conflict"
    listed = keystone.get("/projects", params={"name": name}).json()
    assert [p["id"] for p in listed["projects"]] == [project["id"]]
    assert listed["links"]["next"] is None and listed["links"]["previous"] is None
    assert listed["links"]["self"].startswith(server.url + "/identity/v3/projects")
    patched = keystone.patch(f"/projects/{project['id']}",
                             json={"project": {"description": "now described"}})
    assert patched.json()["project"]["description"] == "now described"
    assert keystone.delete(f"/projects/{project['id']}").status_code == 204
    assert_keystone_error(keystone.get(f"/projects/{project['id']}"), 404)
    assert_keystone_error(keystone.post("/projects", json={"nothing": {}}), 400)


def test_non_admins_get_403_on_identity_administration(server: StackvolProcess,
                                                       keystone: httpx.Client) -> None:
    member = make_account(server, keystone, "member")
    with identity(server, member.token()) as client:
        for method, path, body in [
            ("GET", "/projects", None), ("POST", "/projects", {"project": {"name": "x"}}),
            ("GET", "/users", None), ("POST", "/users", {"user": {"name": "x"}}),
            ("GET", "/roles", None), ("GET", "/role_assignments", None),
            ("PUT", f"/projects/{member.project_id}/users/{member.user_id}/roles/"
                    f"{role_id(keystone, 'admin')}", None),
            ("GET", "/services", None), ("GET", "/endpoints", None),
        ]:
            error = assert_keystone_error(client.request(method, path, json=body), 403)
            assert error["title"] == "Forbidden"
        # What Keystone lets anyone do with their own token.
        assert client.get(f"/projects/{member.project_id}").status_code == 200
        assert client.get(f"/users/{member.user_id}").status_code == 200
        assert client.get("/domains").status_code == 200
        assert client.get("/regions").status_code == 200
        mine = client.get("/auth/projects").json()["projects"]
        assert [p["id"] for p in mine] == [member.project_id]
        assert [p["id"] for p in client.get(f"/users/{member.user_id}/projects").json()[
            "projects"]] == [member.project_id]
        other = make_project(keystone)
        assert_keystone_error(client.get(f"/projects/{other['id']}"), 403)


def test_users_passwords_and_their_tokens(server: StackvolProcess,
                                          keystone: httpx.Client) -> None:
    account = make_account(server, keystone, "member")
    old_token = account.token()
    shown = keystone.get(f"/users/{account.user_id}").json()["user"]
    assert shown["name"] == account.user and shown["domain_id"] == "default"
    assert "password" not in shown and shown["links"]["self"].endswith(account.user_id)
    assert keystone.get("/users", params={"name": account.user}).json()["users"][0]["id"] \
        == account.user_id
    # An admin sets a new password: the old one and the tokens it gave stop working.
    resp = keystone.patch(f"/users/{account.user_id}", json={"user": {"password": "by-admin"}})
    assert resp.status_code == 200
    assert password_token(server, account.user, account.password).status_code == 401
    assert httpx.get(server.url + "/v2.1/os-volumes",
                     headers={"X-Auth-Token": old_token}).status_code == 401
    # The user changes it back with the original password (no token needed, as Keystone).
    url = f"{server.url}/identity/v3/users/{account.user_id}/password"
    wrong = httpx.post(url, json={"user": {"original_password": "nope", "password": "x"}})
    assert_keystone_error(wrong, 401)
    right = httpx.post(url, json={"user": {"original_password": "by-admin",
                                           "password": account.password}})
    assert right.status_code == 204
    assert password_token(server, account.user, account.password,
                          account.project).status_code == 201
    # Disabled users cannot log in; deleted users are gone.
    keystone.patch(f"/users/{account.user_id}", json={"user": {"enabled": False}})
    assert password_token(server, account.user, account.password).status_code == 401
    assert keystone.delete(f"/users/{account.user_id}").status_code == 204
    assert_keystone_error(keystone.get(f"/users/{account.user_id}"), 404)


def test_roles_builtin_implied_and_custom(server: StackvolProcess,
                                          keystone: httpx.Client) -> None:
    roles = {r["name"]: r for r in keystone.get("/roles").json()["roles"]}
    assert {"admin", "member", "reader"} <= set(roles)
    assert roles["admin"]["options"] == {"immutable": True}
    assert_keystone_error(keystone.delete(f"/roles/{roles['reader']['id']}"), 403)
    name = unique("auditor")
    made = keystone.post("/roles", json={"role": {"name": name, "description": "audits"}})
    assert made.status_code == 201
    custom = made.json()["role"]
    assert_keystone_error(keystone.post("/roles", json={"role": {"name": name}}), 409)
    account = make_account(server, keystone, "reader")
    grant = (f"/projects/{account.project_id}/users/{account.user_id}/roles/{custom['id']}")
    assert keystone.put(grant).status_code == 204
    token = password_token(server, account.user, account.password, account.project).json()
    assert {r["name"] for r in token["token"]["roles"]} == {"reader", name}
    assert keystone.delete(f"/roles/{custom['id']}").status_code == 204
    assert_keystone_error(keystone.get(f"/roles/{custom['id']}"), 404)


def test_grants_put_head_list_delete(server: StackvolProcess, keystone: httpx.Client) -> None:
    account = make_account(server, keystone, "member")
    base = f"/projects/{account.project_id}/users/{account.user_id}/roles"
    reader = role_id(keystone, "reader")
    assert keystone.head(f"{base}/{reader}").status_code == 404
    assert keystone.put(f"{base}/{reader}").status_code == 204
    assert keystone.put(f"{base}/{reader}").status_code == 204  # idempotent
    assert keystone.head(f"{base}/{reader}").status_code == 204
    assert {r["name"] for r in keystone.get(base).json()["roles"]} == {"member", "reader"}
    token = account.token()
    assert keystone.delete(f"{base}/{role_id(keystone, 'member')}").status_code == 204
    assert keystone.delete(f"{base}/{reader}").status_code == 204
    assert_keystone_error(keystone.delete(f"{base}/{reader}"), 404)
    # No role left on the project: its token no longer works (at once, in this process).
    assert httpx.get(server.url + "/v2.1/os-volumes",
                     headers={"X-Auth-Token": token}).status_code == 401
    assert_keystone_error(keystone.put(f"{base}/{'0' * 32}"), 404)


def test_role_assignments_filters(server: StackvolProcess, keystone: httpx.Client) -> None:
    account = make_account(server, keystone, "member")
    member, reader = role_id(keystone, "member"), role_id(keystone, "reader")
    found = keystone.get("/role_assignments", params={"user.id": account.user_id}).json()
    assert found["links"]["next"] is None
    (only,) = found["role_assignments"]
    assert only["role"] == {"id": member} and only["user"] == {"id": account.user_id}
    assert only["scope"] == {"project": {"id": account.project_id}}
    assert only["links"]["assignment"].endswith(
        f"/projects/{account.project_id}/users/{account.user_id}/roles/{member}")
    effective = keystone.get("/role_assignments", params={
        "user.id": account.user_id, "effective": "", "include_names": "1"}).json()
    by_role = {a["role"]["name"]: a for a in effective["role_assignments"]}
    assert set(by_role) == {"member", "reader"}
    assert by_role["reader"]["links"]["prior_role"].endswith(f"/roles/{member}")
    assert by_role["member"]["scope"]["project"]["name"] == account.project
    assert by_role["member"]["user"]["name"] == account.user
    by_project = keystone.get("/role_assignments", params={
        "scope.project.id": account.project_id, "role.id": reader, "effective": ""}).json()
    assert [a["user"]["id"] for a in by_project["role_assignments"]] == [account.user_id]
    groups = keystone.get("/role_assignments", params={"group.id": "x"}).json()
    assert groups["role_assignments"] == []


def test_domains_catalog_and_links(server: StackvolProcess, keystone: httpx.Client) -> None:
    (domain,) = keystone.get("/domains", params={"name": "Default"}).json()["domains"]
    assert domain["id"] == "default" and domain["links"]["self"].endswith("/domains/default")
    assert keystone.get("/domains", params={"name": "Other"}).json()["domains"] == []
    assert keystone.get("/domains/default").json()["domain"]["name"] == "Default"
    assert_keystone_error(keystone.get("/domains/elsewhere"), 404)
    services = keystone.get("/services").json()
    assert {"identity", "compute", "block-storage"} <= {s["type"] for s in services["services"]}
    compute = next(s for s in services["services"] if s["type"] == "compute")
    assert keystone.get(f"/services/{compute['id']}").json()["service"]["name"] == "nova"
    endpoints = keystone.get("/endpoints", params={"service_id": compute["id"]}).json()
    assert {e["interface"] for e in endpoints["endpoints"]} == {"public", "internal", "admin"}
    assert all(e["url"] == server.url + "/compute/v2.1" for e in endpoints["endpoints"])
    (region,) = keystone.get("/regions").json()["regions"]
    assert region["id"] == "RegionOne"


# --- application credentials ----------------------------------------------------------------


def _app_credential_auth(server: StackvolProcess, **credential: Any) -> httpx.Response:
    body = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": credential}}}
    return httpx.post(server.url + "/identity/v3/auth/tokens", json=body, timeout=30)


def test_application_credentials(server: StackvolProcess, keystone: httpx.Client) -> None:
    account = make_account(server, keystone, "member")
    with identity(server, account.token()) as client:
        base = f"/users/{account.user_id}/application_credentials"
        made = client.post(base, json={"application_credential": {
            "name": "ci", "roles": [{"name": "reader"}]}})
        assert made.status_code == 201, made.text
        cred = made.json()["application_credential"]
        assert cred["secret"] and cred["project_id"] == account.project_id
        assert [r["name"] for r in cred["roles"]] == ["reader"]
        assert "secret" not in client.get(f"{base}/{cred['id']}").json()[
            "application_credential"]
        assert [c["id"] for c in client.get(base).json()["application_credentials"]] == [
            cred["id"]]
        assert_keystone_error(client.post(base, json={"application_credential": {
            "name": "ci"}}), 409)
    by_id = _app_credential_auth(server, id=cred["id"], secret=cred["secret"])
    assert by_id.status_code == 201, by_id.text
    token = by_id.json()["token"]
    assert token["methods"] == ["application_credential"]
    assert token["application_credential"] == {"id": cred["id"], "name": "ci",
                                               "restricted": True}
    assert {r["name"] for r in token["roles"]} == {"reader"}
    by_name = _app_credential_auth(server, name="ci", secret=cred["secret"],
                                   user={"name": account.user, "domain": {"id": "default"}})
    assert by_name.status_code == 201
    assert_keystone_error(_app_credential_auth(server, id=cred["id"], secret="wrong"), 401)
    headers = {"X-Auth-Token": by_id.headers["X-Subject-Token"]}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as as_cred:
        assert as_cred.get("/v2.1/os-volumes").status_code == 200
        assert as_cred.post("/v2.1/os-volumes",
                            json={"volume": {"size": 1}}).status_code == 403  # reader only
        restricted = as_cred.post(f"/identity/v3{base}", json={
            "application_credential": {"name": "more"}})
        assert_keystone_error(restricted, 403)
    other = make_account(server, keystone, "member")
    with identity(server, other.token()) as stranger:
        assert_keystone_error(stranger.get(f"{base}/{cred['id']}"), 403)
    with identity(server, account.token()) as client:
        assert client.delete(f"{base}/{cred['id']}").status_code == 204
    assert httpx.get(server.url + "/v2.1/os-volumes", headers=headers).status_code == 401
    assert_keystone_error(_app_credential_auth(server, id=cred["id"],
                                               secret=cred["secret"]), 401)


# --- what roles allow on the Compute API ----------------------------------------------------


def test_reader_reads_but_cannot_create_attach_or_delete(server: StackvolProcess,
                                                         keystone: httpx.Client) -> None:
    member = make_account(server, keystone, "member")
    reader = make_account(server, keystone, "reader",
                          project={"id": member.project_id, "name": member.project})
    with member.compute() as owner:
        volume_id = new_volume(owner)
        server_id = new_server(owner, "reader-test")
    with reader.compute() as client:
        assert volume_id in {v["id"] for v in client.get("/os-volumes").json()["volumes"]}
        assert client.get(f"/os-volumes/{volume_id}").status_code == 200
        assert client.get(f"/servers/{server_id}").status_code == 200
        for resp in (client.post("/os-volumes", json={"volume": {"size": 1}}),
                     attach(client, server_id, volume_id),
                     client.delete(f"/os-volumes/{volume_id}")):
            assert resp.status_code == 403, resp.text
            body = resp.json()["forbidden"]
            assert body["code"] == 403 and "Policy doesn't allow" in body["message"]
        assert client.get(f"/os-volumes/{volume_id}").json()["volume"]["status"] == "available"


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def _body(method: str, path: str, volume_id: str) -> dict[str, Any] | None:
    if path.endswith("/action"):
        return {"os-stop": None}
    if "os-volume_attachments" in path and method in ("POST", "PUT"):
        return {"volumeAttachment": {"volumeId": volume_id}}
    if "{server_id}" in path and method == "PUT":  # /servers and its os-volumes_boot alias
        return {"server": {"name": "renamed"}}
    return None


def test_member_of_one_project_finds_nothing_of_another(server: StackvolProcess,
                                                        keystone: httpx.Client) -> None:
    """Walks every Compute API route that names a volume, snapshot or server."""
    a, b = (make_account(server, keystone, "member") for _ in range(2))
    with b.compute() as owner:
        volume_id, attached_id = new_volume(owner), new_volume(owner)
        server_id = new_server(owner, "project-b")
        snap = owner.post("/os-snapshots", json={"snapshot": {"volume_id": volume_id}})
        assert snap.status_code == 200, snap.text
        snapshot_id = snap.json()["snapshot"]["id"]
        attach_and_wait(owner, server_id, attached_id)
    ids = {"volume_id": attached_id, "snapshot_id": snapshot_id, "server_id": server_id}
    walked: list[tuple[str, str]] = []
    with a.compute() as intruder, b.compute() as owner:
        own_server = new_server(intruder, "project-a")
        for route in ROUTES:
            names = set(re.findall(r"\{(\w+)\}", route.path))
            if not names & set(ids):
                continue
            assert names <= set(ids), f"unknown parameter in {route.path}"
            path = _fill(route.path, ids)
            for method in sorted(route.methods - {"HEAD"}):
                resp = intruder.request(method, path, json=_body(method, route.path,
                                                                 attached_id))
                assert resp.status_code == 404, (method, path, resp.text)
                assert resp.json()["itemNotFound"]["code"] == 404
                walked.append((method, route.path))
            assert owner.get(path).status_code == 200 or "GET" not in route.methods
        # Creates that name another project's resources in their bodies.
        for path, body in [
            ("/os-volumes", {"volume": {"size": 1, "snapshot_id": snapshot_id}}),
            ("/os-snapshots", {"snapshot": {"volume_id": volume_id}}),
            (f"/servers/{own_server}/os-volume_attachments",
             {"volumeAttachment": {"volumeId": volume_id}}),
        ]:
            resp = intruder.post(path, json=body)
            assert resp.status_code == 404, (path, resp.text)
        assert owner.get(f"/os-volumes/{volume_id}").json()["volume"]["status"] == "available"
    prefixes = {path.split("/")[1] for _, path in walked}
    assert {"os-volumes", "os-snapshots", "servers"} <= prefixes
    assert any("os-volume_attachments" in path for _, path in walked)
    # The admin, by contrast, acts across projects.
    with server.client("admin") as admin:
        assert admin.get(f"/os-volumes/{volume_id}").status_code == 200
