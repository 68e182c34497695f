"""The snapshots' SQL: small functions on the caller's connection (one transaction each caller
decides), shared by the API side (api.py) and the worker side (manager.py).

Status writes are not here: they go through stackvol/db/transitions.py.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db.schema import snapshots, volumes
from stackvol.services.common.records import Page, Snapshot
from stackvol.services.common.status import SnapshotStatus, VolumeStatus

_COLUMNS = list(snapshots.c)
_ORDER = (snapshots.c.created_at.desc(), snapshots.c.id.desc())


def find(conn: Connection, snapshot_id: str, project_id: str | None) -> Snapshot | None:
    """A snapshot (of ``project_id`` only, unless None)."""
    query = sa.select(*_COLUMNS).where(snapshots.c.id == snapshot_id)
    if project_id is not None:
        query = query.where(snapshots.c.project_id == project_id)
    row = conn.execute(query).first()
    return None if row is None else Snapshot.from_row(row)


def page_of(conn: Connection, project_id: str | None, page: Page) -> list[Snapshot]:
    """One page, newest first (of ``project_id`` only, unless None)."""
    query = sa.select(*_COLUMNS).order_by(*_ORDER).offset(page.offset).limit(page.limit)
    if project_id is not None:
        query = query.where(snapshots.c.project_id == project_id)
    return [Snapshot.from_row(row) for row in conn.execute(query)]


def lock_source(conn: Connection, volume_id: str | None,
                project_id: str | None) -> Row[Any] | None:
    """The volume a snapshot is to be made of (status, size, backend, type), its row locked
    (``FOR UPDATE`` on PostgreSQL) so that its status holds until the snapshot row commits."""
    query = sa.select(volumes.c.status, volumes.c.size, volumes.c.backend,
                      volumes.c.volume_type).where(volumes.c.id == volume_id).with_for_update()
    if project_id is not None:
        query = query.where(volumes.c.project_id == project_id)
    return conn.execute(query).first()


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(snapshots.insert().values(values))


def set_location(conn: Connection, snapshot_id: str, location: str) -> None:
    conn.execute(snapshots.update().where(snapshots.c.id == snapshot_id)
                 .values(provider_location=location))


def delete_deleting(conn: Connection, snapshot_id: str) -> None:
    """Remove the row, if it is still ``deleting``."""
    conn.execute(snapshots.delete().where(snapshots.c.id == snapshot_id,
                                          snapshots.c.status == SnapshotStatus.DELETING))


def volumes_being_made_from(conn: Connection, snapshot_id: str) -> int:
    """How many volumes are being created from the snapshot right now."""
    return conn.execute(sa.select(sa.func.count()).where(
        volumes.c.snapshot_id == snapshot_id,
        volumes.c.status == VolumeStatus.CREATING)).scalar_one()


def volume_backend(conn: Connection, volume_id: str) -> str:
    backend: str = conn.execute(sa.select(volumes.c.backend).where(
        volumes.c.id == volume_id)).scalar_one()
    return backend


def status_and_volume(conn: Connection, snapshot_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(snapshots.c.status, snapshots.c.volume_id).where(
        snapshots.c.id == snapshot_id)).first()


def source(conn: Connection, snapshot_id: str) -> Row[Any] | None:
    """A snapshot's status and location, with its volume's backend and where its bytes are."""
    return conn.execute(
        sa.select(snapshots.c.status, snapshots.c.volume_id, snapshots.c.provider_location,
                  volumes.c.backend, volumes.c.provider_location.label("volume_location"))
        .join(volumes, volumes.c.id == snapshots.c.volume_id)
        .where(snapshots.c.id == snapshot_id)
    ).first()
