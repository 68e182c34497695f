"""Fixtures of the functional tier only (kept out of tests/conftest.py so the unit tier never
pays for them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import postgres


@pytest.fixture(scope="session", autouse=True)
def database_cluster() -> Iterator[None]:
    """On a PostgreSQL run, one private cluster serves every test server's database (started
    here, before the first test, and stopped after the last)."""
    if postgres.wanted():
        postgres.shared_cluster()
    yield
    postgres.stop_shared_cluster()
