"""The file backend: a volume is a sparse raw file (or a qcow2 image) under the data directory.

Raw volumes are made with ``ftruncate``: no byte is written and creation does not depend on the
size, so a 1 TiB volume is as quick as a 1 GiB one. qcow2 volumes are made with ``qemu-img``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from stackvol.storage.base import ConnectionInfo, GiB, StorageDriver, StorageError


class FileDriver(StorageDriver):
    def __init__(self, root: Path, volume_format: str = "raw", name: str = "file") -> None:
        if volume_format not in ("raw", "qcow2"):
            raise ValueError(f"unsupported volume format {volume_format!r}")
        self.name = name
        self.format = volume_format
        self.root = root
        self.volumes_dir = root / "volumes"
        self.volumes_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, volume_id: str) -> Path:
        return self.volumes_dir / f"volume-{volume_id}.{self.format}"

    def create_volume(self, volume_id: str, size_gb: int) -> str:
        path = self.path_for(volume_id)
        try:
            if self.format == "raw":
                self._create_sparse(path, size_gb * GiB)
            else:
                self._qemu_img("create", "-q", "-f", "qcow2", str(path), f"{size_gb}G")
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
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def volume_exists(self, volume_id: str, location: str | None) -> bool:
        return (Path(location) if location else self.path_for(volume_id)).exists()

    def connection_info(self, volume_id: str, location: str) -> ConnectionInfo:
        return ConnectionInfo("file", {"device_path": location, "format": self.format,
                                       "volume_id": volume_id})

    @staticmethod
    def _qemu_img(*args: str) -> str:
        try:
            done = subprocess.run(["qemu-img", *args], capture_output=True, text=True,
                                  check=False, timeout=600)
        except FileNotFoundError as exc:
            raise StorageError("qemu-img is not installed (apt-get install qemu-utils)") from exc
        if done.returncode != 0:
            raise StorageError(f"qemu-img {args[0]} failed: {done.stderr.strip()}")
        return done.stdout
