"""``stackvol``: the command line (``serve``, ``db upgrade``, ``admin ...``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stackvol.cli import admin
from stackvol.config import Settings, load_settings
from stackvol.logs import LOG_FORMATS, configure_logging, resolve_format
from stackvol.services import policy
from stackvol.services.process_roles import ROLES
from stackvol.storage.base import StorageError
from stackvol.storage.registry import backend_configs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stackvol", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML settings file ([stackvol] table)")
    common.add_argument("--data-dir", type=Path, help="where the database and volumes live")
    common.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")

    serve = sub.add_parser("serve", parents=[common], help="run every API on one port")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8774)")
    serve.add_argument("--public-url", help="URL clients reach this service at (catalog)")
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
    admin.add_commands(sub, common)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    names = ("data_dir", "database_url", "host", "port", "public_url", "noauth",
             "compute_driver", "log_level", "log_format", "access_log", "policy_file",
             "storage_backend", "compute_host")
    overrides = {n: getattr(args, n, None) for n in names}
    overrides["role"] = getattr(args, "process_role", None)  # admin's --role is another thing
    return load_settings(args.config, **overrides)


def serve(settings: Settings) -> int:
    import asyncio

    import uvicorn
    import uvloop

    from stackvol.app import build_services, create_app, public_url

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
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if server.started:
            clouds = (settings.data_dir / "clouds.yaml").read_text()
            print(f"stackvol is serving at {public_url(settings)}\n"
                  f"# clouds.yaml (also in {settings.data_dir / 'clouds.yaml'}):\n{clouds}",
                  flush=True)
        await serving

    uvloop.run(run())  # the fast loop for everything: HTTP, worker and database calls
    return 0 if server.started else 1


def db_upgrade(settings: Settings) -> int:
    from stackvol.db.engine import create_engine
    from stackvol.db.migrate import upgrade

    upgrade(create_engine(settings.effective_database_url))
    print("database is at the newest schema")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        backend_configs(settings)  # storage backends: names, drivers, default
        if settings.policy_file:
            policy.configure(settings.policy_file)  # a broken file stops us here, clearly
        log_format = resolve_format(settings.log_format, sys.stderr)
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
