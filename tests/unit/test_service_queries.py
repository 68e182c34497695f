"""The queries modules of quotas, identity and operations on a real temporary SQLite: bounded
counting, limits saved and dropped by API, the Fernet key ring, os-services state rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import quota_limits
from stackvol.services.identity import queries as identity
from stackvol.services.operations import queries as operations
from stackvol.services.quotas import queries as quotas

NOW = dt.datetime(2026, 1, 1)


def _limits_of(project_id: str, names: list[str],
               value: int) -> tuple[Callable[[Connection], None], sa.Select[Any]]:
    """Rows to count: the project's limits, each set to ``value`` (saved by the callable)."""
    def save(conn: Connection) -> None:
        for name in names:
            quotas.save_project_limit(conn, project_id, name, value, NOW)
    return save, sa.select(quota_limits.c.hard_limit).where(
        quota_limits.c.project_id == project_id)


def test_tally_stops_after_bound_plus_one_row(db: Database) -> None:
    save, rows = _limits_of("p1", [f"r{i}" for i in range(5)], 2)
    db.run_sync(save)
    cut = db.run_sync(quotas.tally, rows, 2)
    assert (cut.count, cut.sums, cut.cut) == (3, (6,), True)
    full = db.run_sync(quotas.tally, rows, None)
    assert (full.count, full.sums, full.cut) == (5, (10,), False)


def test_tally_reads_all_when_a_row_adds_nothing(db: Database) -> None:
    save, rows = _limits_of("p2", [f"r{i}" for i in range(5)], 0)
    db.run_sync(save)
    found = db.run_sync(quotas.tally, rows, 2)  # a cut sum below the count proves nothing
    assert (found.count, found.sums, found.cut) == (5, (0,), False)


def test_limits_saved_then_dropped_by_api(db: Database) -> None:
    def change(conn: Connection) -> dict[str, int]:
        quotas.save_project_limit(conn, "p", "volumes", 3, NOW)
        quotas.save_project_limit(conn, "p", "volumes", 4, NOW)  # an update, not a second row
        quotas.save_project_limit(conn, "p", "instances", 7, NOW)
        return quotas.project_limits(conn, "p", ["volumes", "instances", "cores"])

    assert db.run_sync(change) == {"volumes": 4, "instances": 7}
    db.run_sync(quotas.delete_project_limits, "p", ["instances"], True)  # all but Nova's
    assert db.run_sync(quotas.project_limits, "p", ["volumes", "instances"]) == {"instances": 7}
    db.run_sync(quotas.delete_project_limits, "p", ["instances"])
    assert db.run_sync(quotas.project_limits, "p", ["instances"]) == {}


def test_token_keys_newest_first(db: Database) -> None:
    def ring(conn: Connection) -> tuple[list[int], list[str]]:
        for _ in range(3):
            identity.add_token_key(conn)
        ids = identity.token_key_ids(conn)
        identity.delete_token_keys(conn, ids[2:])
        return ids, identity.token_key_values(conn)

    ids, values = db.run_sync(ring)
    assert ids == sorted(ids, reverse=True)
    assert len(values) == 2
    assert db.run_sync(identity.has_token_key)


def test_service_state_saved_once_per_host(db: Database) -> None:
    def change(conn: Connection) -> set[str]:
        operations.save_service_state(conn, "cinder-volume", "h@file", disabled=True)
        operations.save_service_state(conn, "cinder-volume", "h@file", disabled=True,
                                      disabled_reason="x")
        operations.save_service_state(conn, "cinder-volume", "h@lvm", disabled=False)
        return operations.disabled_hosts(conn, "cinder-volume")

    assert db.run_sync(change) == {"h@file"}
    states = db.run_sync(operations.service_states_by_key)
    assert states[("cinder-volume", "h@file")].disabled_reason == "x"
