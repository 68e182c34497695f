"""Bring a database to the newest schema with Alembic (``stackvol db upgrade`` and start-up).

Alembic (with Mako and Pygments, which it loads) costs a long-running process about 10 MiB
that it would carry for its lifetime after a migration of a second. So start-up reads the
schema's revision itself and, only when the database is behind, migrates it in a short-lived
child process (``python -m stackvol.db.migrate``, URL in the environment).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision; tests/unit/test_migration_head.py fails when a migration is added and
# this is not moved to it.
HEAD = "0015_type_access"
URL_ENV = "STACKVOL_MIGRATE_URL"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply every migration up to ``revision`` on ``engine``'s database, in this process.

    ``heads``: features developed side by side add migrations on branches of their own;
    every branch is applied until a merge revision joins them."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (none for an empty database)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return set()
        return set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def ensure_current(engine: Engine) -> None:
    """Start-up: migrate the database if it is behind ``HEAD``, in a child process (in this
    one for an in-memory SQLite database, which a child cannot see)."""
    if revisions(engine) == {HEAD}:
        return
    url = engine.url.render_as_string(hide_password=False)
    if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
        upgrade(engine)
        return
    done = subprocess.run([sys.executable, "-m", "stackvol.db.migrate"], check=False,
                          capture_output=True, text=True, env={**os.environ, URL_ENV: url})
    if done.returncode != 0:
        raise RuntimeError(f"migrating the database failed: {done.stderr.strip()[-2000:]}")


def main() -> int:
    from stackvol.db.engine import create_engine

    engine = create_engine(os.environ[URL_ENV])
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
