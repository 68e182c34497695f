"""Images, as Glance v2 keeps them: records in ``images``, bytes in the image store.

An image is created ``queued`` (a record without data), moves to ``saving`` while its bytes
stream into the store and to ``active`` once they are complete, checked and renamed into place.
Each move is a compare-and-swap on the status, so two uploads never both win, and an upload that
fails or is cut off puts the image back to ``queued`` (or ``killed`` when the bytes are not what
the image claims to be); the store never leaves a partial file under an image's name.

One image is seeded at bootstrap: the built-in guest (``BUILTIN_IMAGE_ID``, the id of Nova's API
samples), public and protected. Its record is ``active`` from the start but its bytes are made on
first use (a download, a volume made from it): the compute layer's builder writes the guest as a
bootable qcow2 disk, which is then stored as any upload is.

An upload records the process it streams into (``upload_owner``, a ``services`` name) and
since when. One whose process died is put back to ``queued``, its partial file removed, as
tasks are taken back: by that process at its next start, or by any process once the owner's
heartbeat is older than ``service_down_seconds``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db.engine import Database
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from stackvol.services.common.ids import is_uuid
from stackvol.services.common.listing import Filter, ListQuery
from stackvol.services.images import queries
from stackvol.storage.images import ImageStore, UnexpectedFormat
from stackvol.timeutils import utcnow

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
ACTIVE = "active"
DEACTIVATED = "deactivated"  # bytes kept, served to admins only (Glance's deactivate)
# Attributes a caller may set (in a create request or a patch), with the properties beside them.
SETTABLE = ("name", "visibility", "protected", "os_hidden", "disk_format", "container_format",
            "min_disk", "min_ram", "tags")
# Attributes Glance computes or keeps for itself: never settable, never extra properties.
RESERVED = ("id", "status", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
            "owner", "created_at", "updated_at", "self", "file", "schema", "location",
            "locations", "direct_url", "deleted", "deleted_at", "os_glance_import_task")
log = logging.getLogger(__name__)

BUILTIN_IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"
BUILTIN_IMAGE_NAME = "stackvol-guest"
BUILTIN_PROPERTY = "stackvol_builtin"  # marks the seeded record (an upload may reuse the id)

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "virtual_size",
             "id", "created_at", "updated_at", "min_disk", "min_ram", "visibility", "owner")


@dataclass(frozen=True, slots=True)
class Image:
    id: str
    name: str | None
    status: str  # queued, saving, active, killed, deleted, ...
    disk_format: str | None  # qcow2, raw, aki, ari, ami, ...
    container_format: str | None  # bare, ami, aki, ari, ...
    size: int | None
    virtual_size: int | None
    checksum: str | None
    min_disk: int
    min_ram: int
    owner: str | None
    visibility: str
    protected: bool
    properties: dict[str, Any]  # extra properties, e.g. kernel_id, ramdisk_id, os_distro
    created_at: dt.datetime
    updated_at: dt.datetime | None
    path: Path | None  # absolute path of the active image's bytes in the store
    os_hidden: bool = False
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Row[Any]) -> Image:
        values = row._mapping
        return cls(
            id=values["id"], name=values["name"], status=values["status"],
            disk_format=values["disk_format"], container_format=values["container_format"],
            size=values["size"], virtual_size=values["virtual_size"],
            checksum=values["checksum"], min_disk=values["min_disk"],
            min_ram=values["min_ram"], owner=values["owner"], visibility=values["visibility"],
            protected=bool(values["protected"]), properties=dict(values["properties"] or {}),
            created_at=values["created_at"], updated_at=values["updated_at"],
            path=Path(values["location"]) if values["location"] else None,
            os_hidden=bool(values["os_hidden"]), os_hash_algo=values["os_hash_algo"],
            os_hash_value=values["os_hash_value"], tags=tuple(values["tags"] or ()))


def is_builtin(image: Image) -> bool:
    """The seeded built-in guest (not an image someone uploaded under its id)."""
    return image.id == BUILTIN_IMAGE_ID and image.properties.get(BUILTIN_PROPERTY) == "true"


def seed_builtin(conn: Connection) -> bool:
    """Bootstrap: the built-in guest's record, unless an image has its id; whether added."""
    if find(conn, BUILTIN_IMAGE_ID) is not None:
        return False
    now = utcnow()
    queries.insert_image(
        conn, id=BUILTIN_IMAGE_ID, name=BUILTIN_IMAGE_NAME, owner=None, status="active",
        visibility="public", protected=True, os_hidden=False, disk_format="qcow2",
        container_format="bare", min_disk=0, min_ram=0, tags=[],
        properties={BUILTIN_PROPERTY: "true", "os_distro": "busybox",
                    "description": "stackvol's built-in guest: a Debian cloud kernel and a "
                                   "busybox initramfs, built on first use"},
        created_at=now, updated_at=now)
    return True


def visible_to(image: Image, ctx: RequestContext) -> bool:
    """Glance's rule: public and community images are everyone's; the rest the owner's."""
    return (ctx.is_admin or image.visibility in ("public", "community")
            or (image.owner is not None and image.owner == ctx.project_id))


def _not_found(image_id: str) -> NotFound:
    return NotFound(f"No image found with ID {image_id}")


def find(conn: Connection, image_id: str) -> Image | None:
    if not is_uuid(image_id):
        return None
    row = queries.image_row(conn, image_id)
    return Image.from_row(row) if row is not None else None


def find_visible(conn: Connection, ctx: RequestContext, image_id: str) -> Image | None:
    image = find(conn, image_id)
    return image if image is not None and visible_to(image, ctx) else None


def read_image(conn: Connection, ctx: RequestContext, image_id: str) -> Image:
    image = find_visible(conn, ctx, image_id)
    if image is None:
        raise _not_found(image_id)
    return image


def _row_values(image: Image) -> dict[str, Any]:
    """The settable attributes of ``image`` as they are stored."""
    return {"name": image.name, "visibility": image.visibility, "protected": image.protected,
            "os_hidden": image.os_hidden, "disk_format": image.disk_format,
            "container_format": image.container_format, "min_disk": image.min_disk,
            "min_ram": image.min_ram, "tags": list(image.tags),
            "properties": dict(image.properties)}


def _check_writable(name: str) -> None:
    if name in RESERVED:
        raise Forbidden(f"Attribute '{name}' is read-only.")


def _authorize(ctx: RequestContext, action: str, owner: str | None) -> None:
    # Glance's target is the image: its owner is the project a member must belong to.
    if not policy.allowed(ctx, action, owner if owner is not None else ""):
        raise Forbidden(f"You are not authorized to complete {action} action.")


def _authorize_visibility(ctx: RequestContext, visibility: str, owner: str | None) -> None:
    if visibility == "public":
        _authorize(ctx, "publicize_image", owner)
    elif visibility == "community":
        _authorize(ctx, "communitize_image", owner)


@dataclass(frozen=True, slots=True)
class PatchOp:
    """One JSON-patch operation on an attribute or extra property (already shape-checked)."""

    op: str  # add, replace, remove
    name: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class ImageQuery:
    """A list request, Glance's way: filters, sort keys, a marker image and a page size."""

    limit: int
    marker: str | None = None
    sort: Sequence[tuple[str, str]] = (("created_at", "desc"), ("id", "desc"))
    visibility: str | None = None  # None: Glance's default view (no community images)
    filters: Mapping[str, Any] = field(default_factory=dict)  # column name -> value(s)
    properties: Mapping[str, str] = field(default_factory=dict)
    tags: Sequence[str] = ()
    os_hidden: bool = False
    size_min: int | None = None
    size_max: int | None = None


def _list_query(ctx: RequestContext, query: ImageQuery) -> ListQuery:
    where: list[Any] = queries.visibility_where(ctx.is_admin, ctx.project_id, query.visibility)
    where.append(queries.hidden_is(query.os_hidden))
    where.extend(queries.property_is(key, value) for key, value in query.properties.items())
    where.extend(queries.size_between(query.size_min, query.size_max))
    where.extend(queries.has_tag(tag) for tag in query.tags)
    filters = [Filter(name, value) for name, value in query.filters.items()]
    return ListQuery(project_id=None, limit=query.limit, marker=query.marker, sort=query.sort,
                     filters=filters, where=where)


class ImageService:
    """What the Image API (and Compute's image proxy) may do with images."""

    def __init__(self, db: Database, store: ImageStore, owner: str = "",
                 down_after: float = 60.0,
                 builtin_disk: Callable[[], Path] | None = None) -> None:
        self.db = db
        self.store = store
        self.owner = owner  # this process's name: the uploads it runs are recorded under it
        self.down_after = down_after
        # Builds the built-in guest as a qcow2 disk and says where (blocking; may take a while).
        self.builtin_disk = builtin_disk
        self._building = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None

    # --- the built-in image -------------------------------------------------------------------

    async def seed_builtin(self) -> None:
        if await self.db.run(seed_builtin):
            log.info("image %s (%s): the built-in guest, public", BUILTIN_IMAGE_ID,
                     BUILTIN_IMAGE_NAME)

    async def ensure_data(self, image_id: str) -> None:
        """Give the built-in image its bytes on first use; nothing for any other image."""
        if image_id != BUILTIN_IMAGE_ID or self.builtin_disk is None:
            return
        async with self._building:  # one build per process; the builder locks across them
            image = await self.db.read(find, image_id)
            if image is None or image.path is not None or not is_builtin(image):
                return
            log.info("image %s: building the built-in guest's disk on first use (a kernel "
                     "and busybox from the package registry)", image_id)
            started = time.monotonic()
            try:
                disk = await anyio.to_thread.run_sync(self.builtin_disk)
            except Exception as exc:  # the builder's message names the missing piece
                log.error("image %s: the built-in guest could not be built: %s", image_id, exc)
                raise Unavailable(f"The built-in image {image_id} could not be built: "
                                  f"{exc}") from None
            stored = await self.store.write(image_id, self.store.read(disk), "qcow2",
                                            owner=self.owner)
            await self.db.run(queries.move, image_id, "active", {
                "size": stored.size, "virtual_size": stored.virtual_size,
                "checksum": stored.checksum, "os_hash_algo": stored.hash_algo,
                "os_hash_value": stored.hash_value, "location": str(stored.path)},
                queries.NO_DATA)  # another process may have stored it first
            log.info("image %s: the built-in guest is stored (%d bytes, %.1fs)", image_id,
                     stored.size, time.monotonic() - started)

    # --- reads ------------------------------------------------------------------------------

    async def get(self, ctx: RequestContext, image_id: str) -> Image:
        """The image if ``ctx`` may see it; else ``NotFound``."""
        _authorize(ctx, "get_image", ctx.project_id)
        return await self.db.read(read_image, ctx, image_id)

    async def list(self, ctx: RequestContext, query: ImageQuery) -> list[Image]:
        _authorize(ctx, "get_images", ctx.project_id)
        return await self.db.read(self._list, ctx, query)

    @staticmethod
    def _list(conn: Connection, ctx: RequestContext, query: ImageQuery) -> builtins.list[Image]:
        if query.marker is not None and find_visible(conn, ctx, query.marker) is None:
            raise Invalid(f"Invalid marker. Image {query.marker} could not be found.")
        try:
            rows = queries.page(conn, _list_query(ctx, query))
        except NotFound:  # the marker is visible but filtered out: Glance pages on anyway
            raise Invalid(f"Invalid marker. Image {query.marker} could not be found.") from None
        return [Image.from_row(row) for row in rows]

    async def download(self, ctx: RequestContext,
                       image_id: str) -> tuple[Image, AsyncIterator[bytes] | None]:
        """The image and its bytes (None when it has no data yet)."""
        image = await self.get(ctx, image_id)
        _authorize(ctx, "download_image", ctx.project_id)
        if image.path is None and is_builtin(image):
            await self.ensure_data(image.id)
            image = await self.get(ctx, image_id)
        if image.status == DEACTIVATED and not ctx.is_admin:
            raise Forbidden("The requested image has been deactivated. Image data download "
                            "is forbidden.")
        if image.status not in (ACTIVE, DEACTIVATED) or image.path is None:
            return image, None
        if not image.path.exists():
            raise NotFound(f"Image {image_id} has no data in the store.")
        return image, self.store.read(image.path)

    # --- changes ----------------------------------------------------------------------------

    async def create(self, ctx: RequestContext, values: Mapping[str, Any]) -> Image:
        """A new ``queued`` image from a create request (shape already checked)."""
        values = dict(values)
        image_id = values.pop("id", None) or str(uuid.uuid4())
        owner = values.pop("owner", None) or ctx.project_id
        row: dict[str, Any] = {
            "name": None, "visibility": "shared", "protected": False, "os_hidden": False,
            "disk_format": None, "container_format": None, "min_disk": 0, "min_ram": 0,
            "tags": [], "properties": {}}
        for name, value in values.items():
            _check_writable(name)
            if name in SETTABLE:
                row[name] = value
            else:
                row["properties"][name] = value
        row["tags"] = list(dict.fromkeys(row["tags"]))
        _authorize(ctx, "add_image", owner)
        _authorize_visibility(ctx, row["visibility"], owner)
        return await self.db.run(self._create, image_id, owner, row)

    @staticmethod
    def _create(conn: Connection, image_id: str, owner: str, row: dict[str, Any]) -> Image:
        if queries.image_exists(conn, image_id):
            raise Conflict(f"Image with identifier {image_id} already exists!")
        queries.insert_image(conn, id=image_id, owner=owner, status="queued",
                             created_at=utcnow(), updated_at=utcnow(), **row)
        image = find(conn, image_id)
        assert image is not None
        return image

    async def update(self, ctx: RequestContext, image_id: str,
                     ops: Sequence[PatchOp]) -> Image:
        """Apply a JSON patch (attributes and extra properties) in one transaction."""
        return await self.db.run(self._update, ctx, image_id, list(ops))

    @staticmethod
    def _update(conn: Connection, ctx: RequestContext, image_id: str,
                ops: builtins.list[PatchOp]) -> Image:
        image = read_image(conn, ctx, image_id)
        _authorize(ctx, "modify_image", image.owner)
        values = _row_values(image)
        for op in ops:
            _apply(values, op)
        for name in ("disk_format", "container_format"):
            if values[name] != getattr(image, name) and image.status != "queued":
                raise Forbidden(f"Attribute {name} can be only replaced for a queued image.")
        if values["visibility"] != image.visibility:
            _authorize_visibility(ctx, values["visibility"], image.owner)
        values["tags"] = list(dict.fromkeys(values["tags"]))
        queries.update_image(conn, image.id, **values)
        return read_image(conn, ctx, image_id)

    async def set_tag(self, ctx: RequestContext, image_id: str, tag: str,
                      present: bool) -> None:
        """Add (or, with ``present`` False, remove) one tag."""
        await self.db.run(self._set_tag, ctx, image_id, tag, present)

    @staticmethod
    def _set_tag(conn: Connection, ctx: RequestContext, image_id: str, tag: str,
                 present: bool) -> None:
        image = read_image(conn, ctx, image_id)
        _authorize(ctx, "modify_image", image.owner)
        tags = [t for t in image.tags if t != tag]
        if present:
            tags.append(tag)
        elif len(tags) == len(image.tags):
            raise NotFound(f"Tag {tag} not found")
        queries.update_image(conn, image.id, tags=tags)

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Remove the record, then the bytes (a crash between leaves only an orphan file)."""
        image = await self.db.run(self._delete, ctx, image_id)
        await anyio.to_thread.run_sync(self.store.delete, image.id, image.path)

    @staticmethod
    def _delete(conn: Connection, ctx: RequestContext, image_id: str) -> Image:
        image = read_image(conn, ctx, image_id)
        _authorize(ctx, "delete_image", image.owner)
        if image.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        queries.delete_image(conn, image.id)
        return image

    async def deactivate(self, ctx: RequestContext, image_id: str) -> None:
        """Glance's deactivate: an active image keeps its bytes but no longer serves them
        (downloads, boots, volumes) to anyone but admins until it is reactivated."""
        await self.db.run(_change_activation, ctx, image_id, "deactivate", ACTIVE, DEACTIVATED)

    async def reactivate(self, ctx: RequestContext, image_id: str) -> None:
        await self.db.run(_change_activation, ctx, image_id, "reactivate", DEACTIVATED, ACTIVE)

    # --- data ---------------------------------------------------------------------------------

    async def upload(self, ctx: RequestContext, image_id: str,
                     chunks: AsyncIterable[bytes]) -> Image:
        """Stream the image's bytes into the store: queued → saving → active.

        A failure puts the image back to ``queued`` (it may be uploaded again) and removes
        what was written; bytes that are not the declared disk format are refused the same way.
        """
        image = await self.db.run(self._start_upload, ctx, image_id, self.owner)
        try:
            stored = await self.store.write(image.id, chunks, image.disk_format,
                                            owner=self.owner)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self.db.run(_end_upload, image.id, self.owner, {"status": "queued"})
            if isinstance(exc, UnexpectedFormat):
                raise Invalid(str(exc)) from None
            raise
        done = await self.db.run(_end_upload, image.id, self.owner, {
            "status": "active", "size": stored.size, "virtual_size": stored.virtual_size,
            "checksum": stored.checksum, "os_hash_algo": stored.hash_algo,
            "os_hash_value": stored.hash_value, "location": str(stored.path)})
        if not done:  # deleted (or taken for dead and reset) while its bytes came in
            await anyio.to_thread.run_sync(self.store.delete, image.id, stored.path)
            raise Conflict(f"Image {image_id} was deleted during the upload.")
        return await self.db.read(read_image, ctx, image_id)

    @staticmethod
    def _start_upload(conn: Connection, ctx: RequestContext, image_id: str,
                      owner: str) -> Image:
        image = read_image(conn, ctx, image_id)
        _authorize(ctx, "upload_image", image.owner)
        if image.disk_format is None or image.container_format is None:
            raise Invalid("Properties disk_format, container_format must be set prior to "
                          "saving data.")
        if not queries.move(conn, image.id, "queued", {"status": "saving", "upload_owner": owner,
                                                "upload_started_at": utcnow()}):
            raise Conflict(f"Image status transition from {image.status} to saving is not "
                           f"allowed")
        return image

    # --- uploads a dead process left -----------------------------------------------------------

    def remove_leftovers(self) -> int:
        """Start-up: clear temporary files of uploads a crash cut off."""
        return self.store.remove_leftovers()

    async def reset_own_uploads(self) -> builtins.list[str]:
        """Start-up, before serving: this process's previous incarnation died mid-upload in
        the images still ``saving`` under its name; put them back to ``queued``."""
        return await self._reset(queries.upload_owner_is(self.owner))

    async def reset_orphaned_uploads(self) -> builtins.list[str]:
        """Put back to ``queued`` the uploads whose process has been silent (no heartbeat)
        for ``down_after`` seconds: it died, and will not finish them."""
        return await self._reset(queries.orphaned(self.down_after))

    async def _reset(self, which: sa.ColumnElement[bool]) -> builtins.list[str]:
        found = await self.db.run(queries.reset_uploads, which)
        for image_id, owner in found:
            log.warning("image %s: its upload was cut off (process %s died); back to queued",
                        image_id, owner)
            if owner is not None:
                await anyio.to_thread.run_sync(self.store.discard_upload, image_id, owner)
        return [image_id for image_id, _ in found]

    async def start(self) -> None:
        """Take back this process's cut-off uploads, then watch for other dead owners'."""
        await self.reset_own_uploads()
        self._watch = asyncio.create_task(self._watch_orphans(), name="image-uploads")

    async def _watch_orphans(self) -> None:
        while True:
            try:
                await self.reset_orphaned_uploads()
            except Exception:  # must outlive a database hiccup; tried again next round
                log.exception("resetting orphaned image uploads failed; retrying")
            await asyncio.sleep(max(self.down_after / 4, 0.5))

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch


def _change_activation(conn: Connection, ctx: RequestContext, image_id: str, action: str,
                       expected: str, new: str) -> None:
    """Move the image ``expected`` → ``new``; already ``new`` is no change, as in Glance,
    and any other status is refused (403)."""
    image = read_image(conn, ctx, image_id)
    _authorize(ctx, action, image.owner)
    if image.status == new:
        return
    if image.status != expected or not queries.move(conn, image.id, expected,
                                                    {"status": new}):
        raise Forbidden(f"Not allowed to {action} image in status '{image.status}'")
    log.info("image %s %sd by %s", image.id, action, ctx.user_id)


def _end_upload(conn: Connection, image_id: str, owner: str | None,
                values: dict[str, Any]) -> bool:
    """Move ``owner``'s upload out of ``saving``; False if it is not (any longer) theirs."""
    return queries.move(conn, image_id, "saving",
                        {"upload_owner": None, "upload_started_at": None, **values},
                        queries.upload_owner_is(owner))


def _apply(values: dict[str, Any], op: PatchOp) -> None:
    """One patch operation on an image's settable values (attributes and properties)."""
    _check_writable(op.name)
    props: dict[str, Any] = values["properties"]
    if op.name in SETTABLE:
        if op.op == "remove":
            raise Forbidden(f"Properties {op.name} cannot be removed.")
        values[op.name] = op.value
        return
    if op.op == "add":
        props[op.name] = op.value
    elif op.name not in props:
        raise Conflict(f"Property {op.name} does not exist.")
    elif op.op == "replace":
        props[op.name] = op.value
    else:
        del props[op.name]
