"""NBD exports of volume files, served by ``qemu-storage-daemon`` for hypervisors on other hosts.

One daemon per exported volume: it opens the volume itself (raw, or qcow2 through its own qcow2
layer, so clients always read the guest-visible raw bytes), serves exactly one export whose name
is a random token, and listens on a socket we bind first on the configured address with a port
the kernel picks (handed over as a file descriptor: no window where another process could take
the port). One process per volume keeps teardown a single signal, lets one volume fail without
touching others, and needs no monitor protocol; a daemon costs ~2 MB and starts in ~15 ms.

Daemons run in their own session, so they outlive the worker that started them (a guest keeps
its disk while the volume worker restarts). Each export is recorded in
``<state_dir>/<volume_id>.json`` (pid, port, name, and the attachments holding it); every call is
idempotent against that record: an export whose daemon is alive is reused, one whose daemon died
(host reboot) is started again on its old port where that port is free.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stackvol.storage.base import StorageError
from stackvol.storage.files import publish

log = logging.getLogger(__name__)

DAEMON = "qemu-storage-daemon"
_STOP_SECONDS = 5.0


@dataclass(slots=True)
class Export:
    """One running export: where it listens and who holds it."""

    volume_id: str
    path: str
    format: str  # of the file; clients see raw
    address: str
    port: int
    name: str
    pid: int
    holders: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"nbd://{host}:{self.port}/{self.name}"


class NbdExports:
    """The NBD exports this host serves for one backend (records under ``state_dir``)."""

    def __init__(self, state_dir: Path, address: str = "127.0.0.1") -> None:
        self.state_dir = state_dir
        self.address = address

    # --- records --------------------------------------------------------------------------

    def _record(self, volume_id: str) -> Path:
        if not volume_id or "/" in volume_id or volume_id.startswith("."):
            raise StorageError(f"invalid volume id {volume_id!r}")
        return self.state_dir / f"{volume_id}.json"

    def get(self, volume_id: str) -> Export | None:
        try:
            return Export(**json.loads(self._record(volume_id).read_text()))
        except FileNotFoundError:
            return None

    def _save(self, export: Export) -> None:
        path = self._record(export.volume_id)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(export), sort_keys=True))
        publish(tmp, path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One change at a time on this host: threads of a worker and workers sharing a dir."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --- the calls ------------------------------------------------------------------------

    def ensure(self, volume_id: str, path: Path, file_format: str, holder: str) -> Export:
        """The volume's export, started if it is not running, with ``holder`` recorded."""
        with self._locked():
            export = self.get(volume_id)
            if export is None or not running(export):
                export = self._start(volume_id, path, file_format, export)
            if holder not in export.holders:
                export.holders.append(holder)
            self._save(export)
            return export

    def release(self, volume_id: str, holder: str | None) -> None:
        """``holder`` lets go; the export stops once nobody holds it (``None``: stop now)."""
        with self._locked():
            export = self.get(volume_id)
            if export is None:
                return
            if holder is not None:
                export.holders = [h for h in export.holders if h != holder]
                if export.holders:
                    self._save(export)
                    return
            _stop(export)
            self._record(volume_id).unlink(missing_ok=True)
            log.info("NBD export of volume %s stopped", volume_id)

    def restore(self) -> None:
        """After a restart of this host: bring back recorded exports whose daemon is gone."""
        if not self.state_dir.is_dir():
            return
        for record in sorted(self.state_dir.glob("*.json")):
            export = self.get(record.stem)
            if export is None or running(export):
                continue
            if not Path(export.path).exists():
                self.release(export.volume_id, None)
                continue
            with contextlib.suppress(StorageError):
                self.ensure(export.volume_id, Path(export.path), export.format,
                            export.holders[0] if export.holders else "restored")

    def volume_ids(self) -> list[str]:
        return sorted(p.stem for p in self.state_dir.glob("*.json"))

    # --- the daemon -----------------------------------------------------------------------

    def _start(self, volume_id: str, path: Path, file_format: str,
               previous: Export | None) -> Export:
        if not path.exists():
            raise StorageError(f"cannot export {path.name}: it does not exist")
        listener = self._listen(previous.port if previous else 0)
        try:
            name = previous.name if previous else secrets.token_hex(16)
            pid = self._spawn(volume_id, path, file_format, name, listener)
            port = listener.getsockname()[1]
        finally:
            listener.close()  # the daemon holds its own copy
        log.info("NBD export of volume %s on %s:%d (pid %d)", volume_id, self.address, port,
                 pid)
        return Export(volume_id=volume_id, path=str(path), format=file_format,
                      address=self.address, port=port, name=name, pid=pid,
                      holders=list(previous.holders) if previous else [])

    def _listen(self, port: int) -> socket.socket:
        """A listening socket on the export address: the old port if free, else any."""
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        for wanted in dict.fromkeys((port, 0)):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.address, wanted))
                sock.listen(64)
                return sock
            except OSError as exc:
                sock.close()
                if wanted == 0:
                    raise StorageError(f"cannot listen on {self.address}: {exc}") from exc
        raise AssertionError("unreachable")

    def _spawn(self, volume_id: str, path: Path, file_format: str, name: str,
               listener: socket.socket) -> int:
        pidfile = self.state_dir / f".{volume_id}.pid"
        pidfile.unlink(missing_ok=True)
        fd = listener.fileno()
        node = "file"
        blockdevs = [{"driver": "file", "node-name": "file", "filename": str(path)}]
        if file_format == "qcow2":
            blockdevs.append({"driver": "qcow2", "node-name": "disk", "file": "file"})
            node = "disk"
        args = [DAEMON, "--daemonize", "--pidfile", str(pidfile)]
        for blockdev in blockdevs:
            args += ["--blockdev", json.dumps(blockdev)]
        args += ["--nbd-server", json.dumps({"addr": {"type": "fd", "str": str(fd)}}),
                 "--export", json.dumps({"type": "nbd", "id": "export", "node-name": node,
                                         "name": name, "writable": True})]
        try:
            # --daemonize: the parent exits once the export is being served.
            done = subprocess.run(args, pass_fds=[fd], capture_output=True, text=True,
                                  timeout=60, check=False)
        except FileNotFoundError as exc:
            raise StorageError(f"{DAEMON} is not installed (apt-get install qemu-system-"
                               f"common or qemu-utils)") from exc
        if done.returncode != 0:
            raise StorageError(f"cannot export volume {volume_id}: {done.stderr.strip()}")
        try:
            return int(pidfile.read_text().strip())
        finally:
            pidfile.unlink(missing_ok=True)


def running(export: Export) -> bool:
    """Whether the export's daemon is alive (and is that daemon, not a reused pid)."""
    try:
        with open(f"/proc/{export.pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
        with open(f"/proc/{export.pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return DAEMON.encode() in cmdline and export.name.encode() in cmdline


def _stop(export: Export) -> None:
    """SIGTERM (the daemon flushes and closes the file), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not running(export):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(export.pid, sig)
        deadline = time.monotonic() + _STOP_SECONDS
        while time.monotonic() < deadline and running(export):
            time.sleep(0.01)
    if running(export):
        raise StorageError(f"the NBD export of volume {export.volume_id} (pid {export.pid}) "
                           f"does not stop")
