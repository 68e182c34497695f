"""Identity: authentication, tokens and their revocation (Keystone v3 semantics).

Tokens are Fernet tokens, as Keystone's: the token itself carries who, for which project, which
methods and until when, encrypted and signed with keys kept in the database so that every API
process can validate every token. Roles are looked up on validation, so a role removed takes
effect without re-issuing tokens.

Validation is on every API call, so its result is cached for ``CACHE_SECONDS`` per token. On a
cache miss the database says whether the user, project and roles still hold and whether a
revocation event matches the token. Revocation (``DELETE /auth/tokens``, a password change, a
disabled or deleted user, a deleted application credential) is stored in the database and also
drops the matching tokens from this process's cache: it takes effect at once in the process
that revoked, and within ``CACHE_SECONDS`` in every other process sharing the database.

The directory (projects, users, roles, application credentials) is ``identity.directory``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.common.errors import NotAuthenticated, NotFound
from stackvol.services.common.policy import expand_roles
from stackvol.services.identity import directory, queries
from stackvol.services.identity.directory import (
    BUILTIN_ROLES,
    DirectoryService,
    check_secret,
    hash_secret,
)
from stackvol.timeutils import utcnow

log = logging.getLogger(__name__)

__all__ = ["BUILTIN_ROLES", "DEFAULT_DOMAIN", "BootstrapResult", "IdentityService", "Token",
           "hash_password"]

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
CACHE_SECONDS = 5.0
_CACHE_MAX = 50_000
_UNAUTHENTICATED = "The request you have made requires authentication."


@dataclass(frozen=True, slots=True)
class AppCredentialRef:
    id: str
    name: str
    restricted: bool


def _cache_deadline(now: float, token: Token) -> float:
    """Until when (``time.monotonic``) a validation of ``token`` may be reused: for
    CACHE_SECONDS and never past the token's expiry, measured here once, so that a cache hit
    (every request but the first) reads no wall clock (``utcnow`` was 4% of a volume show)."""
    return now + min(CACHE_SECONDS, (token.expires_at - utcnow()).total_seconds())


@dataclass(frozen=True, slots=True)
class Token:
    """A validated token: who it is for, which project it is scoped to, and its roles."""

    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: tuple[tuple[str, str], ...]  # (id, name), implied roles included
    methods: tuple[str, ...]
    issued_at: dt.datetime
    expires_at: dt.datetime
    audit_ids: tuple[str, ...]  # its own, then the token it was exchanged from
    application_credential: AppCredentialRef | None = None
    token_id: str = ""  # set on a freshly issued token

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(name for _, name in self.roles)

    @property
    def audit_id(self) -> str:
        return self.audit_ids[0]


@dataclass
class BootstrapResult:
    """Credentials made at first start, for the operator's ``clouds.yaml``."""

    passwords: dict[str, str] = field(default_factory=dict)  # user name -> password
    projects: dict[str, str] = field(default_factory=dict)  # user name -> project name


def hash_password(password: str, rounds: int) -> str:
    return hash_secret(password, rounds)


def _timestamp(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)


def rotate_token_keys(conn: Connection, keep: int) -> tuple[int, int]:
    """As ``keystone-manage fernet_rotate``: a new primary key (the newest row signs), the
    ``keep`` newest older keys still accepted, the rest removed (their tokens stop working).
    How many older keys were kept and how many removed."""
    queries.add_token_key(conn)
    ids = queries.token_key_ids(conn)
    old = ids[1 + keep:]
    if old:
        queries.delete_token_keys(conn, old)
    return len(ids) - 1 - len(old), len(old)


class IdentityService:
    def __init__(self, db: Database, token_ttl_seconds: int = 3600,
                 password_hash_rounds: int = 12) -> None:
        self.db = db
        self.ttl = dt.timedelta(seconds=token_ttl_seconds)
        self.rounds = password_hash_rounds
        self._fernet: MultiFernet | None = None
        self._cache: dict[str, tuple[float, Token]] = {}
        self._absent_hash: str | None = None
        self.directory = DirectoryService(db, password_hash_rounds, self.ttl, self.forget)

    # --- set-up ---------------------------------------------------------------------------

    def bootstrap(self, conn: Connection, admin_password: str | None = None) -> BootstrapResult:
        """First start: roles, the key ring, and an ``admin`` and a ``demo`` user and project.

        Idempotent: what exists is left alone, so it runs at every start.
        """
        result = BootstrapResult()
        directory.ensure_builtin_roles(conn)
        if not queries.has_token_key(conn):
            queries.add_token_key(conn)
        for user, project, role in (("admin", "admin", "admin"), ("demo", "demo", "member")):
            if queries.user_named(conn, user):
                continue
            password = (admin_password if user == "admin" else None) or secrets.token_urlsafe(18)
            project_id = self._project_named(conn, project)
            created = directory.create_user(conn, user, hash_secret(password, self.rounds),
                                            project_id)
            directory.grant_by_name(conn, created.id, project_id, role)
            result.passwords[user] = password
            result.projects[user] = project
            log.info("bootstrapped user %s in project %s with role %s", user, project, role)
        return result

    @staticmethod
    def _project_named(conn: Connection, name: str) -> str:
        existing = directory.list_projects(conn, name=name, domain_id="default")
        return existing[0].id if existing else directory.create_project(conn, name).id

    async def load_keys(self) -> None:
        keys = await self.db.read(queries.token_key_values)
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    # --- authentication -------------------------------------------------------------------

    async def authenticate_password(
        self, password: str, user_id: str | None = None, user_name: str | None = None,
        domain: str | None = None, project_id: str | None = None,
        project_name: str | None = None, project_domain: str | None = None,
    ) -> Token:
        """Check a password and issue a token scoped to the requested (or default) project."""
        user = await self.db.read(_find_user, user_id, user_name, domain)
        ok = await self._verify(password, user.password_hash if user is not None else None)
        if not ok or user is None or not user.enabled:
            raise NotAuthenticated(_UNAUTHENTICATED)
        return await self._issue(user.id, ("password",), project_id, project_name,
                                 project_domain, default_project=user.default_project_id)

    async def _verify(self, secret: str, hashed: str | None) -> bool:
        """Check a secret off the event loop. With no hash (no such user) a stand-in hash is
        checked all the same, so the answer takes as long and tells nothing of who exists."""
        if not hashed:
            if self._absent_hash is None:
                self._absent_hash = await asyncio.to_thread(
                    hash_secret, secrets.token_urlsafe(18), self.rounds)
            await asyncio.to_thread(check_secret, secret, self._absent_hash)
            return False
        return await asyncio.to_thread(check_secret, secret, hashed)

    async def authenticate_token(self, token: str, project_id: str | None = None,
                                 project_name: str | None = None,
                                 project_domain: str | None = None) -> Token:
        """Exchange a valid token for a new one, possibly for another project."""
        current = await self.validate(token)
        extra: dict[str, Any] = {"r": current.audit_ids[0]}
        if current.application_credential is not None:
            # Keystone: a token from an application credential stays on its project.
            if (project_id or project_name) and current.project_id not in (
                    project_id, await self._project_id(project_name, project_domain)):
                raise NotAuthenticated("Application credential tokens cannot be rescoped.")
            project_id, project_name = current.project_id, None
            extra["c"] = current.application_credential.id
        return await self._issue(current.user_id, ("token",), project_id, project_name,
                                 project_domain, default_project=current.project_id,
                                 expires_at=current.expires_at, extra=extra)

    async def authenticate_app_credential(
        self, secret: str, credential_id: str | None = None, name: str | None = None,
        user_id: str | None = None, user_name: str | None = None, domain: str | None = None,
    ) -> Token:
        """Keystone's ``application_credential`` method: the secret stands for its user, on
        its project, with (at most) its roles."""
        if credential_id is None and user_id is None and user_name is not None:
            user = await self.db.read(_find_user, None, user_name, domain)
            user_id = user.id if user is not None else None
        row = await self.db.read(queries.app_credential_for_auth, credential_id, name, user_id)
        ok = await self._verify(secret, row.secret_hash if row is not None else None)
        if not ok or row is None:
            raise NotAuthenticated(_UNAUTHENTICATED)
        if row.expires_at is not None and row.expires_at <= utcnow():
            raise NotAuthenticated("The application credential has expired.")
        expires = utcnow() + self.ttl
        if row.expires_at is not None:
            expires = min(expires, row.expires_at)
        return await self._issue(row.user_id, ("application_credential",), row.project_id, None,
                                 None, default_project=None, expires_at=expires,
                                 extra={"c": row.id})

    async def _project_id(self, name: str | None, domain: str | None) -> str | None:
        return await self.db.read(_project_id_by_name, name, domain) if name else None

    async def _issue(self, user_id: str, methods: tuple[str, ...], project_id: str | None,
                     project_name: str | None, project_domain: str | None,
                     default_project: str | None, expires_at: dt.datetime | None = None,
                     extra: dict[str, Any] | None = None) -> Token:
        if project_id is None and project_name is not None:
            project_id = await self._project_id(project_name, project_domain)
        project_id = project_id or default_project
        if project_id is None:
            raise NotAuthenticated("An unscoped token cannot be used here; ask for a project.")
        now = utcnow()
        expires = (expires_at or now + self.ttl).replace(microsecond=0)
        payload = {"u": user_id, "p": project_id, "m": list(methods),
                   "i": now.replace(tzinfo=dt.UTC).timestamp(),
                   "e": expires.replace(tzinfo=dt.UTC).timestamp(),
                   "a": secrets.token_urlsafe(16), **(extra or {})}
        token = await self._resolve(payload)
        assert self._fernet is not None
        token_id = self._fernet.encrypt(orjson.dumps(payload)).decode()
        self._cache[token_id] = (_cache_deadline(time.monotonic(), token), token)
        return dataclasses.replace(token, token_id=token_id)

    # --- validation -----------------------------------------------------------------------

    async def validate(self, token_id: str) -> Token:
        """The token's identity, or ``NotAuthenticated`` if it is bad, expired or revoked."""
        cached = self._cache.get(token_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        assert self._fernet is not None
        try:
            payload = orjson.loads(self._fernet.decrypt(token_id.encode()))
        except (InvalidToken, ValueError) as exc:
            raise NotAuthenticated(_UNAUTHENTICATED) from exc
        token = await self._resolve(payload)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token_id] = (_cache_deadline(now, token), token)
        return token

    async def _resolve(self, payload: dict[str, Any]) -> Token:
        expires = _timestamp(payload["e"])
        if expires <= utcnow():
            raise NotAuthenticated(_UNAUTHENTICATED)
        facts = await self.db.read(_token_facts, payload)
        if facts is None:
            raise NotAuthenticated(_UNAUTHENTICATED)
        user_name, project_name, assigned, credential = facts
        if not assigned:
            raise NotAuthenticated(f"User {payload['u']} has no access to project "
                                   f"{payload['p']}.")
        return Token(
            user_id=payload["u"], user_name=user_name, project_id=payload["p"],
            project_name=project_name, roles=tuple(sorted(assigned, key=lambda r: r[1])),
            methods=tuple(payload["m"]), issued_at=_timestamp(payload["i"]),
            expires_at=expires, audit_ids=_audit_ids(payload), application_credential=credential,
        )

    # --- revocation -----------------------------------------------------------------------

    async def revoke(self, token: Token) -> None:
        """Revoke a token (and the tokens exchanged from it) everywhere."""
        await self.db.run(directory.record_revocation, token.expires_at,
                          audit_id=token.audit_id)
        self.forget(audit_id=token.audit_id)
        log.info("token %s of user %s revoked", token.audit_id, token.user_id)

    def forget(self, user_id: str | None = None, project_id: str | None = None,
               audit_id: str | None = None, app_credential_id: str | None = None) -> None:
        """Drop cached validations that may no longer hold; with no filter, all of them."""
        if not any((user_id, project_id, audit_id, app_credential_id)):
            self._cache.clear()
            return
        for key, (_, token) in list(self._cache.items()):
            cred = token.application_credential
            if (token.user_id == user_id or token.project_id == project_id
                    or (audit_id is not None and audit_id in token.audit_ids)
                    or (cred is not None and cred.id == app_credential_id)):
                self._cache.pop(key, None)

    async def project_name(self, project_id: str) -> str:
        name = await self.db.read(queries.project_name, project_id)
        if name is None:
            raise NotFound(f"Could not find project: {project_id}.")
        return name


def _audit_ids(payload: dict[str, Any]) -> tuple[str, ...]:
    return (payload["a"], payload["r"]) if payload.get("r") else (payload["a"],)


def _find_user(conn: Connection, user_id: str | None, name: str | None,
               domain: str | None) -> Any:
    return queries.user_for_auth(conn, user_id, name, domain or "default")


def _project_id_by_name(conn: Connection, name: str, domain: str | None) -> str:
    pid = queries.enabled_project_id(conn, name, domain or "default")
    if pid is None:
        raise NotAuthenticated(f"Could not find project: {name}.")
    return pid


def _token_facts(conn: Connection, payload: dict[str, Any]) -> Any:
    """What a token stands for now: names, effective roles and its application credential;
    ``None`` if the user, project or credential is gone or disabled, or the token revoked."""
    user_id, project_id = payload["u"], payload["p"]
    user_name = queries.enabled_user_name(conn, user_id)
    project_name = queries.enabled_project_name(conn, project_id)
    if user_name is None or project_name is None:
        return None
    if queries.is_revoked(conn, list(_audit_ids(payload)), user_id, _timestamp(payload["i"])):
        return None
    names = expand_roles(queries.assigned_role_names(conn, user_id, project_id))
    credential = None
    if payload.get("c"):
        row = queries.app_credential_for_auth(conn, payload["c"], None, None)
        if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
            return None
        names = names & frozenset(row.roles)
        credential = AppCredentialRef(row.id, row.name, not row.unrestricted)
    return user_name, project_name, queries.roles_named(conn, names), credential
