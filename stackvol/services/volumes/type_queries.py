"""The SQL of volume types, their access lists and their QoS specs (called by ``types`` and
``qos_specs``): statements and small functions taking a Connection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db import prepared
from stackvol.db.prepared import PreparedSelect
from stackvol.db.schema import (
    projects,
    qos_specs,
    quota_limits,
    volume_type_projects,
    volume_types,
    volumes,
)
from stackvol.timeutils import utcnow

# --- volume types ----------------------------------------------------------------------------


def type_by_id(conn: Connection, type_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(volume_types).where(volume_types.c.id == type_id)).first()


# Prepared: every volume create resolves its type by name.
_TYPE_BY_NAME = PreparedSelect(sa.select(volume_types)
                               .where(volume_types.c.name == sa.bindparam("name")))


def type_by_name(conn: Connection, name: str) -> Any | None:
    """The type's row (attribute access by column, like Core's ``Row``), or None."""
    found = prepared.records(conn, _TYPE_BY_NAME, name=name)
    return found[0] if found else None


def type_name_taken(conn: Connection, name: str) -> bool:
    return conn.execute(sa.select(volume_types.c.id)
                        .where(volume_types.c.name == name)).first() is not None


def all_types(conn: Connection) -> list[Row[Any]]:
    """Every type, by name."""
    return list(conn.execute(sa.select(volume_types).order_by(volume_types.c.name)))


def insert_type(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(volume_types.insert().values(created_at=utcnow(), **values))


def update_type(conn: Connection, type_id: str, changes: Mapping[str, Any]) -> None:
    conn.execute(volume_types.update().where(volume_types.c.id == type_id)
                 .values(updated_at=utcnow(), **changes))


def rename_on_volumes(conn: Connection, old: str, new: str) -> None:
    """Volumes record their type by name: a renamed type is renamed on them."""
    conn.execute(volumes.update().where(volumes.c.volume_type == old).values(volume_type=new))


def volumes_of_type(conn: Connection, name: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(
        volumes.c.volume_type == name)).scalar_one())


def volumes_by_backend(conn: Connection, backends: Iterable[str]) -> dict[str, int]:
    """How many volumes each of ``backends`` holds (those holding none are left out)."""
    return {row.backend: int(row.volumes) for row in conn.execute(
        sa.select(volumes.c.backend, sa.func.count().label("volumes"))
        .where(volumes.c.backend.in_(list(backends))).group_by(volumes.c.backend))}


def delete_type(conn: Connection, type_id: str, quota_resources: Iterable[str]) -> None:
    """The type, its access list and its per-type quota limits."""
    conn.execute(volume_types.delete().where(volume_types.c.id == type_id))
    conn.execute(volume_type_projects.delete().where(
        volume_type_projects.c.volume_type_id == type_id))
    conn.execute(quota_limits.delete().where(quota_limits.c.resource.in_(list(quota_resources))))


# --- access to private types -----------------------------------------------------------------

def shared_type_ids(conn: Connection, project_id: str) -> set[str]:
    return set(conn.execute(sa.select(volume_type_projects.c.volume_type_id).where(
        volume_type_projects.c.project_id == project_id)).scalars())


def has_access(conn: Connection, type_id: str, project_id: str | None) -> bool:
    return conn.execute(sa.select(volume_type_projects.c.project_id).where(
        volume_type_projects.c.volume_type_id == type_id,
        volume_type_projects.c.project_id == project_id)).first() is not None


def access_projects(conn: Connection, type_id: str) -> list[str]:
    """The projects given access to a type, oldest first."""
    return list(conn.execute(
        sa.select(volume_type_projects.c.project_id)
        .where(volume_type_projects.c.volume_type_id == type_id)
        .order_by(volume_type_projects.c.created_at, volume_type_projects.c.project_id))
        .scalars())


def project_exists(conn: Connection, project_id: str) -> bool:
    return conn.execute(sa.select(projects.c.id)
                        .where(projects.c.id == project_id)).first() is not None


def grant_access(conn: Connection, type_id: str, project_id: str) -> None:
    conn.execute(volume_type_projects.insert().values(
        volume_type_id=type_id, project_id=project_id, created_at=utcnow()))


def revoke_access(conn: Connection, type_id: str, project_id: str) -> bool:
    """False when the project had no access."""
    return bool(conn.execute(volume_type_projects.delete().where(
        volume_type_projects.c.volume_type_id == type_id,
        volume_type_projects.c.project_id == project_id)).rowcount)


# --- QoS specs -------------------------------------------------------------------------------

def spec(conn: Connection, specs_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(qos_specs).where(qos_specs.c.id == specs_id)).first()


def all_specs(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(sa.select(qos_specs).order_by(qos_specs.c.created_at,
                                                           qos_specs.c.id)))


def spec_name_taken(conn: Connection, name: str) -> bool:
    return conn.execute(sa.select(qos_specs.c.id)
                        .where(qos_specs.c.name == name)).first() is not None


def insert_spec(conn: Connection, specs_id: str, name: str, consumer: str,
                specs: dict[str, str]) -> None:
    conn.execute(qos_specs.insert().values(id=specs_id, name=name, consumer=consumer,
                                           specs=specs, created_at=utcnow()))


def update_spec(conn: Connection, specs_id: str, specs: dict[str, str],
                consumer: str | None = None) -> None:
    """New keys (and consumer, if given) for a spec."""
    changes: dict[str, Any] = {"specs": specs} if consumer is None else {
        "specs": specs, "consumer": consumer}
    conn.execute(qos_specs.update().where(qos_specs.c.id == specs_id)
                 .values(updated_at=utcnow(), **changes))


def delete_spec(conn: Connection, specs_id: str) -> None:
    conn.execute(qos_specs.delete().where(qos_specs.c.id == specs_id))


def volume_qos(conn: Connection, volume_id: str) -> Row[Any] | None:
    """The consumer and keys of the QoS spec a volume's type carries, with its size."""
    return conn.execute(
        sa.select(qos_specs.c.consumer, qos_specs.c.specs, volumes.c.size)
        .select_from(volumes.join(volume_types, volume_types.c.name == volumes.c.volume_type)
                     .join(qos_specs, qos_specs.c.id == volume_types.c.qos_specs_id))
        .where(volumes.c.id == volume_id)).first()


def type_spec(conn: Connection, type_name: str) -> Row[Any] | None:
    """The id and consumer of the QoS spec the type named ``type_name`` carries."""
    return conn.execute(
        sa.select(qos_specs.c.id, qos_specs.c.consumer)
        .join(volume_types, volume_types.c.qos_specs_id == qos_specs.c.id)
        .where(volume_types.c.name == type_name)).first()


def associated_types(conn: Connection, specs_id: str) -> list[Row[Any]]:
    """Ids and names of the types carrying a spec, by name."""
    return list(conn.execute(sa.select(volume_types.c.id, volume_types.c.name)
                             .where(volume_types.c.qos_specs_id == specs_id)
                             .order_by(volume_types.c.name)))


def type_qos_row(conn: Connection, type_id: str) -> Row[Any] | None:
    """The type's ``qos_specs_id`` (in a row: None when there is no such type)."""
    return conn.execute(sa.select(volume_types.c.qos_specs_id)
                        .where(volume_types.c.id == type_id)).first()


def set_type_qos(conn: Connection, specs_id: str | None, *, type_id: str | None = None,
                 carrying: str | None = None) -> None:
    """Point a type (``type_id``), or the types carrying spec ``carrying`` (only ``type_id``
    among them, if both are given), at ``specs_id``."""
    query = volume_types.update()
    if carrying is not None:
        query = query.where(volume_types.c.qos_specs_id == carrying)
    if type_id is not None:
        query = query.where(volume_types.c.id == type_id)
    conn.execute(query.values(qos_specs_id=specs_id, updated_at=utcnow()))
