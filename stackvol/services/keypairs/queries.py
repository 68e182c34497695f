"""The keypairs' SQL: small functions on the caller's connection, returning rows that api.py
turns into ``KeyPair`` records. A keypair is keyed by its user and its name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db.schema import key_pairs


def find(conn: Connection, user_id: str, name: str) -> Row[Any] | None:
    return conn.execute(sa.select(key_pairs).where(key_pairs.c.user_id == user_id,
                                                   key_pairs.c.name == name)).first()


def count_of(conn: Connection, user_id: str) -> int:
    """How many keypairs the user holds (what the ``key_pairs`` quota limits)."""
    return conn.execute(sa.select(sa.func.count()).select_from(key_pairs)
                        .where(key_pairs.c.user_id == user_id)).scalar_one()


def insert(conn: Connection, values: dict[str, Any]) -> int:
    """Insert one keypair; its new id."""
    inserted = conn.execute(key_pairs.insert().values(values)).inserted_primary_key
    assert inserted is not None  # a single-row insert always reports its key
    return inserted[0]


def page_of(conn: Connection, user_id: str, after: str | None,
            limit: int | None) -> Sequence[Row[Any]]:
    """The user's keypairs by name, those named after ``after`` only when given."""
    query = (sa.select(key_pairs).where(key_pairs.c.user_id == user_id)
             .order_by(key_pairs.c.name))
    if after is not None:
        query = query.where(key_pairs.c.name > after)
    if limit is not None:
        query = query.limit(limit)
    return conn.execute(query).all()


def delete(conn: Connection, user_id: str, name: str) -> int:
    """Remove the user's keypair of that name; how many rows went (0 or 1)."""
    return conn.execute(key_pairs.delete().where(key_pairs.c.user_id == user_id,
                                                 key_pairs.c.name == name)).rowcount
