"""The identity directory: projects, users, roles, role assignments and application credentials.

Plain functions of a ``Connection`` do the work (the admin CLI calls them inside its own
transactions); ``DirectoryService`` puts policy in front of them for the API. Keystone's
semantics throughout: one ``Default`` domain, bootstrap roles ``admin``/``member``/``reader``
that cannot be deleted, a password change or a disabled user revokes the user's tokens.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bcrypt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import (
    application_credentials,
    projects,
    role_assignments,
    roles,
    users,
)
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Forbidden, Invalid, NotAuthenticated, NotFound
from stackvol.services.common.policy import IMPLIED_ROLES, expand_roles
from stackvol.services.identity import queries
from stackvol.services.identity.queries import (  # the admin CLI calls it here
    password_hash_of as password_hash_of,
)
from stackvol.timeutils import utcnow

DEFAULT_DOMAIN_ID = "default"
BUILTIN_ROLES = ("admin", "member", "reader")


# bcrypt reads at most 72 bytes (and bcrypt 5 refuses more), so secrets are digested first:
# any length hashes, and two long secrets sharing a prefix never match. Hashes made before the
# digest (no prefix) still verify their (short) secrets.
DIGESTED = "$sha256$"


def _digest(secret: str) -> bytes:
    return base64.b64encode(hashlib.sha256(secret.encode()).digest())


def hash_secret(secret: str, rounds: int) -> str:
    return DIGESTED + bcrypt.hashpw(_digest(secret), bcrypt.gensalt(rounds)).decode()


def check_secret(secret: str, hashed: str | None) -> bool:
    if not hashed:
        return False
    if hashed.startswith(DIGESTED):
        return bcrypt.checkpw(_digest(secret), hashed[len(DIGESTED):].encode())
    raw = secret.encode()
    return len(raw) <= 72 and bcrypt.checkpw(raw, hashed.encode())


# --- records ------------------------------------------------------------------------------


@dataclass(slots=True)
class Project:
    id: str
    name: str
    domain_id: str
    description: str | None
    enabled: bool


@dataclass(slots=True)
class User:
    id: str
    name: str
    domain_id: str
    default_project_id: str | None
    enabled: bool
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Role:
    id: str
    name: str
    description: str | None = None

    @property
    def immutable(self) -> bool:
        return self.name in BUILTIN_ROLES


@dataclass(slots=True)
class Assignment:
    user_id: str
    project_id: str
    role_id: str
    user_name: str
    project_name: str
    role_name: str
    inherited_from: str | None = None  # the assigned role this one is implied by


@dataclass(slots=True)
class AppCredential:
    id: str
    user_id: str
    project_id: str
    name: str
    description: str | None
    roles: list[Role]
    unrestricted: bool
    expires_at: dt.datetime | None
    secret: str | None = None  # only when just created


def _project(row: Any) -> Project:
    return Project(row.id, row.name, row.domain_id, row.description, row.enabled)


def _user(row: Any) -> User:
    return User(row.id, row.name, row.domain_id, row.default_project_id, row.enabled,
                dict(row.extra or {}))


def _role(row: Any) -> Role:
    return Role(row.id, row.name, row.description)


def _check_name_free(conn: Connection, table: sa.Table, kind: str, name: str,
                     domain_id: str) -> None:
    """Names are unique within a domain (Keystone's 409 wording)."""
    if queries.name_taken(conn, table, name, domain_id):
        raise Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry found "
                       f"with name {name} at domain ID {domain_id}.")


# --- projects -----------------------------------------------------------------------------


def create_project(conn: Connection, name: str, description: str | None = None,
                   enabled: bool = True, domain_id: str = DEFAULT_DOMAIN_ID) -> Project:
    _check_domain(domain_id)
    _check_name_free(conn, projects, "project", name, domain_id)
    project = Project(uuid.uuid4().hex, name, domain_id, description, enabled)
    queries.insert(conn, projects, id=project.id, name=name, domain_id=domain_id,
                   description=description, enabled=enabled, created_at=utcnow())
    return project


def _by_id(conn: Connection, table: sa.Table, kind: str, row_id: str) -> Any:
    row = queries.by_id(conn, table, row_id)
    if row is None:
        raise NotFound(f"Could not find {kind}: {row_id}.")
    return row


def _by_name_or_id(conn: Connection, table: sa.Table, kind: str, name_or_id: str) -> Any:
    """By id, else by name in the Default domain (the CLI's and openstackclient's lookup)."""
    row = queries.by_name_or_id(conn, table, name_or_id, DEFAULT_DOMAIN_ID)
    if row is None:
        raise NotFound(f"Could not find {kind}: {name_or_id}.")
    return row


def get_project(conn: Connection, project_id: str) -> Project:
    return _project(_by_id(conn, projects, "project", project_id))


def find_project(conn: Connection, name_or_id: str) -> Project:
    return _project(_by_name_or_id(conn, projects, "project", name_or_id))


def list_projects(conn: Connection, name: str | None = None, enabled: bool | None = None,
                  domain_id: str | None = None, user_id: str | None = None) -> list[Project]:
    query = queries.listing(projects, name, enabled, domain_id)
    if user_id is not None:
        query = queries.with_role_for(query, user_id)
    return [_project(r) for r in queries.rows(conn, query)]


def update_project(conn: Connection, project_id: str, changes: dict[str, Any]) -> Project:
    current = get_project(conn, project_id)
    allowed = {k: v for k, v in changes.items() if k in ("name", "description", "enabled")}
    if "name" in allowed and allowed["name"] != current.name:
        _check_name_free(conn, projects, "project", allowed["name"], current.domain_id)
    if allowed:
        queries.update(conn, projects, project_id, **allowed, updated_at=utcnow())
    return get_project(conn, project_id)


def delete_project(conn: Connection, project_id: str) -> None:
    get_project(conn, project_id)
    queries.delete(conn, projects, project_id)


def _check_domain(domain_id: str) -> None:
    if domain_id != DEFAULT_DOMAIN_ID:
        raise NotFound(f"Could not find domain: {domain_id}.")


# --- users --------------------------------------------------------------------------------


def create_user(conn: Connection, name: str, password_hash: str | None,
                default_project_id: str | None = None, enabled: bool = True,
                extra: dict[str, Any] | None = None,
                domain_id: str = DEFAULT_DOMAIN_ID) -> User:
    _check_domain(domain_id)
    _check_name_free(conn, users, "user", name, domain_id)
    if default_project_id is not None:
        get_project(conn, default_project_id)
    user = User(uuid.uuid4().hex, name, domain_id, default_project_id, enabled, extra or {})
    queries.insert(conn, users, id=user.id, name=name, domain_id=domain_id,
                   password_hash=password_hash, default_project_id=default_project_id,
                   enabled=enabled, extra=user.extra, created_at=utcnow())
    return user


def get_user(conn: Connection, user_id: str) -> User:
    return _user(_by_id(conn, users, "user", user_id))


def find_user(conn: Connection, name_or_id: str) -> User:
    return _user(_by_name_or_id(conn, users, "user", name_or_id))


def list_users(conn: Connection, name: str | None = None, enabled: bool | None = None,
               domain_id: str | None = None) -> list[User]:
    return [_user(r) for r in queries.rows(conn, queries.listing(users, name, enabled,
                                                                  domain_id))]


USER_COLUMNS = ("name", "enabled", "default_project_id")


def update_user(conn: Connection, user_id: str, changes: dict[str, Any],
                password_hash: str | None = None) -> User:
    current = get_user(conn, user_id)
    values: dict[str, Any] = {k: v for k, v in changes.items() if k in USER_COLUMNS}
    extra = {k: v for k, v in changes.items()
             if k not in (*USER_COLUMNS, "id", "domain_id", "password", "links", "options")}
    if "name" in values and values["name"] != current.name:
        _check_name_free(conn, users, "user", values["name"], current.domain_id)
    if values.get("default_project_id"):
        get_project(conn, values["default_project_id"])
    if extra:
        values["extra"] = {**current.extra, **extra}
    if password_hash is not None:
        values["password_hash"] = password_hash
    if values:
        queries.update(conn, users, user_id, **values, updated_at=utcnow())
    return get_user(conn, user_id)


def delete_user(conn: Connection, user_id: str) -> None:
    get_user(conn, user_id)
    queries.delete(conn, users, user_id)


# --- roles and assignments ----------------------------------------------------------------


def ensure_builtin_roles(conn: Connection) -> None:
    for name in BUILTIN_ROLES:
        if not queries.exists(conn, roles, roles.c.name == name):
            queries.insert(conn, roles, id=uuid.uuid4().hex, name=name)


def create_role(conn: Connection, name: str, description: str | None = None) -> Role:
    if queries.exists(conn, roles, roles.c.name == name):
        raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found "
                       f"with name {name}.")
    role = Role(uuid.uuid4().hex, name, description)
    queries.insert(conn, roles, id=role.id, name=name, description=description)
    return role


def get_role(conn: Connection, role_id: str) -> Role:
    return _role(_by_id(conn, roles, "role", role_id))


def find_role(conn: Connection, name_or_id: str) -> Role:
    row = queries.role_by_name_or_id(conn, name_or_id)
    if row is None:
        raise NotFound(f"Could not find role: {name_or_id}.")
    return _role(row)


def list_roles(conn: Connection, name: str | None = None) -> list[Role]:
    return [_role(r) for r in queries.role_rows(conn, name)]


def delete_role(conn: Connection, role_id: str) -> None:
    role = get_role(conn, role_id)
    if role.immutable:
        raise Forbidden(f"Unable to delete role {role.name}: it is an immutable bootstrap role.")
    queries.delete(conn, roles, role_id)


def _assigned(conn: Connection, user_id: str, project_id: str, role_id: str) -> bool:
    """Whether the user has the role on the project (404 if any of the three is unknown)."""
    get_user(conn, user_id)
    get_project(conn, project_id)
    get_role(conn, role_id)
    return queries.exists(conn, role_assignments,
                          *queries.assignment(user_id, project_id, role_id))


def grant(conn: Connection, user_id: str, project_id: str, role_id: str) -> None:
    """Assign a role (idempotent, as Keystone's PUT)."""
    if not _assigned(conn, user_id, project_id, role_id):
        queries.insert(conn, role_assignments, user_id=user_id, project_id=project_id,
                       role_id=role_id)


def grant_by_name(conn: Connection, user_id: str, project_id: str, role_name: str) -> None:
    grant(conn, user_id, project_id, find_role(conn, role_name).id)


def check_grant(conn: Connection, user_id: str, project_id: str, role_id: str) -> None:
    if not _assigned(conn, user_id, project_id, role_id):
        raise NotFound(f"Could not find role assignment with role: {role_id}, user or group: "
                       f"{user_id}, project, domain, or system: {project_id}.")


def revoke_grant(conn: Connection, user_id: str, project_id: str, role_id: str) -> None:
    check_grant(conn, user_id, project_id, role_id)
    queries.delete_assignment(conn, user_id, project_id, role_id)


def list_assignments(conn: Connection, user_id: str | None = None,
                     project_id: str | None = None, role_id: str | None = None,
                     effective: bool = False) -> list[Assignment]:
    """Assignments matching every filter given; ``effective`` adds the roles they imply."""
    found = [Assignment(r.user_id, r.project_id, r.role_id, r.user_name, r.project_name,
                        r.role_name) for r in queries.assignment_rows(conn, user_id, project_id)]
    if effective:
        found = _with_implied(conn, found)
    if role_id is not None:
        found = [a for a in found if a.role_id == role_id]
    return found


def _with_implied(conn: Connection, found: list[Assignment]) -> list[Assignment]:
    by_name = {r.name: r for r in list_roles(conn)}
    out: list[Assignment] = []
    seen: set[tuple[str, str, str]] = set()
    for a in found:
        implied = [(n, a.role_id) for n in IMPLIED_ROLES.get(a.role_name, ())]
        for name, source in [(a.role_name, None), *implied]:
            role = by_name.get(name)
            key = (a.user_id, a.project_id, name)
            if role is None or key in seen:
                continue
            seen.add(key)
            out.append(Assignment(a.user_id, a.project_id, role.id, a.user_name,
                                  a.project_name, name, source))
    return out


# --- revocation ---------------------------------------------------------------------------


def record_revocation(conn: Connection, expires_at: dt.datetime, audit_id: str | None = None,
                      user_id: str | None = None) -> None:
    """Revoke one token chain (``audit_id``) or every token of a user issued until now."""
    queries.record_revocation(conn, utcnow(), expires_at, audit_id, user_id)


# --- application credentials --------------------------------------------------------------


def _app_credential(conn: Connection, row: Any) -> AppCredential:
    by_name = {r.name: r for r in list_roles(conn)}
    found = [by_name[n] for n in row.roles if n in by_name]
    return AppCredential(row.id, row.user_id, row.project_id, row.name, row.description, found,
                         row.unrestricted, row.expires_at)


def create_app_credential(conn: Connection, user_id: str, project_id: str, name: str,
                          secret_hash: str, role_names: list[str], description: str | None,
                          unrestricted: bool, expires_at: dt.datetime | None) -> AppCredential:
    if queries.app_credential_named(conn, user_id, name):
        raise Conflict(f"Conflict occurred attempting to store application_credential - "
                       f"Duplicate entry found with name {name}.")
    credential_id = uuid.uuid4().hex
    queries.insert(conn, application_credentials, id=credential_id, user_id=user_id,
                   project_id=project_id, name=name, description=description,
                   secret_hash=secret_hash, roles=role_names, unrestricted=unrestricted,
                   expires_at=expires_at, created_at=utcnow())
    return get_app_credential(conn, user_id, credential_id)


def get_app_credential(conn: Connection, user_id: str, credential_id: str) -> AppCredential:
    row = queries.app_credential_row(conn, user_id, credential_id)
    if row is None:
        raise NotFound(f"Could not find Application Credential: {credential_id}.")
    return _app_credential(conn, row)


def list_app_credentials(conn: Connection, user_id: str,
                         name: str | None = None) -> list[AppCredential]:
    return [_app_credential(conn, r) for r in queries.app_credential_rows(conn, user_id, name)]


def delete_app_credential(conn: Connection, user_id: str, credential_id: str) -> None:
    get_app_credential(conn, user_id, credential_id)
    queries.delete(conn, application_credentials, credential_id)


# --- the service the API calls ------------------------------------------------------------

Forget = Callable[..., None]


class DirectoryService:
    """The directory behind policy; ``forget`` drops cached tokens when access is taken away."""

    def __init__(self, db: Database, rounds: int, token_ttl: dt.timedelta,
                 forget: Forget) -> None:
        self.db = db
        self.rounds = rounds
        self.token_ttl = token_ttl
        self.forget = forget

    async def _hash(self, secret: str) -> str:
        return await asyncio.to_thread(hash_secret, secret, self.rounds)

    # projects
    async def create_project(self, ctx: RequestContext, name: str, description: str | None,
                             enabled: bool, domain_id: str) -> Project:
        policy.authorize(ctx, "identity:create_project")
        return await self.db.run(create_project, name, description, enabled, domain_id)

    async def get_project(self, ctx: RequestContext, project_id: str) -> Project:
        policy.authorize(ctx, "identity:get_project", project_id)
        return await self.db.read(get_project, project_id)

    async def list_projects(self, ctx: RequestContext, **filters: Any) -> list[Project]:
        policy.authorize(ctx, "identity:list_projects")
        return await self.db.read(list_projects, **filters)

    async def list_user_projects(self, ctx: RequestContext, user_id: str) -> list[Project]:
        policy.authorize(ctx, "identity:list_user_projects", user_id=user_id)
        return await self.db.read(list_projects, enabled=True, user_id=user_id)

    async def update_project(self, ctx: RequestContext, project_id: str,
                             changes: dict[str, Any]) -> Project:
        policy.authorize(ctx, "identity:update_project", project_id)
        project = await self.db.run(update_project, project_id, changes)
        if not project.enabled:
            self.forget(project_id=project_id)
        return project

    async def delete_project(self, ctx: RequestContext, project_id: str) -> None:
        policy.authorize(ctx, "identity:delete_project", project_id)
        await self.db.run(delete_project, project_id)
        self.forget(project_id=project_id)

    # users
    async def create_user(self, ctx: RequestContext, name: str, password: str | None,
                          default_project_id: str | None, enabled: bool,
                          extra: dict[str, Any], domain_id: str) -> User:
        policy.authorize(ctx, "identity:create_user")
        hashed = await self._hash(password) if password else None
        return await self.db.run(create_user, name, hashed, default_project_id, enabled, extra,
                                 domain_id)

    async def get_user(self, ctx: RequestContext, user_id: str) -> User:
        policy.authorize(ctx, "identity:get_user", user_id=user_id)
        return await self.db.read(get_user, user_id)

    async def list_users(self, ctx: RequestContext, **filters: Any) -> list[User]:
        policy.authorize(ctx, "identity:list_users")
        return await self.db.read(list_users, **filters)

    async def update_user(self, ctx: RequestContext, user_id: str,
                          changes: dict[str, Any]) -> User:
        policy.authorize(ctx, "identity:update_user", user_id=user_id)
        password = changes.get("password")
        hashed = await self._hash(password) if password else None
        return await self._save_user(user_id, changes, hashed)

    async def _save_user(self, user_id: str, changes: dict[str, Any],
                         hashed: str | None) -> User:
        user = await self.db.run(self._update_user, user_id, changes, hashed)
        if hashed is not None or not user.enabled:
            self.forget(user_id=user_id)  # after the commit: nothing re-caches the old state
        return user

    def _update_user(self, conn: Connection, user_id: str, changes: dict[str, Any],
                     hashed: str | None) -> User:
        user = update_user(conn, user_id, changes, hashed)
        if hashed is not None or not user.enabled:
            record_revocation(conn, utcnow() + self.token_ttl, user_id=user_id)
        return user

    async def delete_user(self, ctx: RequestContext, user_id: str) -> None:
        policy.authorize(ctx, "identity:delete_user", user_id=user_id)
        await self.db.run(delete_user, user_id)
        self.forget(user_id=user_id)

    async def change_password(self, user_id: str, original: str, new: str) -> None:
        """A user's own change: the original password is the credential (no token needed, as
        in Keystone, so a user with an expired password can still change it)."""
        current = await self.db.read(password_hash_of, user_id)
        if not await asyncio.to_thread(check_secret, original, current):
            raise NotAuthenticated("The request you have made requires authentication.")
        if not new:
            raise Invalid("Invalid input for field 'password': the new password is empty.")
        await self._save_user(user_id, {}, await self._hash(new))

    # roles
    async def create_role(self, ctx: RequestContext, name: str,
                          description: str | None) -> Role:
        policy.authorize(ctx, "identity:create_role")
        return await self.db.run(create_role, name, description)

    async def get_role(self, ctx: RequestContext, role_id: str) -> Role:
        policy.authorize(ctx, "identity:get_role")
        return await self.db.read(get_role, role_id)

    async def list_roles(self, ctx: RequestContext, name: str | None) -> list[Role]:
        policy.authorize(ctx, "identity:list_roles")
        return await self.db.read(list_roles, name)

    async def delete_role(self, ctx: RequestContext, role_id: str) -> None:
        policy.authorize(ctx, "identity:delete_role")
        await self.db.run(delete_role, role_id)
        self.forget()

    # assignments
    async def grant(self, ctx: RequestContext, user_id: str, project_id: str,
                    role_id: str) -> None:
        policy.authorize(ctx, "identity:create_grant", project_id, user_id=user_id)
        await self.db.run(grant, user_id, project_id, role_id)
        self.forget(user_id=user_id)

    async def check_grant(self, ctx: RequestContext, user_id: str, project_id: str,
                          role_id: str) -> None:
        policy.authorize(ctx, "identity:check_grant", project_id, user_id=user_id)
        await self.db.read(check_grant, user_id, project_id, role_id)

    async def revoke_grant(self, ctx: RequestContext, user_id: str, project_id: str,
                           role_id: str) -> None:
        policy.authorize(ctx, "identity:revoke_grant", project_id, user_id=user_id)
        await self.db.run(revoke_grant, user_id, project_id, role_id)
        self.forget(user_id=user_id)

    async def list_grants(self, ctx: RequestContext, user_id: str,
                          project_id: str) -> list[Role]:
        policy.authorize(ctx, "identity:list_grants", project_id, user_id=user_id)
        return await self.db.read(self._grants, user_id, project_id)

    @staticmethod
    def _grants(conn: Connection, user_id: str, project_id: str) -> list[Role]:
        get_user(conn, user_id)
        get_project(conn, project_id)
        return [Role(a.role_id, a.role_name)
                for a in list_assignments(conn, user_id=user_id, project_id=project_id)]

    async def list_assignments(self, ctx: RequestContext, **filters: Any) -> list[Assignment]:
        policy.authorize(ctx, "identity:list_role_assignments")
        return await self.db.read(list_assignments, **filters)

    # application credentials
    async def create_app_credential(
        self, ctx: RequestContext, user_id: str, name: str, secret: str | None,
        role_names: list[str] | None, description: str | None, unrestricted: bool,
        expires_at: dt.datetime | None, restricted_caller: bool,
    ) -> AppCredential:
        policy.authorize(ctx, "identity:create_application_credential", user_id=user_id)
        if restricted_caller:
            raise Forbidden("Using method 'application_credential' is not allowed for managing "
                            "additional application credentials.")
        wanted = set(role_names) if role_names is not None else set(ctx.roles)
        missing = wanted - ctx.roles
        if missing:
            raise Forbidden(f"Invalid application credential: the roles "
                            f"{sorted(missing)} are not held on project {ctx.project_id}.")
        if expires_at is not None and expires_at <= utcnow():
            raise Invalid("The application credential's expiration is in the past.")
        secret = secret or secrets.token_urlsafe(48)
        created = await self.db.run(
            create_app_credential, user_id, ctx.project_id, name, await self._hash(secret),
            sorted(expand_roles(wanted)), description, unrestricted, expires_at)
        created.secret = secret
        return created

    async def get_app_credential(self, ctx: RequestContext, user_id: str,
                                 credential_id: str) -> AppCredential:
        policy.authorize(ctx, "identity:get_application_credential", user_id=user_id)
        return await self.db.read(get_app_credential, user_id, credential_id)

    async def list_app_credentials(self, ctx: RequestContext, user_id: str,
                                   name: str | None) -> list[AppCredential]:
        policy.authorize(ctx, "identity:list_application_credentials", user_id=user_id)
        return await self.db.read(list_app_credentials, user_id, name)

    async def delete_app_credential(self, ctx: RequestContext, user_id: str,
                                    credential_id: str, restricted_caller: bool) -> None:
        policy.authorize(ctx, "identity:delete_application_credential", user_id=user_id)
        if restricted_caller:
            raise Forbidden("Using method 'application_credential' is not allowed for managing "
                            "additional application credentials.")
        await self.db.run(delete_app_credential, user_id, credential_id)
        self.forget(app_credential_id=credential_id)
