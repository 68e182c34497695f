"""The latency side of the benchmark: small httpx clients that time individual requests.

Throughput comes from wrk (bench/wrk.py); these clients measure things wrk cannot: how long a
volume takes from POST to ``available``, exact top-ups of the volume count, and list latency.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import httpx

CREATE_PATH = "/v2.1/os-volumes"
CREATE_BODY = '{"volume": {"size": 1}}'


class BenchError(RuntimeError):
    """The server answered something a benchmark cannot continue from."""


@dataclass
class Tally:
    """Requests sent and how many of them failed (transport error or non-2xx)."""

    requests: int = 0
    errors: int = 0
    first_error: str = ""

    def record(self, resp: httpx.Response) -> bool:
        self.requests += 1
        if resp.is_success:
            return True
        self._fail(f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}: "
                   f"{resp.text[:200]}")
        return False

    def transport_error(self, exc: httpx.TransportError) -> None:
        self.requests += 1
        self._fail(f"{type(exc).__name__}: {exc}")

    def _fail(self, message: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or message

    def add(self, other: Tally) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def headers(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token, "Content-Type": "application/json"}


def _async_client(url: str, token: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, headers=headers(token), limits=limits, timeout=60)


async def _send(client: httpx.AsyncClient, tally: Tally, method: str, path: str,
                body: str | None = None) -> httpx.Response | None:
    try:
        resp = await client.request(method, path, content=body)
    except httpx.TransportError as exc:
        tally.transport_error(exc)
        return None
    return resp if tally.record(resp) else None


# A request to send: (method, path, body).
Request = tuple[str, str, str | None]
# A conversation with the server, written once and driven by the sync client (one connection:
# half the client overhead) or the async one (many connections): it yields the requests, is
# sent the answers, and returns its result.
Steps = Generator[Request, httpx.Response, float]


def _post_to_available(collection: str) -> Steps:
    """Seconds from sending the POST to the first GET that shows ``available``."""
    start = time.perf_counter()
    resp = yield ("POST", collection, CREATE_BODY)
    path = f"{collection}/{resp.json()['volume']['id']}"
    while True:
        status = (yield ("GET", path, None)).json()["volume"]["status"]
        if status == "available":
            return time.perf_counter() - start
        if status != "creating":
            raise BenchError(f"{path} went to {status!r} instead of 'available'")


async def _drive_async(client: httpx.AsyncClient, tally: Tally, steps: Steps) -> float | None:
    """Run ``steps`` on ``client``; None once a request failed (it is in the tally)."""
    request = next(steps)
    while (resp := await _send(client, tally, *request)) is not None:
        try:
            request = steps.send(resp)
        except StopIteration as done:
            return done.value
    return None


def _drive(client: httpx.Client, tally: Tally, steps: Steps) -> float | None:
    """:func:`_drive_async` on a sync client."""
    request = next(steps)
    while (resp := _send_sync(client, tally, *request)) is not None:
        try:
            request = steps.send(resp)
        except StopIteration as done:
            return done.value
    return None


def _send_sync(client: httpx.Client, tally: Tally, method: str, path: str,
               body: str | None = None) -> httpx.Response | None:
    try:
        resp = client.request(method, path, content=body)
    except httpx.TransportError as exc:
        tally.transport_error(exc)
        return None
    return resp if tally.record(resp) else None


async def _latency_to_available(url: str, token: str, connections: int, samples: int,
                                collection: str) -> tuple[list[float], Tally]:
    tally = Tally()
    found: list[float] = []
    per_worker = max(1, samples // connections)

    async def worker() -> None:
        # A client (and pool) per connection: one shared 16-connection pool costs the client
        # about 1.7x the CPU per request, which the latencies would then measure.
        async with _async_client(url, token, 1) as client:
            for _ in range(per_worker):
                took = await _drive_async(client, tally, _post_to_available(collection))
                if took is not None:
                    found.append(took)

    await asyncio.gather(*(worker() for _ in range(connections)))
    return found, tally


def latency_to_available(url: str, token: str, connections: int, samples: int,
                         collection: str = CREATE_PATH) -> tuple[list[float], Tally]:
    """POST→available times with ``connections`` clients each creating volumes in turn in
    ``collection`` (the Nova or the Cinder volumes path; both take the same body)."""
    if connections > 1:
        return asyncio.run(_latency_to_available(url, token, connections, samples, collection))
    tally = Tally()
    found: list[float] = []
    with httpx.Client(base_url=url, headers=headers(token), timeout=60) as client:
        for _ in range(samples):
            took = _drive(client, tally, _post_to_available(collection))
            if took is not None:
                found.append(took)
    return found, tally


async def _create_many(url: str, token: str, count: int, connections: int) -> Tally:
    tally = Tally()
    left = count

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await _send(client, tally, "POST", CREATE_PATH, CREATE_BODY)

    async with _async_client(url, token, connections) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return tally


def create_many(url: str, token: str, count: int, connections: int = 16) -> Tally:
    """Exactly ``count`` create requests, ``connections`` at a time."""
    return asyncio.run(_create_many(url, token, count, connections)) if count > 0 else Tally()


def timed_gets(url: str, token: str, path: str, repeat: int) -> tuple[list[float], Tally]:
    """Sequential GETs of ``path`` on one connection (after one untimed warm-up)."""
    tally = Tally()
    found: list[float] = []
    with httpx.Client(base_url=url, headers=headers(token), timeout=60) as client:
        client.get(path)
        for _ in range(repeat):
            start = time.perf_counter()
            try:
                resp = client.get(path)
            except httpx.TransportError as exc:
                tally.transport_error(exc)
                continue
            took = time.perf_counter() - start
            if tally.record(resp):
                found.append(took)
    return found, tally
