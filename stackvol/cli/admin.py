"""stackvol admin: operate a stackvol deployment directly on its database and backends, with no
API process needed (for when the API is down, or before it first starts).

It builds the same services the server uses and acts as the system administrator; repairs go
through the service layer, which reconciles with the storage backend and the compute driver
before it records a state. Passwords are never taken as arguments (shell history, ps): they are
asked for at a terminal prompt, or read from standard input with --password-stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from stackvol.config import Settings
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import ServiceError

Handler = Callable[[argparse.Namespace, Any], int]
FORMATS = ("table", "json", "yaml", "value")
PASSWORD_ARGUMENT = ("passwords are not taken as arguments (shell history, ps): type it at the "
                     "prompt, or pipe it in with --password-stdin")

EXAMPLES = """examples:
  stackvol admin bootstrap --data-dir ./data
  stackvol admin project create team-a --description "first team"
  stackvol admin user create alice --project team-a --role member      (asks for the password)
  printf '%s\\n' "$PASS" | stackvol admin user create bob --password-stdin --project team-a
  stackvol admin user list -f json
  stackvol admin clouds-yaml --user alice > clouds.yaml                 (asks for the password)
  stackvol admin token rotate-keys --keep 2
  stackvol admin volumes stuck --older-than 600
  stackvol admin volume reset-state VOLUME_ID --state available
"""


class AdminError(Exception):
    """A failure to report in one line, without a traceback."""


class _DeprecatedPassword(argparse.Action):
    """A password given as an argument: refused, with what to do instead."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.error(f"{option_string}: {PASSWORD_ARGUMENT}")


# --- the command tree -------------------------------------------------------------------------


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``admin`` and its sub-commands to the ``stackvol`` parser."""
    raw = argparse.RawDescriptionHelpFormatter
    admin = sub.add_parser("admin", help="operate on the database and backends directly",
                           description=__doc__, epilog=EXAMPLES, formatter_class=raw)
    groups = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, handler: Handler, text: str,
                examples: str = "", listing: bool = False) -> argparse.ArgumentParser:
        parser = parent.add_parser(name, parents=[common], help=text, description=text,
                                   epilog=f"examples:\n{examples}" if examples else None,
                                   formatter_class=raw)
        parser.set_defaults(handler=handler)
        if listing:
            parser.add_argument("-f", "--format", choices=FORMATS, default="table",
                                help="output format (default: table)")
        return parser

    def group(name: str, text: str) -> Any:
        parser = groups.add_parser(name, help=text, description=text)
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")

    def password_input(parser: argparse.ArgumentParser, flag: str = "--password") -> None:
        parser.add_argument(f"{flag}-stdin", action="store_true", dest="password_stdin",
                            help="read the password from the first line of standard input "
                                 "(default: ask for it at the terminal)")
        parser.add_argument(flag, nargs="?", action=_DeprecatedPassword, help=argparse.SUPPRESS)

    boot = command(groups, "bootstrap", bootstrap,
                   "create the schema, the built-in roles and the admin and demo accounts "
                   "(idempotent); print the new credentials",
                   "  stackvol admin bootstrap --data-dir ./data\n"
                   "  printf '%s\\n' \"$PASS\" | stackvol admin bootstrap --admin-password-stdin\n")
    password_input(boot, "--admin-password")

    projects = group("project", "projects")
    made = command(projects, "create", project_create, "create a project",
                   "  stackvol admin project create team-a --description 'first team'\n",
                   listing=True)
    made.add_argument("name")
    made.add_argument("--description")
    command(projects, "list", project_list, "list projects",
            "  stackvol admin project list -f value\n", listing=True)
    made = command(projects, "delete", project_delete,
                   "delete a project (its role assignments go with it)",
                   "  stackvol admin project delete team-a\n")
    made.add_argument("project", help="project name or id")

    users = group("user", "users")
    made = command(users, "create", user_create, "create a user (asks for its password)",
                   "  stackvol admin user create alice --project team-a --role member\n"
                   "  printf '%s\\n' \"$PASS\" | stackvol admin user create bob "
                   "--password-stdin\n", listing=True)
    made.add_argument("name")
    password_input(made)
    made.add_argument("--project", help="default project (name or id)")
    made.add_argument("--role", help="also give this role on --project (e.g. member)")
    command(users, "list", user_list, "list users",
            "  stackvol admin user list -f json\n", listing=True)
    made = command(users, "delete", user_delete, "delete a user (its tokens stop working)",
                   "  stackvol admin user delete alice\n")
    made.add_argument("user", help="user name or id")
    made = command(users, "password-reset", user_password_reset,
                   "set a user's password (asks for it); the user's tokens are revoked",
                   "  stackvol admin user password-reset alice\n"
                   "  printf '%s\\n' \"$PASS\" | stackvol admin user password-reset alice "
                   "--password-stdin\n")
    made.add_argument("user", help="user name or id")
    password_input(made)

    roles = group("role", "roles and role assignments")
    made = command(roles, "add", role_add, "give a user a role on a project",
                   "  stackvol admin role add member --user alice --project team-a\n")
    made.add_argument("role", help="role name or id (admin, member, reader or custom)")
    made.add_argument("--user", required=True, help="user name or id")
    made.add_argument("--project", required=True, help="project name or id")
    made = command(roles, "list", role_list,
                   "list role assignments (with --user/--project: only theirs)",
                   "  stackvol admin role list --project team-a\n", listing=True)
    made.add_argument("--user", help="user name or id")
    made.add_argument("--project", help="project name or id")
    made = command(roles, "create", role_create, "create a custom role",
                   "  stackvol admin role create auditor\n", listing=True)
    made.add_argument("name")

    tokens = group("token", "token signing keys")
    made = command(tokens, "rotate-keys", token_rotate_keys,
                   "rotate the token signing keys, as keystone-manage fernet_rotate: a new "
                   "primary key signs new tokens; tokens signed by the newest --keep older "
                   "keys stay valid, older ones stop working. Running servers sign with the "
                   "new key once restarted (until then they use the previous one, still valid)",
                   "  stackvol admin token rotate-keys\n"
                   "  stackvol admin token rotate-keys --keep 0     (every older token dies)\n")
    made.add_argument("--keep", type=int, default=2, metavar="N",
                      help="older keys to keep besides the new primary one (default 2)")

    clouds = command(groups, "clouds-yaml", clouds_yaml,
                     "print a clouds.yaml entry for a user (asks for the password and checks "
                     "it); the auth URL is public_url, else the one the server last wrote to "
                     "the data dir's clouds.yaml, else host and port",
                     "  stackvol admin clouds-yaml --user alice > clouds.yaml\n"
                     "  printf '%s\\n' \"$PASS\" | stackvol admin clouds-yaml --user alice "
                     "--password-stdin\n")
    clouds.add_argument("--user", required=True)
    password_input(clouds)
    clouds.add_argument("--project", help="project to scope to (default: the user's default "
                                          "project, else the first it has a role on)")
    clouds.add_argument("--cloud", help="cloud name (default: stackvol-USER)")
    clouds.add_argument("--auth-url", help="identity URL (default: from the settings)")

    vols = group("volumes", "volumes across every project")
    made = command(vols, "stuck", volumes_stuck,
                   "list volumes, snapshots and attachments in a transitional status",
                   "  stackvol admin volumes stuck --older-than 600 -f json\n", listing=True)
    made.add_argument("--older-than", type=float, default=0.0, metavar="SECONDS",
                      help="only those in that status for at least this long")

    vol = group("volume", "repair one volume")
    made = command(vol, "reset-state", volume_reset_state,
                   "reconcile a volume with the storage backend and compute driver, then set "
                   "its status (available, error or in-use)",
                   "  stackvol admin volume reset-state VOLUME_ID --state available\n")
    made.add_argument("volume_id")
    made.add_argument("--state", required=True, choices=("available", "error", "in-use"))
    made.add_argument("--force", action="store_true",
                      help="even if a worker still holds a lease on its work (a killed one)")
    made = command(vol, "force-detach", volume_force_detach,
                   "disconnect a volume from its servers through the compute driver, then "
                   "record it detached",
                   "  stackvol admin volume force-detach VOLUME_ID --server SERVER_ID\n")
    made.add_argument("volume_id")
    made.add_argument("--server", help="only from this server")
    made.add_argument("--force", action="store_true",
                      help="even if a worker still holds a lease on its work (a killed one)")

    db = group("db", "database maintenance")
    command(db, "upgrade", db_upgrade, "apply Alembic migrations up to the newest schema",
            "  stackvol admin db upgrade --database-url postgresql+psycopg://...\n")


# --- running ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return args.handler(args, settings)
    except (AdminError, ServiceError) as exc:
        print(f"stackvol admin: error: {_message(exc)}", file=sys.stderr)
        return 1
    except sa.exc.OperationalError as exc:
        print(f"stackvol admin: database error: {exc.orig}. Is the schema there? Run "
              f"`stackvol admin db upgrade` (or `bootstrap`).", file=sys.stderr)
        return 1


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, ServiceError) else str(exc)


def _services(settings: Settings, need_database: bool = True) -> Any:
    from stackvol.app import build_services

    url = settings.effective_database_url
    if need_database and url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            raise AdminError(f"no database at {path}; run `stackvol admin bootstrap` (or "
                             f"`stackvol serve`) with this --data-dir first")
    services = build_services(settings)
    if need_database and not url.startswith("sqlite:///") and not sa.inspect(
            services.db.engine).has_table("alembic_version"):
        services.db.dispose()
        raise AdminError("the database has no stackvol schema; run `stackvol admin bootstrap` "
                         "(or `stackvol serve`) with this --database-url first")
    return services


def _within(settings: Settings, work: Callable[[Any], Any], need_database: bool = True) -> Any:
    """Run ``work(services)`` (a coroutine function) with the services, then close them."""
    services = _services(settings, need_database)

    async def main() -> Any:
        try:
            return await work(services)
        finally:
            services.db.dispose()

    return asyncio.run(main())


def _say(message: str) -> None:
    print(message, flush=True)


def _table(headers: Sequence[str], rows: list[list[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    print(line)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print(line)
    for row in rows:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")
    print(line)


def _output(args: argparse.Namespace, headers: Sequence[str], rows: Sequence[Sequence[Any]],
            one: bool = False) -> int:
    """Print ``rows`` in the chosen ``-f`` format (as the openstack client's formatters do:
    ``one`` record is an object in json/yaml, a list is a list); the exit status."""
    fmt = getattr(args, "format", "table")
    if fmt in ("json", "yaml"):
        objects = [dict(zip(headers, row, strict=True)) for row in rows]
        document: Any = objects[0] if one and objects else objects
        print(json.dumps(document, indent=2, default=str) if fmt == "json"
              else yaml.safe_dump(document, sort_keys=False), end="\n" if fmt == "json" else "")
        return 0
    text = [["" if v is None else str(v) for v in row] for row in rows]
    if fmt == "value":
        for row in text:
            print(" ".join(row))
    else:
        _table(headers, text)
    return 0


def _print_records(args: argparse.Namespace, found: Any, headers: Sequence[str],
                   fields: Sequence[str] | None = None) -> int:
    """Print a record, or a list of them, with ``fields`` (by default the headers name
    them); the command's exit status."""
    records = found if isinstance(found, list) else [found]
    return _output(args, headers, [[getattr(r, f) for f in fields or headers] for r in records],
                   one=not isinstance(found, list))


def _password(args: argparse.Namespace, what: str, confirm: bool) -> str:
    """A password from the first line of stdin (``--password-stdin``) or a terminal prompt."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise AdminError("--password-stdin: standard input held no password")
        return password
    if not sys.stdin.isatty():
        raise AdminError(f"no password: {what} is asked for at a terminal; without one, "
                         f"pipe it in with --password-stdin")
    password = getpass.getpass(f"{what}: ")
    if not password:
        raise AdminError("the password is empty")
    if confirm and getpass.getpass(f"{what} (again): ") != password:
        raise AdminError("the two passwords differ")
    return password


def _system() -> RequestContext:
    return RequestContext.system()


def _upgrade(services: Any) -> None:
    from stackvol.db.migrate import upgrade

    _say("upgrading the database schema ...")
    started = time.monotonic()
    upgrade(services.db.engine)
    _say(f"database is at the newest schema ({time.monotonic() - started:.1f}s)")


# --- commands ---------------------------------------------------------------------------------


def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    async def work(services: Any) -> None:
        _upgrade(services)

    _within(settings, work, need_database=False)
    return 0


def bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.app import write_clouds_yaml

    # Only when asked: by default the admin password is generated (and printed).
    chosen = _password(args, "admin password", confirm=True) if args.password_stdin else None

    async def work(services: Any) -> Any:
        _upgrade(services)
        _say("creating roles, keys and the admin and demo accounts ...")
        fresh = await services.db.run(services.identity.bootstrap, chosen)
        await services.flavors.bootstrap()
        await services.images.seed_builtin()
        return fresh, write_clouds_yaml(settings, fresh)

    fresh, path = _within(settings, work, need_database=False)
    for user, password in fresh.passwords.items():
        _say(f"created user {user} (project {fresh.projects[user]}), password: {password}")
    if not fresh.passwords:
        _say("admin and demo already exist; nothing to create")
    _say(f"clouds.yaml: {path}")
    return 0


def _directory(settings: Settings, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(conn, *args)`` from the identity directory in one transaction."""
    async def work(services: Any) -> Any:
        return await services.db.run(fn, *args)

    return _within(settings, work)


def project_create(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    project = _directory(settings, d.create_project, args.name, args.description)
    return _print_records(args, project, ("id", "name", "description"))


def project_list(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    return _print_records(args, _directory(settings, d.list_projects),
                          ("id", "name", "enabled", "description"))


def user_create(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    if args.role and not args.project:
        raise AdminError("--role needs --project")

    def create(conn: Any, hashed: str) -> Any:
        project = d.find_project(conn, args.project) if args.project else None
        user = d.create_user(conn, args.name, hashed, project.id if project else None)
        if args.role and project is not None:
            d.grant(conn, user.id, project.id, d.find_role(conn, args.role).id)
        return user

    password = _password(args, f"password for {args.name}", confirm=True)
    hashed = d.hash_secret(password, settings.password_hash_rounds)
    user = _directory(settings, create, hashed)
    _print_records(args, user, ("id", "name", "default project"),
                   ("id", "name", "default_project_id"))
    if args.role and args.format == "table":
        _say(f"gave {user.name} the role {args.role} on {args.project}")
    return 0


def user_list(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    return _print_records(args, _directory(settings, d.list_users),
                          ("id", "name", "enabled", "default project"),
                          ("id", "name", "enabled", "default_project_id"))


def role_add(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    def add(conn: Any) -> tuple[str, str, str]:
        user = d.find_user(conn, args.user)
        project = d.find_project(conn, args.project)
        role = d.find_role(conn, args.role)
        d.grant(conn, user.id, project.id, role.id)
        return user.name, project.name, role.name

    user, project, role = _directory(settings, add)
    _say(f"gave {user} the role {role} on project {project}")
    return 0


def role_list(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    def assignments(conn: Any) -> list[d.Assignment]:
        user = d.find_user(conn, args.user).id if args.user else None
        project = d.find_project(conn, args.project).id if args.project else None
        return d.list_assignments(conn, user_id=user, project_id=project)

    return _print_records(args, _directory(settings, assignments), ("project", "user", "role"),
                          ("project_name", "user_name", "role_name"))


def role_create(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    return _print_records(args, _directory(settings, d.create_role, args.name), ("id", "name"))


def project_delete(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    async def work(services: Any) -> str:
        project = await services.db.read(d.find_project, args.project)
        await services.identity.directory.delete_project(_system(), project.id)
        return project.name

    _say(f"deleted project {_within(settings, work)}")
    return 0


def user_delete(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    async def work(services: Any) -> str:
        user = await services.db.read(d.find_user, args.user)
        await services.identity.directory.delete_user(_system(), user.id)
        return user.name

    _say(f"deleted user {_within(settings, work)}")
    return 0


def user_password_reset(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    user = _directory(settings, d.find_user, args.user)  # before asking: a typo fails fast
    password = _password(args, f"new password for {user.name}", confirm=True)

    async def work(services: Any) -> None:
        # The API's path: the user's tokens issued so far are revoked with the change.
        await services.identity.directory.update_user(_system(), user.id,
                                                      {"password": password})

    _within(settings, work)
    _say(f"set the password of user {user.name}; its earlier tokens are revoked")
    return 0


def token_rotate_keys(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity.api import rotate_token_keys

    if args.keep < 0:
        raise AdminError("--keep must be 0 or more")
    kept, removed = _directory(settings, rotate_token_keys, args.keep)
    _say(f"new primary token key; kept {kept} older key(s), removed {removed}. Restart the "
         f"API processes to sign with the new key.")
    return 0


def _identity_url(settings: Settings) -> str:
    """Where the identity API is: the configured public URL, else the one the server wrote
    into the data dir's clouds.yaml at its last start (its real host and port)."""
    from stackvol.app import public_url

    written = settings.data_dir / "clouds.yaml"
    if not settings.public_url and written.exists():
        clouds = (yaml.safe_load(written.read_text()) or {}).get("clouds", {})
        for cloud in clouds.values():
            if cloud.get("auth", {}).get("auth_url"):
                return str(cloud["auth"]["auth_url"])
    return f"{public_url(settings)}/identity"


def clouds_yaml(args: argparse.Namespace, settings: Settings) -> int:
    from stackvol.services.identity import directory as d

    def lookup(conn: Any) -> tuple[Any, str | None, str | None]:
        user = d.find_user(conn, args.user)
        project: str | None
        if args.project:
            project = d.find_project(conn, args.project).name
        elif user.default_project_id:
            project = d.get_project(conn, user.default_project_id).name
        else:
            mine = d.list_projects(conn, user_id=user.id)
            project = mine[0].name if mine else None
        return user, project, d.password_hash_of(conn, user.id)

    user, project, hashed = _directory(settings, lookup)
    password = _password(args, f"password of {user.name}", confirm=False)
    if not d.check_secret(password, hashed):
        raise AdminError(f"that is not the password of user {user.name}")
    if project is None:
        raise AdminError(f"user {user.name} has no role on any project; "
                         f"`stackvol admin role add` one first")
    auth_url = args.auth_url or _identity_url(settings)
    cloud = {"auth": {"auth_url": auth_url, "username": user.name, "password": password,
                      "project_name": project, "user_domain_name": "Default",
                      "project_domain_name": "Default"},
             "region_name": settings.region, "identity_api_version": 3}
    print(yaml.safe_dump({"clouds": {args.cloud or f"stackvol-{user.name}": cloud}},
                         sort_keys=False), end="")
    return 0


def _repair(services: Any) -> Any:
    from stackvol.services.operations.repair import RepairService

    return RepairService(services.db, services.volumes.backends, services.compute)


def _repairing(settings: Settings, act: Callable[[Any], Awaitable[Any]]) -> Any:
    """What ``act(repair_service)`` returns, run with the services, which are then closed."""
    async def work(services: Any) -> Any:
        return await act(_repair(services))

    return _within(settings, work)


def volumes_stuck(args: argparse.Namespace, settings: Settings) -> int:
    found = _repairing(settings, lambda repair: repair.stuck(_system(), args.older_than))
    if not found and args.format == "table":
        _say("nothing is in a transitional status")
        return 0
    return _output(args, ("kind", "id", "status", "project", "age", "queued work"),
                   [(s.kind, s.id, s.status, s.project_id, _age(s.age()), s.task or "none")
                    for s in found])


def _age(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def volume_reset_state(args: argparse.Namespace, settings: Settings) -> int:
    _repairing(settings, lambda repair: repair.reset_volume_state(
        _system(), args.volume_id, args.state, force=args.force, progress=_say))
    return 0


def volume_force_detach(args: argparse.Namespace, settings: Settings) -> int:
    _repairing(settings, lambda repair: repair.force_detach(
        _system(), args.volume_id, args.server, force=args.force, progress=_say))
    return 0
