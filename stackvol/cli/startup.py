"""Start-up checks: what the settings point at must be usable before anything is written.

A data dir that cannot be made, a database that does not answer or a port already taken stops
``stackvol`` with one line naming the setting (exit 2), before the data dir, the database or
the bootstrap passwords exist. The port is bound here, then handed to the server, so a second
server on the same port fails without touching the data dir it was given.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from stackvol.config import Settings, bad_setting

DATABASE_WAIT_SECONDS = 5.0  # a database that is still starting gets this long to answer


def check(settings: Settings) -> None:
    """Raise ``BadSettings`` for the first directory or database the settings cannot use."""
    if not settings.ephemeral:
        check_directory("data_dir", settings.data_dir)
    for name in ("image_dir", "guest_image_dir"):
        if getattr(settings, name):
            check_directory(name, Path(getattr(settings, name)))
    check_database(settings)


def check_directory(name: str, path: Path) -> None:
    """``path`` is a writable directory, or one this user may create."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    where = "" if existing == path else "cannot be created: "
    if not existing.is_dir():
        raise bad_setting(name, str(path), f"{where}{existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise bad_setting(name, str(path), f"{where}{existing} is not writable by this user")


def check_database(settings: Settings) -> None:
    """An explicit SQLite file's directory is usable; a database server answers (after a
    short wait, for one that is starting alongside us)."""
    if not settings.database_url or settings.ephemeral:
        return  # SQLite in the data dir, checked with it
    url = sa.engine.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        check_directory("database_url", Path(url.database or ".").parent)
        return
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 2})
    deadline = time.monotonic() + DATABASE_WAIT_SECONDS
    try:
        while True:
            try:
                engine.connect().close()
                return
            except sa.exc.DBAPIError as exc:
                if time.monotonic() >= deadline:
                    reason = "; ".join(line.strip() for line in str(exc.orig).splitlines()
                                       if line.strip())
                    raise bad_setting("database_url", settings.database_url,
                                      f"cannot connect: {reason}") from None
                time.sleep(0.5)
    finally:
        engine.dispose()


def listen(settings: Settings) -> socket.socket:
    """A socket bound to ``host``:``port`` (the server listens on it once it has started)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise bad_setting("host", settings.host, f"not an address to listen on: {exc.strerror}"
                          ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise bad_setting("port", settings.port, f"cannot listen on {settings.host} port "
                                                 f"{settings.port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def data_dir_of(settings: Settings) -> Iterator[Settings]:
    """The settings to serve with: as they are, or (``ephemeral``) with a temporary data dir
    that is removed when the block ends. An ephemeral server on ``compute_driver = auto``
    simulates its servers: real guests would outlive the disks removed with the directory."""
    if not settings.ephemeral:
        yield settings
        return
    path = Path(tempfile.mkdtemp(prefix="stackvol-ephemeral-"))
    driver = "simulated" if settings.compute_driver == "auto" else settings.compute_driver
    # uvicorn re-raises the signal that stopped it once it is done: with the default handler
    # that would end the process before the directory is removed, so the signal exits here.
    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, _exit) for sig in stops}
    try:
        yield settings.model_copy(update={"data_dir": path, "compute_driver": driver})
    finally:
        shutil.rmtree(path, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)
