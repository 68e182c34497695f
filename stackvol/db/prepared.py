"""Prepared reads for the hot paths (show and list): a Core ``select`` compiled once per dialect,
run on the DBAPI cursor, each column decoded by its SQLAlchemy type's own result processor.

Per call this skips statement construction, cache-key generation and the execution-context
machinery, which cost several times more than the query itself on SQLite; what comes back is
exactly what Core would have returned (same types, same decoding), as plain tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: tuple[str, ...] | None  # parameter names in order, for positional paramstyles
    processors: tuple[Processor, ...]
    defaults: dict[str, Any]  # values of the statement's own literals (e.g. status = 'x')


class PreparedSelect:
    """A select with named bind parameters (``bindparam("id")``) and no expanding ones."""

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self.stmt.compile(dialect=dialect)
            processors = tuple(
                col.type.dialect_impl(dialect).result_processor(dialect, None)
                for col in self.stmt.selected_columns
            )
            order = tuple(compiled.positiontup) if compiled.positional else None
            defaults = {name: bind.value for name, bind in compiled.binds.items()
                        if bind.value is not None}
            found = _Compiled(str(compiled), order, processors, defaults)
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
        processors = compiled.processors
        if not any(processors):
            return [tuple(row) for row in fetched]
        return [tuple(proc(value) if proc else value
                      for proc, value in zip(processors, row, strict=True))
                for row in fetched]


class RawReader:
    """What a prepared read runs on: one DBAPI connection and its dialect."""

    __slots__ = ("dbapi_conn", "dialect")

    def __init__(self, dbapi_conn: Any, dialect: Dialect) -> None:
        self.dbapi_conn = dbapi_conn
        self.dialect = dialect

    def rows(self, query: PreparedSelect, **params: Any) -> list[tuple]:
        return query.rows(self.dbapi_conn, self.dialect, params)
