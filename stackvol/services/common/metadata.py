"""Metadata and descriptive fields of volumes and snapshots, changed in place under a row lock.

One helper for every table with ``metadata``, ``display_name`` and ``display_description``
columns, so Cinder's metadata sub-resources behave the same for volumes and snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.services.common.errors import NotFound
from stackvol.timeutils import utcnow


@dataclass(frozen=True, slots=True)
class MetadataChange:
    """``set`` merged in (or replacing everything with ``replace``), then ``delete`` removed."""

    set: Mapping[str, str] | None = None
    replace: bool = False
    delete: str | None = None


def apply(current: Mapping[str, str], change: MetadataChange) -> dict[str, str]:
    merged = dict(change.set or {}) if change.replace else {**current, **(change.set or {})}
    if change.delete is not None:
        if change.delete not in merged:
            raise NotFound("Metadata item was not found")
        del merged[change.delete]
    return merged


def change_metadata(conn: Connection, table: sa.Table, row_id: str,
                    change: MetadataChange) -> dict[str, str]:
    """Apply ``change`` to the row's metadata (locking the row) and return the result."""
    row = conn.execute(sa.select(table.c.metadata).where(table.c.id == row_id)
                       .with_for_update()).first()
    if row is None:
        raise NotFound(f"{table.name[:-1].capitalize()} {row_id} could not be found.")
    merged = apply(row.metadata or {}, change)
    conn.execute(table.update().where(table.c.id == row_id)
                 .values(metadata=merged, updated_at=utcnow()))
    return merged


def update_fields(conn: Connection, table: sa.Table, row_id: str,
                  values: Mapping[str, Any]) -> None:
    """Set descriptive columns (name, description...) of one row."""
    if values:
        conn.execute(table.update().where(table.c.id == row_id)
                     .values(updated_at=utcnow(), **values))
