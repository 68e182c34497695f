"""Prepared reads for the hot paths (show and list): a Core ``select`` compiled once per dialect,
run on the DBAPI cursor, each column decoded by its SQLAlchemy type's own result processor.

Per call this skips statement construction, cache-key generation and the execution-context
machinery, which cost several times more than the query itself on SQLite; what comes back is
exactly what Core would have returned (same types, same decoding), as plain tuples.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Select

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: tuple[str, ...] | None  # parameter names in order, for positional paramstyles
    convert: Callable[[Sequence[Any]], tuple] | None  # a fetched row to decoded values
    defaults: dict[str, Any]  # values of the statement's own literals (e.g. status = 'x')


def _converter(processors: Sequence[Processor]) -> Callable[[Sequence[Any]], tuple] | None:
    """One function decoding a whole row, its columns unrolled: a list of 1,000 wide rows is
    decoded several times faster than by looping over the processors for each value. NULL
    stays NULL without a call (every result processor maps None to None)."""
    if not any(processors):
        return None
    cells = [f"r[{i}]" if proc is None else f"(None if r[{i}] is None else p{i}(r[{i}]))"
             for i, proc in enumerate(processors)]
    namespace = {f"p{i}": proc for i, proc in enumerate(processors) if proc is not None}
    source = f"def convert(r):\n    return ({', '.join(cells)},)\n"
    exec(source, namespace)  # the source is built above from column positions only
    return namespace["convert"]


class PreparedSelect:
    """A select with named bind parameters (``bindparam("id")``) and no expanding ones."""

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self._by_dialect: dict[str, _Compiled] = {}

    @functools.cached_property
    def record(self) -> Any:
        """Rows with attribute access by column name, for callers written against Core's Row
        (a name selected twice is renamed)."""
        return namedtuple("record", [c.key for c in self.stmt.selected_columns],  # type: ignore[misc]
                          rename=True)

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self.stmt.compile(dialect=dialect)
            processors = tuple(
                col.type.dialect_impl(dialect).result_processor(dialect, None)
                for col in self.stmt.selected_columns
            )
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            defaults = {name: bind.value for name, bind in compiled.binds.items()
                        if bind.value is not None}
            found = _Compiled(str(compiled), order, _converter(processors), defaults)
            self._by_dialect[dialect.name] = found
        return found

    def rows(self, dbapi_conn: Any, dialect: Dialect, params: dict[str, Any]) -> list[tuple]:
        compiled = self._compiled(dialect)
        values = {**compiled.defaults, **params}
        args: Sequence[Any] | dict[str, Any]
        args = [values[name] for name in compiled.order] if compiled.order else values
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(compiled.sql, args)
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        convert = compiled.convert
        if convert is None:
            return [tuple(row) for row in fetched]
        return [convert(row) for row in fetched]


def run(conn: Connection, query: PreparedSelect, **params: Any) -> list[tuple]:
    """``query`` inside the transaction ``conn`` holds (e.g. a write's own reads)."""
    return query.rows(conn.connection.driver_connection, conn.dialect, params)


def records(conn: Connection, query: PreparedSelect, **params: Any) -> list[Any]:
    """``run``, each row as a named tuple (``row.name``, like Core's ``Row``)."""
    make = query.record._make
    return [make(row) for row in run(conn, query, **params)]


class RawReader:
    """What a prepared read runs on: one DBAPI connection and its dialect."""

    __slots__ = ("dbapi_conn", "dialect")

    def __init__(self, dbapi_conn: Any, dialect: Dialect) -> None:
        self.dbapi_conn = dbapi_conn
        self.dialect = dialect

    def rows(self, query: PreparedSelect, **params: Any) -> list[tuple]:
        return query.rows(self.dbapi_conn, self.dialect, params)
