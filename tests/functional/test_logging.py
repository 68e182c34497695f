"""Logs: oslo.log-shaped text lines or JSON lines, UTC times with their offset, the caller's user
and project on request records, uvicorn's records without ANSI extras, and an inbound
``X-OpenStack-Request-ID`` honoured when well-formed (as oslo.middleware's request_id)."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import uuid
from pathlib import Path

import httpx
import pytest

from stackvol.logs import configure_logging, resolve_format
from tests.support.server import StackvolProcess, wait_for

TEXT_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00) (?P<pid>\d+) (?P<level>[A-Z]+) "
    r"(?P<logger>\S+) \[(?P<request>\S+) (?P<user>\S+) (?P<project>\S+)\] (?P<message>.*)$")


def _served(server: StackvolProcess, request_id: str) -> list[str]:
    """The server's log lines that mention ``request_id`` (waited for: logs are written
    after the response)."""
    return wait_for(lambda: [line for line in server.log_path.read_text().splitlines()
                             if request_id in line], bool)


@pytest.fixture(scope="module")
def text_server(tmp_path_factory: pytest.TempPathFactory) -> StackvolProcess:
    server = StackvolProcess(tmp_path_factory.mktemp("text") / "data", log_format="text",
                             access_log="true").start()
    yield server
    server.stop()


def test_text_lines_carry_request_user_and_project(text_server: StackvolProcess) -> None:
    token, body = text_server.token("demo")
    inbound = f"req-{uuid.uuid4()}"
    resp = httpx.get(text_server.url + "/v2.1/os-volumes", timeout=10, headers={
        "X-Auth-Token": token, "X-OpenStack-Request-ID": inbound})
    assert resp.status_code == 200
    assert resp.headers["x-openstack-request-id"] == inbound  # honoured and returned
    assert resp.headers["x-compute-request-id"] == inbound
    (line,) = _served(text_server, inbound)
    match = TEXT_LINE.match(line)
    assert match, line
    assert match["logger"] == "stackvol.access" and match["level"] == "INFO"
    assert match["request"] == inbound
    assert match["user"] == body["user"]["id"]
    assert match["project"] == body["project"]["id"]
    assert match["message"] == "GET /v2.1/os-volumes 200"
    logged = dt.datetime.fromisoformat(match["time"])
    assert abs(logged - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert "\x1b[" not in text_server.log_path.read_text()  # no terminal colours


# Not hex: a short id such as "abc" turns up by chance inside the log's random request ids.
@pytest.mark.parametrize("inbound", ["req-not-a-uuid", "xyz", f"{uuid.uuid4()}",
                                     f"req-{uuid.uuid4()} x", "req-" + "A" * 36])
def test_malformed_inbound_ids_are_replaced(text_server: StackvolProcess, inbound: str) -> None:
    resp = httpx.get(text_server.url + "/v2.1/", timeout=10,
                     headers={"X-OpenStack-Request-ID": inbound})
    returned = resp.headers["x-openstack-request-id"]
    assert returned != inbound and re.fullmatch(r"req-[0-9a-f-]{36}", returned)
    assert str(uuid.UUID(returned.removeprefix("req-"))) == returned.removeprefix("req-")
    (line,) = _served(text_server, returned)
    assert TEXT_LINE.match(line)["user"] == "-"  # no token: nobody known  # type: ignore[index]
    assert inbound not in text_server.log_path.read_text()


def test_identity_and_volume_faces_honour_the_id(text_server: StackvolProcess) -> None:
    token, body = text_server.token("admin")
    for path in ("/identity/v3/projects", f"/volume/v3/{body['project']['id']}/volumes"):
        inbound = f"req-{uuid.uuid4()}"
        resp = httpx.get(text_server.url + path, timeout=10, headers={
            "X-Auth-Token": token, "X-OpenStack-Request-ID": inbound})
        assert resp.status_code == 200 and resp.headers["x-openstack-request-id"] == inbound
        (line,) = _served(text_server, inbound)
        assert TEXT_LINE.match(line)["user"] == body["user"]["id"], line  # type: ignore[index]


def test_json_lines_in_utc_without_ansi_extras(tmp_path: Path) -> None:
    server = StackvolProcess(tmp_path / "data", log_format="json", access_log="true").start()
    try:
        token, body = server.token("demo")
        inbound = f"req-{uuid.uuid4()}"
        httpx.get(server.url + "/v2.1/os-volumes", timeout=10,
                  headers={"X-Auth-Token": token, "X-OpenStack-Request-ID": inbound})
        (line,) = _served(server, inbound)
    finally:
        server.stop()
    record = json.loads(line)
    assert record["request_id"] == inbound
    assert (record["user_id"], record["project_id"]) == (body["user"]["id"],
                                                         body["project"]["id"])
    records = [json.loads(text) for text in server.log_path.read_text().splitlines()
               if text.startswith("{")]
    uvicorn = [r for r in records if r["logger"].startswith("uvicorn")]
    assert uvicorn, "uvicorn logs its start and shutdown"
    for r in records:
        assert "color_message" not in r, r
        assert r["time"].endswith("+00:00"), r
        assert dt.datetime.fromisoformat(r["time"]).utcoffset() == dt.timedelta(0)


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    assert resolve_format("auto", io.StringIO()) == "json"
    primary, secondary = os.openpty()
    with os.fdopen(secondary, "w") as tty:
        assert resolve_format("auto", tty) == "text"
    os.close(primary)
    assert resolve_format("text", io.StringIO()) == "text"
    with pytest.raises(ValueError, match="log_format must be one of auto, text, json"):
        resolve_format("xml", io.StringIO())


def test_text_formatter_without_a_request() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", "text", out)
        logging.getLogger("stackvol.test").info("hello %s", "there")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    match = TEXT_LINE.match(out.getvalue().strip())
    assert match and match["message"] == "hello there", out.getvalue()
    assert (match["request"], match["user"], match["project"]) == ("-", "-", "-")
    assert match["pid"] == str(os.getpid())
