"""Cinder-style lists over any resource table: filters, sort keys, keyset markers and counts.

A marker names the last row of the previous page; the next page starts strictly after it in
the sort order (ties broken by id), so paging is O(limit) and never repeats or skips a row
while others are created.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.services.common.errors import Invalid, NotFound

OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "like")
_EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Filter:
    column: str
    value: Any
    op: str = "eq"


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page request: ``project_id`` None means every project."""

    project_id: str | None
    limit: int
    marker: str | None = None
    offset: int = 0
    sort: Sequence[tuple[str, str]] = (("created_at", "desc"), ("id", "desc"))
    filters: Sequence[Filter] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    with_count: bool = False
    # Conditions beyond column filters (an image's visibility: "mine or public or ...").
    where: Sequence[sa.ColumnElement[bool]] = ()


def _sortable(column: sa.Column) -> sa.ColumnElement[Any]:
    """NULLs compare as the smallest value, the same on every database."""
    if not column.nullable:
        return column
    blank: Any = _EPOCH if isinstance(column.type, sa.DateTime) else ""
    if isinstance(column.type, sa.Integer | sa.Boolean):
        blank = 0 if isinstance(column.type, sa.Integer) else False
    return sa.func.coalesce(column, blank)


def _condition(table: sa.Table, flt: Filter) -> sa.ColumnElement[bool]:
    column = table.c[flt.column]
    if flt.op == "like":
        return column.contains(str(flt.value), autoescape=True)
    ops = {"eq": column.__eq__, "neq": column.__ne__, "gt": column.__gt__,
           "gte": column.__ge__, "lt": column.__lt__, "lte": column.__le__}
    if isinstance(flt.value, list | tuple) and flt.op == "eq":
        return column.in_(list(flt.value))
    return ops[flt.op](flt.value)


def _where(table: sa.Table, query: ListQuery) -> list[sa.ColumnElement[bool]]:
    where = [_condition(table, flt) for flt in query.filters]
    where.extend(query.where)
    if query.project_id is not None:
        where.append(table.c.project_id == query.project_id)
    for key, value in query.metadata.items():
        where.append(table.c.metadata[key].as_string() == str(value))
    return where


def _order(table: sa.Table, sort: Sequence[tuple[str, str]]) -> list[tuple[Any, str]]:
    """The sort keys, then (as Cinder and Glance break ties) created_at and id."""
    keys = [(table.c[name], direction) for name, direction in sort]
    names = {name for name, _ in sort}
    for tie_break in ("created_at", "id"):
        if tie_break not in names and tie_break in table.c:
            keys.append((table.c[tie_break], sort[-1][1] if sort else "desc"))
    return [(_sortable(column), direction) for column, direction in keys]


def _after(order: list[tuple[Any, str]], marker: Row[Any]) -> sa.ColumnElement[bool]:
    """Rows strictly after ``marker`` in ``order`` (a lexicographic keyset condition)."""
    clauses = []
    for i, (expr, direction) in enumerate(order):
        equal = [e == marker[j] for j, (e, _) in enumerate(order[:i])]
        beyond = expr > marker[i] if direction == "asc" else expr < marker[i]
        clauses.append(sa.and_(*equal, beyond))
    return sa.or_(*clauses)


def fetch_page(conn: Connection, table: sa.Table,
               query: ListQuery) -> tuple[Sequence[Row[Any]], int | None]:
    """The page's rows and, if asked, how many rows match in all."""
    where = _where(table, query)
    order = _order(table, query.sort)
    select = sa.select(table).where(*where)
    if query.marker is not None:
        scope = [table.c.id == query.marker]
        if query.project_id is not None:
            scope.append(table.c.project_id == query.project_id)
        marker = conn.execute(sa.select(*(e for e, _ in order)).where(*scope)).first()
        if marker is None:
            raise NotFound(f"Marker {query.marker} could not be found.")
        select = select.where(_after(order, marker))
    select = select.order_by(*(e.asc() if d == "asc" else e.desc() for e, d in order))
    rows = conn.execute(select.offset(query.offset).limit(query.limit)).all()
    count = None
    if query.with_count:
        count = conn.execute(sa.select(sa.func.count()).select_from(table)
                             .where(*where)).scalar_one()
    return rows, count


def parse_sort(params: Mapping[str, str], allowed: Mapping[str, str],
               default: Sequence[tuple[str, str]] = (("created_at", "desc"), ("id", "desc")),
               ) -> list[tuple[str, str]]:
    """Cinder's ``sort=key:dir,...`` or ``sort_key``/``sort_dir``, mapped to column names."""
    pairs: list[tuple[str, str]] = []
    if params.get("sort"):
        for item in params["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key.strip(), (direction or "desc").strip().lower()))
    elif params.get("sort_key") or params.get("sort_dir"):
        keys = (params.get("sort_key") or "created_at").split(",")
        dirs = (params.get("sort_dir") or "desc").split(",")
        pairs = [(k.strip(), (dirs[i] if i < len(dirs) else dirs[-1]).strip().lower())
                 for i, k in enumerate(keys)]
    if not pairs:
        return list(default)
    out = []
    for key, direction in pairs:
        if direction not in ("asc", "desc"):
            raise Invalid("Invalid input received: Unknown sort direction, must be 'desc' "
                          "or 'asc'")
        if key not in allowed:
            raise Invalid(f"Invalid input received: Invalid sort key {key}")
        out.append((allowed[key], direction))
    return out
