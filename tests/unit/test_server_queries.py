"""The servers package's SQL (services/servers/queries.py) on a temporary SQLite, and the pure
parts api.py and manager.py share: Nova's status table (records.py) and the list filters
(filters.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from stackvol.services.common.errors import Invalid
from stackvol.services.servers import queries as q
from stackvol.services.servers.filters import matcher
from stackvol.services.servers.records import POWER_OPS, Server, status_from_state

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


def add_server(conn: Connection, project: str = "p1", vm_state: str = "active",
               task_state: str | None = None, created: dt.datetime = T0,
               **values: Any) -> str:
    server_id = str(uuid.uuid4())
    q.insert(conn, {"id": server_id, "project_id": project, "user_id": "u1", "name": "vm",
                    "vm_state": vm_state, "task_state": task_state, "flavor_id": "1",
                    "metadata": {}, "created_at": created, **values})
    return server_id


def state(conn: Connection, server_id: str) -> tuple[str, str | None]:
    server = q.find(conn, server_id)
    assert server is not None
    return server.vm_state, server.task_state


def test_find_is_scoped_to_the_project_when_one_is_given(conn: Connection) -> None:
    server_id = add_server(conn, project="p1")
    assert isinstance(q.find(conn, server_id), Server)
    assert q.find(conn, server_id, "p1") is not None
    assert q.find(conn, server_id, "p2") is None
    assert q.load(conn, str(uuid.uuid4())) is None


def test_cas_state_moves_only_from_an_expected_pair(conn: Connection) -> None:
    server_id = add_server(conn, vm_state="active")
    assert not q.cas_state(conn, server_id, ["stopped"], [None], task_state="powering-on")
    assert not q.cas_state(conn, server_id, ["active"], ["deleting"], task_state="rebooting")
    assert state(conn, server_id) == ("active", None)
    assert q.cas_state(conn, server_id, ["active"], [None], task_state="rebooting")
    assert state(conn, server_id) == ("active", "rebooting")
    # None as vm_states: any vm_state; a named task_state alone does not match "no task".
    assert q.cas_state(conn, server_id, None, ["rebooting"], task_state=None)
    assert not q.cas_state(conn, server_id, None, ["rebooting"], task_state=None)


def test_a_second_delete_is_not_started_and_only_a_deleting_row_is_removed(
        conn: Connection) -> None:
    server_id = add_server(conn)
    q.remove_deleting(conn, server_id)
    assert q.find(conn, server_id) is not None
    assert q.mark_deleting(conn, server_id)
    assert not q.mark_deleting(conn, server_id)
    q.remove_deleting(conn, server_id)
    assert q.find(conn, server_id) is None


def test_newest_first_pages_after_a_marker(conn: Connection) -> None:
    ids = [add_server(conn, created=T0 + dt.timedelta(minutes=i)) for i in range(3)]
    other = add_server(conn, project="p2", created=T0 + dt.timedelta(hours=1))
    assert [s.id for s in q.newest_first(conn, "p1", None)] == ids[::-1]
    assert [s.id for s in q.newest_first(conn, "p1", ids[2])] == ids[1::-1]
    assert next(q.newest_first(conn, None, None)).id == other
    with pytest.raises(Invalid, match=rf"^marker \[{other}\] not found$"):
        list(q.newest_first(conn, "p1", other))


def test_idle_servers_are_updated_only_if_unchanged(conn: Connection) -> None:
    server_id = add_server(conn, host="h1")
    add_server(conn, host="h1", task_state="rebooting")
    add_server(conn, host="h2")
    (row,) = q.idle_on_host(conn, "h1")
    assert row.id == server_id
    assert q.update_if_unchanged(conn, row, {"power_state": 4})
    assert not q.update_if_unchanged(conn, row, {"power_state": 1})  # updated_at moved on


@pytest.mark.parametrize(("vm_state", "task_state", "status"), [
    ("active", None, "ACTIVE"), ("active", "rebooting_hard", "HARD_REBOOT"),
    ("building", "spawning", "BUILD"), ("stopped", "powering-on", "SHUTOFF"),
    ("no-such-state", None, "UNKNOWN"),
])
def test_status_is_read_from_nova_table(vm_state: str, task_state: str | None,
                                        status: str) -> None:
    assert status_from_state(vm_state, task_state) == status


def test_a_hard_reboot_may_interrupt_a_soft_one_but_a_soft_one_may_not() -> None:
    assert "rebooting" in POWER_OPS["reboot_hard"].from_task
    assert POWER_OPS["reboot"].from_task == (None,)


def test_list_filters(conn: Connection) -> None:
    first = q.find(conn, add_server(conn, name="web-1", tags=["a", "b"]))
    second = q.find(conn, add_server(conn, name="db-1", vm_state="stopped"))
    assert first is not None and second is not None
    found = matcher({"name": "^web", "status": "active", "tags": "a"}, strict_status=False)
    assert found is not None and found(first) and not found(second)
    shutoff = matcher({"status": "SHUTOFF"}, strict_status=False)
    assert shutoff is not None and shutoff(second) and not shutoff(first)
    assert matcher({"status": "bogus"}, strict_status=False) is None
    with pytest.raises(Invalid, match=r"^Invalid status value$"):
        matcher({"status": "bogus"}, strict_status=True)
