"""The revision start-up compares the database with is the scripts' one head."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from stackvol.db import migrate
from stackvol.db.engine import create_engine


def test_head_is_the_newest_migration() -> None:
    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert scripts.get_heads() == [migrate.HEAD]


def test_a_fresh_database_is_migrated_by_a_child_process_then_left_alone(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        assert migrate.revisions(engine) == set()
        migrate.ensure_current(engine)
        assert migrate.revisions(engine) == {migrate.HEAD}
        assert sa.inspect(engine).has_table("volumes")
        migrate.ensure_current(engine)  # current: nothing to do
        assert migrate.revisions(engine) == {migrate.HEAD}
    finally:
        engine.dispose()
