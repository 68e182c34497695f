"""The database handle: one engine, and ``run()`` to execute a unit of work in one transaction.

Services write their transactions as plain functions of a ``Connection`` (SQLAlchemy Core). On
SQLite the whole transaction runs inline on the event loop: it is a local file and a statement
costs microseconds, far less than handing it to a thread. On a networked server (PostgreSQL) the
same function runs in a thread pool, so a slow round trip never blocks other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import anyio.to_thread
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from stackvol.db.prepared import RawReader

# The advisory lock key start-up holds on PostgreSQL ("stackvol" in ASCII hex, as a bigint).
STARTUP_LOCK = 0x737461636B766F6C

P = ParamSpec("P")
T = TypeVar("T")


def _loads(text: str) -> Any:
    """JSON columns read back: orjson, several times faster on wide lists; the standard
    decoder for what orjson refuses (e.g. a lone surrogate that ``json.dumps`` escaped)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_engine(url: str, sqlite_synchronous: str = "NORMAL") -> Engine:
    """An engine with the pragmas and pool that suit the URL's dialect."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_deserializer=_loads,
            pool_size=4,
            max_overflow=8,
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy (not pysqlite) open transactions, so BEGIN IMMEDIATE below works.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Take the write lock at BEGIN: a compare-and-swap never upgrades a read lock midway.
            # Straight on the driver: SQLAlchemy's execution path costs more than the BEGIN.
            driver = conn.connection.driver_connection
            assert driver is not None  # a pooled connection always has its DB-API connection
            driver.execute("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    # A client/server database: units of work run in threads (anyio's default limit is 40), so
    # the pool matches it. READ COMMITTED, said explicitly because the services rely on it: a
    # compare-and-swap ``UPDATE ... WHERE status IN (...)`` that waited on a row lock re-checks
    # its condition against the committed row, so exactly one of two racing swaps moves it;
    # check-then-insert sequences lock a row first (``FOR UPDATE``) to queue up.
    return sa.create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True,
                            pool_recycle=3600, isolation_level="READ COMMITTED")


Hook = Callable[[], None]


def on_commit(conn: Connection, done: Hook, undone: Hook | None = None) -> None:
    """Call ``done`` once the unit of work running on ``conn`` has committed, or ``undone``
    if it rolls back instead (units run by ``Database``: ``run``, ``run_grouped``).

    What a unit tells the rest of the process (a worker to start, a waiter to wake) must not
    happen before its rows are durable, nor at all when they never were.
    """
    conn.info.setdefault(_HOOKS, []).append((done, undone))


_HOOKS = "stackvol.hooks"


def _take_hooks(conn: Connection, keep: int = 0) -> list[tuple[Hook, Hook | None]]:
    """The hooks registered on ``conn`` after the first ``keep``, removed from it."""
    hooks: list[tuple[Hook, Hook | None]] = conn.info.get(_HOOKS, [])
    taken = hooks[keep:]
    del hooks[keep:]
    return taken


def _call(hooks: list[tuple[Hook, Hook | None]], committed: bool) -> None:
    for done, undone in hooks:
        hook = done if committed else undone
        if hook is not None:
            hook()


@dataclasses.dataclass(slots=True)
class _Unit:
    """A unit of work waiting for the next group commit."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: asyncio.Future[Any]


class Database:
    """Runs units of work against the engine, inline (SQLite) or in threads (client/server)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # One writer at a time within this process; SQLite serialises writers anyway, and
        # doing it here keeps the event loop from spinning on SQLITE_BUSY.
        self._write_lock = threading.Lock()
        self._loop_reader: Any = None
        self._writer: Connection | None = None  # SQLite: the one write connection, held
        self._group: list[_Unit] = []  # units waiting for the next group commit

    def _write_connection(self) -> Connection:
        """SQLite's writer, kept open under the write lock: checking a connection out of the
        pool and resetting it on return cost as much as a small write transaction."""
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            if self._writer is not None:
                self._writer.close()
            self._writer = self.engine.connect()
            self._writer.info["write"] = True
        return self._writer

    def _execute(self, write: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.is_sqlite and write:
            with self._write_lock:
                return self._transaction(self._write_connection(), fn, *args, **kwargs)
        with self.engine.connect() as conn:
            return self._transaction(conn, fn, *args, **kwargs)

    @staticmethod
    def _transaction(conn: Connection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(conn, ...)`` in one transaction, then the hooks it registered."""
        _take_hooks(conn)  # none should be left, but a stale one must never fire
        try:
            with conn.begin():
                result = fn(conn, *args, **kwargs)
        except BaseException:
            _call(_take_hooks(conn), committed=False)
            raise
        _call(_take_hooks(conn), committed=True)
        return result

    async def run_grouped(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Like ``run``, but committed together with the other units queued meanwhile.

        On SQLite a commit costs more than a small unit of work, and writers take turns anyway;
        so the write units that arrive while the event loop is busy (API requests, worker
        endings) share one transaction, each in a savepoint of its own: a unit that fails
        rolls back alone and raises to its caller, the others commit. Nobody hears back
        before the commit, so an acknowledged write is as durable as with ``run``. On a
        client/server database each unit is its own transaction (``run``).
        """
        if not self.is_sqlite:
            return await self.run(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        if not self._group:
            loop.call_soon(self._commit_group)
        unit = _Unit(fn, args, kwargs, loop.create_future())
        self._group.append(unit)
        return cast(T, await unit.result)

    def _commit_group(self) -> None:
        units, self._group = self._group, []
        outcomes: list[tuple[_Unit, Any, BaseException | None]] = []
        hooks: list[tuple[Hook, Hook | None]] = []
        conn: Connection | None = None
        try:
            with self._write_lock:
                conn = self._write_connection()
                _take_hooks(conn)
                with conn.begin():
                    if len(units) == 1:  # alone: its failure rolls back the transaction
                        unit = units[0]
                        outcomes.append((unit, unit.fn(conn, *unit.args, **unit.kwargs), None))
                    else:
                        outcomes.extend(self._savepoint(conn, unit) for unit in units)
                    hooks = _take_hooks(conn)
        except Exception as exc:  # BEGIN, COMMIT or a lone unit failed: every unit failed
            _call(hooks + (_take_hooks(conn) if conn is not None else []), committed=False)
            for unit in units:
                if not unit.result.done():
                    unit.result.set_exception(exc)
            return
        _call(hooks, committed=True)
        for unit, value, error in outcomes:
            if unit.result.done():  # its caller was cancelled meanwhile
                continue
            if error is None:
                unit.result.set_result(value)
            else:
                unit.result.set_exception(error)

    @staticmethod
    def _savepoint(conn: Connection, unit: _Unit) -> tuple[_Unit, Any, BaseException | None]:
        # Straight on the driver: through SQLAlchemy the savepoint costs more than a create.
        driver = conn.connection.driver_connection
        assert driver is not None  # a pooled connection always has its DB-API connection
        keep = len(conn.info.get(_HOOKS, []))
        driver.execute("SAVEPOINT unit")
        try:
            value = unit.fn(conn, *unit.args, **unit.kwargs)
        except Exception as exc:
            driver.execute("ROLLBACK TO unit")
            driver.execute("RELEASE unit")
            _call(_take_hooks(conn, keep), committed=False)
            return unit, None, exc
        driver.execute("RELEASE unit")
        return unit, value, None

    def run_sync(self, fn: Callable[..., T], *args: Any, write: bool = True, **kwargs: Any) -> T:
        """Run ``fn(conn, ...)`` in one transaction, in the calling thread."""
        return self._execute(write, fn, *args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, write: bool = True, **kwargs: Any) -> T:
        """Run ``fn(conn, ...)`` in one transaction; ``write=False`` for read-only work."""
        if self.is_sqlite:
            return self._execute(write, fn, *args, **kwargs)
        call = functools.partial(self._execute, write, fn, *args, **kwargs)
        return await anyio.to_thread.run_sync(call)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.run(fn, *args, write=False, **kwargs)

    def _read_prepared(self, fn: Callable[..., T], *args: Any, one_query: bool = False) -> T:
        if self.is_sqlite:
            if self._loop_reader is None:
                self._loop_reader = self.engine.raw_connection()
            raw = self._loop_reader.driver_connection
            if one_query:  # a lone statement reads one snapshot by itself (autocommit)
                return fn(RawReader(raw, self.engine.dialect), *args)
            raw.execute("BEGIN")  # one snapshot for every query of the read
            try:
                return fn(RawReader(raw, self.engine.dialect), *args)
            finally:
                raw.execute("COMMIT")
        with self.engine.connect() as conn:
            reader = RawReader(conn.connection.driver_connection, self.engine.dialect)
            with conn.begin():
                return fn(reader, *args)

    async def read_prepared(self, fn: Callable[..., T], *args: Any,
                            one_query: bool = False) -> T:
        """Run ``fn(reader, ...)`` made of ``PreparedSelect`` queries: the hot read paths.

        On SQLite the event loop keeps one connection of its own for these reads. A read that
        runs a single query says ``one_query=True``: on SQLite it then runs without BEGIN and
        COMMIT (a sixth of a show's read in a profile), as one statement is its own snapshot.
        """
        if self.is_sqlite:
            return self._read_prepared(fn, *args, one_query=one_query)
        return await anyio.to_thread.run_sync(functools.partial(self._read_prepared, fn, *args))

    @contextlib.contextmanager
    def startup_lock(self) -> Iterator[None]:
        """Serialise start-up work (migrations, bootstrap rows) across processes sharing a
        PostgreSQL database: a session advisory lock. SQLite needs none (one writer)."""
        if self.is_sqlite:
            yield
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({STARTUP_LOCK})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({STARTUP_LOCK})")
                conn.commit()

    def dispose(self) -> None:
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        self.engine.dispose()
