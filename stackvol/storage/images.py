"""The image store: each image's bytes in one file under the store's directory, named by its id.

Uploads stream into a temporary file beside the final one while their checksums are computed;
the file is checked for the disk format it claims (``qemu-img info``, as Glance's format
inspector does), synced and only then renamed to the image's name. So the final name only ever
holds complete, verified bytes. A crash mid-upload leaves a temporary file named by the image
and the uploading process, removed when the upload is reset (``discard_upload``), or by
``remove_leftovers`` once idle for long.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from stackvol.storage import qemu_img
from stackvol.storage.base import StorageError
from stackvol.storage.files import publish
from stackvol.storage.qemu_img import QEMU_FORMATS

HASH_ALGO = "sha512"
# Writes and hashes go to a thread in batches this big: the event loop never waits on a disk.
_BATCH = 4 * 1024 * 1024
READ_CHUNK = 1024 * 1024
_TEMP_PREFIX = ".upload-"


class UnexpectedFormat(StorageError):
    """The uploaded bytes are not an image of the declared (or any safe) disk format."""


@dataclass(frozen=True, slots=True)
class StoredImage:
    path: Path
    size: int
    checksum: str  # md5, as Glance's ``checksum``
    hash_algo: str
    hash_value: str
    virtual_size: int | None


class _Upload:
    """One upload in progress: the temporary file and the running checksums."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Truncated, not exclusive: one image streams into one owner's file at a time, and a
        # file of this name is the leftover of that owner's own cut-off upload.
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.multihash = hashlib.new(HASH_ALGO)

    def absorb(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        self.md5.update(data)
        self.multihash.update(data)
        self.size += len(data)

    def finish(self) -> None:
        os.close(self.fd)  # synced as it is published
        self.fd = -1

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class ImageStore:
    """Image files under ``root``; every method that touches the disk is safe to re-run."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, image_id: str) -> Path:
        return self.root / image_id

    def upload_path(self, image_id: str, owner: str) -> Path:
        """Where ``owner`` (a process name) streams ``image_id``'s bytes before they are
        complete: known from the database row alone, so whoever resets the upload removes it."""
        digest = hashlib.sha1(owner.encode(), usedforsecurity=False).hexdigest()[:12]
        return self.root / f"{_TEMP_PREFIX}{image_id}-{digest}"

    def discard_upload(self, image_id: str, owner: str) -> None:
        """Remove what an interrupted upload of ``owner`` wrote (if this store holds it)."""
        with contextlib.suppress(FileNotFoundError):
            self.upload_path(image_id, owner).unlink()

    async def write(self, image_id: str, chunks: AsyncIterable[bytes],
                    disk_format: str | None, max_size: int | None = None,
                    owner: str = "") -> StoredImage:
        """Stream ``chunks`` in as ``image_id``'s bytes (through ``owner``'s temporary
        file); nothing stays behind if it fails."""
        upload = _Upload(self.upload_path(image_id, owner))
        try:
            pending: list[bytes] = []
            queued = 0
            async for chunk in chunks:
                pending.append(chunk)
                queued += len(chunk)
                if max_size is not None and upload.size + queued > max_size:
                    raise StorageError(f"Image exceeds the storage limit of {max_size} bytes")
                if queued >= _BATCH:
                    await anyio.to_thread.run_sync(upload.absorb, b"".join(pending))
                    pending, queued = [], 0
            await anyio.to_thread.run_sync(upload.absorb, b"".join(pending))
            await anyio.to_thread.run_sync(upload.finish)
            virtual_size = await anyio.to_thread.run_sync(inspect, upload.path, disk_format,
                                                          upload.size)
            final = self.path_for(image_id)
            await anyio.to_thread.run_sync(publish, upload.path, final)
        except BaseException:
            # Shielded: a cancelled (cut-off) upload still removes its temporary file.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(upload.discard)
            raise
        return StoredImage(final, upload.size, upload.md5.hexdigest(), HASH_ALGO,
                           upload.multihash.hexdigest(), virtual_size)

    def fill(self, image_id: str, owner: str, disk_format: str | None,
             make: Callable[[Path], None]) -> StoredImage:
        """Blocking: ``make`` writes ``image_id``'s bytes into ``owner``'s temporary file (an
        upload made here, e.g. from a volume); checked, hashed and published as ``write``
        does. Nothing stays behind if it fails."""
        path = self.upload_path(image_id, owner)
        try:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by a run that was cut off
            make(path)
            size, md5, multihash = _digests(path)
            virtual_size = inspect(path, disk_format, size)
            final = self.path_for(image_id)
            publish(path, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise
        return StoredImage(final, size, md5, HASH_ALGO, multihash, virtual_size)

    async def read(self, path: Path, chunk_size: int = READ_CHUNK) -> AsyncIterator[bytes]:
        """The bytes of a stored image, a chunk at a time."""
        handle = await anyio.open_file(path, "rb")
        try:
            while chunk := await handle.read(chunk_size):
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await handle.aclose()

    def delete(self, image_id: str, path: Path | None = None) -> None:
        with contextlib.suppress(FileNotFoundError):
            (path or self.path_for(image_id)).unlink()

    def remove_leftovers(self, idle_seconds: float = 600.0) -> int:
        """Delete temporary files of uploads that stopped long ago (a crash); how many.

        Files written to recently are left alone: another process may share the store.
        """
        count = 0
        cutoff = time.time() - idle_seconds
        for leftover in self.root.glob(f"{_TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    count += 1
        return count


def _digests(path: Path) -> tuple[int, str, str]:
    """A written file's size, md5 (Glance's ``checksum``) and multihash."""
    md5, multihash, size = hashlib.md5(usedforsecurity=False), hashlib.new(HASH_ALGO), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_BATCH):
            md5.update(chunk)
            multihash.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest(), multihash.hexdigest()


def inspect(path: Path, disk_format: str | None, size: int) -> int | None:
    """The virtual size of the image at ``path``, after checking it is what it claims to be.

    Formats qemu-img knows must match what it detects; a raw image may not carry another
    format's header (a qcow2 in disguise could point at host files), and no image may name a
    backing or external data file. Kernels, ramdisks and others are taken as they are.
    """
    expected = QEMU_FORMATS.get(disk_format or "")
    if expected is None or size == 0:
        return None
    try:
        info = qemu_img.info(path)
    except qemu_img.QemuImgFailed as exc:
        raise UnexpectedFormat(f"Image content is not a valid disk image: {exc.stderr}") from None
    detected = info.get("format")
    if detected != expected:
        raise UnexpectedFormat(f"Image content does not match disk_format {disk_format}: "
                               f"detected {detected}")
    if info.get("backing-filename") or info.get("format-specific", {}).get(
            "data", {}).get("data-file"):
        raise UnexpectedFormat("Image refers to a backing or data file, which is not allowed")
    if expected == "raw":
        return size  # qemu-img rounds up to whole sectors; a raw image is its bytes
    virtual = info.get("virtual-size")
    return int(virtual) if virtual is not None else None
