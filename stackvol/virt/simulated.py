"""A compute driver with no hypervisor: servers are small JSON files that remember their state.

Each server is ``<data_dir>/compute/simulated/<server_id>.json`` holding its power state and the
volumes connected to it. A crash leaves either the old or the new state, never half of one;
that lets a recovery check compare what the "hypervisor" holds with what the database says.
A state that fits in the file's first page is written over the old one in place, with one
``pwrite`` padded with JSON whitespace to the old length (a write within one page of the page
cache is whole or absent after a kill -9); a bigger one, or one that would leave much padding,
is replaced atomically (a temporary file, then ``os.replace``). The in-place write is what
attach and detach take: on ext4 the rename over the old file starts writeback of the new one
(``auto_da_alloc``), ~0.3 ms each, most of the driver's share of a cycle. A crash here
is the process's (kill -9): what it wrote is in the page cache and survives it, so the files are
not fsynced. The host's own crash may lose the last changes, as it loses a real hypervisor's
running guests and, with ``synchronous=NORMAL``, the database's last commits; an fsync per
attach and detach cost ~3 ms each, most of a Nova attach+detach cycle.

A volume served over NBD (from another host's export) is really opened, as a hypervisor would:
``qemu-img info`` reads it over the network before the attach counts, so an export that does
not answer fails the attach here too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from stackvol.virt.base import ComputeDriver, ComputeError, InstanceSpec, PowerState

# One page of the page cache: a pwrite inside it is copied whole before a kill can land.
_PAGE = 4096
# An in-place state this much shorter than the file is written anew instead (keeps files small).
_MAX_PADDING = 1024
_TORN_READ_RETRIES = 5


class SimulatedDriver(ComputeDriver):
    name = "simulated"

    def __init__(self, data_dir: Path, host: str | None = None) -> None:
        self.root = Path(data_dir) / "compute" / "simulated"
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host or socket.gethostname()
        # Read-modify-write of one file must not interleave between worker threads.
        self._lock = threading.Lock()

    # --- the state files ------------------------------------------------------------------

    def _path(self, server_id: str) -> Path:
        if not server_id or "/" in server_id or server_id.startswith("."):
            raise ComputeError(f"invalid server id {server_id!r}")
        return self.root / f"{server_id}.json"

    def _read(self, server_id: str) -> dict[str, Any] | None:
        path = self._path(server_id)
        for _ in range(_TORN_READ_RETRIES):
            try:
                return json.loads(path.read_bytes())
            except FileNotFoundError:
                return None
            except ValueError:
                # Another process's reader can meet a page being overwritten in place (a few
                # microseconds): read again.
                continue
        return json.loads(path.read_bytes())

    def _write(self, server_id: str, state: dict[str, Any]) -> None:
        data = json.dumps(state, sort_keys=True).encode()
        if not self._overwrite(self._path(server_id), data):
            self._replace(server_id, data)

    @staticmethod
    def _overwrite(path: Path, data: bytes) -> bool:
        """Write ``data`` over the file in place when it stays within the first page and
        leaves little padding; False (nothing written) otherwise."""
        if len(data) > _PAGE:
            return False
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            old = os.fstat(fd).st_size
            if old > _PAGE or old - len(data) > _MAX_PADDING:
                return False
            # Spaces to the old length: no truncate, so no moment with a cut-off file.
            padded = data.ljust(old, b" ")
            # A short write (a full disk) is mended by the atomic replace that follows.
            return os.pwrite(fd, padded, 0) == len(padded)
        finally:
            os.close(fd)

    def _replace(self, server_id: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{server_id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self._path(server_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _require(self, server_id: str) -> dict[str, Any]:
        state = self._read(server_id)
        if state is None:
            raise ComputeError(f"server {server_id} is not on host {self.host}")
        return state

    def _set_power(self, server_id: str, power: PowerState) -> None:
        with self._lock:
            state = self._require(server_id)
            if state["power_state"] != power:
                state["power_state"] = int(power)
                self._write(server_id, state)

    # --- ComputeDriver --------------------------------------------------------------------

    def spawn(self, spec: InstanceSpec) -> None:
        with self._lock:
            state = self._read(spec.server_id) or {"volumes": {}}
            state.update({
                "server_id": spec.server_id, "name": spec.name, "vcpus": spec.vcpus,
                "memory_mb": spec.memory_mb, "disk_gb": spec.disk_gb,
                "image_ref": spec.image_ref, "power_state": int(PowerState.RUNNING),
                # What a real hypervisor would boot: tests read it back.
                "boot_image": (dataclasses.asdict(spec.boot_image)
                               if spec.boot_image is not None else None),
            })
            self._write(spec.server_id, state)

    def destroy(self, server_id: str) -> None:
        with self._lock:
            self._path(server_id).unlink(missing_ok=True)

    def power_off(self, server_id: str) -> None:
        self._set_power(server_id, PowerState.SHUTDOWN)

    def power_on(self, server_id: str) -> None:
        self._set_power(server_id, PowerState.RUNNING)

    def reboot(self, server_id: str, hard: bool) -> None:
        # A soft reboot needs a running guest to ask; a hard one just power-cycles.
        with self._lock:
            state = self._require(server_id)
            if not hard and state["power_state"] != PowerState.RUNNING:
                raise ComputeError(f"server {server_id} is not running; cannot soft reboot")
            state["power_state"] = int(PowerState.RUNNING)
            state["boots"] = int(state.get("boots", 1)) + 1
            self._write(server_id, state)

    def power_state(self, server_id: str) -> PowerState:
        state = self._read(server_id)
        return PowerState.NOSTATE if state is None else PowerState(state["power_state"])

    def attach_volume(self, server_id: str, volume_id: str, connection_info: dict[str, Any],
                      device: str) -> None:
        if connection_info.get("driver_volume_type") == "nbd":
            self._require(server_id)  # an unknown server fails before the export is opened
            _open_nbd(connection_info.get("data") or {})
        with self._lock:
            state = self._require(server_id)
            # ``readonly``: what a hypervisor would enforce for access_mode ro.
            mode = (connection_info.get("data") or {}).get("access_mode")
            entry = {"device": device, "connection_info": connection_info,
                     "readonly": mode == "ro"}
            if state["volumes"].get(volume_id) != entry:
                state["volumes"][volume_id] = entry
                self._write(server_id, state)

    def attaches_quickly(self, connection_info: dict[str, Any]) -> bool:
        # A small JSON file rewritten; an NBD volume is opened with qemu-img first.
        return connection_info.get("driver_volume_type") != "nbd"

    def detach_volume(self, server_id: str, volume_id: str) -> None:
        with self._lock:
            state = self._read(server_id)
            if state is not None and state["volumes"].pop(volume_id, None) is not None:
                self._write(server_id, state)

    def console_output(self, server_id: str) -> str:
        """What the built-in guest prints on its console, simulated: its boot line and one
        line per disk it sees (the volume id is the disk's serial, as on libvirt)."""
        state = self._require(server_id)
        lines = ["stackvol guest: simulated up"]
        for volume_id, entry in state["volumes"].items():
            device = str(entry["device"]).removeprefix("/dev/")
            lines.append(f"stackvol guest: disk {device} serial {volume_id[:20]}")
        return "\n".join(lines) + "\n"

    def attached_volumes(self, server_id: str) -> dict[str, str]:
        state = self._read(server_id) or {"volumes": {}}
        return {vol: entry["device"] for vol, entry in state["volumes"].items()}

    def servers(self) -> list[str]:
        """Every server this host holds (for recovery checks)."""
        return sorted(p.stem for p in self.root.glob("*.json"))


def nbd_url(data: dict[str, Any]) -> str:
    """``nbd://host:port/export`` of NBD connection info (QEMU's URL syntax)."""
    host = str(data["host"])
    host = f"[{host}]" if ":" in host else host
    return f"nbd://{host}:{data['port']}/{data['export']}"


def _open_nbd(data: dict[str, Any]) -> None:
    """Open the export as QEMU's client does; ComputeError if it does not answer."""
    try:
        done = subprocess.run(["qemu-img", "info", "--output=json", nbd_url(data)],
                              capture_output=True, text=True, timeout=30, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired, KeyError) as exc:
        raise ComputeError(f"cannot open NBD volume: {exc}") from exc
    if done.returncode != 0:
        raise ComputeError(f"cannot open {nbd_url(data)}: {done.stderr.strip()}")
