"""Helpers for the identity administration tests: accounts made through the real API, tokens,
and python-openstackclient run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import StackvolProcess

OPENSTACK = str(Path(sys.executable).parent / "openstack")


def identity(server: StackvolProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url + "/identity/v3",
                        headers={"X-Auth-Token": token}, timeout=30)


def password_token(server: StackvolProcess, user: str, password: str,
                   project: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"id": "default"}, "password": password}}}}}
    if project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return httpx.post(server.url + "/identity/v3/auth/tokens", json=body, timeout=30)


@dataclass
class Account:
    """A user with one role on one project, made through the API as the admin."""

    server: StackvolProcess
    user_id: str
    user: str
    password: str
    project_id: str
    project: str

    def token(self) -> str:
        resp = password_token(self.server, self.user, self.password, self.project)
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"]

    def compute(self, microversion: str | None = None) -> httpx.Client:
        headers = {"X-Auth-Token": self.token()}
        if microversion:
            headers["OpenStack-API-Version"] = f"compute {microversion}"
        return httpx.Client(base_url=self.server.url + "/v2.1", headers=headers, timeout=30)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_project(admin: httpx.Client, name: str | None = None) -> dict[str, Any]:
    resp = admin.post("/projects", json={"project": {"name": name or unique("proj")}})
    assert resp.status_code == 201, resp.text
    return resp.json()["project"]


def role_id(admin: httpx.Client, name: str) -> str:
    (role,) = admin.get("/roles", params={"name": name}).json()["roles"]
    return role["id"]


def make_account(server: StackvolProcess, admin: httpx.Client, role: str,
                 project: dict[str, Any] | None = None) -> Account:
    project = project or make_project(admin)
    name, password = unique("user"), uuid.uuid4().hex
    resp = admin.post("/users", json={"user": {"name": name, "password": password,
                                               "default_project_id": project["id"]}})
    assert resp.status_code == 201, resp.text
    user_id = resp.json()["user"]["id"]
    grant = admin.put(f"/projects/{project['id']}/users/{user_id}/roles/{role_id(admin, role)}")
    assert grant.status_code == 204, grant.text
    return Account(server, user_id, name, password, project["id"], project["name"])


def osc(server: StackvolProcess, *args: str, cloud: str = "stackvol-admin",
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``openstack --os-cloud CLOUD ARGS`` with the server's clouds.yaml and nothing else."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    clean["OS_CLIENT_CONFIG_FILE"] = str(server.clouds_yaml)
    command = [OPENSTACK, *(["--os-cloud", cloud] if cloud else []), *args]
    return subprocess.run(command, env={**clean, **(env or {})}, capture_output=True,
                          text=True, timeout=120)
