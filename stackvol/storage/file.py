"""The file backend: a volume is a sparse raw file (or a qcow2 image) under the data directory.

Raw volumes are made with ``ftruncate``: no byte is written and creation does not depend on the
size, so a 1 TiB volume is as quick as a 1 GiB one. qcow2 volumes are made with ``qemu-img``.

A compute host that cannot reach the files (another host, unless listed in ``shared_hosts``)
gets an NBD export of the volume instead of its path (``storage/exports.py``): the export runs here,
on the storage host, and stops when the last attachment holding it ends or the volume is deleted.

A snapshot is an independent point-in-time copy under ``snapshots/``: a reflink where the file
system shares extents (XFS, Btrfs), else a copy of the allocated extents only, so its cost follows
the data written, not the volume size. Copies are built under a temporary name and renamed into
place, so the final name only ever holds a complete copy and a re-run after a crash starts clean.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from stackvol.storage.base import ConnectionInfo, GiB, StorageDriver, StorageError
from stackvol.storage.exports import NbdExports
from stackvol.storage.files import fsync_path, publish
from stackvol.storage.qemu_img import qemu_img

FORMATS = ("raw", "qcow2")
# linux/fs.h FICLONE: make the target share the source's extents, copy-on-write, in one call.
_FICLONE = 0x40049409
_COPY_CHUNK = 16 * 1024 * 1024
# copy_file_range refusals that mean "not between these files": fall back to read/write.
_NO_COPY_RANGE = (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


class FileDriver(StorageDriver):
    """Volumes in ``<root>/volumes``, snapshots in ``<root>/snapshots``, unless either
    directory is given."""

    OPTIONS = ("volumes_dir", "snapshots_dir", "volume_format", "host", "shared_hosts",
               "export_address", "exports_dir")

    def __init__(self, root: Path, volume_format: str = "raw", name: str = "file", *,
                 volumes_dir: Path | None = None, snapshots_dir: Path | None = None,
                 host: str = "", shared_hosts: Iterable[str] = (),
                 export_address: str = "127.0.0.1", exports_dir: Path | None = None) -> None:
        """``host``: the storage host's name (its volume worker's ``compute_host``). Compute
        hosts other than it and ``shared_hosts`` ("*": every host) are served over NBD from
        ``export_address``; the exports are recorded under ``exports_dir``/``host``."""
        if volume_format not in FORMATS:
            raise ValueError(f"unsupported volume format {volume_format!r} (raw or qcow2)")
        self.name = name
        self.format = volume_format
        self.volumes_dir = volumes_dir or root / "volumes"
        self.volumes_dir.mkdir(parents=True, exist_ok=True)
        self.snapshots_dir = snapshots_dir or root / "snapshots"
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.shared_hosts = frozenset(h for h in shared_hosts if h)
        # Per storage host: workers on several hosts may share one directory.
        self.exports = NbdExports((exports_dir or root / "exports") / (host or "local"),
                                  export_address)

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> FileDriver:
        """Options: ``volumes_dir``, ``snapshots_dir`` (both required), ``volume_format``."""
        unknown = set(options) - set(cls.OPTIONS)
        if unknown:
            raise ValueError(f"file backend {name!r}: unknown options "
                             f"{', '.join(sorted(unknown))} (known: {', '.join(cls.OPTIONS)})")
        volumes_dir = Path(options["volumes_dir"])
        shared = options.get("shared_hosts") or ()
        return cls(volumes_dir, str(options.get("volume_format", "raw")), name,
                   volumes_dir=volumes_dir, snapshots_dir=Path(options["snapshots_dir"]),
                   host=str(options.get("host") or ""),
                   shared_hosts=[shared] if isinstance(shared, str) else shared,
                   export_address=str(options.get("export_address") or "127.0.0.1"),
                   exports_dir=Path(options["exports_dir"]) if options.get("exports_dir")
                   else None)

    def path_for(self, volume_id: str) -> Path:
        return self.volumes_dir / f"volume-{volume_id}.{self.format}"

    def capacity_gb(self) -> tuple[float, float]:
        """The file system holding the volumes: its size and what is free, in GiB."""
        fs = os.statvfs(self.volumes_dir)
        return (round(fs.f_blocks * fs.f_frsize / GiB, 2),
                round(fs.f_bavail * fs.f_frsize / GiB, 2))

    def create_volume(self, volume_id: str, size_gb: int) -> str:
        path = self.path_for(volume_id)
        try:
            if self.format == "raw":
                self._create_sparse(path, size_gb * GiB)
            else:
                qemu_img("create", "-q", "-f", "qcow2", str(path), f"{size_gb}G")
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            raise StorageError(f"cannot create {path.name}: {exc.strerror or exc}") from exc
        return str(path)

    @staticmethod
    def _create_sparse(path: Path, size: int) -> None:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
        finally:
            os.close(fd)

    def delete_volume(self, volume_id: str, location: str | None) -> None:
        path = Path(location) if location else self.path_for(volume_id)
        self.exports.release(volume_id, None)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def volume_exists(self, volume_id: str, location: str | None) -> bool:
        return (Path(location) if location else self.path_for(volume_id)).exists()

    def connection_info(self, volume_id: str, location: str) -> ConnectionInfo:
        return ConnectionInfo("file", {"device_path": location, "format": self.format,
                                       "volume_id": volume_id})

    def is_local(self, connector: Mapping[str, Any] | None) -> bool:
        """Whether the connector's host reaches the files by path (no export needed)."""
        host = (connector or {}).get("host")
        return (not host or not self.host or host == self.host or "*" in self.shared_hosts
                or host in self.shared_hosts)

    def creates_quickly(self) -> bool:
        return self.format == "raw"  # a sparse file: open, truncate, close (qcow2 runs qemu-img)

    def connects_quickly(self, connector: Mapping[str, Any] | None) -> bool:
        return self.is_local(connector)  # a path to hand over, or nothing to undo

    def initialize_connection(self, volume_id: str, location: str,
                              connector: Mapping[str, Any] | None) -> ConnectionInfo:
        if self.is_local(connector):
            return self.connection_info(volume_id, location)
        path = Path(location) if location else self.path_for(volume_id)
        export = self.exports.ensure(volume_id, path, _format_of(path), _holder(connector))
        # The daemon opens the file in its own format: clients see the raw guest bytes.
        return ConnectionInfo("nbd", {"host": export.address, "port": export.port,
                                      "export": export.name, "format": "raw",
                                      "volume_id": volume_id, "exporter": self.host})

    def terminate_connection(self, volume_id: str, location: str | None,
                             connector: Mapping[str, Any] | None) -> None:
        if not self.is_local(connector):
            self.exports.release(volume_id, _holder(connector))

    def restore(self) -> None:
        self.exports.restore()

    def extend_volume(self, volume_id: str, location: str | None, new_size_gb: int) -> None:
        """Grow the volume in place to ``new_size_gb`` (sparse: the new space is a hole)."""
        path = Path(location) if location else self.path_for(volume_id)
        if not path.exists():
            raise StorageError(f"cannot extend {path.name}: it does not exist")
        try:
            self._grow(path, new_size_gb, _format_of(path))
            fsync_path(path)
        except OSError as exc:
            raise StorageError(f"cannot extend {path.name}: {exc.strerror or exc}") from exc

    # --- snapshots and volumes made from them -----------------------------------------------

    def snapshot_path(self, snapshot_id: str, volume_format: str) -> Path:
        return self.snapshots_dir / f"snapshot-{snapshot_id}.{volume_format}"

    def create_snapshot(self, snapshot_id: str, volume_id: str, volume_location: str) -> str:
        source = Path(volume_location) if volume_location else self.path_for(volume_id)
        fmt = _format_of(source)
        target = self.snapshot_path(snapshot_id, fmt)
        if not target.exists():  # the final name appears only once the copy is complete
            self._build(target, lambda tmp: self._copy(source, fmt, tmp, fmt))
        return str(target)

    def delete_snapshot(self, snapshot_id: str, location: str | None) -> None:
        paths = [Path(location)] if location else [self.snapshot_path(snapshot_id, fmt)
                                                   for fmt in FORMATS]
        for path in paths:
            for leftover in (path, _temp_name(path)):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    def create_volume_from_snapshot(self, volume_id: str, size_gb: int,
                                    snapshot_location: str) -> str:
        return self._copy_volume(volume_id, size_gb, Path(snapshot_location))

    def create_cloned_volume(self, volume_id: str, size_gb: int, source_location: str) -> str:
        """A copy of another volume's file, as of now: a reflink or the allocated extents of a
        raw file, ``qemu-img convert`` for qcow2 (and between formats)."""
        return self._copy_volume(volume_id, size_gb, Path(source_location))

    def _copy_volume(self, volume_id: str, size_gb: int, source: Path) -> str:
        """A new volume of ``size_gb`` holding the bytes of the file ``source``."""
        target = self.path_for(volume_id)

        def fill(tmp: Path) -> None:
            self._copy(source, _format_of(source), tmp, self.format)
            self._grow(tmp, size_gb, self.format)

        if not target.exists():  # as above: renamed into place only when complete
            self._build(target, fill)
        return str(target)

    def copy_image_to_volume(self, volume_id: str, size_gb: int, image_path: str,
                             image_format: str) -> str:
        """``qemu-img convert`` the image into the volume's format (zeros stay holes), then
        grow it to the volume's size; renamed into place only when complete."""
        target = self.path_for(volume_id)

        def fill(tmp: Path) -> None:
            qemu_img("convert", "-q", "-f", image_format, "-O", self.format, image_path,
                     str(tmp))
            self._grow(tmp, size_gb, self.format)

        if not target.exists():
            self._build(target, fill)
        return str(target)

    def copy_volume_to_image(self, volume_id: str, location: str, target: str,
                             image_format: str) -> None:
        """``qemu-img convert`` the volume's file (``-U``: a guest may hold it open) into
        ``target``; zeros stay holes in a raw image and are left out of a qcow2."""
        source = Path(location) if location else self.path_for(volume_id)
        qemu_img("convert", "-q", "-U", "-f", _format_of(source), "-O", image_format,
                 str(source), target)

    def _build(self, target: Path, fill: Callable[[Path], None]) -> None:
        """Make ``target`` by filling a temporary file, then renaming it into place durably."""
        tmp = _temp_name(target)
        try:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()  # left by a run that crashed
            fill(tmp)
            publish(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise StorageError(f"cannot create {target.name}: {exc.strerror or exc}") from exc
            raise

    def _copy(self, source: Path, source_format: str, target: Path, target_format: str) -> None:
        """An independent copy (never a backing-file chain), costing what the source holds."""
        if source_format == target_format == "raw":
            _clone_or_copy_extents(source, target)
        else:
            # convert writes a flat image (no backing file) and skips unallocated clusters;
            # -U: the source may be attached to a running guest (which holds QEMU's lock).
            qemu_img("convert", "-q", "-U", "-f", source_format, "-O", target_format,
                     str(source), str(target))

    def _grow(self, path: Path, size_gb: int, volume_format: str) -> None:
        """Grow (never shrink) the file to ``size_gb``; the new space stays unallocated."""
        if volume_format == "raw":
            with open(path, "r+b") as fh:
                if os.fstat(fh.fileno()).st_size < size_gb * GiB:
                    os.ftruncate(fh.fileno(), size_gb * GiB)
        else:
            qemu_img("resize", "-q", "-f", "qcow2", str(path), f"{size_gb}G")



def _holder(connector: Mapping[str, Any] | None) -> str:
    """Who holds an export: the attachment when known, else the connecting host."""
    connector = connector or {}
    return str(connector.get("attachment_id") or connector.get("host") or "")


def _format_of(path: Path) -> str:
    return "qcow2" if path.suffix == ".qcow2" else "raw"


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _clone_or_copy_extents(source: Path, target: Path) -> None:
    """Reflink ``source`` to ``target``; where the file system cannot, copy only its data."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        size = os.fstat(src.fileno()).st_size
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except OSError:
            pass  # ext4, tmpfs, another file system: no shared extents here
        for start, end in _data_extents(src.fileno(), size):
            _copy_range(src.fileno(), dst.fileno(), start, end)
        os.ftruncate(dst.fileno(), size)  # trailing hole: size without allocation


def _data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The ``[start, end)`` ranges of ``fd`` that hold data, found with SEEK_DATA/SEEK_HOLE."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole from pos to the end
                return
            if exc.errno == errno.EINVAL and pos == 0:  # no SEEK_DATA here: copy it all
                yield 0, size
                return
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        pos = end


def _copy_range(src: int, dst: int, start: int, end: int) -> None:
    """Copy bytes ``[start, end)`` to the same offsets, in the kernel where it can."""
    offset = start
    while offset < end:
        count = min(_COPY_CHUNK, end - offset)
        try:
            done = os.copy_file_range(src, dst, count, offset, offset)
        except OSError as exc:
            if exc.errno not in _NO_COPY_RANGE:
                raise
            data = os.pread(src, count, offset)
            done = os.pwrite(dst, data, offset) if data else 0
        if done == 0:  # the source ended early (it shrank): nothing more to copy
            return
        offset += done
