"""A private single-node Ceph cluster for tests and benchmarks: one mon, one memstore OSD.

Built by hand as the machine notes describe (no systemd, no LVM, no cephadm): keys with
``ceph-authtool``, a monmap with ``monmaptool``, ``ceph-mon --mkfs``, ``osd new`` and
``ceph-osd --mkfs``, then both daemons in the foreground as children of this process (so
stopping them is a signal and a ``wait()``). Everything lives in a temporary directory; the mon
listens on 127.0.0.1 on a free port, msgr v2 only (a client given a bare ``host:port``, as
libvirt/QEMU pass it, speaks v2 to any port but 6789), so two test runs can share a machine.
The OSD keeps its objects in RAM (``memstore``), cephx is on, pools have one replica. No mgr:
RBD does not need one.

A pool ``volumes`` (``rbd pool init``) and a client ``client.stackvol`` with ``profile rbd`` caps
and its own keyring are made at start; ``backend_options()`` are the stackvol rbd backend options
that reach them, ``stackvol_settings()`` the settings of a stackvol process serving them. The
``ceph`` fixture (conftest.py) is ``cluster_or_skip()``: one cluster per test run, started on
first use and stopped at the end; where Ceph is missing (``missing()``) tests skip, or fail under
CI, which installs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.support import daemons
from tests.support.server import free_port

SETUP = Path(__file__).resolve().parents[2] / "scripts" / "ceph-setup"
POOL = "volumes"
USER = "stackvol"  # the cephx client stackvol uses: client.stackvol
MON_ID = "a"
MEMSTORE_BYTES = 4 * 1024**3  # RAM only as objects are written: a thin volume costs nothing
TOOLS = ("ceph-mon", "ceph-osd", "ceph-authtool", "monmaptool", "ceph", "rbd")


def missing() -> str | None:
    """Why no Ceph cluster can be started here (``None``: one can)."""
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        return f"Ceph is not installed ({', '.join(absent)} missing): run scripts/ceph-setup"
    try:
        import rados  # noqa: F401
        import rbd  # noqa: F401
    except ImportError as exc:
        return f"the rados/rbd Python bindings are not importable ({exc}): run scripts/ceph-setup"
    return None


class CephCluster:
    """One throw-away cluster; see the module docstring."""

    def __init__(self, pool: str = POOL, user: str = USER) -> None:
        self.pool = pool
        self.user = user
        self.fsid = str(uuid.uuid4())
        self.root = Path(tempfile.mkdtemp(prefix="stackvol-ceph-"))
        self.conf_path = self.root / "ceph.conf"
        self.admin_keyring = self.root / "ceph.client.admin.keyring"
        self.keyring_path = self.root / f"ceph.client.{user}.keyring"
        self.mon_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    # --- what other tests use ---------------------------------------------------------------

    @property
    def mon_address(self) -> str:
        """The monitor's msgr v2 address, ``host:port``."""
        return f"127.0.0.1:{self.mon_port}"

    @property
    def client_name(self) -> str:
        return f"client.{self.user}"

    def backend_options(self, **extra: Any) -> dict[str, Any]:
        """Options of a stackvol ``rbd`` backend on this cluster's pool, as ``client.stackvol``."""
        return {"rbd_pool": self.pool, "rbd_user": self.user,
                "rbd_ceph_conf": str(self.conf_path), "rbd_keyring": str(self.keyring_path),
                **extra}

    def stackvol_settings(self, backend: str = "ceph", **options: Any) -> dict[str, str]:
        """``StackvolProcess`` settings for a process whose only storage backend is an
        ``rbd`` backend named ``backend`` on this cluster (``options``: more rbd options)."""
        table = {"driver": "rbd", **self.backend_options(**options)}
        return {"enabled_backends": backend, "backends": json.dumps({backend: table})}

    def cli(self, *args: str, timeout: float = 60) -> str:
        """Run a Ceph tool (``ceph``, ``rbd``, ...) as client.admin; its stdout."""
        cmd = [args[0], "-c", str(self.conf_path), "--keyring", str(self.admin_keyring),
               *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    @contextlib.contextmanager
    def admin_connection(self) -> Iterator[Any]:
        """A connected ``rados.Rados`` as client.admin, shut down on leaving."""
        import rados

        cluster = rados.Rados(conffile=str(self.conf_path), rados_id="admin",
                              conf={"keyring": str(self.admin_keyring)})
        cluster.connect(timeout=30)
        try:
            yield cluster
        finally:
            cluster.shutdown()

    def images(self) -> list[str]:
        """The RBD images in the pool, as client.admin sees them."""
        import rbd

        with self.admin_connection() as cluster, cluster.open_ioctx(self.pool) as ioctx:
            return sorted(rbd.RBD().list(ioctx))

    @contextlib.contextmanager
    def image(self, name: str, snapshot: str | None = None) -> Iterator[Any]:
        """An open ``rbd.Image`` of the pool (at ``snapshot``: read only), as client.admin."""
        import rbd

        with self.admin_connection() as cluster, cluster.open_ioctx(self.pool) as ioctx, \
                rbd.Image(ioctx, name, snapshot=snapshot, read_only=snapshot is not None) as img:
            yield img

    def write(self, name: str, offset: int, data: bytes) -> None:
        """Write ``data`` into image ``name`` at ``offset`` through librbd (and flush it)."""
        with self.image(name) as img:
            img.write(data, offset)
            img.flush()

    def read(self, name: str, offset: int, length: int, snapshot: str | None = None) -> bytes:
        with self.image(name, snapshot) as img:
            return bytes(img.read(offset, length))

    def snapshots(self, name: str) -> dict[str, bool]:
        """Image ``name``'s RBD snapshots: name -> protected."""
        with self.image(name) as img:
            return {s["name"]: img.is_protected_snap(s["name"]) for s in img.list_snaps()}

    def parent_spec(self, name: str) -> dict[str, Any] | None:
        """librbd's parent spec of image ``name`` (None: not a clone)."""
        import rbd

        with self.image(name) as img:
            try:
                return dict(img.get_parent_image_spec())
            except rbd.ImageNotFound:
                return None

    def parent(self, name: str) -> str | None:
        """The ``image@snapshot`` image ``name`` is a clone of (None: not a clone)."""
        spec = self.parent_spec(name)
        return None if spec is None else f"{spec['image_name']}@{spec['snap_name']}"

    def used_bytes(self, name: str) -> int:
        """What ``rbd du`` says image ``name`` (its head) occupies."""
        found = json.loads(self.cli("rbd", "du", "--format", "json", f"{self.pool}/{name}"))
        return sum(i["used_size"] for i in found["images"] if i.get("snapshot") is None)

    # --- start and stop ---------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> CephCluster:
        try:
            self._write_conf()
            self._make_keys()
            deadline = time.monotonic() + timeout
            self._start_mon()
            self._wait(lambda: _listening(self.mon_port), deadline, "the mon to listen")
            with self.admin_connection() as cluster:
                self._start_osd(cluster)
                # A pool made before its OSD is up leaves first writes waiting for seconds.
                self._wait(lambda: self._osds_up(cluster) > 0, deadline, "the OSD to be up")
                self._make_pool(cluster, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _write_conf(self) -> None:
        root = self.root
        for sub in ("run", "log", "mon", "osd"):
            (root / sub).mkdir()
        self.conf_path.write_text(f"""\
[global]
fsid = {self.fsid}
mon host = v2:127.0.0.1:{self.mon_port}
ms bind msgr1 = false
public addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = {root}/run
admin socket = {root}/run/$cluster-$name.asok
pid file = {root}/run/$cluster-$name.pid
log file = {root}/log/$cluster-$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
[mon]
mon data = {root}/mon/$cluster-$id
mon initial members = {MON_ID}
paxos propose interval = 0.1
paxos min wait = 0.01
[osd]
osd data = {root}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = {MEMSTORE_BYTES}
osd crush update on start = true
[client]
keyring = {root}/$cluster.$name.keyring
""")

    def _authtool(self, keyring: Path, *args: str) -> None:
        _run("ceph-authtool", str(keyring), *args)

    def _make_keys(self) -> None:
        """The mon's keyring seeds the auth database with the admin and stackvol clients."""
        mon_keyring = self.root / "mon.keyring"
        self._authtool(mon_keyring, "--create-keyring", "--gen-key", "-n", "mon.",
                       "--cap", "mon", "allow *")
        self._authtool(self.admin_keyring, "--create-keyring", "--gen-key", "-n", "client.admin",
                       "--cap", "mon", "allow *", "--cap", "osd", "allow *",
                       "--cap", "mgr", "allow *")
        self._authtool(self.keyring_path, "--create-keyring", "--gen-key", "-n",
                       self.client_name, "--cap", "mon", "profile rbd",
                       "--cap", "osd", f"profile rbd pool={self.pool}",
                       "--cap", "mgr", f"profile rbd pool={self.pool}")
        for keyring in (self.admin_keyring, self.keyring_path):
            self._authtool(mon_keyring, "--import-keyring", str(keyring))

    def _start_mon(self) -> None:
        monmap = self.root / "monmap"
        _run("monmaptool", "--create", "--fsid", self.fsid, "--addv", MON_ID,
             f"[v2:127.0.0.1:{self.mon_port}]", str(monmap))
        _run("ceph-mon", "-c", str(self.conf_path), "--mkfs", "-i", MON_ID,
             "--monmap", str(monmap), "--keyring", str(self.root / "mon.keyring"))
        self._spawn("ceph-mon", "-i", MON_ID)

    def _start_osd(self, cluster: Any) -> None:
        osd_uuid = str(uuid.uuid4())
        key = _run("ceph-authtool", "--gen-print-key").strip()
        created = _mon_command(cluster, {"prefix": "osd new", "uuid": osd_uuid, "format": "json"},
                               json.dumps({"cephx_secret": key}).encode())
        osd_id = str(json.loads(created)["osdid"])
        data = self.root / "osd" / f"ceph-{osd_id}"
        data.mkdir()
        self._authtool(data / "keyring", "--create-keyring", "--name", f"osd.{osd_id}",
                       "--add-key", key)
        _run("ceph-osd", "-c", str(self.conf_path), "-i", osd_id, "--mkfs",
             "--osd-uuid", osd_uuid)
        self._spawn("ceph-osd", "-i", osd_id)

    def _make_pool(self, cluster: Any, deadline: float) -> None:
        import rbd

        _mon_command(cluster, {"prefix": "osd pool create", "pool": self.pool, "pg_num": 8})
        _mon_command(cluster, {"prefix": "osd pool application enable", "pool": self.pool,
                               "app": "rbd"})
        with cluster.open_ioctx(self.pool) as ioctx:
            self._wait(lambda: _writable(ioctx), deadline, "the pool to take writes")
            rbd.RBD().pool_init(ioctx, True)

    @staticmethod
    def _osds_up(cluster: Any) -> int:
        return int(json.loads(_mon_command(cluster, {"prefix": "osd stat",
                                                     "format": "json"}))["num_up_osds"])

    def _wait(self, done: Callable[[], bool], deadline: float, what: str) -> None:
        while not done():
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"Ceph: timed out waiting for {what}:\n{self.logs()}")
            time.sleep(0.05)

    def _spawn(self, daemon: str, *args: str) -> None:
        self.procs.append(daemons.spawn([daemon, "-f", "-c", str(self.conf_path), *args],
                                        self.root / "log" / f"{daemon}.out", cwd=self.root))

    def _check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}):\n"
                                   + self.logs())

    def logs(self, tail: int = 3000) -> str:
        """The end of every daemon log (for failure messages)."""
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}"
                         for path in sorted((self.root / "log").glob("*")))

    def stop(self) -> None:
        """Stop the OSD, then the mon (each waited for), and remove everything."""
        for proc in reversed(self.procs):
            daemons.stop(proc)
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> CephCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _run(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _writable(ioctx: Any) -> bool:
    """Whether a write to the pool succeeds (it waits while its placement groups peer)."""
    try:
        ioctx.write_full("stackvol-ready", b"ok")
        ioctx.remove_object("stackvol-ready")
    except Exception:
        return False
    return True


def _mon_command(cluster: Any, command: dict[str, Any], inbuf: bytes = b"") -> str:
    ret, out, err = cluster.mon_command(json.dumps(command), inbuf, timeout=30)
    if ret != 0:
        raise RuntimeError(f"ceph {command['prefix']} failed ({ret}): {err}")
    return out.decode()


def cluster_or_skip() -> CephCluster:
    """This run's cluster; skips the test where Ceph is not installed (fails under CI, whose
    ``.ci/run`` installs it)."""
    import pytest

    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs Ceph (.ci/run, scripts/ceph-setup), yet: {reason}")
        pytest.skip(reason)
    return shared_cluster()


_shared = daemons.Shared(lambda: CephCluster().start())
# The cluster of this test run, started on first use and stopped when Python exits.
shared_cluster = _shared.get
stop_shared_cluster = _shared.stop

