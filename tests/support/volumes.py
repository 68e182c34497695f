"""Volumes for tests, through either face: Nova's ``/os-volumes`` proxy and attachments (a
compute client), Cinder's ``/volumes`` and ``/snapshots`` (a Block Storage client, see
tests/support/clients.py), and the file a volume of the file backend is kept in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import new_server

# Long enough for a hot-plug into a real (TCG) guest on a busy machine; the simulated driver
# answers in milliseconds, so the bound only matters when a test is failing.
SETTLE_SECONDS = 60.0


# --- Nova's os-volumes -----------------------------------------------------------------------


def create_volume(client: httpx.Client, size: int = 1, **fields: object) -> dict:
    """``POST /os-volumes``; the volume as created (still ``creating``)."""
    resp = client.post("/os-volumes", json={"volume": {"size": size, **fields}})
    assert resp.status_code == 200, resp.text
    return resp.json()["volume"]


def new_volume(client: httpx.Client, size: int = 1, **fields: object) -> str:
    """The id of a new volume, waited for until ``available``."""
    volume_id = create_volume(client, size, **fields)["id"]
    volume_status(client, volume_id, "available")
    return volume_id


def volume_status(client: httpx.Client, volume_id: str, wanted: str,
                  timeout: float = SETTLE_SECONDS) -> dict:
    """Wait until the volume is ``wanted``; its view then."""
    volume = wait_for(lambda: client.get(f"/os-volumes/{volume_id}").json()["volume"],
                      lambda v: v["status"] == wanted, timeout)
    assert volume["status"] == wanted, volume
    return volume


def attach(client: httpx.Client, server_id: str, volume_id: str, **extra: object) -> httpx.Response:
    """``POST /servers/{id}/os-volume_attachments``, the answer unchecked."""
    return client.post(f"/servers/{server_id}/os-volume_attachments",
                       json={"volumeAttachment": {"volumeId": volume_id, **extra}})


def attach_and_wait(client: httpx.Client, server_id: str, volume_id: str,
                    **extra: object) -> dict:
    """Attach (it must be accepted) and wait until the volume is ``in-use``."""
    resp = attach(client, server_id, volume_id, **extra)
    assert resp.status_code == 200, resp.text
    return volume_status(client, volume_id, "in-use")


def detach_and_wait(client: httpx.Client, server_id: str, volume_id: str) -> dict:
    """Detach (it must be accepted) and wait until the volume is ``available`` again."""
    resp = client.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}")
    assert resp.status_code == 202, resp.text
    return volume_status(client, volume_id, "available")


def attached_volume(client: httpx.Client, server_id: str, device: str | None = None,
                    **fields: object) -> dict:
    """A new volume (of ``fields``), attached to the server (at ``device``: stackvol chooses
    where None); its ``in-use`` view."""
    extra = {"device": device} if device else {}
    return attach_and_wait(client, server_id, new_volume(client, **fields), **extra)


def new_attached_pair(client: httpx.Client) -> tuple[str, str]:
    """A new server and a new volume attached to it (``in-use``): their ids."""
    server_id, volume_id = new_server(client), new_volume(client)
    attach_and_wait(client, server_id, volume_id)
    return server_id, volume_id


# --- Cinder's volumes and snapshots ------------------------------------------------------------


def wait_volume(client: httpx.Client, volume_id: str, status: str) -> dict[str, Any]:
    """Wait until the Cinder volume is ``status``; its view then."""
    found = wait_for(lambda: client.get(f"/volumes/{volume_id}").json(),
                     lambda b: b.get("volume", {}).get("status") == status)
    assert found["volume"]["status"] == status, found
    return found["volume"]


def make_volume(client: httpx.Client, size: int = 1, **fields: Any) -> dict[str, Any]:
    """A new Cinder volume, waited for until ``available``."""
    resp = client.post("/volumes", json={"volume": {"size": size, **fields}})
    assert resp.status_code == 202, resp.text
    return wait_volume(client, resp.json()["volume"]["id"], "available")


def make_snapshot(client: httpx.Client, volume_id: str) -> dict[str, Any]:
    """A new Cinder snapshot of the volume, waited for until ``available``."""
    resp = client.post("/snapshots", json={"snapshot": {"volume_id": volume_id}})
    assert resp.status_code == 202, resp.text
    return wait_snapshot(client, resp.json()["snapshot"]["id"], "available")


def wait_snapshot(client: httpx.Client, snapshot_id: str, status: str) -> dict[str, Any]:
    """Wait until the Cinder snapshot is ``status``; its view then."""
    found = wait_for(lambda: client.get(f"/snapshots/{snapshot_id}").json(),
                     lambda b: b.get("snapshot", {}).get("status") == status)
    assert found["snapshot"]["status"] == status, found
    return found["snapshot"]


def wait_gone(client: httpx.Client, path: str) -> httpx.Response:
    """Wait until ``path`` answers 404 (a deleted resource of any face); that answer."""
    resp = wait_for(lambda: client.get(path), lambda r: r.status_code == 404)
    assert resp.status_code == 404, resp.text
    return resp


# --- the file backend ------------------------------------------------------------------------


def volume_file(server: StackvolProcess, volume_id: str) -> Path:
    """Where the file backend keeps a raw volume's bytes."""
    return server.data_dir / "volumes" / f"volume-{volume_id}.raw"
