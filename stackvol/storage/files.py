"""Files that survive a crash: complete bytes are synced, then renamed into place, then the
rename itself is synced (its directory), so a name only ever holds complete bytes."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, target: Path) -> None:
    """Put the complete file ``tmp`` in place as ``target``, durably."""
    fsync_path(tmp)
    os.replace(tmp, target)
    fsync_path(target.parent)
