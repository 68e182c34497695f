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
from sqlalchemy.sql import Insert, Select

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


class PreparedWrite:
    """An insert, update or delete (``RETURNING`` allowed) with named bind parameters,
    compiled once per dialect and per set of parameter names, run on the DBAPI cursor of the
    caller's transaction. Each value goes through its column type's bind processor, as Core
    would send it (datetimes, JSON, booleans), and literals in the statement are bound too.

    ``stmt`` is a function of the parameter names (sorted) that builds the statement: an insert
    of whichever columns a row has, say, is one compiled statement per shape of row.
    """

    def __init__(self, stmt: Callable[[tuple[str, ...]], Any]) -> None:
        self.stmt = stmt
        self._by_shape: dict[tuple[str, tuple[str, ...]], _CompiledWrite] = {}

    def _compiled(self, dialect: Dialect, names: tuple[str, ...]) -> _CompiledWrite:
        found = self._by_shape.get((dialect.name, names))
        if found is None:
            stmt = self.stmt(names)
            # An insert without values() takes its columns from the names given.
            keys = list(names) if isinstance(stmt, Insert) else None
            compiled = stmt.compile(dialect=dialect, column_keys=keys)
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            sql = str(compiled)
            used = order if order is not None else tuple(
                name for name in compiled.binds if f"%({name})s" in sql)
            defaults = {name: compiled.binds[name].value for name in used
                        if name not in names}
            processors = {name: proc for name, bind in compiled.binds.items()
                          if (proc := bind.type.dialect_impl(dialect).bind_processor(dialect))}
            found = _CompiledWrite(sql, order, processors, defaults)
            self._by_shape[(dialect.name, names)] = found
        return found

    def execute(self, conn: Connection, **params: Any) -> Any:
        """Run it with ``params`` inside ``conn``'s transaction; the DBAPI cursor, executed
        (``rowcount``; ``fetchone()`` for ``RETURNING``), for the caller to close."""
        compiled = self._compiled(conn.dialect, tuple(sorted(params)))
        values = {**compiled.defaults, **params}
        for name, proc in compiled.processors.items():
            if name in values:  # None too: a JSON column stores it as JSON null, as Core does
                values[name] = proc(values[name])
        args: Sequence[Any] | dict[str, Any]
        args = [values[name] for name in compiled.order] if compiled.order else values
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(compiled.sql, args)
        return cursor

    def rowcount(self, conn: Connection, **params: Any) -> int:
        """Run it; how many rows it changed."""
        cursor = self.execute(conn, **params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def returned(self, conn: Connection, **params: Any) -> tuple:
        """Run it (a statement with ``RETURNING``); the one row it returned."""
        cursor = self.execute(conn, **params)
        try:
            return tuple(cursor.fetchone())
        finally:
            cursor.close()


@dataclass(frozen=True, slots=True)
class _CompiledWrite:
    sql: str
    order: tuple[str, ...] | None
    processors: dict[str, Callable[[Any], Any]]  # bind name -> its type's bind processor
    defaults: dict[str, Any]


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
