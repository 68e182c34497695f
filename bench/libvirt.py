"""Real servers on libvirt/QEMU: how long a server, an attach and a detach take, end to end.

    .venv/bin/python -m bench.libvirt              # 3 rounds on TCG
    .venv/bin/python -m bench.libvirt --rounds 5 --virt-type kvm   # where KVM really works

It starts its own ``stackvol serve`` on the libvirt driver (a fresh temporary data directory,
guests capped at 256 MiB, the built-in guest image built first and not timed) and, each round,
through the Compute API: creates a server and times create → ``ACTIVE`` (the domain runs) and
→ guest agent answering (the guest has booted); creates a 1 GiB volume; times attach →
``in-use`` (libvirt shows the disk in the live domain) and → the guest sees the disk with the
volume's id as serial; times detach → ``available`` (the guest released it); then deletes the
server and the volume. Prints min / median / max of each. Needs a libvirt daemon
(``scripts/libvirt-setup``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from stackvol.virt import guest_image
from tests.support import libvirt_guest as lg
from tests.support.server import StackvolProcess

IMAGE = "70a599e0-31e7-49b7-b260-868f441e862b"


def _until(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> float:
    """Seconds until ``done(fetch())``; raises if it never is."""
    start = time.monotonic()
    while True:
        value = fetch()
        if done(value):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"gave up after {timeout:g} s; last: {value}")
        time.sleep(0.02)


def _status(client: httpx.Client, path: str, key: str) -> Callable[[], str]:
    return lambda: client.get(path).json()[key]["status"]


def one_round(client: httpx.Client) -> dict[str, float]:
    times: dict[str, float] = {}
    start = time.monotonic()
    resp = client.post("/servers", json={"server": {
        "name": "bench", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}},
        headers={"OpenStack-API-Version": "compute 2.37"})
    resp.raise_for_status()
    server_id = resp.json()["server"]["id"]
    _until(_status(client, f"/servers/{server_id}", "server"), lambda s: s == "ACTIVE", 300)
    times["create → ACTIVE"] = time.monotonic() - start
    lg.wait_agent(server_id, 300)
    times["create → guest booted"] = time.monotonic() - start

    resp = client.post("/os-volumes", json={"volume": {"size": 1}})
    resp.raise_for_status()
    volume_id = resp.json()["volume"]["id"]
    volume = _status(client, f"/os-volumes/{volume_id}", "volume")
    _until(volume, lambda s: s == "available", 60)

    start = time.monotonic()
    client.post(f"/servers/{server_id}/os-volume_attachments",
                json={"volumeAttachment": {"volumeId": volume_id}}).raise_for_status()
    _until(volume, lambda s: s == "in-use", 60)
    times["attach → in-use"] = time.monotonic() - start
    if not lg.disk_with_serial(server_id, volume_id, timeout=30):
        raise RuntimeError("the guest never saw the attached disk")
    times["attach → seen in guest"] = time.monotonic() - start

    start = time.monotonic()
    client.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}").raise_for_status()
    _until(volume, lambda s: s == "available", 60)
    times["detach → available"] = time.monotonic() - start

    start = time.monotonic()
    client.delete(f"/servers/{server_id}").raise_for_status()
    _until(lambda: client.get(f"/servers/{server_id}").status_code, lambda c: c == 404, 60)
    times["delete → gone"] = time.monotonic() - start
    client.delete(f"/os-volumes/{volume_id}")
    return times


def run(args: argparse.Namespace) -> int:
    reason = lg.libvirt_missing()
    if reason:
        print(f"bench.libvirt: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="stackvol-bench-libvirt-") as tmp:
        root = Path(tmp)
        image_dir = root / "guest-image"
        built = time.monotonic()
        guest_image.ensure(image_dir)
        print(f"guest image ready in {time.monotonic() - built:.1f} s (not timed below)")
        server = StackvolProcess(root / "data", compute_driver="libvirt",
                                 libvirt_virt_type=args.virt_type, libvirt_max_memory_mb=256,
                                 guest_image_dir=str(image_dir), log_level="WARNING")
        server.start(timeout=120)
        try:
            with server.client("admin") as client:
                rounds = []
                for index in range(args.rounds):
                    rounds.append(one_round(client))
                    print(f"round {index + 1}: " + ", ".join(
                        f"{k} {v:.2f} s" for k, v in rounds[-1].items()), flush=True)
        finally:
            server.stop()
            lg.stop_started_daemons()
    print(f"\n{args.virt_type.upper()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
          f"{args.rounds} rounds")
    print(f"| {'step':<24} | {'min':>7} | {'median':>7} | {'max':>7} |")
    print(f"|{'-' * 26}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for step in rounds[0]:
        values = [r[step] for r in rounds]
        print(f"| {step:<24} | {min(values):>6.2f}s | {statistics.median(values):>6.2f}s | "
              f"{max(values):>6.2f}s |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.libvirt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="servers to build in turn")
    parser.add_argument("--virt-type", choices=("qemu", "kvm"), default="qemu",
                        help="qemu (TCG, default) or kvm")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
