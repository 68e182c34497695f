"""The SQL of images: the ``images`` rows, their compare-and-swap status moves, the list
filters and the uploads a dead process left. Small functions of a ``Connection`` and the
clauses they take; ``images.api`` decides what to ask.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db.schema import images, services
from stackvol.services.common.listing import ListQuery, fetch_page
from stackvol.timeutils import utcnow

# --- rows -----------------------------------------------------------------------------------


def image_row(conn: Connection, image_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(images).where(images.c.id == image_id)).first()


def image_exists(conn: Connection, image_id: str) -> bool:
    return conn.execute(sa.select(images.c.id).where(images.c.id == image_id)).first() \
        is not None


def insert_image(conn: Connection, **values: Any) -> None:
    conn.execute(images.insert().values(**values))


def update_image(conn: Connection, image_id: str, **values: Any) -> None:
    """Set ``values`` (and ``updated_at``) on the image, whatever its status."""
    conn.execute(images.update().where(images.c.id == image_id)
                 .values(updated_at=utcnow(), **values))


def delete_image(conn: Connection, image_id: str) -> None:
    conn.execute(images.delete().where(images.c.id == image_id))


def move(conn: Connection, image_id: str, expected: str, values: Mapping[str, Any],
         *where: sa.ColumnElement[bool]) -> bool:
    """Compare-and-swap the image's status (and ``where``); whether this call moved it."""
    moved = conn.execute(images.update()
                         .where(images.c.id == image_id, images.c.status == expected, *where)
                         .values(updated_at=utcnow(), **values))
    return moved.rowcount == 1


# Clauses for ``move``.
NO_DATA = images.c.location.is_(None)


def upload_owner_is(owner: str | None) -> sa.ColumnElement[bool]:
    """The upload runs in process ``owner`` (None: recorded before owners were)."""
    return images.c.upload_owner.is_(None) if owner is None else images.c.upload_owner == owner


# --- lists ----------------------------------------------------------------------------------


def page(conn: Connection, query: ListQuery) -> Sequence[Row[Any]]:
    """One page of images (``NotFound`` if the marker is filtered out)."""
    rows, _ = fetch_page(conn, images, query)
    return rows


def visibility_where(is_admin: bool, project_id: str,
                     visibility: str | None) -> list[sa.ColumnElement[bool]]:
    """Which images a list shows: Glance's default is the caller's own and public ones."""
    column = images.c.visibility
    if is_admin:
        return [] if visibility in (None, "all") else [column == visibility]
    mine = images.c.owner == project_id
    if visibility is None:
        return [sa.or_(mine, column == "public")]
    if visibility == "all":
        return [sa.or_(mine, column.in_(("public", "community")))]
    if visibility in ("public", "community"):
        return [column == visibility]
    return [column == visibility, mine]


def hidden_is(hidden: bool) -> sa.ColumnElement[bool]:
    return images.c.os_hidden == hidden


def property_is(key: str, value: str) -> sa.ColumnElement[bool]:
    return images.c.properties[key].as_string() == value


def size_between(low: int | None, high: int | None) -> list[sa.ColumnElement[bool]]:
    where = [] if low is None else [images.c.size >= low]
    return where if high is None else [*where, images.c.size <= high]


def has_tag(tag: str) -> sa.ColumnElement[bool]:
    # Tags are stored as a JSON list of strings: look for the quoted tag in its text.
    return sa.cast(images.c.tags, sa.Text).contains(json.dumps(tag), autoescape=True)


# --- uploads a dead process left --------------------------------------------------------------


def orphaned(down_after: float) -> sa.ColumnElement[bool]:
    """Uploads whose process has no heartbeat newer than ``down_after`` seconds (one
    recorded before owners were, idle that long, counts too)."""
    cutoff = utcnow() - dt.timedelta(seconds=down_after)
    alive = sa.select(services.c.name).where(services.c.heartbeat_at >= cutoff)
    return sa.or_(sa.and_(images.c.upload_owner.is_(None), images.c.updated_at < cutoff),
                  images.c.upload_owner.not_in(alive))


def reset_uploads(conn: Connection,
                  which: sa.ColumnElement[bool]) -> list[tuple[str, str | None]]:
    """Put the ``saving`` images matching ``which`` back to ``queued``; their ids and the
    processes their uploads ran in."""
    saving = sa.and_(images.c.status == "saving", which)
    found = [(row.id, row.upload_owner) for row in
             conn.execute(sa.select(images.c.id, images.c.upload_owner).where(saving))]
    if found:
        conn.execute(images.update()
                     .where(saving, images.c.id.in_([image_id for image_id, _ in found]))
                     .values(status="queued", upload_owner=None, upload_started_at=None,
                             updated_at=utcnow()))
    return found
