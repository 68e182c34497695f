"""The SQL of volumes: statements and small functions taking a Connection, called by the API
side (``api``, ``retype``, ``transfers``, ``uploads``) and the worker side (``manager``,
``uploads_manager``).

No status is written here: status changes go through ``stackvol.db.transitions``. The show and
list reads are prepared once (``stackvol.db.prepared``), as they are the hot paths.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db import prepared
from stackvol.db.prepared import PreparedSelect, PreparedWrite, RawReader
from stackvol.db.schema import images, snapshots, tasks, transfers, volume_attachments, volumes
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import NotFound
from stackvol.services.common.listing import ListQuery, fetch_page
from stackvol.services.common.records import Attachment, Page, Volume
from stackvol.services.common.status import AttachmentStatus, SnapshotStatus, VolumeStatus
from stackvol.storage.images import StoredImage
from stackvol.tasks import queue as taskq
from stackvol.timeutils import utcnow

# Attachments that mean "the server has (or is getting/losing) this volume".
LIVE_ATTACHMENTS = (AttachmentStatus.ATTACHED, AttachmentStatus.DETACHING)

_ORDER = (volumes.c.created_at.desc(), volumes.c.id.desc())
_VOLUME_WIDTH = len(volumes.c)
_LIVE = sa.or_(*(volume_attachments.c.status == s.value for s in LIVE_ATTACHMENTS))

# Rows are turned into records by position: the records list the table's columns in order.
assert [f.name for f in dataclasses.fields(Volume)][:_VOLUME_WIDTH] == [c.name for c in volumes.c]
assert [f.name for f in dataclasses.fields(Attachment)] == [c.name for c in volume_attachments.c]


# --- shows and pages (prepared) --------------------------------------------------------------

def _page(scoped: bool) -> sa.Select[Any]:
    query = (sa.select(*volumes.c).order_by(*_ORDER)
             .limit(sa.bindparam("limit")).offset(sa.bindparam("offset")))
    return query.where(volumes.c.project_id == sa.bindparam("project")) if scoped else query


def _page_attachments(scoped: bool) -> PreparedSelect:
    """The live attachments of the volumes on a page: its ids re-read from the index alone."""
    ids = _page(scoped).with_only_columns(volumes.c.id).subquery("page")
    return PreparedSelect(
        sa.select(*volume_attachments.c)
        .select_from(ids.join(volume_attachments,
                              sa.and_(volume_attachments.c.volume_id == ids.c.id, _LIVE)))
        .order_by(volume_attachments.c.created_at))


def _by_id() -> PreparedSelect:
    """One volume followed by its live attachments (a LEFT JOIN), the attachments alone sorted:
    with one volume there is no volume order to keep, and no subquery to sort it by."""
    joined = volumes.outerjoin(volume_attachments,
                               sa.and_(volume_attachments.c.volume_id == volumes.c.id, _LIVE))
    return PreparedSelect(
        sa.select(*volumes.c, *volume_attachments.c).select_from(joined)
        .where(volumes.c.id == sa.bindparam("id")).order_by(volume_attachments.c.created_at))


# The read queries, prepared once (see db/prepared.py); also run through Core in transactions.
VOLUME_BY_ID = _by_id()
# A page is two queries: joined, SQLite sorted every page in a temporary B-tree, twice as slow.
PAGE = {scoped: PreparedSelect(_page(scoped)) for scoped in (True, False)}
PAGE_ATTACHMENTS = {scoped: _page_attachments(scoped) for scoped in (True, False)}


def _rows(reader: RawReader | Connection, query: PreparedSelect, **params: Any) -> list[Any]:
    if isinstance(reader, RawReader):
        return reader.rows(query, **params)
    return list(reader.execute(query.stmt, params))


def _fold(rows: list[Sequence[Any]]) -> list[Volume]:
    """Joined rows (volume columns, then attachment columns or NULLs) to volumes."""
    found: list[Volume] = []
    for row in rows:
        if not found or found[-1].id != row[0]:
            found.append(Volume(*row[:_VOLUME_WIDTH]))
        if row[_VOLUME_WIDTH] is not None:
            found[-1].attachments.append(Attachment(*row[_VOLUME_WIDTH:]))
    return found


def _with_attachments(found: list[Volume], rows: Sequence[Sequence[Any]]) -> list[Volume]:
    """Give each volume its attachments from rows of ``volume_attachments``."""
    by_volume = {volume.id: volume for volume in found}
    for row in rows:
        volume = by_volume.get(row[1])
        if volume is not None:  # READ COMMITTED: a volume created since the page was read
            volume.attachments.append(Attachment(*row))
    return found


def read_volume(reader: RawReader | Connection, ctx: RequestContext, volume_id: str) -> Volume:
    """The volume with its live attachments, if ``ctx`` may see it; else ``NotFound``."""
    found = _fold(_rows(reader, VOLUME_BY_ID, id=volume_id))
    if not found or (not ctx.is_admin and found[0].project_id != ctx.project_id):
        raise NotFound(f"Volume {volume_id} could not be found.")
    return found[0]


def read_page(reader: RawReader | Connection, project_id: str | None,
              page: Page) -> list[Volume]:
    scoped = project_id is not None
    params: dict[str, Any] = {"limit": page.limit, "offset": page.offset}
    if scoped:
        params["project"] = project_id
    found = [Volume(*row) for row in _rows(reader, PAGE[scoped], **params)]
    if found:
        _with_attachments(found, _rows(reader, PAGE_ATTACHMENTS[scoped], **params))
    return found


# The sorts that are the prepared page's own order (newest first, ties by id).
_PAGE_SORTS = ((("created_at", "desc"), ("id", "desc")), (("created_at", "desc"),))


def plain_page(query: ListQuery) -> Page | None:
    """The prepared ``read_page`` window a Cinder list asks for when it asks nothing more
    (no filter, marker, count or other sort), else None. Such a list, the common one, then
    skips building, compiling and decoding a Core statement per request (read_page is the
    Nova list's path: the same rows and attachments in the same order)."""
    if (query.filters or query.metadata or query.marker is not None or query.where
            or query.with_count or tuple(map(tuple, query.sort)) not in _PAGE_SORTS):
        return None
    return Page(offset=query.offset, limit=query.limit)


def query_page(conn: Connection, query: ListQuery) -> tuple[list[Volume], int | None]:
    """A Cinder list page (filters, sort, marker) with live attachments, and the count asked."""
    rows, count = fetch_page(conn, volumes, query)
    # By position (the rows are the table's columns in order, asserted above): from_row's
    # mapping cost as much as the query on a page of 1,000.
    plain: Sequence[Any] = rows  # Row's typing takes its columns for one tuple element
    found = [Volume(*row) for row in plain]
    if found:
        attached = conn.execute(sa.select(*volume_attachments.c).where(
            volume_attachments.c.volume_id.in_([v.id for v in found]), _LIVE)
            .order_by(volume_attachments.c.created_at)).all()
        _with_attachments(found, attached)
    return found, count


# --- counts and summaries --------------------------------------------------------------------

def summary(conn: Connection, project_id: str | None) -> tuple[int, int, dict[str, list[str]]]:
    """How many volumes, their GiB, and the values each metadata key takes."""
    query = sa.select(volumes.c.size, volumes.c.metadata)
    if project_id is not None:
        query = query.where(volumes.c.project_id == project_id)
    count, total = 0, 0
    values: dict[str, set[str]] = {}
    for row in conn.execute(query):
        count, total = count + 1, total + row.size
        for key, value in (row.metadata or {}).items():
            values.setdefault(key, set()).add(value)
    return count, total, {key: sorted(found) for key, found in values.items()}


def usage_by_backend(conn: Connection) -> dict[str, tuple[int, int]]:
    """Per backend: the volumes it holds and the GiB they were given."""
    rows = conn.execute(sa.select(volumes.c.backend, sa.func.count().label("volumes"),
                                  sa.func.sum(volumes.c.size).label("gigabytes"))
                        .group_by(volumes.c.backend))
    return {row.backend: (int(row.volumes), int(row.gigabytes or 0)) for row in rows}


def _count(conn: Connection, *where: sa.ColumnElement[bool]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one())


# Prepared: every attach asks it (check_not_copying), and a Core count cost ~3% of a cycle.
_BEING_COPIED = PreparedSelect(sa.select(sa.literal(1)).where(
    snapshots.c.volume_id == sa.bindparam("volume_id"),
    snapshots.c.status == SnapshotStatus.CREATING.value).limit(1))


def snapshots_being_copied(conn: Connection, volume_id: str) -> bool:
    """Whether a snapshot of the volume is being created (its bytes being copied)."""
    return bool(prepared.run(conn, _BEING_COPIED, volume_id=volume_id))


def snapshot_count(conn: Connection, volume_id: str) -> int:
    return _count(conn, snapshots.c.volume_id == volume_id)


def clones_being_created(conn: Connection, volume_id: str) -> int:
    return _count(conn, volumes.c.source_volid == volume_id,
                  volumes.c.status == VolumeStatus.CREATING)


def attachment_count(conn: Connection, volume_id: str) -> int:
    return _count(conn, volume_attachments.c.volume_id == volume_id)


# --- create ----------------------------------------------------------------------------------

def source_snapshot(conn: Connection, snapshot_id: str) -> Row[Any] | None:
    """A snapshot to make a volume from, with its volume's backend and type, locked against a
    concurrent delete."""
    return conn.execute(
        sa.select(snapshots.c.status, snapshots.c.size, snapshots.c.project_id,
                  volumes.c.backend, volumes.c.volume_type)
        .join(volumes, volumes.c.id == snapshots.c.volume_id)
        .where(snapshots.c.id == snapshot_id)
        .with_for_update(of=snapshots)).first()


def source_volume(conn: Connection, volume_id: str) -> Row[Any] | None:
    """A volume to clone, locked against a concurrent delete."""
    return conn.execute(sa.select(volumes.c.status, volumes.c.size, volumes.c.project_id,
                                  volumes.c.backend, volumes.c.volume_type,
                                  volumes.c.image_metadata)
                        .where(volumes.c.id == volume_id).with_for_update()).first()


_INSERT_VOLUME = PreparedWrite(lambda _: volumes.insert())  # every create: prepared


def insert_volume(conn: Connection, values: Mapping[str, Any]) -> None:
    """A new volume row (its status made with ``transitions.initial``)."""
    _INSERT_VOLUME.rowcount(conn, **values)


def location(conn: Connection, volume_id: str) -> Row[Any] | None:
    """Where a volume's bytes are (status, backend, provider_location, bootable)."""
    return conn.execute(sa.select(volumes.c.status, volumes.c.backend,
                                  volumes.c.provider_location, volumes.c.bootable).where(
        volumes.c.id == volume_id)).first()


def snapshot_location(conn: Connection, snapshot_id: str) -> str:
    row = conn.execute(sa.select(snapshots.c.provider_location).where(
        snapshots.c.id == snapshot_id)).first()
    if row is None or not row.provider_location:
        raise NotFound(f"Snapshot {snapshot_id} could not be found.")
    return str(row.provider_location)


def record_location(conn: Connection, volume_id: str, provider_location: str) -> None:
    """Where the bytes of a volume whose create lost the race with a force delete are."""
    conn.execute(volumes.update().where(volumes.c.id == volume_id)
                 .values(provider_location=provider_location))


# --- delete ----------------------------------------------------------------------------------

def delete_unplaced(conn: Connection, volume_id: str) -> None:
    """The row of a volume never placed on a backend (no bytes anywhere)."""
    conn.execute(volumes.delete().where(volumes.c.id == volume_id))


def take_attachments(conn: Connection, volume_id: str) -> list[Row[Any]]:
    """Delete a volume's attachment rows; the rows as they were."""
    rows = conn.execute(sa.select(volume_attachments).where(
        volume_attachments.c.volume_id == volume_id)).all()
    delete_attachments(conn, volume_id)
    return list(rows)


def delete_attachments(conn: Connection, volume_id: str) -> None:
    conn.execute(volume_attachments.delete().where(volume_attachments.c.volume_id == volume_id))


def cascaded_snapshots(conn: Connection, volume_id: str) -> list[tuple[str, str | None]]:
    """Snapshots going with their volume (``cascade``): ids and where their bytes are."""
    return [(r.id, r.provider_location) for r in conn.execute(
        sa.select(snapshots.c.id, snapshots.c.provider_location).where(
            snapshots.c.volume_id == volume_id, snapshots.c.status == SnapshotStatus.DELETING))]


def delete_deleted(conn: Connection, volume_id: str) -> None:
    """The rows of a volume whose bytes are gone: its attachments, the snapshots deleted with
    it and itself (only while still ``deleting``)."""
    delete_attachments(conn, volume_id)
    conn.execute(snapshots.delete().where(snapshots.c.volume_id == volume_id,
                                          snapshots.c.status == SnapshotStatus.DELETING))
    conn.execute(volumes.delete().where(volumes.c.id == volume_id,
                                        volumes.c.status == VolumeStatus.DELETING))


def status_and_backend(conn: Connection, volume_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(volumes.c.status, volumes.c.backend).where(
        volumes.c.id == volume_id)).first()


def cancel_pending(conn: Connection, kind: str, resource_id: str) -> bool:
    """Drop a resource's ``kind`` task no worker took yet; True when one is still there (a
    worker runs it)."""
    conn.execute(tasks.delete().where(tasks.c.kind == kind, tasks.c.resource_id == resource_id,
                                      tasks.c.state == taskq.PENDING))
    return bool(conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
        tasks.c.kind == kind, tasks.c.resource_id == resource_id)).scalar_one())


# --- changes of other columns ----------------------------------------------------------------

def set_image_metadata(conn: Connection, volume_id: str, found: dict[str, str]) -> None:
    conn.execute(volumes.update().where(volumes.c.id == volume_id)
                 .values(image_metadata=found, updated_at=utcnow()))


def change_type(conn: Connection, volume: Volume, type_name: str) -> bool:
    """Give ``volume`` the type ``type_name`` if its status and type are still those read;
    False when either changed meanwhile."""
    changed = conn.execute(
        volumes.update().where(volumes.c.id == volume.id,
                               volumes.c.status == volume.status,
                               volumes.c.volume_type == volume.volume_type)
        .values(volume_type=type_name, updated_at=utcnow())).rowcount
    return bool(changed)


# --- transfers -------------------------------------------------------------------------------

# Transfers of volumes gone meanwhile (an admin's force delete) are not shown.
TRANSFER_VOLUME_EXISTS = sa.exists().where(volumes.c.id == transfers.c.volume_id)


def transfer(conn: Connection, transfer_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(transfers).where(transfers.c.id == transfer_id,
                                                   TRANSFER_VOLUME_EXISTS)).first()


def transfer_page(conn: Connection, query: ListQuery) -> list[Row[Any]]:
    rows, _ = fetch_page(conn, transfers, query)
    return list(rows)


def insert_transfer(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(transfers.insert().values(dict(values)))


def delete_transfer(conn: Connection, transfer_id: str) -> bool:
    """False when it was gone already (accepted or cancelled meanwhile)."""
    return bool(conn.execute(transfers.delete().where(transfers.c.id == transfer_id)).rowcount)


def unavailable_snapshot(conn: Connection, volume_id: str) -> str | None:
    """The id of a snapshot of the volume that is not ``available``, if any."""
    row = conn.execute(sa.select(snapshots.c.id).where(
        snapshots.c.volume_id == volume_id,
        snapshots.c.status != SnapshotStatus.AVAILABLE)).first()
    return None if row is None else str(row.id)


def snapshot_sizes(conn: Connection, volume_id: str) -> list[int]:
    return [int(row.size) for row in conn.execute(
        sa.select(snapshots.c.size).where(snapshots.c.volume_id == volume_id))]


def give_snapshots(conn: Connection, volume_id: str, owner: Mapping[str, str]) -> None:
    """A volume's snapshots go to its new owner (``project_id``, ``user_id``)."""
    conn.execute(snapshots.update().where(snapshots.c.volume_id == volume_id)
                 .values(updated_at=utcnow(), **owner))


# --- uploads to images -----------------------------------------------------------------------

def insert_queued_image(conn: Connection, values: Mapping[str, Any]) -> None:
    """The image a volume's bytes will go to, ``queued``."""
    now = utcnow()
    conn.execute(images.insert().values(status="queued", created_at=now, updated_at=now,
                                        **values))


def take_image(conn: Connection, image_id: str, owner: str) -> bool:
    """``queued`` → ``saving`` for ``owner`` (or ``owner``'s own ``saving`` again, resumed)."""
    mine = sa.and_(images.c.id == image_id, sa.or_(
        images.c.status == "queued",
        sa.and_(images.c.status == "saving", images.c.upload_owner == owner)))
    return bool(conn.execute(images.update().where(mine).values(
        status="saving", upload_owner=owner, upload_started_at=utcnow(),
        updated_at=utcnow())).rowcount)


def activate_image(conn: Connection, image_id: str, owner: str, stored: StoredImage) -> bool:
    """``owner``'s ``saving`` image → ``active`` with its bytes; False if it is gone or was
    taken back meanwhile."""
    return bool(conn.execute(images.update().where(
        images.c.id == image_id, images.c.status == "saving",
        images.c.upload_owner == owner).values(
        status="active", size=stored.size, virtual_size=stored.virtual_size,
        checksum=stored.checksum, os_hash_algo=stored.hash_algo,
        os_hash_value=stored.hash_value, location=str(stored.path), upload_owner=None,
        upload_started_at=None, updated_at=utcnow())).rowcount)


def delete_unfinished_image(conn: Connection, image_id: str) -> None:
    conn.execute(images.delete().where(images.c.id == image_id,
                                       images.c.status.in_(("queued", "saving"))))
