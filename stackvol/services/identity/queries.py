"""The SQL of identity: the directory's rows (projects, users, roles, role assignments,
application credentials), revocation events, the Fernet key ring and what a token's
validation reads. Small functions of a ``Connection``; Keystone's rules (names free, bootstrap
roles kept, 404 wordings) stay in ``directory`` and ``api``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import Connection, Row

from stackvol.db.schema import (
    application_credentials,
    projects,
    revocation_events,
    role_assignments,
    roles,
    token_keys,
    users,
)
from stackvol.timeutils import utcnow

# --- any directory table ------------------------------------------------------------------


def exists(conn: Connection, table: sa.Table, *where: Any) -> bool:
    return conn.execute(sa.select(sa.literal(1)).select_from(table).where(*where)).first() \
        is not None


def name_taken(conn: Connection, table: sa.Table, name: str, domain_id: str) -> bool:
    return exists(conn, table, table.c.name == name, table.c.domain_id == domain_id)


def insert(conn: Connection, table: sa.Table, **values: Any) -> None:
    conn.execute(table.insert().values(**values))


def update(conn: Connection, table: sa.Table, row_id: str, **values: Any) -> None:
    conn.execute(table.update().where(table.c.id == row_id).values(**values))


def delete(conn: Connection, table: sa.Table, row_id: str) -> None:
    conn.execute(table.delete().where(table.c.id == row_id))


def by_id(conn: Connection, table: sa.Table, row_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(table).where(table.c.id == row_id)).first()


def by_name_or_id(conn: Connection, table: sa.Table, name_or_id: str,
                  domain_id: str) -> Row[Any] | None:
    """By id, else by name in ``domain_id`` (an id match wins)."""
    return conn.execute(sa.select(table).where(sa.or_(
        table.c.id == name_or_id,
        sa.and_(table.c.name == name_or_id, table.c.domain_id == domain_id),
    )).order_by((table.c.id == name_or_id).desc())).first()


def listing(table: sa.Table, name: str | None, enabled: bool | None,
            domain_id: str | None) -> sa.Select[Any]:
    """Rows in name order, narrowed by the list filters projects and users share."""
    query = sa.select(table).order_by(table.c.name)
    if name is not None:
        query = query.where(table.c.name == name)
    if enabled is not None:
        query = query.where(table.c.enabled.is_(enabled))
    if domain_id is not None:
        query = query.where(table.c.domain_id == domain_id)
    return query


def rows(conn: Connection, query: sa.Select[Any]) -> Sequence[Row[Any]]:
    return conn.execute(query).all()


# --- projects and users -------------------------------------------------------------------


def with_role_for(query: sa.Select[Any], user_id: str) -> sa.Select[Any]:
    """Narrow a project listing to the projects the user has a role on."""
    return query.where(projects.c.id.in_(sa.select(role_assignments.c.project_id).where(
        role_assignments.c.user_id == user_id)))


def project_name(conn: Connection, project_id: str) -> str | None:
    return conn.execute(sa.select(projects.c.name).where(projects.c.id == project_id)).scalar()


def password_hash_of(conn: Connection, user_id: str) -> str | None:
    return conn.execute(sa.select(users.c.password_hash).where(users.c.id == user_id)).scalar()


def user_named(conn: Connection, name: str) -> bool:
    return conn.execute(sa.select(users.c.id).where(users.c.name == name)).first() is not None


# --- roles and assignments ----------------------------------------------------------------


def role_by_name_or_id(conn: Connection, name_or_id: str) -> Row[Any] | None:
    """Roles have no domain: by id, else by name (an id match wins)."""
    return conn.execute(sa.select(roles).where(sa.or_(
        roles.c.id == name_or_id, roles.c.name == name_or_id))
        .order_by((roles.c.id == name_or_id).desc())).first()


def role_rows(conn: Connection, name: str | None = None) -> Sequence[Row[Any]]:
    query = sa.select(roles).order_by(roles.c.name)
    if name is not None:
        query = query.where(roles.c.name == name)
    return conn.execute(query).all()


def assignment(user_id: str, project_id: str, role_id: str) -> tuple[Any, ...]:
    """The where clause of one role assignment."""
    return (role_assignments.c.user_id == user_id, role_assignments.c.project_id == project_id,
            role_assignments.c.role_id == role_id)


def delete_assignment(conn: Connection, user_id: str, project_id: str, role_id: str) -> None:
    conn.execute(role_assignments.delete().where(*assignment(user_id, project_id, role_id)))


def assignment_rows(conn: Connection, user_id: str | None,
                    project_id: str | None) -> Sequence[Row[Any]]:
    """Role assignments with the names of their user, project and role, in project, user and
    role name order, narrowed to the user and project given."""
    query = (sa.select(role_assignments.c.user_id, role_assignments.c.project_id,
                       role_assignments.c.role_id, users.c.name.label("user_name"),
                       projects.c.name.label("project_name"), roles.c.name.label("role_name"))
             .join(users, users.c.id == role_assignments.c.user_id)
             .join(projects, projects.c.id == role_assignments.c.project_id)
             .join(roles, roles.c.id == role_assignments.c.role_id)
             .order_by(projects.c.name, users.c.name, roles.c.name))
    if user_id is not None:
        query = query.where(role_assignments.c.user_id == user_id)
    if project_id is not None:
        query = query.where(role_assignments.c.project_id == project_id)
    return conn.execute(query).all()


# --- revocation ---------------------------------------------------------------------------


def record_revocation(conn: Connection, now: dt.datetime, expires_at: dt.datetime,
                      audit_id: str | None, user_id: str | None) -> None:
    """Add a revocation event, dropping the ones that outlived every token they matched."""
    conn.execute(revocation_events.delete().where(revocation_events.c.expires_at < now))
    conn.execute(revocation_events.insert().values(
        audit_id=audit_id, user_id=user_id, issued_before=now, expires_at=expires_at,
        revoked_at=now))


def is_revoked(conn: Connection, audit_ids: list[str], user_id: str,
               issued_at: dt.datetime) -> bool:
    query = sa.select(sa.literal(1)).where(sa.or_(
        revocation_events.c.audit_id.in_(audit_ids),
        sa.and_(revocation_events.c.user_id == user_id,
                revocation_events.c.issued_before >= issued_at),
    )).limit(1)
    return conn.execute(query).first() is not None


# --- application credentials --------------------------------------------------------------


def app_credential_named(conn: Connection, user_id: str, name: str) -> bool:
    return exists(conn, application_credentials, application_credentials.c.user_id == user_id,
                  application_credentials.c.name == name)


def app_credential_row(conn: Connection, user_id: str, credential_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(application_credentials).where(
        application_credentials.c.id == credential_id,
        application_credentials.c.user_id == user_id)).first()


def app_credential_rows(conn: Connection, user_id: str,
                        name: str | None) -> Sequence[Row[Any]]:
    query = sa.select(application_credentials).where(
        application_credentials.c.user_id == user_id).order_by(application_credentials.c.name)
    if name is not None:
        query = query.where(application_credentials.c.name == name)
    return conn.execute(query).all()


def app_credential_for_auth(conn: Connection, credential_id: str | None, name: str | None,
                            user_id: str | None) -> Any:
    """The row an ``application_credential`` auth names, with its hash; None if none."""
    query = sa.select(application_credentials)
    if credential_id:
        query = query.where(application_credentials.c.id == credential_id)
    elif name and user_id:
        query = query.where(application_credentials.c.name == name,
                            application_credentials.c.user_id == user_id)
    else:
        return None
    return conn.execute(query).first()


# --- the key ring -------------------------------------------------------------------------


def add_token_key(conn: Connection) -> None:
    """A new Fernet key; the newest row is the primary (it signs)."""
    conn.execute(token_keys.insert().values(key=Fernet.generate_key().decode(),
                                            created_at=utcnow()))


def has_token_key(conn: Connection) -> bool:
    return conn.execute(sa.select(token_keys.c.id).limit(1)).first() is not None


def token_key_ids(conn: Connection) -> list[int]:
    """Newest first."""
    return list(conn.execute(sa.select(token_keys.c.id)
                             .order_by(token_keys.c.id.desc())).scalars())


def token_key_values(conn: Connection) -> list[str]:
    """Newest (the primary) first."""
    return list(conn.execute(sa.select(token_keys.c.key)
                             .order_by(token_keys.c.id.desc())).scalars())


def delete_token_keys(conn: Connection, ids: Iterable[int]) -> None:
    conn.execute(token_keys.delete().where(token_keys.c.id.in_(list(ids))))


# --- what a token's validation reads --------------------------------------------------------


def user_for_auth(conn: Connection, user_id: str | None, name: str | None,
                  domain_id: str) -> Row[Any] | None:
    """(id, password_hash, enabled, default_project_id) of the user by id, else by name."""
    query = sa.select(users.c.id, users.c.password_hash, users.c.enabled,
                      users.c.default_project_id)
    if user_id:
        query = query.where(users.c.id == user_id)
    else:
        query = query.where(users.c.name == name, users.c.domain_id == domain_id)
    return conn.execute(query).first()


def enabled_project_id(conn: Connection, name: str, domain_id: str) -> str | None:
    return conn.execute(sa.select(projects.c.id).where(
        projects.c.name == name, projects.c.domain_id == domain_id,
        projects.c.enabled.is_(True))).scalar()


def enabled_user_name(conn: Connection, user_id: str) -> str | None:
    return conn.execute(sa.select(users.c.name).where(
        users.c.id == user_id, users.c.enabled.is_(True))).scalar()


def enabled_project_name(conn: Connection, project_id: str) -> str | None:
    return conn.execute(sa.select(projects.c.name).where(
        projects.c.id == project_id, projects.c.enabled.is_(True))).scalar()


def assigned_role_names(conn: Connection, user_id: str, project_id: str) -> set[str]:
    """The roles assigned to the user on the project (not those they imply)."""
    return set(conn.execute(
        sa.select(roles.c.name).join(role_assignments, role_assignments.c.role_id == roles.c.id)
        .where(role_assignments.c.user_id == user_id,
               role_assignments.c.project_id == project_id)).scalars())


def roles_named(conn: Connection, names: Iterable[str]) -> list[tuple[str, str]]:
    """(id, name) of the roles with these names."""
    return [(r.id, r.name) for r in conn.execute(
        sa.select(roles.c.id, roles.c.name).where(roles.c.name.in_(list(names))))]
