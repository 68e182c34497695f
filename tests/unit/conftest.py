"""Fixtures of the unit tier: a temporary SQLite database migrated as a stackvol process
migrates it (Alembic ``upgrade``), fresh per test (``db``) or shared by a module with every test
in a transaction rolled back at its end (``conn``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database, create_engine
from stackvol.db.migrate import upgrade


@contextmanager
def migrated(folder: Path) -> Iterator[Database]:
    """A migrated SQLite database in ``folder``, disposed of at the end."""
    database = Database(create_engine(f"sqlite:///{folder / 'stackvol.sqlite'}"))
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A database of the test's own, for tests that commit (workers, services)."""
    with migrated(tmp_path) as database:
        yield database


@pytest.fixture(scope="module")
def module_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    # Migrating costs more than most query tests: one database a module, emptied by ``conn``.
    with migrated(tmp_path_factory.mktemp("db")) as database:
        yield database


@pytest.fixture
def conn(module_db: Database) -> Iterator[Connection]:
    """One transaction per test, rolled back: every test starts from empty tables."""
    with module_db.engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()
