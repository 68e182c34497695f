"""Logging: text lines in oslo.log's shape on a terminal, JSON lines otherwise (or as chosen).

Every record carries the request id of the work it belongs to and, on a request, the caller's
user and project ids. Times are UTC, written with their offset (ISO 8601).

Text: ``2026-12-05T13:04:05.123+00:00 12345 INFO stackvol.http [req-<id> <user> <project>]
message`` (``-`` for what is unknown, as oslo.log writes it).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
from dataclasses import dataclass
from typing import TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

LOG_FORMATS = ("auto", "text", "json")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


@dataclass(slots=True)
class Caller:
    """Who the current request authenticated as; filled in once its token is checked."""

    user_id: str | None = None
    project_id: str | None = None


caller_var: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("caller", default=None)


def note_caller(user_id: str | None, project_id: str | None) -> None:
    """Record the authenticated caller for the logs of the current request (if any)."""
    caller = caller_var.get()
    if caller is not None:  # mutated, not set: the middleware's context sees it after return
        caller.user_id, caller.project_id = user_id, project_id


def utc_time(created: float) -> str:
    """A record's time as ISO 8601 in UTC with its offset, to the millisecond."""
    return dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")


class _ContextFilter(logging.Filter):
    """Adds request id, user and project ids; drops uvicorn's ANSI ``color_message``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        caller = caller_var.get()
        record.user_id = caller.user_id if caller else None
        record.project_id = caller.project_id if caller else None
        record.__dict__.pop("color_message", None)
        return True


class TextFormatter(logging.Formatter):
    """oslo.log's default line: time pid level logger [request user project] message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(process)d %(levelname)s %(name)s "
                         "[%(request_id)s %(user_id)s %(project_id)s] %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_time(record.created)

    def format(self, record: logging.LogRecord) -> str:
        for name in ("request_id", "user_id", "project_id"):
            if getattr(record, name, None) is None:
                setattr(record, name, "-")
        return super().format(record)


class UtcJsonFormatter(OrjsonFormatter):
    """JSON lines encoded by orjson (several times faster than the standard encoder; a line
    is written for every create)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_time(record.created)


def _json_formatter() -> logging.Formatter:
    return UtcJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s "
        "%(project_id)s",
        rename_fields={"levelname": "level", "asctime": "time", "name": "logger"})


def resolve_format(log_format: str, stream: TextIO) -> str:
    """``auto``: text on a terminal, JSON for everything else (files, journald, containers)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, "
                         f"not {log_format!r}")
    if log_format == "auto":
        return "text" if stream.isatty() else "json"
    return log_format


def configure_logging(level: str = "INFO", log_format: str = "auto",
                      stream: TextIO | None = None) -> None:
    """Send log lines to ``stream`` (stderr) as text or JSON (see ``resolve_format``)."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    text = resolve_format(log_format, stream) == "text"
    handler.setFormatter(TextFormatter() if text else _json_formatter())
    handler.addFilter(_ContextFilter())
    # Neither format shows the caller's file, thread or process name: do not collect them
    # (the logging HOWTO's "Optimization"; a few per cent of a create).
    logging._srcfile = None
    logging.logThreads = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
