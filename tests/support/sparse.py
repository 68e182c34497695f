"""Sparse files with a few known islands of data, to check that copies keep both the bytes and
the holes (snapshots on the file backend)."""

from __future__ import annotations

import os
from pathlib import Path

MiB = 1024**2
# (offset, bytes) written into a 1 GiB volume: three small islands of data in a sea of holes.
ISLANDS = [(0, b"A" * 4096), (5 * MiB + 123, os.urandom(70_000)), (700 * MiB, b"Z" * 65536)]
WRITTEN = sum(len(data) for _, data in ISLANDS)


def write_islands(path: Path, islands: list[tuple[int, bytes]] = ISLANDS) -> None:
    with open(path, "r+b") as fh:
        for offset, data in islands:
            fh.seek(offset)
            fh.write(data)


def read_at(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def allocated(path: Path) -> int:
    """Bytes the file really occupies on disk."""
    return path.stat().st_blocks * 512


def assert_holds(path: Path, islands: list[tuple[int, bytes]] = ISLANDS) -> None:
    for offset, data in islands:
        assert read_at(path, offset, len(data)) == data, f"wrong bytes at {offset}"
