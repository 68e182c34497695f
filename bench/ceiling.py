"""The ceiling: a bare Starlette app on the same server stack as stackvol, answering fixed JSON.

    .venv/bin/python -m bench.ceiling --port 8999

uvicorn with loop="uvloop" and http="httptools", as ``stackvol serve`` runs, on the paths the
benchmark hits (both faces), with no database, no auth check and no validation: what one Python
process on this machine can answer at most. The benchmark (bench/api.py) measures it in the same
run as stackvol, pinned the same way, and prints each stackvol number as a share of it.

A create answers 202 with a ``creating`` volume and a show answers an ``available`` one, so a
POST->available loop ends after one GET. The lists answer ``LISTED`` volumes, so the show
workload can rotate over their ids as it does on stackvol.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.server import await_health, free_port

LISTED = 1000
_CREATED_AT = "2026-01-01T00:00:00.000000"
_ID = "6f1c4a52-0c9b-4d0e-9d5a-3c1c2b7c9e01"


def _nova_volume(volume_id: str, status: str) -> dict[str, Any]:
    """The Nova os-volumes view (the shape of doc/api_samples/os-volumes)."""
    return {"id": volume_id, "status": status, "size": 1, "availabilityZone": "nova",
            "createdAt": _CREATED_AT, "displayName": None, "displayDescription": None,
            "volumeType": "__DEFAULT__", "snapshotId": None, "metadata": {},
            "attachments": [{}]}


def _cinder_volume(volume_id: str, status: str) -> dict[str, Any]:
    """The Cinder v3 volume view (the keys of a 3.0 show)."""
    link = f"http://127.0.0.1/volume/v3/p/volumes/{volume_id}"
    return {"id": volume_id, "status": status, "size": 1, "availability_zone": "nova",
            "created_at": _CREATED_AT, "updated_at": _CREATED_AT, "name": None,
            "description": None, "volume_type": "__DEFAULT__", "snapshot_id": None,
            "source_volid": None, "metadata": {}, "attachments": [], "bootable": "false",
            "encrypted": False, "multiattach": False, "replication_status": None,
            "consistencygroup_id": None, "migration_status": None,
            "user_id": "0d1b6f3e6f4a4c4f9b1e2d3c4b5a6978",
            "links": [{"rel": "self", "href": link}, {"rel": "bookmark", "href": link}]}


_IDS = [str(uuid.uuid5(uuid.NAMESPACE_OID, str(n))) for n in range(LISTED)]
# The same content every time, answered as a Starlette app answers JSON (JSONResponse encodes
# it per response): any JSON API serialises what it sends, so that is part of the ceiling.
_BODIES = {
    ("nova", "create"): {"volume": _nova_volume(_ID, "creating")},
    ("nova", "show"): {"volume": _nova_volume(_ID, "available")},
    ("nova", "list"): {"volumes": [{"id": i, "displayName": None} for i in _IDS]},
    ("nova", "detail"): {"volumes": [_nova_volume(i, "available") for i in _IDS]},
    ("cinder", "create"): {"volume": _cinder_volume(_ID, "creating")},
    ("cinder", "show"): {"volume": _cinder_volume(_ID, "available")},
    ("cinder", "list"): {"volumes": [{"id": i, "name": None, "links": []} for i in _IDS]},
    ("cinder", "detail"): {"volumes": [_cinder_volume(i, "available") for i in _IDS]},
}


def _fixed(face: str, what: str, status: int = 200) -> Any:
    body = _BODIES[(face, what)]

    async def endpoint(request: Request) -> Response:
        if request.method == "POST":
            await request.body()  # read it, as a real create must
        return JSONResponse(body, status_code=status)

    return endpoint


async def healthcheck(request: Request) -> Response:
    return Response(b"OK", media_type="text/plain")


def _routes(face: str, collection: str) -> list[Route]:
    # /detail before /{volume_id}, as in stackvol's own routing.
    return [Route(collection, _fixed(face, "create", 202), methods=["POST"]),
            Route(collection, _fixed(face, "list"), methods=["GET"]),
            Route(collection + "/detail", _fixed(face, "detail"), methods=["GET"]),
            Route(collection + "/{volume_id}", _fixed(face, "show"), methods=["GET"])]


def create_app() -> Starlette:
    return Starlette(routes=[
        Route("/healthcheck", healthcheck, methods=["GET"]),
        *_routes("nova", "/v2.1/os-volumes"),
        *_routes("cinder", "/volume/v3/{project_id}/volumes"),
        *_routes("cinder", "/v3/{project_id}/volumes"),
    ])


class CeilingProcess:
    """``python -m bench.ceiling`` as a child process on a free loopback port."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> CeilingProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.ceiling", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
        if await_health(self.proc, self.url, timeout):
            return self
        if self.proc.poll() is not None:
            raise RuntimeError(f"the ceiling server exited; see {self.log_path}")
        self.stop()
        raise TimeoutError(f"the ceiling server did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    # The same server options as stackvol serve (stackvol/cli/main.py), minus the app.
    uvicorn.run(create_app(), host=args.host, port=args.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
