"""The flavors' SQL: small functions on the caller's connection, returning rows that api.py
turns into ``Flavor`` records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db.schema import flavors

# Sort keys Nova accepts, mapped to our columns (Nova's names are its database columns).
SORT_COLUMNS = {
    "flavorid": flavors.c.id, "id": flavors.c.id, "name": flavors.c.name,
    "memory_mb": flavors.c.ram, "root_gb": flavors.c.disk, "vcpus": flavors.c.vcpus,
    "ephemeral_gb": flavors.c.ephemeral, "swap": flavors.c.swap,
    "rxtx_factor": flavors.c.rxtx_factor, "is_public": flavors.c.is_public,
    "description": flavors.c.description,
}


def taken_ids_and_names(conn: Connection) -> set[str]:
    """Every flavor id and every flavor name in use (one set: a default is skipped on either)."""
    existing = conn.execute(sa.select(flavors.c.id, flavors.c.name)).all()
    return {r.id for r in existing} | {r.name for r in existing}


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(flavors.insert().values(values))


def find(conn: Connection, flavor_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(flavors).where(flavors.c.id == flavor_id)).first()


def by_ids(conn: Connection, ids: set[str]) -> Sequence[Row[Any]]:
    return conn.execute(sa.select(flavors).where(flavors.c.id.in_(sorted(ids)))).all()


def matching(conn: Connection, *, min_ram: int | None, min_disk: int | None,
             is_public: bool | None, sort_key: str, descending: bool) -> Sequence[Row[Any]]:
    """The flavors passing the filters (None: no filter), ordered by ``sort_key`` (an unknown
    key sorts by id) then by id, so that a marker finds one stable position."""
    stmt = sa.select(flavors)
    if min_ram is not None:
        stmt = stmt.where(flavors.c.ram >= min_ram)
    if min_disk is not None:
        stmt = stmt.where(flavors.c.disk >= min_disk)
    if is_public is not None:
        stmt = stmt.where(flavors.c.is_public == is_public)
    column = SORT_COLUMNS.get(sort_key, flavors.c.id)
    order = [column.desc() if descending else column.asc()]
    if column is not flavors.c.id:
        order.append(flavors.c.id.asc())
    return conn.execute(stmt.order_by(*order)).all()
