"""``stackvol``: the command line (``serve``, ``db upgrade``, ``admin ...``, ``config docs``)."""

from __future__ import annotations

import argparse
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from stackvol.cli import admin, startup
from stackvol.config import BadSettings, Settings, load_settings, reference
from stackvol.logs import LOG_FORMATS, configure_logging, resolve_format
from stackvol.services.common import policy
from stackvol.storage.base import StorageError
from stackvol.storage.registry import backend_configs
from stackvol.tasks.roles import ROLES

EXAMPLES = """examples:
  stackvol serve --data-dir ./data --port 8774    start every API, bootstrap on first start
  stackvol serve --ephemeral                      a throw-away cloud, removed at exit
  stackvol admin volumes stuck                    what an interrupted operation left behind
  stackvol config docs > docs/configuration.md    the settings reference
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackvol", description="stackvol: OpenStack volumes (Keystone, Nova, Cinder and "
        "Glance APIs) on one port.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML settings file ([stackvol] table)")
    common.add_argument("--data-dir", type=Path, help="where the database and volumes live")
    common.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")

    serve = sub.add_parser("serve", parents=[common], help="run every API on one port")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", help="port to listen on (default 8774)")  # checked as a setting
    serve.add_argument("--public-url", help="URL clients reach this service at (catalog)")
    serve.add_argument("--ephemeral", action="store_true", default=None,
                       help="serve from a temporary data dir (SQLite in it) removed at exit, "
                            "for testing tools against a throw-away cloud")
    serve.add_argument("--noauth", action="store_true", default=None,
                       help="trust X-Auth-Project-Id / X-Auth-User-Id (development only)")
    serve.add_argument("--compute-driver",
                       help="auto, libvirt or simulated (default auto: libvirt when a "
                            "libvirt daemon answers, else simulated)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING, ...")
    serve.add_argument("--log-format", choices=LOG_FORMATS,
                       help="text (oslo.log's line), json (one object a line) or auto "
                            "(default: text on a terminal, else json)")
    serve.add_argument("--access-log", action="store_true", default=None,
                       help="log every request (structured)")
    serve.add_argument("--policy-file", help="YAML/JSON policy overrides")
    serve.add_argument("--role", choices=ROLES, dest="process_role",
                       help="all (default): everything in one process; api: the HTTP APIs "
                            "only; volume: a worker for --backend; compute: a worker for "
                            "--compute-host")
    serve.add_argument("--backend", dest="storage_backend",
                       help="the storage backend a --role volume process serves, one of "
                            "enabled_backends (default: default_backend)")
    serve.add_argument("--compute-host", help="compute host this process is (default: the "
                                              "machine's host name); --host is the listen address")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", parents=[common], help="apply Alembic migrations")
    config = sub.add_parser("config", help="the settings")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("docs", help="print the settings reference (docs/configuration.md)")
    admin.add_commands(sub, common)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    names = ("data_dir", "database_url", "host", "port", "public_url", "noauth", "ephemeral",
             "compute_driver", "log_level", "log_format", "access_log", "policy_file",
             "storage_backend", "compute_host")
    overrides = {n: getattr(args, n, None) for n in names}
    overrides["role"] = getattr(args, "process_role", None)  # admin's --role is another thing
    return load_settings(args.config, **overrides)


def serve(settings: Settings) -> int:
    """Bind the port, then bootstrap and serve (a port in use writes nothing)."""
    try:
        listener = startup.listen(settings)
    except BadSettings as exc:
        return _refuse(exc)
    with listener, startup.data_dir_of(settings) as settings:
        return _serve_on(listener, settings)


def _serve_on(listener: socket.socket, settings: Settings) -> int:
    import asyncio

    import uvicorn
    import uvloop

    from stackvol.app import build_services, create_app

    try:
        services = build_services(settings)
    except (ValueError, StorageError) as exc:  # e.g. a backend's driver refuses its options
        print(f"stackvol: cannot start: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, services)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, loop="uvloop",
                            http="httptools", log_config=None, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)

    async def run() -> None:
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if server.started:
            print(_started(settings, services), flush=True)
        await serving

    uvloop.run(run())  # the fast loop for everything: HTTP, worker and database calls
    return 0 if server.started else 1


def _started(settings: Settings, services: Any) -> str:
    """What to tell whoever started us: where to connect and where the credentials are. The
    passwords only on the first start (logs and journals keep whatever is printed)."""
    from stackvol.app import CREDENTIALS_FILE, public_url

    clouds = settings.data_dir / "clouds.yaml"
    lines = [f"stackvol is serving at {public_url(settings)}",
             f"clouds.yaml (clouds stackvol-admin, stackvol-demo): {clouds}",
             f"  export OS_CLIENT_CONFIG_FILE={clouds.resolve()}",
             f"bootstrap credentials: {settings.data_dir / CREDENTIALS_FILE}"]
    fresh = services.first_start
    if fresh is not None and fresh.passwords:
        lines += [f"first start: created user {user} (project {fresh.projects[user]}) with "
                  f"password {password}" for user, password in fresh.passwords.items()]
        lines.append("these passwords are printed on this first start only; they are kept "
                     "in the two files above (mode 0600)")
    if settings.ephemeral:
        lines.append(f"ephemeral: everything is in {settings.data_dir}, removed at exit")
    return "\n".join(lines)


def db_upgrade(settings: Settings) -> int:
    from stackvol.db.engine import create_engine
    from stackvol.db.migrate import upgrade

    upgrade(create_engine(settings.effective_database_url))
    print("database is at the newest schema")
    return 0


def _refuse(exc: BadSettings) -> int:
    for line in exc.lines:
        print(f"stackvol: {line}", file=sys.stderr)
    return 2


def _version() -> str:
    try:
        return metadata.version("stackvol")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Setting name -> the ``serve`` flag that sets it (for the reference)."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = {}
    for action in commands.choices["serve"]._actions:
        name = {"process_role": "role"}.get(action.dest, action.dest)
        if action.option_strings and name in Settings.model_fields:
            flags[name] = action.option_strings[-1]
    return flags


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "config":
        print(reference(_flags(parser)), end="")
        return 0
    try:
        settings = _settings(args)
        backend_configs(settings)  # storage backends: names, drivers, default
        if settings.policy_file:
            policy.configure(settings.policy_file)  # a broken file stops us here, clearly
        log_format = resolve_format(settings.log_format, sys.stderr)
        startup.check(settings)  # directories and database, before anything is written
    except BadSettings as exc:
        return _refuse(exc)
    except (ValueError, OSError) as exc:
        print(f"stackvol: bad settings: {exc}", file=sys.stderr)
        return 2
    level = settings.log_level
    if args.command == "admin" and level.upper() != "DEBUG":
        level = "WARNING"  # a command for people: its output is what it prints, not progress
    configure_logging(level, log_format)
    if args.command == "serve":
        return serve(settings)
    if args.command == "admin":
        return admin.run(args, settings)
    return db_upgrade(settings)
