"""httpx clients on the faces that ``StackvolProcess.client`` (the Compute API) does not build:
Block Storage v3 and the Image service, as a bootstrap user or as any account."""

from __future__ import annotations

import httpx

from tests.support.identity_helpers import Account
from tests.support.server import StackvolProcess

CINDER_MAX = "3.71"  # the newest Block Storage microversion stackvol speaks


def _cinder_headers(token: str, version: str | None) -> dict[str, str]:
    headers = {"X-Auth-Token": token}
    if version:  # None: no header, so the base microversion (3.0)
        headers["OpenStack-API-Version"] = f"volume {version}"
    return headers


def cinder(server: StackvolProcess, user: str = "admin", version: str | None = CINDER_MAX,
           with_project: bool = True) -> httpx.Client:
    """An httpx client on ``/volume/v3[/{project_id}]`` for a bootstrap user."""
    token, body = server.token(user)
    prefix = f"/volume/v3/{body['project']['id']}" if with_project else "/volume/v3"
    return httpx.Client(base_url=server.url + prefix, headers=_cinder_headers(token, version),
                        timeout=30)


def account_cinder(account: Account, version: str | None = None) -> httpx.Client:
    """An httpx client on ``/volume/v3/{project_id}`` for an account made by a test."""
    return httpx.Client(base_url=f"{account.server.url}/volume/v3/{account.project_id}",
                        headers=_cinder_headers(account.token(), version), timeout=30)


def project_id(client: httpx.Client) -> str:
    """The project of a Block Storage client, read from the URL it was built with."""
    return client.get("/limits").url.path.split("/")[3]


def image_client(server: StackvolProcess, token: str) -> httpx.Client:
    """An httpx client on ``/image`` (version prefix in each path) for a token."""
    return httpx.Client(base_url=server.url + "/image", headers={"X-Auth-Token": token},
                        timeout=60)
