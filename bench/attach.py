"""Attach + detach cycles at one connection, through each face, on the simulated driver.

Nova: POST /v2.1/servers/{sid}/os-volume_attachments, GET the volume until ``in-use``, DELETE
the attachment, GET until ``available``. Cinder (attachments API, 3.44 for ``os-complete``):
POST /attachments with the instance and a connector for this host (connected at once), POST
its ``os-complete`` action, DELETE it. One volume per face goes round and round on one server.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable

import httpx

from bench.client import CREATE_BODY, BenchError, Tally, headers
from tests.support.servers import IMAGE

CINDER_ATTACHMENTS = "volume 3.44"  # the first microversion with os-complete
POLL_TIMEOUT = 30.0
# (client, tally, server id, volume id) -> the moment the volume was attached
Cycle = Callable[[httpx.Client, Tally, str, str], float]


class Failed(Exception):
    """A request of the cycle failed; it is counted in the tally, the cycle is dropped."""


def _ok(tally: Tally, resp: httpx.Response) -> httpx.Response:
    if not tally.record(resp):
        raise Failed
    return resp


def _call(client: httpx.Client, tally: Tally, method: str, path: str,
          **kwargs: object) -> httpx.Response:
    try:
        resp = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    except httpx.TransportError as exc:
        tally.transport_error(exc)
        raise Failed from exc
    return _ok(tally, resp)


def wait_status(client: httpx.Client, tally: Tally, path: str, status: str) -> None:
    """GET ``path`` back to back (as the latency clients do) until the volume is ``status``."""
    deadline = time.perf_counter() + POLL_TIMEOUT
    while (found := _call(client, tally, "GET", path).json()["volume"]["status"]) != status:
        if found == "error" or time.perf_counter() > deadline:
            raise BenchError(f"{path} is {found!r}, waiting for {status!r}")


def new_volume(client: httpx.Client, collection: str) -> str:
    """One volume through ``collection``, waited for until ``available``; its id."""
    tally = Tally()
    try:
        volume_id = _call(client, tally, "POST", collection,
                          content=CREATE_BODY).json()["volume"]["id"]
        wait_status(client, tally, f"{collection}/{volume_id}", "available")
    except Failed:
        raise BenchError(f"could not create a volume: {tally.first_error}") from None
    return volume_id


def boot_server(url: str, token: str, timeout: float = 120.0) -> str:
    """A server of the built-in image and flavor 1 (the demo project's), waited for ACTIVE."""
    with httpx.Client(base_url=url, headers=headers(token), timeout=60) as client:
        resp = client.post("/v2.1/servers", json={"server": {
            "name": "bench-attach", "imageRef": IMAGE, "flavorRef": "1"}})
        if resp.status_code != 202:
            raise BenchError(f"POST /v2.1/servers -> {resp.status_code}: {resp.text[:200]}")
        server_id = resp.json()["server"]["id"]
        deadline = time.monotonic() + timeout
        while (status := client.get(f"/v2.1/servers/{server_id}").json()["server"]["status"]
               ) != "ACTIVE":
            if status == "ERROR" or time.monotonic() > deadline:
                raise BenchError(f"server {server_id} is {status}, not ACTIVE")
            time.sleep(0.05)
    return server_id


def nova_cycle(client: httpx.Client, tally: Tally, server_id: str, volume_id: str) -> float:
    """One Nova attach+detach; the moment the volume was seen ``in-use``."""
    attachment = f"/v2.1/servers/{server_id}/os-volume_attachments"
    volume = f"/v2.1/os-volumes/{volume_id}"
    _call(client, tally, "POST", attachment, json={"volumeAttachment": {"volumeId": volume_id}})
    wait_status(client, tally, volume, "in-use")
    attached = time.perf_counter()
    _call(client, tally, "DELETE", f"{attachment}/{volume_id}")
    wait_status(client, tally, volume, "available")
    return attached


def cinder_cycle(project: str) -> Cycle:
    base = f"/volume/v3/{project}"
    # A connector for this host: the file backend connects it in the POST itself.
    connector = {"host": socket.gethostname(), "initiator": "iqn.2026-01.bench:attach",
                 "mountpoint": "/dev/vdc", "mode": "rw"}
    version = {"OpenStack-API-Version": CINDER_ATTACHMENTS}

    def cycle(client: httpx.Client, tally: Tally, server_id: str, volume_id: str) -> float:
        """One Cinder attach+detach; the moment os-complete answered (volume ``in-use``)."""
        attachment_id = _call(client, tally, "POST", f"{base}/attachments", headers=version,
                              json={"attachment": {"volume_uuid": volume_id,
                                                   "instance_uuid": server_id,
                                                   "connector": connector}}
                              ).json()["attachment"]["id"]
        _call(client, tally, "POST", f"{base}/attachments/{attachment_id}/action",
              headers=version, json={"os-complete": None})
        attached = time.perf_counter()
        _call(client, tally, "DELETE", f"{base}/attachments/{attachment_id}", headers=version)
        return attached

    return cycle


def cycles(url: str, token: str, collection: str, server_id: str, samples: int,
           cycle: Cycle, budget: float = math.inf) -> tuple[list[float], list[float], Tally]:
    """``samples`` timed attach+detach cycles of one new volume on ``server_id``, one at a time
    (fewer if they take more than ``budget`` seconds, but at least three): the seconds of each
    whole cycle and of its attach half.

    After each cycle the volume must be ``available`` again (checked untimed: the Cinder cycle
    ends with its DELETE, which detaches at once).
    """
    tally = Tally()
    found: list[float] = []
    halves: list[float] = []
    with httpx.Client(base_url=url, headers=headers(token), timeout=60) as client:
        volume_id = new_volume(client, collection)
        deadline = time.perf_counter() + budget
        for n in range(samples):
            if n >= 3 and time.perf_counter() > deadline:
                break
            start = time.perf_counter()
            try:
                attached = cycle(client, tally, server_id, volume_id)
                took = time.perf_counter() - start
                wait_status(client, tally, f"{collection}/{volume_id}", "available")
            except Failed:
                continue
            found.append(took)
            halves.append(attached - start)
    return found, halves, tally
