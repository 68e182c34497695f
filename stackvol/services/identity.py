"""Identity: users, projects, role assignments, password checks and tokens (Keystone v3 semantics).

Tokens are Fernet tokens, as Keystone's: the token itself carries who, for which project, which
methods and until when, encrypted and signed with keys kept in the database so that every API
process can validate every token. Roles are looked up (and briefly cached) on validation, so a
role removed takes effect without re-issuing tokens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field

import bcrypt
import orjson
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import projects, role_assignments, roles, token_keys, users
from stackvol.services.errors import NotAuthenticated, NotFound
from stackvol.services.policy import expand_roles
from stackvol.timeutils import utcnow

log = logging.getLogger(__name__)

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
BUILTIN_ROLES = ("admin", "member", "reader")
_CACHE_SECONDS = 5.0
_CACHE_MAX = 50_000


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
    audit_id: str
    token_id: str = ""  # set on a freshly issued token

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(name for _, name in self.roles)


@dataclass
class BootstrapResult:
    """Credentials made at first start, for the operator's ``clouds.yaml``."""

    passwords: dict[str, str] = field(default_factory=dict)  # user name -> password
    projects: dict[str, str] = field(default_factory=dict)  # user name -> project name


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def _check_password(password: str, hashed: str | None) -> bool:
    return bool(hashed) and bcrypt.checkpw(password.encode(), hashed.encode())  # type: ignore[union-attr]


class IdentityService:
    def __init__(self, db: Database, token_ttl_seconds: int = 3600,
                 password_hash_rounds: int = 12) -> None:
        self.db = db
        self.ttl = dt.timedelta(seconds=token_ttl_seconds)
        self.rounds = password_hash_rounds
        self._fernet: MultiFernet | None = None
        self._cache: dict[str, tuple[float, Token]] = {}

    # --- set-up ---------------------------------------------------------------------------

    def bootstrap(self, conn: Connection) -> BootstrapResult:
        """First start: roles, the key ring, and an ``admin`` and a ``demo`` user and project."""
        result = BootstrapResult()
        for name in BUILTIN_ROLES:
            if conn.execute(sa.select(roles.c.id).where(roles.c.name == name)).first() is None:
                conn.execute(roles.insert().values(id=uuid.uuid4().hex, name=name))
        if conn.execute(sa.select(token_keys.c.id).limit(1)).first() is None:
            conn.execute(token_keys.insert().values(key=Fernet.generate_key().decode(),
                                                    created_at=utcnow()))
        for user, project, role in (("admin", "admin", "admin"), ("demo", "demo", "member")):
            if conn.execute(sa.select(users.c.id).where(users.c.name == user)).first():
                continue
            password = secrets.token_urlsafe(18)
            project_id = self.create_project(conn, project)
            user_id = self.create_user(conn, user, password, project_id)
            self.assign_role(conn, user_id, project_id, role)
            result.passwords[user] = password
            result.projects[user] = project
            log.info("bootstrapped user %s in project %s with role %s", user, project, role)
        return result

    def create_project(self, conn: Connection, name: str, description: str | None = None) -> str:
        project_id = uuid.uuid4().hex
        conn.execute(projects.insert().values(id=project_id, name=name, description=description,
                                              domain_id="default", enabled=True,
                                              created_at=utcnow()))
        return project_id

    def create_user(self, conn: Connection, name: str, password: str,
                    default_project_id: str | None = None) -> str:
        user_id = uuid.uuid4().hex
        conn.execute(users.insert().values(
            id=user_id, name=name, domain_id="default",
            password_hash=hash_password(password, self.rounds),
            default_project_id=default_project_id, enabled=True, created_at=utcnow()))
        return user_id

    @staticmethod
    def assign_role(conn: Connection, user_id: str, project_id: str, role_name: str) -> None:
        role_id = conn.execute(sa.select(roles.c.id).where(roles.c.name == role_name)).scalar_one()
        conn.execute(role_assignments.insert().values(user_id=user_id, project_id=project_id,
                                                      role_id=role_id))

    async def load_keys(self) -> None:
        keys = await self.db.read(lambda c: [r[0] for r in c.execute(
            sa.select(token_keys.c.key).order_by(token_keys.c.id.desc()))])
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    # --- authentication -------------------------------------------------------------------

    async def authenticate_password(
        self, password: str, user_id: str | None = None, user_name: str | None = None,
        domain: str | None = None, project_id: str | None = None,
        project_name: str | None = None, project_domain: str | None = None,
    ) -> Token:
        """Check a password and issue a token scoped to the requested (or default) project."""
        user = await self.db.read(_find_user, user_id, user_name, domain)
        ok = user is not None and await asyncio.to_thread(_check_password, password,
                                                          user.password_hash)
        if not ok or not user.enabled:
            raise NotAuthenticated("The request you have made requires authentication.")
        return await self._issue(user.id, ("password",), project_id, project_name,
                                 project_domain, default_project=user.default_project_id)

    async def authenticate_token(self, token: str, project_id: str | None = None,
                                 project_name: str | None = None,
                                 project_domain: str | None = None) -> Token:
        """Exchange a valid token for a new one, possibly for another project."""
        current = await self.validate(token)
        return await self._issue(current.user_id, ("token",), project_id, project_name,
                                 project_domain, default_project=current.project_id,
                                 expires_at=current.expires_at)

    async def _issue(self, user_id: str, methods: tuple[str, ...], project_id: str | None,
                     project_name: str | None, project_domain: str | None,
                     default_project: str | None,
                     expires_at: dt.datetime | None = None) -> Token:
        if project_id is None and project_name is not None:
            project_id = await self.db.read(_project_id_by_name, project_name, project_domain)
        project_id = project_id or default_project
        if project_id is None:
            raise NotAuthenticated("An unscoped token cannot be used here; ask for a project.")
        now = utcnow().replace(microsecond=0)
        expires = expires_at or now + self.ttl
        payload = {"u": user_id, "p": project_id, "m": list(methods),
                   "i": now.timestamp(), "e": expires.timestamp(), "a": secrets.token_urlsafe(16)}
        token = await self._resolve(payload)
        assert self._fernet is not None
        token_id = self._fernet.encrypt(orjson.dumps(payload)).decode()
        self._cache[token_id] = (time.monotonic() + _CACHE_SECONDS, token)
        return dataclasses.replace(token, token_id=token_id)

    async def validate(self, token_id: str) -> Token:
        """The token's identity, or ``NotAuthenticated`` if it is bad, expired or now invalid."""
        cached = self._cache.get(token_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now and cached[1].expires_at > utcnow():
            return cached[1]
        assert self._fernet is not None
        try:
            payload = orjson.loads(self._fernet.decrypt(token_id.encode()))
        except (InvalidToken, ValueError) as exc:
            raise NotAuthenticated("The request you have made requires authentication.") from exc
        token = await self._resolve(payload)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token_id] = (now + _CACHE_SECONDS, token)
        return token

    async def _resolve(self, payload: dict) -> Token:
        expires = dt.datetime.fromtimestamp(payload["e"], dt.UTC).replace(tzinfo=None)
        if expires <= utcnow():
            raise NotAuthenticated("The request you have made requires authentication.")
        found = await self.db.read(_user_project_roles, payload["u"], payload["p"])
        if found is None:
            raise NotAuthenticated("The request you have made requires authentication.")
        user_name, project_name, assigned = found
        if not assigned:
            raise NotAuthenticated(f"User {payload['u']} has no access to project "
                                   f"{payload['p']}.")
        role_ids = dict(assigned)
        names = expand_roles(set(role_ids.values()))
        all_roles = await self.db.read(_role_ids, names)
        return Token(
            user_id=payload["u"], user_name=user_name, project_id=payload["p"],
            project_name=project_name, roles=tuple(sorted(all_roles.items(), key=lambda r: r[1])),
            methods=tuple(payload["m"]),
            issued_at=dt.datetime.fromtimestamp(payload["i"], dt.UTC).replace(tzinfo=None),
            expires_at=expires, audit_id=payload["a"],
        )

    async def project_name(self, project_id: str) -> str:
        name = await self.db.read(lambda c: c.execute(
            sa.select(projects.c.name).where(projects.c.id == project_id)).scalar())
        if name is None:
            raise NotFound(f"Could not find project: {project_id}.")
        return name


def _find_user(conn: Connection, user_id: str | None, name: str | None, domain: str | None):
    query = sa.select(users.c.id, users.c.password_hash, users.c.enabled,
                      users.c.default_project_id)
    if user_id:
        query = query.where(users.c.id == user_id)
    else:
        query = query.where(users.c.name == name, users.c.domain_id == (domain or "default"))
    return conn.execute(query).first()


def _project_id_by_name(conn: Connection, name: str, domain: str | None) -> str:
    pid = conn.execute(sa.select(projects.c.id).where(
        projects.c.name == name, projects.c.domain_id == (domain or "default"),
        projects.c.enabled.is_(True))).scalar()
    if pid is None:
        raise NotAuthenticated(f"Could not find project: {name}.")
    return pid


def _user_project_roles(conn: Connection, user_id: str, project_id: str):
    user = conn.execute(sa.select(users.c.name).where(users.c.id == user_id,
                                                      users.c.enabled.is_(True))).first()
    project = conn.execute(sa.select(projects.c.name).where(
        projects.c.id == project_id, projects.c.enabled.is_(True))).first()
    if user is None or project is None:
        return None
    assigned = conn.execute(
        sa.select(roles.c.id, roles.c.name)
        .join(role_assignments, role_assignments.c.role_id == roles.c.id)
        .where(role_assignments.c.user_id == user_id, role_assignments.c.project_id == project_id)
    ).all()
    return user.name, project.name, [(r.id, r.name) for r in assigned]


def _role_ids(conn: Connection, names: frozenset[str]) -> dict[str, str]:
    rows = conn.execute(sa.select(roles.c.id, roles.c.name).where(roles.c.name.in_(list(names))))
    return {r.id: r.name for r in rows}
