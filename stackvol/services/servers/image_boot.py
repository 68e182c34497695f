"""Images as servers and volumes use them: the checks Nova and Cinder make before booting from an
image or copying one into a volume, and what a compute driver is handed to boot.

Images come from the Image service's records (``services.images``). The seeded built-in image
(``BUILTIN_GUEST_IMAGE``, the id of Nova's API samples) boots the compute driver's own built-in
guest (the same kernel and initramfs, booted directly); its id is accepted even where no record
holds it. Copied into a volume, it is the bootable disk its record stores.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, NotFound
from stackvol.services.flavors.api import Flavor
from stackvol.services.images import api as images
from stackvol.storage.base import GiB
from stackvol.virt.base import BootImage, ImageFile

BUILTIN_GUEST_IMAGE = images.BUILTIN_IMAGE_ID
ACTIVE = "active"
IMAGE_NOT_FOUND = "Can not find requested image"  # Nova's 400 for any unknown image
# Image attributes copied into a volume's image metadata, as Cinder copies them.
_COPIED = ("checksum", "container_format", "disk_format", "min_disk", "min_ram", "size")


def image_id_of(image_ref: str) -> str:
    """Nova accepts an image's id or its URL (whose last segment is the id)."""
    return image_ref.rstrip("/").rsplit("/", 1)[-1]


def _size(image: images.Image) -> int:
    return max(image.size or 0, image.virtual_size or 0)


def check_server_image(conn: Connection, ctx: RequestContext, image_ref: str, flavor: Flavor,
                       volume_backed: bool) -> None:
    """Nova's checks of a create request's ``imageRef`` (400s with Nova's messages)."""
    image_id = image_id_of(image_ref)
    image = images.find_visible(conn, ctx, image_id)
    if image is None:
        if image_id == BUILTIN_GUEST_IMAGE:
            return
        raise Invalid(IMAGE_NOT_FOUND)
    if image.status != ACTIVE:
        raise Invalid(f"Image {image.id} is not active.")
    if image.min_ram and flavor.ram < image.min_ram:
        raise Invalid("Flavor's memory is too small for requested image.")
    for key in ("kernel_id", "ramdisk_id"):
        if image.properties.get(key) and images.find_visible(
                conn, ctx, str(image.properties[key])) is None:
            raise Invalid(IMAGE_NOT_FOUND)
    if volume_backed or not flavor.disk:  # a zero-disk flavor takes the image's size
        return
    flavor_bytes = flavor.disk * GiB
    if _size(image) > flavor_bytes:
        raise Invalid(f"Flavor's disk is too small for requested image. Flavor disk is "
                      f"{flavor_bytes} bytes, image is {_size(image)} bytes.")
    if image.min_disk * GiB > flavor_bytes:
        raise Invalid(f"Flavor's disk is smaller than the minimum size specified in image "
                      f"metadata. Flavor disk is {flavor_bytes} bytes, minimum size is "
                      f"{image.min_disk * GiB} bytes.")


def check_bdm_image(conn: Connection, ctx: RequestContext, image_id: str,
                    volume_size: int) -> None:
    """Nova's checks of a ``source_type=image`` volume mapping."""
    image = images.find_visible(conn, ctx, image_id)
    if image is None:
        raise Invalid(IMAGE_NOT_FOUND)
    if image.status != ACTIVE:
        raise Invalid(f"Image {image.id} is not active.")
    needed = max(_size(image), image.min_disk * GiB)
    if needed > volume_size * GiB:
        raise Invalid(f"Volume is smaller than the minimum size specified in image metadata. "
                      f"Volume size is {volume_size * GiB} bytes, minimum size is {needed} "
                      f"bytes.")


def volume_image(conn: Connection, ctx: RequestContext, image_id: str,
                 volume_size: int) -> dict[str, str]:
    """Cinder's checks of a volume made from an image; the volume's image metadata."""
    image = images.find_visible(conn, ctx, image_id)
    if image is None:
        raise NotFound(f"Image {image_id} could not be found.")
    if image.status != ACTIVE:
        raise Invalid(f"Invalid input received: Image {image.id} is not active.")
    image_gb = -(-_size(image) // GiB)
    if image_gb > volume_size:
        raise Invalid(f"Invalid input received: Size of specified image {image_gb}GB is larger "
                      f"than volume size {volume_size}GB.")
    if volume_size < image.min_disk:
        raise Invalid(f"Invalid input received: Volume size {volume_size}GB cannot be smaller "
                      f"than the image minDisk size {image.min_disk}GB.")
    return image_metadata(image)


def image_metadata(image: images.Image) -> dict[str, str]:
    """What a volume keeps of its image (Cinder's ``volume_image_metadata``: strings)."""
    meta = {"image_id": image.id, "image_name": image.name or ""}
    for key in _COPIED:
        value = getattr(image, key)
        if value is not None:
            meta[key] = str(value)
    for key, value in image.properties.items():
        meta.setdefault(key, value if isinstance(value, str) else str(value))
    return meta


def _active(conn: Connection, image_id: str) -> images.Image:
    """An active image, for a worker (no visibility check: the request was checked)."""
    image = images.find(conn, image_id)
    if image is None:
        raise Invalid(f"Image {image_id} could not be found.")
    if image.status != ACTIVE or image.path is None:
        raise Invalid(f"Image {image_id} is not active.")
    return image


def _file(image: images.Image) -> ImageFile:
    return ImageFile(image.id, str(image.path), image.disk_format or "raw")


def source_file(conn: Connection, image_id: str) -> ImageFile:
    """An active image's bytes in the image store."""
    return _file(_active(conn, image_id))


def boot_image(conn: Connection, image_ref: str | None,
               root_image: dict[str, Any] | None) -> BootImage | None:
    """What the driver boots: the root volume's image (``root_image``: its image metadata,
    ``{}`` for a root volume made from none), else ``image_ref``; ``None``: the built-in
    guest."""
    if root_image is not None:  # the root volume holds the image's bytes already
        if not root_image.get("image_id"):
            return None
        return BootImage(root_image["image_id"], None, 0, *_kernel(conn, root_image),
                         root_image.get("os_command_line"))
    if not image_ref:
        return None
    image_id = image_id_of(image_ref)
    if image_id == BUILTIN_GUEST_IMAGE:
        found = images.find(conn, image_id)
        if found is None or images.is_builtin(found):
            return None  # the driver's own guest: no image file to hand over
    image = _active(conn, image_id)
    return BootImage(image.id, _file(image), _size(image), *_kernel(conn, image.properties),
                     image.properties.get("os_command_line"))


def _kernel(conn: Connection,
            properties: dict[str, Any]) -> tuple[ImageFile | None, ImageFile | None]:
    kernel_id, ramdisk_id = properties.get("kernel_id"), properties.get("ramdisk_id")
    return (source_file(conn, str(kernel_id)) if kernel_id else None,
            source_file(conn, str(ramdisk_id)) if ramdisk_id else None)
