"""Nova servers over plain HTTP, for tests that need one: boot, wait, delete."""

from __future__ import annotations

import httpx

from tests.support.server import wait_for

# The built-in image every stackvol cloud starts with (any compute driver boots it).
IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"


def mv(version: str) -> dict[str, str]:
    """The header that asks the Compute API for ``version``."""
    return {"OpenStack-API-Version": f"compute {version}"}


def new_server(client: httpx.Client, name: str = "att") -> str:
    """A new server of the built-in image, waited for until ACTIVE (an ERROR fails at once)."""
    resp = client.post("/servers", json={"server": {
        "name": name, "imageRef": IMAGE, "flavorRef": "1"}})
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    server = wait_for(lambda: client.get(f"/servers/{server_id}").json()["server"],
                      lambda s: s["status"] in ("ACTIVE", "ERROR"))
    assert server["status"] == "ACTIVE"
    return server_id


def show(client: httpx.Client, server_id: str, version: str = "2.1") -> dict:
    resp = client.get(f"/servers/{server_id}", headers=mv(version))
    assert resp.status_code == 200, resp.text
    return resp.json()["server"]


def wait_status(client: httpx.Client, server_id: str, status: str) -> dict:
    """Wait until the server is in ``status`` with no task running."""
    server = wait_for(lambda: show(client, server_id),
                      lambda s: s["status"] == status and s["OS-EXT-STS:task_state"] is None)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == (status, None), server
    return server


def wait_gone(client: httpx.Client, server_id: str) -> httpx.Response:
    """The last answer for the server: a 404 once it is deleted (asserting is the caller's)."""
    return wait_for(lambda: client.get(f"/servers/{server_id}"),
                    lambda r: r.status_code == 404)


def delete_server(client: httpx.Client, server_id: str, timeout: float = 60) -> None:
    """Delete the server and wait until it is gone."""
    assert client.delete(f"/servers/{server_id}").status_code == 204
    gone = wait_for(lambda: client.get(f"/servers/{server_id}").status_code,
                    lambda code: code == 404, timeout)
    assert gone == 404
