"""The transitions table (stackvol/db/transitions.py): legal moves move, a stale compare moves
nothing, an illegal move is refused before anything is written; the services' own status lists
agree with the table; and no module writes a volume, snapshot or attachment status but through
it (a scan of stackvol/'s source)."""

from __future__ import annotations

import ast
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db import transitions
from stackvol.db.schema import snapshots, volume_attachments, volumes
from stackvol.db.statuses import AttachmentStatus, SnapshotStatus, VolumeStatus
from stackvol.db.transitions import (
    ANY,
    ATTACHMENT,
    MACHINES,
    SNAPSHOT,
    VOLUME,
    IllegalTransition,
    Machine,
    initial,
    mermaid,
    move,
    move_all,
    override,
    override_all,
)
from stackvol.services.attachments import cinder_api, nova_api
from stackvol.services.operations import repair
from stackvol.services.snapshots import api as snapshot_api
from stackvol.services.volumes import api as volume_api
from stackvol.timeutils import utcnow

STACKVOL = Path(transitions.__file__).resolve().parents[1]


def add_volume(conn: Connection, status: str) -> str:
    volume_id = str(uuid.uuid4())
    conn.execute(volumes.insert().values(
        id=volume_id, project_id="p", user_id="u", status=status, size=1,
        availability_zone="nova", metadata={}, backend="file", created_at=utcnow()))
    return volume_id


def add_snapshot(conn: Connection, volume_id: str, status: str) -> str:
    snapshot_id = str(uuid.uuid4())
    conn.execute(snapshots.insert().values(
        id=snapshot_id, project_id="p", user_id="u", volume_id=volume_id, status=status, size=1,
        metadata={}, created_at=utcnow()))
    return snapshot_id


def add_attachment(conn: Connection, volume_id: str, status: str) -> str:
    attachment_id = str(uuid.uuid4())
    conn.execute(volume_attachments.insert().values(
        id=attachment_id, volume_id=volume_id, server_id=str(uuid.uuid4()), status=status,
        bdm_uuid=str(uuid.uuid4()), created_at=utcnow()))
    return attachment_id


def row(conn: Connection, machine: Machine, resource_id: str) -> Any:
    return conn.execute(sa.select(machine.table).where(
        machine.table.c.id == resource_id)).one()


# --- moves --------------------------------------------------------------------------------


def test_a_legal_move_moves_and_sets_its_values(conn: Connection) -> None:
    volume_id = add_volume(conn, VolumeStatus.CREATING)
    assert move(conn, VOLUME, volume_id, [VolumeStatus.CREATING], VolumeStatus.AVAILABLE,
                provider_location="volume-1")
    moved = row(conn, VOLUME, volume_id)
    assert (moved.status, moved.provider_location) == ("available", "volume-1")
    assert moved.updated_at is not None


@pytest.mark.parametrize(("machine", "start", "expected", "new"), [
    (VOLUME, VolumeStatus.AVAILABLE, [VolumeStatus.AVAILABLE], VolumeStatus.ATTACHING),
    (VOLUME, VolumeStatus.RESERVED, [VolumeStatus.RESERVED, VolumeStatus.ATTACHING],
     VolumeStatus.IN_USE),
    (VOLUME, VolumeStatus.IN_USE, [VolumeStatus.IN_USE], VolumeStatus.DETACHING),
    (VOLUME, VolumeStatus.AWAITING_TRANSFER, [VolumeStatus.AWAITING_TRANSFER],
     VolumeStatus.AVAILABLE),
    (VOLUME, VolumeStatus.UPLOADING, [VolumeStatus.UPLOADING], VolumeStatus.IN_USE),
    (SNAPSHOT, SnapshotStatus.DELETING, [SnapshotStatus.DELETING],
     SnapshotStatus.ERROR_DELETING),
    (ATTACHMENT, AttachmentStatus.RESERVED, [AttachmentStatus.RESERVED],
     AttachmentStatus.ATTACHING),
    (ATTACHMENT, AttachmentStatus.DETACHING, [AttachmentStatus.DETACHING],
     AttachmentStatus.ATTACHED),
])
def test_legal_moves_of_each_machine(conn: Connection, machine: Machine, start: str,
                                     expected: list[str], new: str) -> None:
    resource_id = add_row(conn, machine, start)
    assert move(conn, machine, resource_id, expected, new)
    assert row(conn, machine, resource_id).status == new


def add_row(conn: Connection, machine: Machine, status: str) -> str:
    if machine is VOLUME:
        return add_volume(conn, status)
    volume_id = add_volume(conn, VolumeStatus.AVAILABLE)
    add = add_snapshot if machine is SNAPSHOT else add_attachment
    return add(conn, volume_id, status)


def test_staying_put_guards_other_columns(conn: Connection) -> None:
    volume_id = add_volume(conn, VolumeStatus.AVAILABLE)
    assert move(conn, VOLUME, volume_id, [VolumeStatus.AVAILABLE], VolumeStatus.AVAILABLE,
                admin_metadata={"readonly": "True"})
    assert row(conn, VOLUME, volume_id).admin_metadata == {"readonly": "True"}


def test_a_stale_expected_status_moves_nothing(conn: Connection) -> None:
    volume_id = add_volume(conn, VolumeStatus.AVAILABLE)
    before = row(conn, VOLUME, volume_id)
    assert not move(conn, VOLUME, volume_id, [VolumeStatus.CREATING], VolumeStatus.ERROR,
                    error_reason="too late")
    assert row(conn, VOLUME, volume_id) == before


@pytest.mark.parametrize(("expected", "new"), [
    ([VolumeStatus.AVAILABLE], VolumeStatus.CREATING),
    ([VolumeStatus.DELETING], VolumeStatus.AVAILABLE),
    ([VolumeStatus.ERROR_DELETING], VolumeStatus.DELETING),  # only forced: an override
    ([VolumeStatus.MAINTENANCE], VolumeStatus.ATTACHING),
    # One illegal pair is enough, whatever the others.
    ([VolumeStatus.CREATING, VolumeStatus.AVAILABLE], VolumeStatus.ERROR),
    ([VolumeStatus.AVAILABLE], "no-such-status"),
])
def test_an_illegal_move_raises_and_writes_nothing(conn: Connection, expected: list[str],
                                                   new: str) -> None:
    volume_id = add_volume(conn, expected[-1])
    before = row(conn, VOLUME, volume_id)
    with pytest.raises(IllegalTransition):
        move(conn, VOLUME, volume_id, expected, new, error_reason="written?")
    assert row(conn, VOLUME, volume_id) == before


def test_an_unknown_status_cannot_even_stay_put(conn: Connection) -> None:
    with pytest.raises(IllegalTransition, match="not a volume status"):
        move(conn, VOLUME, add_volume(conn, "bogus"), ["bogus"], "bogus")


def test_move_all_moves_the_rows_of_a_key(conn: Connection) -> None:
    volume_id = add_volume(conn, VolumeStatus.AVAILABLE)
    ids = [add_snapshot(conn, volume_id, s) for s in (SnapshotStatus.AVAILABLE,
                                                      SnapshotStatus.ERROR,
                                                      SnapshotStatus.CREATING)]
    other = add_snapshot(conn, add_volume(conn, VolumeStatus.AVAILABLE), SnapshotStatus.AVAILABLE)
    assert move_all(conn, SNAPSHOT, "volume_id", volume_id,
                    [SnapshotStatus.AVAILABLE, SnapshotStatus.ERROR],
                    SnapshotStatus.DELETING) == 2
    assert [row(conn, SNAPSHOT, i).status for i in ids] == ["deleting", "deleting", "creating"]
    assert row(conn, SNAPSHOT, other).status == "available"
    with pytest.raises(IllegalTransition):
        move_all(conn, SNAPSHOT, "volume_id", volume_id, [SnapshotStatus.CREATING],
                 SnapshotStatus.DELETING)


# --- admin overrides ------------------------------------------------------------------------


def test_an_override_sets_an_admin_status_from_any_status(conn: Connection) -> None:
    volume_id = add_volume(conn, VolumeStatus.UPLOADING)
    assert override(conn, VOLUME, volume_id, ANY, VolumeStatus.MAINTENANCE, error_reason=None)
    assert row(conn, VOLUME, volume_id).status == "maintenance"
    assert override(conn, VOLUME, volume_id, [VolumeStatus.MAINTENANCE], VolumeStatus.DELETING)
    assert not override(conn, VOLUME, volume_id, [VolumeStatus.AVAILABLE], VolumeStatus.ERROR)
    assert row(conn, VOLUME, volume_id).status == "deleting"


def test_an_override_to_a_status_no_admin_sets_raises(conn: Connection) -> None:
    volume_id = add_volume(conn, VolumeStatus.AVAILABLE)
    for new in (VolumeStatus.UPLOADING, VolumeStatus.AWAITING_TRANSFER):
        with pytest.raises(IllegalTransition, match="an admin cannot set"):
            override(conn, VOLUME, volume_id, ANY, new)
    # ... but a compare on the status it has keeps it (``stackvol repair``'s force detach).
    assert override(conn, VOLUME, volume_id, [VolumeStatus.AVAILABLE], VolumeStatus.AVAILABLE)
    assert row(conn, VOLUME, volume_id).status == "available"


def test_override_all_attaches_every_row_of_a_volume(conn: Connection) -> None:
    volume_id = add_volume(conn, VolumeStatus.ERROR)
    ids = [add_attachment(conn, volume_id, s) for s in (AttachmentStatus.ATTACHING,
                                                        AttachmentStatus.DETACHING)]
    assert override_all(conn, ATTACHMENT, "volume_id", volume_id, ANY,
                        AttachmentStatus.ATTACHED) == 2
    assert {row(conn, ATTACHMENT, i).status for i in ids} == {"attached"}
    with pytest.raises(IllegalTransition):
        override_all(conn, ATTACHMENT, "volume_id", volume_id, ANY, AttachmentStatus.DETACHING)


# --- new rows -------------------------------------------------------------------------------


def test_initial_checks_the_start_status() -> None:
    assert initial(VOLUME, VolumeStatus.CREATING.value) == "creating"
    assert initial(VOLUME, "error") == "error"
    assert initial(ATTACHMENT, AttachmentStatus.ATTACHED) == "attached"
    for machine, status in ((VOLUME, "available"), (SNAPSHOT, "deleting"),
                            (ATTACHMENT, "detaching")):
        with pytest.raises(IllegalTransition, match="cannot start"):
            initial(machine, status)


# --- the table itself -----------------------------------------------------------------------


def test_the_compare_and_swap_statement_is_built_once_per_shape(conn: Connection) -> None:
    ids = [add_volume(conn, VolumeStatus.CREATING) for _ in range(3)]
    move(conn, VOLUME, ids[0], [VolumeStatus.CREATING], VolumeStatus.ERROR, error_reason="x")
    built = transitions._statement.cache_info().currsize
    for volume_id in ids[1:]:
        move(conn, VOLUME, volume_id, [VolumeStatus.CREATING], VolumeStatus.ERROR,
             error_reason="y")
    assert transitions._statement.cache_info().currsize == built


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_every_status_is_reachable_and_every_row_can_end(machine: Machine) -> None:
    reached = set(machine.starts) | set(machine.overrides)
    while True:
        more = {b for a, b in machine.moves if a in reached} - reached
        if not more:
            break
        reached |= more
    assert reached == machine.values
    assert machine.ends, "rows of every machine are removed in some status"


def test_a_machine_refuses_a_status_its_enum_does_not_name() -> None:
    with pytest.raises(ValueError, match="unknown statuses"):
        Machine("volume", volumes, VolumeStatus, frozenset({("available", "in_use")}),
                frozenset(), frozenset(), frozenset())


def test_the_services_status_lists_agree_with_the_table() -> None:
    # os-reset_status and ``stackvol repair`` set only override statuses.
    assert set(volume_api.RESETTABLE) <= VOLUME.overrides
    assert set(repair.RESETTABLE) <= VOLUME.overrides
    assert set(snapshot_api.RESETTABLE) <= SNAPSHOT.overrides
    # The statuses the services accept for a move are all legal sources of it.
    checks = [
        (VOLUME, volume_api.DELETABLE, VolumeStatus.DELETING),
        (SNAPSHOT, snapshot_api.DELETABLE, SnapshotStatus.DELETING),
        (VOLUME, nova_api.STUCK_ATTACHING, VolumeStatus.AVAILABLE),
        (VOLUME, cinder_api.ATTACHED_STATUSES, VolumeStatus.AVAILABLE),
        *((SNAPSHOT, [source], target) for source, targets in snapshot_api.STATUS_UPDATES.items()
          for target in targets),
    ]
    for machine, sources, target in checks:
        transitions._check_moves(machine, tuple(str(s) for s in sources), str(target))


def test_mermaid_draws_the_table_sorted() -> None:
    drawn = mermaid(VOLUME)
    lines = drawn.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert '    state "in-use" as in_use' in lines
    assert "    [*] --> creating" in lines
    assert "    creating --> available" in lines
    assert "    in_use --> detaching" in lines
    assert "    deleting --> [*]" in lines
    assert "    any_status --> maintenance" in lines
    moves = [line for line in lines if "-->" in line and "[*]" not in line
             and "any_status" not in line]
    state = transitions._state_id
    assert moves == [f"    {state(a)} --> {state(b)}" for a, b in sorted(VOLUME.moves)]
    assert mermaid(VOLUME) == drawn


# --- no status write but through the table --------------------------------------------------

TABLES = {"volumes", "snapshots", "volume_attachments"}


def _root(node: ast.AST) -> str | None:
    """The name a statement chain starts from: ``volumes`` for
    ``volumes.update().where(...).values(...)``, also for ``sa.update(volumes)``."""
    while True:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "sa"
                and node.func.attr in ("insert", "update") and node.args):
            node = node.args[0]
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def _written(call: ast.Call) -> list[ast.expr | ast.keyword]:
    """What a call writes into one of the three tables: ``<table>...values(...)``'s arguments,
    ``conn.execute(<table>.insert()|.update(), params)``'s parameters, ``update_fields(conn,
    <table>, id, values)``'s values; nothing for any other call."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "values" and _root(func) in TABLES:
        return [*call.args, *call.keywords]
    if (isinstance(func, ast.Attribute) and func.attr == "execute" and len(call.args) > 1
            and _root(call.args[0]) in TABLES):
        return [*call.args[1:], *call.keywords]
    if (isinstance(func, ast.Name) and func.id == "update_fields" and len(call.args) > 3
            and isinstance(call.args[1], ast.Name) and call.args[1].id in TABLES):
        return [call.args[3]]
    return []


def _is_initial(value: ast.expr) -> bool:
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == "initial")


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _assigned(node: ast.AST, name: str) -> ast.expr | None:
    """``value`` if ``node`` is ``name = value`` or ``name: T = value``."""
    if isinstance(node, ast.AnnAssign) and _is_name(node.target, name):
        return node.value
    if isinstance(node, ast.Assign) and any(_is_name(t, name) for t in node.targets):
        return node.value
    return None


def _sets_status_item(node: ast.AST, name: str) -> bool:
    """``name["status"] = value`` (not ``initial(...)``)."""
    return isinstance(node, ast.Assign) and not _is_initial(node.value) and any(
        isinstance(t, ast.Subscript) and _is_name(t.value, name)
        and isinstance(t.slice, ast.Constant) and t.slice.value == "status"
        for t in node.targets)


def _updates_status(node: ast.AST, name: str) -> bool:
    """``name.update(status=...)``."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update" and _is_name(node.func.value, name)
            and any(k.arg == "status" for k in node.keywords))


def _status_writes(scope: ast.AST, name: str) -> Iterator[ast.AST]:
    """Where the dict held by ``name`` in ``scope`` gets a status: a literal's ``"status"`` key,
    ``name["status"] = ...``, ``name.update(status=...)``."""
    for node in ast.walk(scope):
        assigned = _assigned(node, name)
        if assigned is not None:
            yield from _dict_status(assigned)
        elif _sets_status_item(node, name) or _updates_status(node, name):
            yield node


def _dict_status(value: ast.expr) -> Iterator[ast.AST]:
    if isinstance(value, ast.Dict):
        for key, item in zip(value.keys, value.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "status" and not _is_initial(item):
                yield item


def _calls(node: ast.AST, scope: ast.AST) -> Iterator[tuple[ast.Call, ast.AST]]:
    """Every call under ``node`` with the function (or module) it is in: a dict variable is
    looked for in that scope only."""
    for child in ast.iter_child_nodes(node):
        inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else scope
        if isinstance(child, ast.Call):
            yield child, scope
        yield from _calls(child, inner)


def status_writes(source: str) -> list[int]:
    """Lines of ``source`` writing a status into volumes, snapshots or volume_attachments
    other than through the transitions table (an insert's status must be ``initial(...)``)."""
    tree = ast.parse(source)
    found: list[ast.AST] = []
    for call, scope in _calls(tree, tree):
        for written in _written(call):
            if isinstance(written, ast.keyword):
                if written.arg == "status" and not _is_initial(written.value):
                    found.append(written.value)
                elif written.arg is None and isinstance(written.value, ast.Name):
                    found.extend(_status_writes(scope, written.value.id))
            elif isinstance(written, ast.Name):
                found.extend(_status_writes(scope, written.id))
            else:
                found.extend(_dict_status(written))
    raw = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
           and any(f"update {t} " in n.value.lower() for t in TABLES)]
    return sorted({getattr(n, "lineno", 0) for n in (*found, *raw)})


@pytest.mark.parametrize(("source", "lines"), [
    ("volumes.update().where(volumes.c.id == i).values(status='error')", [1]),
    ("snapshots.update().values({'status': 'x', 'size': 1})", [1]),
    ("sa.update(volume_attachments).values(status=s)", [1]),
    ("def f(conn):\n    v = {'status': 'creating'}\n    conn.execute(volumes.insert(), v)", [2]),
    ("def f(conn):\n    v = {}\n    v['status'] = 'x'\n    conn.execute(volumes.insert(), v)",
     [3]),
    ("def f(conn):\n    v = {}\n    v.update(status='x')\n    volumes.insert().values(v)", [3]),
    ("def f(conn):\n    v: dict = {'status': 'x'}\n    snapshots.insert().values(v)", [2]),
    ("update_fields(conn, volumes, i, {'status': 'error'})", [1]),
    ("conn.exec_driver_sql('UPDATE volumes SET status = 1')", [1]),
    # Not these: other tables' statuses, an insert's initial status, reads, views.
    ("images.update().values(status='active')", []),
    ("servers.update().values({'status': 'x'})", []),
    ("volumes.insert().values(status=initial(VOLUME, 'creating'))", []),
    ("def f(conn):\n    v = {'status': initial(VOLUME, s)}\n    conn.execute(volumes.insert(), v)",
     []),
    ("sa.select(volumes).where(volumes.c.status == 'available')", []),
    ("view = {'status': volume.status}", []),
    ("update_fields(conn, volumes, i, {'display_name': 'x'})", []),
])
def test_the_scan_sees_status_writes(source: str, lines: list[int]) -> None:
    assert status_writes(source) == lines


def test_no_status_write_bypasses_the_transitions_table() -> None:
    offenders = [f"{path.relative_to(STACKVOL.parent)}:{line}"
                 for path in sorted(STACKVOL.rglob("*.py"))
                 if path != STACKVOL / "db" / "transitions.py"
                 for line in status_writes(path.read_text())]
    assert not offenders, ("write statuses with stackvol.db.transitions (move, override, "
                           "initial):\n" + "\n".join(offenders))
