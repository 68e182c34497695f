"""Database.run_grouped: units queued together share one SQLite transaction, each in a savepoint;
commit hooks fire only for what was committed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database, on_commit
from stackvol.db.schema import quota_locks


class Refused(Exception):
    pass


def _insert(conn: Connection, project_id: str, fired: list[str], fail: bool = False) -> str:
    conn.execute(quota_locks.insert().values(project_id=project_id))
    on_commit(conn, lambda: fired.append(f"done {project_id}"),
              lambda: fired.append(f"undone {project_id}"))
    if fail:
        raise Refused(project_id)
    return project_id


def _rows(conn: Connection) -> set[str]:
    return set(conn.execute(sa.select(quota_locks.c.project_id)).scalars())


def _commits(db: Database) -> list[str]:
    seen: list[str] = []
    sa.event.listen(db.engine, "commit", lambda conn: seen.append("commit"))
    return seen


def test_units_queued_together_commit_once_and_a_failing_one_alone_rolls_back(
        db: Database) -> None:
    fired: list[str] = []
    commits = _commits(db)

    async def together() -> list[Any]:
        return await asyncio.gather(
            db.run_grouped(_insert, "a", fired), db.run_grouped(_insert, "b", fired, fail=True),
            db.run_grouped(_insert, "c", fired), return_exceptions=True)

    a, b, c = asyncio.run(together())
    assert commits == ["commit"]  # one transaction for the three
    assert (a, c) == ("a", "c") and isinstance(b, Refused)
    assert db.run_sync(_rows, write=False) == {"a", "c"}
    assert sorted(fired) == ["done a", "done c", "undone b"]


def test_a_lone_unit_that_fails_rolls_back_and_raises(db: Database) -> None:
    fired: list[str] = []
    with pytest.raises(Refused):
        asyncio.run(db.run_grouped(_insert, "x", fired, fail=True))
    assert db.run_sync(_rows, write=False) == set()
    assert fired == ["undone x"]


def test_run_fires_the_hooks_after_its_commit(db: Database) -> None:
    fired: list[str] = []
    assert db.run_sync(_insert, "y", fired) == "y"
    with pytest.raises(Refused):
        db.run_sync(_insert, "z", fired, fail=True)
    assert fired == ["done y", "undone z"]
    assert db.run_sync(_rows, write=False) == {"y"}
