"""Throughput with ``wrk``: a C load generator, so the client does not eat the server's CPU.

wrk is driven with a generated Lua script (method, body, headers and, for reads, a rotation
over many URLs) and its text report is parsed into a :class:`WrkResult`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


class WrkMissing(RuntimeError):
    """wrk is not installed."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50: float  # seconds
    p99: float
    non_2xx: int  # wrk counts statuses >= 400 as "Non-2xx or 3xx"
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing("wrk is not installed: apt-get install -y wrk "
                         "(see bench/requirements-apt.txt)")
    return path


def _lua_string(value: str) -> str:
    # For the ASCII we send (tokens, paths, JSON bodies) a JSON string literal is a Lua one.
    return json.dumps(value)


def lua_script(method: str, headers: dict[str, str], body: str | None = None,
               paths: list[str] | None = None) -> str:
    """A wrk script: fixed method/headers/body; with ``paths``, rotate over those URLs."""
    lines = [f"wrk.method = {_lua_string(method)}"]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body)}")
    if paths:
        lines.append("local paths = {" + ", ".join(_lua_string(p) for p in paths) + "}")
        lines += ["local i = 0",
                  "request = function()",
                  "  i = i % #paths + 1",
                  "  return wrk.format(nil, paths[i])",
                  "end"]
    return "\n".join(lines) + "\n"


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unparsable wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    """Read wrk's ``--latency`` report."""
    done = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    if not (done and rps and "50" in pct and "99" in pct):
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     output)
    return WrkResult(
        requests=int(done.group(1)),
        seconds=_seconds(done.group(2)),
        rps=float(rps.group(1)),
        p50=_seconds(pct["50"]),
        p99=_seconds(pct["99"]),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
    )


def run(url: str, script: str, seconds: float, connections: int = 16,
        threads: int = 1) -> WrkResult:
    """Run wrk against ``url`` for ``seconds``; one thread leaves the other core to the server."""
    wrk = require_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        done = subprocess.run(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "--timeout", "30s", "--latency", "-s", fh.name, url],
            capture_output=True, text=True, check=False,
        )
    finally:
        Path(fh.name).unlink()
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)
