"""Running ``qemu-img``, and the disk formats it reads by their Glance names."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from stackvol.storage.base import StorageError

# Glance disk formats QEMU reads, by QEMU's name for them (QEMU calls VHD "vpc").
QEMU_FORMATS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc",
                "vhdx": "vhdx"}


class QemuImgFailed(StorageError):
    """``qemu-img`` ran and said no; ``stderr`` is what it said."""

    def __init__(self, command: str, stderr: str) -> None:
        super().__init__(f"qemu-img {command} failed: {stderr}")
        self.stderr = stderr


def qemu_img(*args: str, timeout: float = 600) -> str:
    """Run ``qemu-img ARGS``; its stdout."""
    try:
        done = subprocess.run(["qemu-img", *args], capture_output=True, text=True,
                              check=False, timeout=timeout)
    except FileNotFoundError as exc:
        raise StorageError("qemu-img is not installed (apt-get install qemu-utils)") from exc
    if done.returncode != 0:
        raise QemuImgFailed(args[0], done.stderr.strip())
    return done.stdout


def info(path: Path, fmt: str | None = None, force_share: bool = False,
         timeout: float = 120) -> dict[str, Any]:
    """What ``qemu-img info`` reads in the file at ``path`` (as ``fmt`` if given, else what it
    detects; ``force_share``: even while a running QEMU has it open)."""
    args = [*(["-f", fmt] if fmt else []), *(["-U"] if force_share else [])]
    return json.loads(qemu_img("info", *args, "--output=json", str(path), timeout=timeout))
