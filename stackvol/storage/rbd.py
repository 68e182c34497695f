"""The Ceph RBD backend: a volume is an RBD image in one pool, reached by any host over the network.

A volume is the image ``volume-<id>`` (thin: no object exists until written), a snapshot the
RBD snapshot ``snapshot-<id>`` of its volume's image, protected so it can be cloned. A volume
made from a snapshot is a copy-on-write clone of it; it is flattened (made independent of its
parent) at once when ``rbd_flatten_volume_from_snapshot`` is set or when the chain of parents
would grow beyond ``rbd_max_clone_depth``.

Dependencies are resolved where Cinder refuses:

- deleting a snapshot that has clones flattens those clones first, so a volume made from a
  snapshot stays independent of it, as on the file backend (a snapshot delete never fails
  because volumes were made from it; it costs a copy of the blocks the clones still share);
- deleting a volume whose image still has snapshots fails with a clear error: the services
  refuse such deletes (or delete the snapshots first, for a cascade), so only snapshots made
  behind stackvol's back can get here, and those are not ours to drop.

Connection info is what QEMU's own RBD client needs (Cinder's ``rbd`` connection info): the
image, the monitors, the cephx user, its key and the uuid of the libvirt secret that holds it
(``rbd_secret_uuid``, else derived from the cluster's fsid and the user), so a volume made on
one host attaches on any host that reaches the monitors.

The Python bindings (``rados``, ``rbd``: Debian's python3-rados/python3-rbd, not on PyPI) are
imported on first use; one cluster connection serves every worker thread (librados is thread
safe and the bindings release the GIL), with an I/O context opened per call.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from stackvol.storage.base import ConnectionInfo, GiB, StorageDriver, StorageError

# How long a delete waits for an image's last client to close it before giving up.
BUSY_WAIT_SECONDS = 15.0

# Ceph's default features, named so clones (layering) work whatever ceph.conf says; object-map
# and fast-diff keep usage queries and deletes of big thin images quick.
_FEATURES = ("LAYERING", "EXCLUSIVE_LOCK", "OBJECT_MAP", "FAST_DIFF", "DEEP_FLATTEN")
# Libvirt secrets for Ceph keys: uuid5 in this namespace of "<fsid>/client.<user>".
SECRET_NAMESPACE = uuid.UUID("6b0f4c55-3d1e-4be6-9a53-7c1f0d1e2a10")
CLUSTER_NAME = "ceph"
CLONE_PREFIX = "clone-"


def _bindings() -> tuple[Any, Any]:
    try:
        import rados
        import rbd
    except ImportError as exc:
        raise StorageError("the rbd backend needs Ceph's Python bindings (Debian python3-rados "
                           "and python3-rbd, importable from stackvol's Python: run "
                           f"scripts/ceph-setup): {exc}") from exc
    return rados, rbd


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(f"not a boolean: {value!r}")
        return value.lower() in ("true", "1", "yes", "on")
    return bool(value)


def volume_image(volume_id: str) -> str:
    return f"volume-{volume_id}"


def snapshot_name(snapshot_id: str) -> str:
    return f"snapshot-{snapshot_id}"


def clone_snapshot_name(volume_id: str) -> str:
    """The snapshot of a source image a clone (``source_volid``) ``volume_id`` is made from."""
    return f"{CLONE_PREFIX}{volume_id}"


def _split_snapshot(location: str) -> tuple[str, str]:
    """``volume-<id>@snapshot-<id>`` (a snapshot's location) -> (image, snapshot)."""
    image, sep, snap = location.partition("@")
    if not sep or not image or not snap:
        raise StorageError(f"not an RBD snapshot location: {location!r}")
    return image, snap


class RbdDriver(StorageDriver):
    OPTIONS = ("rbd_pool", "rbd_user", "rbd_ceph_conf", "rbd_keyring", "rbd_secret_uuid",
               "rbd_flatten_volume_from_snapshot", "rbd_max_clone_depth",
               "rbd_connect_timeout")

    def __init__(self, name: str = "rbd", pool: str = "rbd", user: str = "admin",
                 ceph_conf: str = "/etc/ceph/ceph.conf", keyring: str | None = None,
                 secret_uuid: str | None = None, flatten_from_snapshot: bool = False,
                 max_clone_depth: int = 5, connect_timeout: float = 30.0) -> None:
        if max_clone_depth < 0:
            raise ValueError("rbd_max_clone_depth must be 0 or more")
        self.name = name
        self.pool = pool
        self.user = user
        self.ceph_conf = ceph_conf
        self.keyring = keyring or None
        self.secret_uuid = str(uuid.UUID(secret_uuid)) if secret_uuid else None
        self.flatten_from_snapshot = flatten_from_snapshot
        self.max_clone_depth = max_clone_depth
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> RbdDriver:
        """Options (Cinder's names): ``rbd_pool``, ``rbd_user``, ``rbd_ceph_conf``,
        ``rbd_keyring``, ``rbd_secret_uuid``, ``rbd_flatten_volume_from_snapshot``,
        ``rbd_max_clone_depth``, ``rbd_connect_timeout``."""
        unknown = set(options) - set(cls.OPTIONS)
        if unknown:
            raise ValueError(f"rbd backend {name!r}: unknown options "
                             f"{', '.join(sorted(unknown))} (known: {', '.join(cls.OPTIONS)})")
        try:
            return cls(name, pool=str(options.get("rbd_pool", "rbd")),
                       user=str(options.get("rbd_user", "admin")),
                       ceph_conf=str(options.get("rbd_ceph_conf", "/etc/ceph/ceph.conf")),
                       keyring=str(options.get("rbd_keyring") or "") or None,
                       secret_uuid=str(options.get("rbd_secret_uuid") or "") or None,
                       flatten_from_snapshot=_flag(
                           options.get("rbd_flatten_volume_from_snapshot", False)),
                       max_clone_depth=int(options.get("rbd_max_clone_depth", 5)),
                       connect_timeout=float(options.get("rbd_connect_timeout", 30)))
        except ValueError as exc:
            raise ValueError(f"rbd backend {name!r}: {exc}") from exc

    # --- the cluster connection -------------------------------------------------------------

    def client(self) -> Any:
        """The connected ``rados.Rados`` handle of this driver, connecting on first use."""
        with self._lock:
            if self._client is None:
                rados, _ = _bindings()
                conf = {"keyring": self.keyring} if self.keyring else {}
                client = None
                try:
                    client = rados.Rados(conffile=self.ceph_conf, rados_id=self.user,
                                         conf=conf)
                    client.conf_set("rados_mon_op_timeout", str(int(self.connect_timeout)))
                    client.connect(timeout=int(self.connect_timeout))
                except rados.Error as exc:
                    if client is not None:
                        client.shutdown()
                    raise StorageError(f"cannot connect to Ceph ({self.ceph_conf}) as "
                                       f"client.{self.user}: {exc}") from exc
                self._client = client
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.shutdown()
                self._client = None

    @contextlib.contextmanager
    def _ioctx(self, what: str) -> Iterator[Any]:
        """An I/O context on the pool; Ceph errors inside become StorageErrors about ``what``."""
        rados, rbd = _bindings()
        try:
            ioctx = self.client().open_ioctx(self.pool)
        except rados.ObjectNotFound as exc:
            raise StorageError(f"{what}: Ceph pool {self.pool!r} does not exist") from exc
        except rados.Error as exc:
            raise StorageError(f"{what}: cannot open Ceph pool {self.pool!r}: {exc}") from exc
        try:
            yield ioctx
        except (rados.Error, rbd.Error) as exc:
            raise StorageError(f"{what}: {exc}") from exc
        finally:
            ioctx.close()

    # --- volumes ----------------------------------------------------------------------------

    def _features(self) -> int:
        _, rbd = _bindings()
        features = 0
        for feature in _FEATURES:
            features |= getattr(rbd, f"RBD_FEATURE_{feature}")
        return features

    def create_volume(self, volume_id: str, size_gb: int) -> str:
        _, rbd = _bindings()
        name = volume_image(volume_id)
        # ImageExists: a re-run after a crash, made already.
        with self._ioctx(f"cannot create {name}") as ioctx, \
                contextlib.suppress(rbd.ImageExists):
            rbd.RBD().create(ioctx, name, size_gb * GiB, old_format=False,
                             features=self._features())
        return name

    def delete_volume(self, volume_id: str, location: str | None) -> None:
        _, rbd = _bindings()
        name = location or volume_image(volume_id)
        with self._ioctx(f"cannot delete {name}") as ioctx:
            try:
                parent = self._parent_of(ioctx, name)
                self._release_clones(ioctx, name)
                # A hypervisor that has just let go of a detached disk closes the image a
                # moment after the detach is confirmed.
                _while_busy(rbd.RBD().remove, ioctx, name)
                if parent is not None and parent["snap_name"] == clone_snapshot_name(volume_id):
                    self._drop_snapshot(parent)  # made for this clone alone
            except rbd.ImageNotFound:
                return
            except rbd.ImageHasSnapshots:
                snaps = self._snapshots(ioctx, name)
                raise StorageError(f"cannot delete {name}: its RBD image still has snapshots "
                                   f"({', '.join(snaps) or 'in the trash'}); delete them "
                                   f"first") from None
            except rbd.ImageBusy:
                raise StorageError(f"cannot delete {name}: a client still has the RBD image "
                                   f"open (watchers); detach it first") from None

    def _parent_of(self, ioctx: Any, name: str) -> dict[str, Any] | None:
        _, rbd = _bindings()
        with rbd.Image(ioctx, name, read_only=True) as image:
            return _parent_spec(image)

    def _release_clones(self, ioctx: Any, name: str) -> None:
        """Before an image goes: the clones made from it through ``clone-*`` snapshots are
        flattened (they keep their bytes) and those snapshots removed."""
        _, rbd = _bindings()
        for snap in self._snapshots(ioctx, name):
            if snap.startswith(CLONE_PREFIX):
                self._flatten_children(ioctx, name, snap)
                with rbd.Image(ioctx, name) as image:
                    if image.is_protected_snap(snap):
                        _while_busy(image.unprotect_snap, snap)
                    image.remove_snap(snap)

    def _drop_snapshot(self, spec: Mapping[str, Any]) -> None:
        """Unprotect and remove a snapshot named by a parent spec, if it is still there."""
        _, rbd = _bindings()
        with self.client().open_ioctx(spec["pool_name"]) as ioctx:
            ioctx.set_namespace(spec.get("pool_namespace") or "")
            try:
                image = rbd.Image(ioctx, spec["image_name"])
            except rbd.ImageNotFound:
                return
            with image:
                snap = spec["snap_name"]
                if snap not in {s["name"] for s in image.list_snaps()}:
                    return
                if image.is_protected_snap(snap):
                    _while_busy(image.unprotect_snap, snap)
                image.remove_snap(snap)

    def volume_exists(self, volume_id: str, location: str | None) -> bool:
        _, rbd = _bindings()
        name = location or volume_image(volume_id)
        with self._ioctx(f"cannot look up {name}") as ioctx:
            try:
                rbd.Image(ioctx, name, read_only=True).close()
            except rbd.ImageNotFound:
                return False
            return True

    def extend_volume(self, volume_id: str, location: str | None, new_size_gb: int) -> None:
        _, rbd = _bindings()
        name = location or volume_image(volume_id)
        with self._ioctx(f"cannot extend {name}") as ioctx:
            try:
                with rbd.Image(ioctx, name) as image:
                    if image.size() < new_size_gb * GiB:  # never shrink (a re-run is a no-op)
                        image.resize(new_size_gb * GiB)
            except rbd.ImageNotFound:
                raise StorageError(f"cannot extend {name}: it does not exist") from None

    # --- snapshots and volumes made from them -----------------------------------------------

    def create_snapshot(self, snapshot_id: str, volume_id: str, volume_location: str) -> str:
        _, rbd = _bindings()
        name = volume_location or volume_image(volume_id)
        snap = snapshot_name(snapshot_id)
        with self._ioctx(f"cannot snapshot {name}") as ioctx:
            try:
                with rbd.Image(ioctx, name) as image:
                    if snap not in {s["name"] for s in image.list_snaps()}:
                        image.create_snap(snap)
                    if not image.is_protected_snap(snap):  # a clone's parent must be
                        image.protect_snap(snap)
            except rbd.ImageNotFound:
                raise StorageError(f"cannot snapshot {name}: it does not exist") from None
        return f"{name}@{snap}"

    def delete_snapshot(self, snapshot_id: str, location: str | None) -> None:
        _, rbd = _bindings()
        snap = snapshot_name(snapshot_id)
        with self._ioctx(f"cannot delete snapshot {snap}") as ioctx:
            name = _split_snapshot(location)[0] if location else self._owner_of(ioctx, snap)
            if name is None:
                return
            try:
                image = rbd.Image(ioctx, name)
            except rbd.ImageNotFound:
                return  # the volume is gone, and its snapshots with it
            with image:
                if snap not in {s["name"] for s in image.list_snaps()}:
                    return
                self._flatten_children(ioctx, name, snap)
                if image.is_protected_snap(snap):
                    # A clone being deleted at this moment keeps it busy for a little while.
                    _while_busy(image.unprotect_snap, snap)
                image.remove_snap(snap)

    def _flatten_children(self, ioctx: Any, name: str, snap: str) -> None:
        """Make every clone of ``name@snap`` independent of it (copying the shared blocks)."""
        _, rbd = _bindings()
        with rbd.Image(ioctx, name, snapshot=snap, read_only=True) as at_snap:
            children = list(at_snap.list_children2())
        for child in children:
            with self.client().open_ioctx(child["pool"]) as child_ioctx:
                child_ioctx.set_namespace(child.get("pool_namespace") or "")
                try:
                    image = rbd.Image(child_ioctx, image_id=child["id"])
                except rbd.ImageNotFound:
                    continue  # a clone deleted meanwhile needs no flattening
                with image:
                    image.flatten()

    def _owner_of(self, ioctx: Any, snap: str) -> str | None:
        """The image that has snapshot ``snap`` (for a snapshot whose location was lost)."""
        _, rbd = _bindings()
        for name in rbd.RBD().list(ioctx):
            with contextlib.suppress(rbd.ImageNotFound):
                if snap in self._snapshots(ioctx, name):
                    return str(name)
        return None

    @staticmethod
    def _snapshots(ioctx: Any, name: str) -> list[str]:
        _, rbd = _bindings()
        with rbd.Image(ioctx, name, read_only=True) as image:
            return [s["name"] for s in image.list_snaps()]

    def create_cloned_volume(self, volume_id: str, size_gb: int, source_location: str) -> str:
        """A copy-on-write clone of the source image as of now, through its protected snapshot
        ``clone-<new volume id>`` (removed with the clone, or when the clone is flattened; a
        source deleted first flattens its clones)."""
        _, rbd = _bindings()
        snap = clone_snapshot_name(volume_id)
        name = volume_image(volume_id)
        with self._ioctx(f"cannot clone {source_location}") as ioctx:
            try:
                exists = self._snapshots(ioctx, name) is not None
            except rbd.ImageNotFound:
                exists = False
            if not exists:  # a re-run after the clone was made needs no new snapshot
                try:
                    with rbd.Image(ioctx, source_location) as image:
                        if snap not in {s["name"] for s in image.list_snaps()}:
                            image.create_snap(snap)
                        if not image.is_protected_snap(snap):
                            image.protect_snap(snap)
                except rbd.ImageNotFound:
                    raise StorageError(f"cannot clone {source_location}: it does not "
                                       f"exist") from None
        location = self.create_volume_from_snapshot(volume_id, size_gb,
                                                    f"{source_location}@{snap}")
        with self._ioctx(f"cannot clone {source_location}") as ioctx, \
                rbd.Image(ioctx, name, read_only=True) as image:
            flattened = _parent_spec(image) is None
        if flattened:  # nothing shares the snapshot's blocks any more
            self._drop_snapshot({"pool_name": self.pool, "image_name": source_location,
                                 "snap_name": snap})
        return location

    def create_volume_from_snapshot(self, volume_id: str, size_gb: int,
                                    snapshot_location: str) -> str:
        _, rbd = _bindings()
        parent, snap = _split_snapshot(snapshot_location)
        name = volume_image(volume_id)
        with self._ioctx(f"cannot create {name} from {snapshot_location}") as ioctx:
            try:
                rbd.RBD().clone(ioctx, parent, snap, ioctx, name, features=self._features())
            except rbd.ImageExists:
                pass  # a re-run after a crash: cloned already (size and flatten follow)
            except rbd.ImageNotFound:
                raise StorageError(f"cannot create {name}: snapshot {snapshot_location} "
                                   f"does not exist") from None
            with rbd.Image(ioctx, name) as image:
                if image.size() < size_gb * GiB:
                    image.resize(size_gb * GiB)
                depth = self._clone_depth(image)
                if depth and (self.flatten_from_snapshot or depth > self.max_clone_depth):
                    image.flatten()
        return name

    def _clone_depth(self, image: Any) -> int:
        """How many parents stand behind ``image`` (0: it is independent)."""
        _, rbd = _bindings()
        depth = 0
        spec = _parent_spec(image)
        while spec is not None:
            depth += 1
            with self.client().open_ioctx(spec["pool_name"]) as ioctx:
                ioctx.set_namespace(spec.get("pool_namespace") or "")
                with rbd.Image(ioctx, spec["image_name"], snapshot=spec["snap_name"],
                               read_only=True) as parent:
                    spec = _parent_spec(parent)
        return depth

    # --- connections ------------------------------------------------------------------------

    def connection_info(self, volume_id: str, location: str) -> ConnectionInfo:
        name = location or volume_image(volume_id)
        hosts, ports = self._monitors()
        client = self.client()
        auth = "cephx" in client.conf_get("auth_client_required")
        return ConnectionInfo("rbd", {
            "name": f"{self.pool}/{name}", "hosts": hosts, "ports": ports,
            "auth_enabled": auth, "auth_username": self.user if auth else None,
            "secret_type": "ceph", "secret_uuid": self.libvirt_secret_uuid() if auth else None,
            "key": self._cephx_key() if auth else None, "cluster_name": CLUSTER_NAME,
            "volume_id": volume_id})

    def libvirt_secret_uuid(self) -> str:
        """The libvirt secret holding our key: configured, else one per cluster and user."""
        if self.secret_uuid:
            return self.secret_uuid
        fsid = self.client().get_fsid()
        return str(uuid.uuid5(SECRET_NAMESPACE, f"{fsid}/client.{self.user}"))

    def _monitors(self) -> tuple[list[str], list[str]]:
        """Each monitor's address (msgr v2 where it has one), as Cinder reports them."""
        out = self._mon_command({"prefix": "mon dump", "format": "json"})
        hosts, ports = [], []
        for mon in json.loads(out).get("mons", []):
            addrs = mon.get("public_addrs", {}).get("addrvec", [])
            chosen = next((a for a in addrs if a.get("type") == "v2"), None) or \
                next(iter(addrs), None)
            address = chosen["addr"] if chosen else mon.get("addr", "").split("/")[0]
            host, _, port = address.rpartition(":")
            if host:
                hosts.append(host.strip("[]"))
                ports.append(port)
        if not hosts:
            raise StorageError("the Ceph monitor map lists no monitor address")
        return hosts, ports

    def _mon_command(self, command: dict[str, Any]) -> str:
        try:
            ret, out, err = self.client().mon_command(json.dumps(command), b"",
                                                      timeout=int(self.connect_timeout))
        except Exception as exc:  # rados.Error, or a timeout
            raise StorageError(f"ceph {command['prefix']}: {exc}") from exc
        if ret != 0:
            raise StorageError(f"ceph {command['prefix']} failed ({ret}): {err}")
        return out.decode()

    def _cephx_key(self) -> str | None:
        """The user's key (base64) from its keyring, else from the monitors if they let us;
        ``None``: the compute hosts must hold the libvirt secret already (Nova's way)."""
        entity = f"client.{self.user}"
        paths = [self.keyring] if self.keyring else \
            self.client().conf_get("keyring").split(",")
        for path in paths:
            keyring = configparser.ConfigParser(interpolation=None, strict=False)
            with contextlib.suppress(OSError, configparser.Error):
                keyring.read_string(Path(path.strip()).read_text())
                if keyring.has_option(entity, "key"):
                    return keyring.get(entity, "key").strip()
        with contextlib.suppress(StorageError):
            return self._mon_command({"prefix": "auth get-key", "entity": entity}).strip()
        return None


def _parent_spec(image: Any) -> dict[str, Any] | None:
    _, rbd = _bindings()
    try:
        return dict(image.get_parent_image_spec())
    except rbd.ImageNotFound:  # no parent
        return None


def _while_busy(call: Any, *args: Any) -> None:
    """Call, retrying for up to ``BUSY_WAIT_SECONDS`` while Ceph says the image is busy."""
    _, rbd = _bindings()
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        try:
            call(*args)
            return
        except rbd.ImageBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.25)
