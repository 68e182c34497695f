"""The state machines of volumes, snapshots and volume attachments: one table of the moves each
may make, and the compare-and-swap every status write goes through.

A status changes only here: ``UPDATE ... SET status = :new WHERE id = :id AND status IN
(:expected)``, which moves the row only if nobody moved it first (so of two racing requests
exactly one wins) and is committed with the task that carries the work on. Before the statement
runs, every (expected, new) pair is looked up in the machine's table: asking for a move the
table does not hold is a programming error (``IllegalTransition``), caught by the tests, never
a condition to handle at run time.

Four kinds of change, declared apart so that none allows everything everywhere:

* ``moves``: what the API and the workers do (Cinder's and Nova's rules), ``move()``/``move_all()``;
* ``starts``: the statuses a new row is inserted with, checked by ``initial()``;
* ``overrides``: what an admin may set *from any status* (os-reset_status, os-force_delete,
  os-force_detach, ``stackvol repair``), ``override()``/``override_all()``;
* ``ends``: the statuses a row is removed in. Deleting a row is no status write, so this is
  recorded for the diagrams, not checked: a volume or snapshot row goes once ``deleting`` is
  done; an attachment row goes from any status, since a detached attachment (Cinder's
  ``attach_status`` "detached") is one whose row is gone.

Staying put is no move: a swap whose new status is the expected one (e.g. a snapshot's progress
while ``creating``, a volume's read-only flag while ``available``) guards other columns with
the status and is always legal for a status of the machine.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.prepared import PreparedWrite
from stackvol.db.schema import snapshots, volume_attachments, volumes
from stackvol.db.statuses import AttachmentStatus, SnapshotStatus, VolumeStatus
from stackvol.timeutils import utcnow

S = TypeVar("S", bound=str)
Move = tuple[str, str]

# ``override(..., ANY, new)``: whatever the row's status is (no compare on it).
ANY: Final = None


class IllegalTransition(Exception):
    """A status write the transitions table does not allow: a bug in the caller."""


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a cache key
class Machine:
    name: str
    table: sa.Table
    statuses: type[StrEnum]
    moves: frozenset[Move]
    starts: frozenset[str]
    ends: frozenset[str]
    overrides: frozenset[str]

    def __post_init__(self) -> None:
        # Plain strings (the values rows hold); a status the enum does not name is a typo.
        known = {s.value for s in self.statuses}
        for name in ("starts", "ends", "overrides"):
            found = frozenset(str(s) for s in getattr(self, name))
            if not found <= known:
                raise ValueError(f"{self.name} {name}: unknown statuses {sorted(found - known)}")
            object.__setattr__(self, name, found)
        moves = frozenset((str(a), str(b)) for a, b in self.moves)
        unknown = {s for move in moves for s in move} - known
        if unknown:
            raise ValueError(f"{self.name} moves: unknown statuses {sorted(unknown)}")
        object.__setattr__(self, "moves", moves)

    def __repr__(self) -> str:
        return f"Machine({self.name!r})"

    @property
    def values(self) -> frozenset[str]:
        return frozenset(s.value for s in self.statuses)


V, Sn, A = VolumeStatus, SnapshotStatus, AttachmentStatus

VOLUME = Machine(
    name="volume",
    table=volumes,
    statuses=VolumeStatus,
    moves=frozenset({
        # Create: the backend's task makes the bytes, or fails.
        (V.CREATING, V.AVAILABLE), (V.CREATING, V.ERROR),
        # Extend (in-use from Cinder 3.42), then back to the status it had.
        (V.AVAILABLE, V.EXTENDING), (V.IN_USE, V.EXTENDING),
        (V.EXTENDING, V.AVAILABLE), (V.EXTENDING, V.IN_USE), (V.EXTENDING, V.ERROR_EXTENDING),
        # Delete (any other status needs os-force_delete: an override).
        (V.AVAILABLE, V.DELETING), (V.ERROR, V.DELETING), (V.ERROR_EXTENDING, V.DELETING),
        (V.DELETING, V.ERROR_DELETING),
        # Attach: Nova's chain and os-reserve (attaching), Cinder's attachments API (reserved,
        # then attaching once a connector is given), os-attach and attachment complete (in-use).
        (V.AVAILABLE, V.ATTACHING), (V.AVAILABLE, V.RESERVED), (V.AVAILABLE, V.IN_USE),
        (V.RESERVED, V.ATTACHING), (V.RESERVED, V.IN_USE), (V.ATTACHING, V.IN_USE),
        # Attach undone: failed, os-unreserve, the reservation deleted, force-detached.
        (V.ATTACHING, V.AVAILABLE), (V.RESERVED, V.AVAILABLE),
        # Detach: os-begin_detaching / Nova's detach, rolled back or done; os-detach and
        # attachment delete free an in-use volume at once when its last holder goes.
        (V.IN_USE, V.DETACHING), (V.DETACHING, V.IN_USE), (V.DETACHING, V.AVAILABLE),
        (V.IN_USE, V.AVAILABLE),
        # A server deleted with a delete_on_termination volume: Nova's detach and delete,
        # in one step, from wherever its attachment was.
        (V.IN_USE, V.DELETING), (V.ATTACHING, V.DELETING), (V.DETACHING, V.DELETING),
        (V.RESERVED, V.DELETING),
        # Transfer: offered, then accepted or cancelled.
        (V.AVAILABLE, V.AWAITING_TRANSFER), (V.AWAITING_TRANSFER, V.AVAILABLE),
        # Upload to an image (in-use with force), then back to the status it had.
        (V.AVAILABLE, V.UPLOADING), (V.IN_USE, V.UPLOADING),
        (V.UPLOADING, V.AVAILABLE), (V.UPLOADING, V.IN_USE),
    }),
    # ``error``: no backend can hold it (Cinder's scheduler leaves it so, quota held).
    starts=frozenset({V.CREATING, V.ERROR}),
    ends=frozenset({V.DELETING}),
    # os-reset_status's statuses (which include ``deleting`` for os-force_delete and
    # ``detaching``/``available`` for os-force_detach); ``stackvol repair`` sets a subset.
    overrides=frozenset({
        V.CREATING, V.AVAILABLE, V.DELETING, V.ERROR, V.ERROR_DELETING, V.ERROR_MANAGING,
        V.MANAGING, V.ATTACHING, V.IN_USE, V.DETACHING, V.MAINTENANCE, V.RESTORING_BACKUP,
        V.ERROR_RESTORING, V.RESERVED, V.ERROR_EXTENDING, V.EXTENDING,
    }),
)

SNAPSHOT = Machine(
    name="snapshot",
    table=snapshots,
    statuses=SnapshotStatus,
    moves=frozenset({
        # Create (the backend's task, or a driver's os-update_snapshot_status).
        (Sn.CREATING, Sn.AVAILABLE), (Sn.CREATING, Sn.ERROR),
        # Delete, alone or with its volume (cascade); any other status needs os-force_delete.
        (Sn.AVAILABLE, Sn.DELETING), (Sn.ERROR, Sn.DELETING),
        (Sn.DELETING, Sn.ERROR_DELETING),
    }),
    starts=frozenset({Sn.CREATING}),
    ends=frozenset({Sn.DELETING}),
    # os-reset_status's statuses (``deleting`` also for os-force_delete).
    overrides=frozenset({
        Sn.CREATING, Sn.AVAILABLE, Sn.DELETING, Sn.ERROR, Sn.ERROR_DELETING, Sn.UNMANAGING,
        Sn.BACKING_UP, Sn.RESTORING,
    }),
)

ATTACHMENT = Machine(
    name="attachment",
    table=volume_attachments,
    statuses=AttachmentStatus,
    moves=frozenset({
        # Connected (a connector given, the backend's connection made), then completed
        # (attachment complete; Nova's chain once the compute driver has it).
        (A.RESERVED, A.ATTACHING), (A.RESERVED, A.ATTACHED), (A.ATTACHING, A.ATTACHED),
        # Detach, or its failure.
        (A.ATTACHED, A.DETACHING), (A.DETACHING, A.ATTACHED),
    }),
    # Cinder's attachment create: reserved, or attaching with a connector; os-attach: attached;
    # Nova's attach: attaching.
    starts=frozenset({A.RESERVED, A.ATTACHING, A.ATTACHED}),
    # Detached is no status: the row goes (detach done, attach failed or undone, reservation
    # deleted, force-detach, the volume or server deleted, reset to available/detached).
    ends=frozenset(AttachmentStatus),
    # A volume reset to in-use (os-reset_status, ``stackvol repair``): its rows are attached.
    overrides=frozenset({A.ATTACHED}),
)

MACHINES: Final = (VOLUME, SNAPSHOT, ATTACHMENT)


# --- checks -----------------------------------------------------------------------------------


def _known(machine: Machine, new: str) -> None:
    if new not in machine.values:
        raise IllegalTransition(f"{machine.name}: {new!r} is not a {machine.name} status")


@functools.cache
def _check_moves(machine: Machine, expected: tuple[str, ...], new: str) -> None:
    # Cached: a hot path, and the answer for a (machine, expected, new) never changes.
    _known(machine, new)
    illegal = [e for e in expected if e != new and (e, new) not in machine.moves]
    if illegal:
        raise IllegalTransition(f"{machine.name}: no move from {', '.join(illegal)} to {new}")


@functools.cache
def _check_override(machine: Machine, expected: tuple[str, ...] | None, new: str) -> None:
    _known(machine, new)
    if new not in machine.overrides and (expected is None or any(e != new for e in expected)):
        raise IllegalTransition(f"{machine.name}: an admin cannot set {new}")


def initial(machine: Machine, status: S) -> S:
    """``status`` for a new row, checked to be one the machine starts in."""
    if status not in machine.starts:
        raise IllegalTransition(f"{machine.name}: a new row cannot start {status}")
    return status


# --- the compare-and-swap ---------------------------------------------------------------------


@functools.cache
def _statement(table: sa.Table, column: str, expected: tuple[str, ...] | None) -> PreparedWrite:
    # Compiled once per shape: building and compiling a statement costs more than running it.
    # The expected statuses are bound literals (not an IN list, which is compiled per call).
    where = [table.c[column] == sa.bindparam("cas_key")]
    if expected is not None:
        where.append(sa.or_(*(table.c.status == e for e in expected)) if expected
                     else sa.false())

    def build(names: tuple[str, ...]) -> sa.Update:
        return table.update().where(*where).values(
            {name.removeprefix("cas_"): sa.bindparam(name) for name in names
             if name != "cas_key"})
    return PreparedWrite(build)


def _swap(conn: Connection, machine: Machine, column: str, key: Any,
          expected: tuple[str, ...] | None, new: str, values: dict[str, Any]) -> int:
    values = {"status": new, "updated_at": utcnow(), **values}
    params = {f"cas_{name}": value for name, value in values.items()}
    return _statement(machine.table, column, expected).rowcount(conn, cas_key=key, **params)


def _froms(expected: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(e) for e in expected)


def move(conn: Connection, machine: Machine, resource_id: str, expected: Iterable[str],
         new: str, **values: Any) -> bool:
    """Move one row to ``new`` (setting ``values`` too) only if its status is one of
    ``expected``; True if it moved. Raises ``IllegalTransition`` for a move not in the table."""
    froms = _froms(expected)
    _check_moves(machine, froms, str(new))
    return _swap(conn, machine, "id", resource_id, froms, new, values) == 1


def move_all(conn: Connection, machine: Machine, column: str, key: Any,
             expected: Iterable[str], new: str, **values: Any) -> int:
    """``move`` for every row whose ``column`` is ``key`` (e.g. a volume's snapshots); how many
    moved."""
    froms = _froms(expected)
    _check_moves(machine, froms, str(new))
    return _swap(conn, machine, column, key, froms, new, values)


def override(conn: Connection, machine: Machine, resource_id: str,
             expected: Iterable[str] | None, new: str, **values: Any) -> bool:
    """An admin's override: set one row to ``new``, one of the machine's ``overrides``, from
    whatever status it has (``ANY``) or only if it is one of ``expected``; True if it moved."""
    froms = None if expected is None else _froms(expected)
    _check_override(machine, froms, str(new))
    return _swap(conn, machine, "id", resource_id, froms, new, values) == 1


def override_all(conn: Connection, machine: Machine, column: str, key: Any,
                 expected: Iterable[str] | None, new: str, **values: Any) -> int:
    """``override`` for every row whose ``column`` is ``key``; how many moved."""
    froms = None if expected is None else _froms(expected)
    _check_override(machine, froms, str(new))
    return _swap(conn, machine, column, key, froms, new, values)


# --- the diagrams -----------------------------------------------------------------------------

_ANY_STATE = "any_status"


def _state_id(status: str) -> str:
    # Mermaid state ids are words: ``in-use`` is declared as ``in_use`` with its label.
    return re.sub(r"\W", "_", status)


def mermaid(machine: Machine) -> str:
    """The machine as a Mermaid ``stateDiagram-v2``, sorted (the same text for the same table):
    ``[*]`` where rows are inserted and removed, and the statuses an admin may set from any
    status drawn from one ``any status (admin)`` state."""
    lines = ["stateDiagram-v2"]
    lines += [f'    state "{s}" as {_state_id(s)}' for s in sorted(machine.values)
              if _state_id(s) != s]
    if machine.overrides:
        lines.append(f'    state "any status (admin)" as {_ANY_STATE}')
    lines += [f"    [*] --> {_state_id(s)}" for s in sorted(machine.starts)]
    lines += [f"    {_state_id(a)} --> {_state_id(b)}" for a, b in sorted(machine.moves)]
    lines += [f"    {_state_id(s)} --> [*]" for s in sorted(machine.ends)]
    lines += [f"    {_ANY_STATE} --> {_state_id(s)}" for s in sorted(machine.overrides)]
    return "\n".join(lines)
