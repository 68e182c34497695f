"""Today's OpenStack clients, unchanged, pointed at a stackvol server: python-openstackclient (a
subprocess, with the server's clouds.yaml), python-novaclient and openstacksdk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openstack
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from novaclient import client as nova_client

from tests.support import identity_helpers
from tests.support.server import StackvolProcess


def osc(server: StackvolProcess, *args: str, user: str = "admin") -> Any:
    """Run ``openstack --os-cloud stackvol-<user> ...`` (it must succeed); parsed JSON when it
    prints JSON, else its output as text."""
    done = identity_helpers.osc(server, *args, cloud=f"stackvol-{user}")
    assert done.returncode == 0, f"openstack {' '.join(args)} failed:\n{done.stderr}"
    out = done.stdout.strip()
    return json.loads(out) if out[:1] in ("{", "[") else out


def keystone_session(server: StackvolProcess, user: str) -> ks_session.Session:
    """A keystoneauth session of a bootstrap user, scoped to the user's project."""
    cred = server.credentials()[user]
    auth = v3.Password(auth_url=f"{server.url}/identity", username=user,
                       password=cred["password"], project_name=cred["project"],
                       user_domain_name="Default", project_domain_name="Default")
    return ks_session.Session(auth=auth)


def nova(server: StackvolProcess, version: str, user: str = "demo") -> Any:
    """python-novaclient at compute microversion ``version``."""
    return nova_client.Client(version, session=keystone_session(server, user))


@contextmanager
def sdk_connection(server: StackvolProcess, monkeypatch: pytest.MonkeyPatch,
                   user: str = "admin") -> Iterator[openstack.connection.Connection]:
    """openstacksdk as ``user``, from the server's own ``clouds.yaml``; closed after."""
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(server.clouds_yaml))
    conn = openstack.connect(cloud=f"stackvol-{user}")
    try:
        yield conn
    finally:
        conn.close()
