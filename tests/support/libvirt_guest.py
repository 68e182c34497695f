"""Helpers for tests and benchmarks on the libvirt driver: is libvirt here, servers booted on it
(waited for until their guest answers), and the guest's view.

The guest is reached through its shell agent (see ``stackvol.virt.guest_image``); the host's
view (domains, QEMU processes) is read from libvirt and ``/proc`` directly, not through stackvol.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackvol.virt.guest_image import agent_run
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import IMAGE

URI = "qemu:///system"
SETUP = Path(__file__).resolve().parents[2] / "scripts" / "libvirt-setup"
DETACH_TIMEOUT = 8  # a guest unplugs a disk in well under a second
DETACH_ATTEMPTS = 3  # unplug requests before a detach gives up (Nova sends 8)
FLAVOR = "1"  # m1.tiny; memory capped for the built-in guest (libvirt_settings)
BOOT = 180.0  # generous: TCG on a busy 2-core machine


STARTED: list[bool] = []  # set once this process started the daemons (stop them after)


def libvirt_missing() -> str | None:
    """Why libvirt cannot be used here (``None``: it can). Starts the daemons if installed."""
    try:
        from stackvol.virt import libvirt as driver

        driver._libvirt()
    except Exception as exc:
        return f"libvirt-python is not installed ({exc}); pip install -e '.[libvirt]'"
    reason = driver.unavailable(URI)
    if reason and shutil.which("libvirtd") and os.geteuid() == 0 and SETUP.exists():
        done = subprocess.run([str(SETUP)], capture_output=True, text=True, check=False,
                              timeout=300)
        reason = driver.unavailable(URI) if done.returncode == 0 else done.stderr[-500:]
        STARTED.append(done.returncode == 0)
    if reason:
        return f"no libvirt daemon at {URI} and none could be started: {reason}"
    return None


def require_libvirt() -> None:
    """Skip the test where no libvirt daemon can be had here; fail instead under CI, whose
    ``.ci/run`` installs and starts one."""
    reason = libvirt_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs libvirt (.ci/run), yet: {reason}")
        pytest.skip(reason)


def libvirt_settings(root: Path) -> dict[str, Any]:
    """Settings of a stackvol process on the libvirt driver booting the built-in guest (its
    cache under ``root``) with the memory capped to what that guest needs."""
    return {"compute_driver": "libvirt", "libvirt_max_memory_mb": 256,
            "guest_image_dir": str(root / "guest-image"),
            "libvirt_detach_timeout": DETACH_TIMEOUT, "libvirt_detach_attempts": DETACH_ATTEMPTS}


def delete_all_servers(api: StackvolProcess, timeout: float = 60) -> None:
    """Delete whatever servers a (failed) test left, and wait until they are gone."""
    with api.client("admin") as admin:
        for server in admin.get("/servers").json().get("servers", []):
            admin.delete(f"/servers/{server['id']}")
        wait_for(lambda: admin.get("/servers").json()["servers"], lambda s: not s, timeout)


@contextmanager
def libvirt_cloud(root: Path, before_daemons_stop: Callable[[], None] | None = None,
                  **settings: Any) -> Iterator[StackvolProcess]:
    """A stackvol process on libvirt (data under ``root``) that leaves no guest behind, and
    no libvirt daemon it started; skips (fails under CI) where libvirt cannot be had."""
    require_libvirt()
    proc = StackvolProcess(root / "data", **libvirt_settings(root), **settings)
    proc.start(timeout=120)
    try:
        yield proc
    finally:
        delete_all_servers(proc)
        proc.stop()
        destroy_domains_of(proc.data_dir)  # even those a failed delete left behind
        if before_daemons_stop is not None:
            before_daemons_stop()
        stop_started_daemons()


def stop_started_daemons() -> None:
    """Stop the daemons ``libvirt_missing`` started, if it did (by their PID files)."""
    if any(STARTED):
        subprocess.run([str(SETUP), "stop"], check=False, timeout=60)
        STARTED.clear()


def destroy_domains_of(data_dir: Path) -> None:
    """Remove every domain the stackvol of ``data_dir`` made (a test's last clean-up)."""
    from stackvol.virt.libvirt import LibvirtDriver

    driver = LibvirtDriver(data_dir, URI)
    for server_id in driver.servers():
        driver.destroy(server_id)


def connection() -> Any:  # a libvirt.virConnect (libvirt is imported lazily)
    import libvirt

    return libvirt.open(URI)


def domain_names(prefix: str = "stackvol-") -> set[str]:
    conn = connection()
    try:
        return {d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix)}
    finally:
        conn.close()


def agent_socket(server_id: str) -> str:
    """The host end of a running server's agent port, from the live domain XML."""
    from defusedxml.ElementTree import fromstring

    conn = connection()
    try:
        xml = fromstring(conn.lookupByName(f"stackvol-{server_id}").XMLDesc(0))
    finally:
        conn.close()
    for channel in xml.iterfind("devices/channel"):
        source, target = channel.find("source"), channel.find("target")
        if target is not None and target.get("name") == "org.stackvol.agent":
            return source.get("path")
    raise AssertionError(f"server {server_id} has no agent channel")


def guest(server_id: str, command: str, timeout: float = 60.0) -> str:
    """Run a command in the guest; its output (fails the test on a non-zero status)."""
    status, output = agent_run(agent_socket(server_id), command, timeout)
    assert status == 0, f"guest command {command!r} failed ({status}): {output}"
    return output


def read_disk(server_id: str, disk: str, offset: int, length: int) -> str:
    """``length`` bytes (at most a sector) at byte ``offset`` (sector-aligned) of the guest's
    ``/dev/DISK``, as the guest reads them."""
    return guest(server_id, f"dd if=/dev/{disk} bs=512 skip={offset // 512} count=1 "
                            f"2>/dev/null | head -c {length}")


def wait_agent(server_id: str, timeout: float = 180.0) -> float:
    """Wait until the guest has booted and its agent answers; seconds it took."""
    start = time.monotonic()
    while True:
        try:
            agent_run(agent_socket(server_id), "true", timeout=2.0)
            return time.monotonic() - start
        except Exception:
            if time.monotonic() - start > timeout:
                raise
            time.sleep(0.2)


def disk_with_serial(server_id: str, volume_id: str, timeout: float = 30.0) -> str | None:
    """The guest's block device whose virtio serial is the volume's id (as virtio cuts it)."""
    serial = volume_id[:20]
    script = (f'for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "{serial}" ] '
              f'&& echo ${{d##*/}}; done; true')
    deadline = time.monotonic() + timeout
    while True:
        found = guest(server_id, script).strip()
        if found or time.monotonic() > deadline:
            return found or None
        time.sleep(0.1)


def qemu_pids(server_id: str) -> list[int]:
    """QEMU processes running the server's domain (read from /proc, not from libvirt)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"guest=stackvol-{server_id}".encode() in cmdline:
            pids.append(int(entry.name))
    return pids


# --- servers on a libvirt stackvol ----------------------------------------------------------


def boot(client: httpx.Client, name: str, **extra: Any) -> str:
    """Create a server (no network) and return its id at once."""
    body = {"name": name, "flavorRef": FLAVOR, "networks": "none", **extra}
    body.setdefault("imageRef", IMAGE)  # any image boots the built-in guest
    resp = client.post("/servers", json={"server": body}, headers={
        "OpenStack-API-Version": "compute 2.37"})
    assert resp.status_code == 202, resp.text
    return resp.json()["server"]["id"]


def server_status(client: httpx.Client, server_id: str, wanted: str,
                  timeout: float = BOOT) -> dict:
    """Wait until the server is ``wanted`` (ERROR fails at once); its view then."""
    found = wait_for(lambda: client.get(f"/servers/{server_id}").json()["server"],
                     lambda s: s["status"] in (wanted, "ERROR"), timeout, interval=0.1)
    assert found["status"] == wanted, found
    return found


def running_guest(client: httpx.Client, name: str) -> str:
    """A booted server whose guest agent answers."""
    server_id = boot(client, name)
    server_status(client, server_id, "ACTIVE")
    wait_agent(server_id, BOOT)
    return server_id
