"""The os-volumes API benchmark: one command, a fresh real server, a table of numbers.

    .venv/bin/python -m bench.api --quick      # 1k and 10k volumes, short runs (< 2 min)
    .venv/bin/python -m bench.api              # adds 100k volumes (< ~10 min on 2 cores)

It starts its own ``stackvol serve`` (one process, embedded SQLite, file storage, a fresh temp
data dir), drives throughput with wrk and latency with small httpx clients, and exits non-zero
if any request failed. Every volume is created through the API; the SQLite file is only read
(read-only) to count volumes and to wait for the create backlog to drain.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import client, profile, wrk
from bench.client import CREATE_BODY, CREATE_PATH, BenchError, Tally, percentile
from tests.support.server import StackvolProcess

CONNECTIONS = 16
LIST_LIMIT = 1000
SHOW_IDS = 1000  # wrk rotates over this many volumes, not one hot row

# The goals this benchmark is judged against (printed beside the measurements).
TARGET_SHOW_RPS = 7000
TARGET_CREATES_PER_S = 1500
TARGET_AVAILABLE_P50_1 = 0.005
TARGET_LIST_P50 = 0.015
FLAT_MEMORY_GROWTH = 0.20  # RSS at the largest N within +20% of the smallest


@dataclass(frozen=True)
class Mode:
    sizes: tuple[int, ...]
    seconds: float  # each wrk run
    samples_1: int  # POST→available samples at 1 connection
    samples_16: int
    list_repeat: int = 20


QUICK = Mode(sizes=(1_000, 10_000), seconds=4, samples_1=100, samples_16=320)
FULL = Mode(sizes=(1_000, 10_000, 100_000), seconds=10, samples_1=300, samples_16=960)


@dataclass
class Row:
    workload: str
    measured: str
    p50: str = ""
    p99: str = ""
    target: str = ""
    ok: bool | None = None
    errors: str = ""


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


def verdict(ok: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[ok]


def error_text(tally: Tally) -> str:
    ratio = tally.errors / tally.requests if tally.requests else 0.0
    return f"{tally.errors}/{tally.requests} ({ratio:.2%})"


def wrk_tally(result: wrk.WrkResult, what: str) -> Tally:
    first = (f"wrk {what}: {result.non_2xx} non-2xx, {result.socket_errors} socket errors"
             if result.errors else "")
    return Tally(requests=result.requests, errors=result.errors, first_error=first)


class Observer:
    """Read-only view of the server's SQLite file: volume counts, never a write."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self.conn.execute("SELECT count(*) FROM volumes").fetchone()[0]
        return self.conn.execute("SELECT count(*) FROM volumes WHERE status = ?",
                                 (status,)).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


@dataclass
class Bench:
    server: StackvolProcess
    token: str
    mode: Mode
    profile_dir: Path | None = None
    rows: list[Row] = field(default_factory=list)
    total: Tally = field(default_factory=Tally)
    rss: dict[int, int] = field(default_factory=dict)  # volumes -> VmRSS kB
    profiles: list[Path] = field(default_factory=list)
    seed_rate: float = 300.0  # the best creates/s wrk achieved; sizes the seeding chunks

    def __post_init__(self) -> None:
        self.db = Observer(self.server.data_dir / "stackvol.sqlite")
        self.headers = client.headers(self.token)

    # --- plumbing -------------------------------------------------------------------------

    def _alive(self) -> None:
        if self.server.proc is None or self.server.proc.poll() is not None:
            raise BenchError(f"the server died; see {self.server.log_path}")

    def _account(self, tally: Tally) -> str:
        self.total.add(tally)
        return error_text(tally)

    def vm_rss_kb(self) -> int:
        assert self.server.proc is not None
        status = Path(f"/proc/{self.server.proc.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0])

    def drain(self, stall_seconds: float = 60.0) -> float:
        """Wait until no volume is ``creating``; seconds waited. Errored volumes are errors.

        Fails only if the backlog stops shrinking for ``stall_seconds``: a slow server is a
        result to report, a stuck one is a failure.
        """
        start = time.perf_counter()
        self.settled_count()
        last_note = progress_at = start
        lowest = noted = math.inf
        while (creating := self.db.count("creating")) > 0:
            self._alive()
            now = time.perf_counter()
            if creating < lowest:
                lowest, progress_at = creating, now
            if now - progress_at > stall_seconds:
                raise BenchError(f"{creating} volumes stuck in 'creating' for {stall_seconds}s")
            if now - last_note > 10:
                rate = "" if noted == math.inf else f" ({(noted - creating) / 10:,.0f}/s)"
                print(f"    {creating:,} volumes still creating{rate} ...", flush=True)
                last_note, noted = now, creating
            time.sleep(0.05)
        failed = self.db.count("error")
        if failed:
            self.total.add(Tally(requests=0, errors=failed,
                                 first_error=f"{failed} volumes went to 'error'"))
        return time.perf_counter() - start

    def settled_count(self) -> int:
        """The volume count once requests wrk left in flight have landed."""
        last = self.db.count()
        while True:
            time.sleep(0.1)
            now = self.db.count()
            if now == last:
                return now
            last = now

    def _wrk_create(self, seconds: float) -> wrk.WrkResult:
        script = wrk.lua_script("POST", self.headers, body=CREATE_BODY)
        return wrk.run(self.server.url + CREATE_PATH, script, seconds, CONNECTIONS)

    def _profiled(self, name: str, work: Callable[[], Any]) -> None:
        """Run ``work`` (about ``mode.seconds`` long) again under py-spy; not measured."""
        if self.profile_dir is None:
            return
        assert self.server.proc is not None
        out = self.profile_dir / f"{name}.txt"
        sampler = profile.record(self.server.proc.pid, self.mode.seconds, out)
        work()
        sampler.wait()
        self.profiles.append(out)

    # --- workloads ------------------------------------------------------------------------

    def available_latency(self, connections: int, samples: int) -> None:
        self._alive()
        print(f"  POST -> available, {connections} connection(s), {samples} volumes ...",
              flush=True)
        found, tally = client.latency_to_available(self.server.url, self.token, connections,
                                                   samples)
        p50 = percentile(found, 50)
        target, ok = "", None
        if connections == 1:
            target, ok = f"p50 < {ms(TARGET_AVAILABLE_P50_1)}", p50 < TARGET_AVAILABLE_P50_1
        self.rows.append(Row(f"POST->available, {connections} conn", f"{len(found)} volumes",
                             ms(p50), ms(percentile(found, 99)), target, ok,
                             self._account(tally)))

    def creates(self) -> None:
        self._alive()
        print(f"  creates/s, wrk {CONNECTIONS} connections, {self.mode.seconds:.0f}s ...",
              flush=True)
        before = self.db.count()
        result = self._wrk_create(self.mode.seconds)
        drained = self.drain()
        made = self.db.count() - before
        errors = self._account(wrk_tally(result, "create"))
        self.seed_rate = max(result.rps, self.seed_rate)
        goal = f">= {TARGET_CREATES_PER_S:,}/s"
        self.rows.append(Row(f"creates accepted, {CONNECTIONS} conn", f"{result.rps:,.0f}/s",
                             ms(result.p50), ms(result.p99), goal,
                             result.rps >= TARGET_CREATES_PER_S, errors))
        end_to_end = made / (result.seconds + drained)
        self.rows.append(Row(f"creates to available, {CONNECTIONS} conn",
                             f"{end_to_end:,.0f}/s (backlog drained in {drained:.1f}s)",
                             target=goal, ok=end_to_end >= TARGET_CREATES_PER_S))
        self._profiled("create", lambda: (self._wrk_create(self.mode.seconds), self.drain()))

    def show(self) -> None:
        self._alive()
        print(f"  GET show, wrk {CONNECTIONS} connections, {self.mode.seconds:.0f}s ...",
              flush=True)
        listing = httpx.get(f"{self.server.url}{CREATE_PATH}?limit={SHOW_IDS}",
                            headers=self.headers, timeout=60)
        listing.raise_for_status()
        paths = [f"{CREATE_PATH}/{v['id']}" for v in listing.json()["volumes"]]
        script = wrk.lua_script("GET", self.headers, paths=paths)

        def run() -> wrk.WrkResult:
            return wrk.run(self.server.url, script, self.mode.seconds, CONNECTIONS)

        result = run()
        self.rows.append(Row(f"GET show, {CONNECTIONS} conn", f"{result.rps:,.0f} req/s",
                             ms(result.p50), ms(result.p99), f">= {TARGET_SHOW_RPS:,} req/s",
                             result.rps >= TARGET_SHOW_RPS,
                             self._account(wrk_tally(result, "show"))))
        self._profiled("show", run)

    def seed_to(self, goal: int) -> int:
        """Create volumes through the API until the project holds ``goal``; the count reached."""
        have = self.settled_count()
        start, first = time.perf_counter(), have
        print(f"  seeding {have:,} -> {goal:,} volumes ...", flush=True)
        # Big steps with wrk (sized to undershoot even at the best rate seen), then the exact
        # remainder with httpx.
        while (seconds := math.floor((goal - have) * 0.8 / self.seed_rate)) >= 1:
            self._alive()
            result = self._wrk_create(min(seconds, 30))
            self._account(wrk_tally(result, "seed"))
            self.seed_rate = max(result.rps, self.seed_rate)
            have = self.settled_count()
            eta = (goal - have) / result.rps if result.rps else math.inf
            print(f"    {have:,} volumes ({result.rps:,.0f}/s accepted, "
                  f"{self.db.count('creating'):,} still creating), ~{eta:.0f}s to go",
                  flush=True)
        self._account(client.create_many(self.server.url, self.token, goal - have,
                                         CONNECTIONS))
        self.drain()
        have = self.db.count()
        took = time.perf_counter() - start
        print(f"    {have:,} volumes available; seeded {have - first:,} in {took:.0f}s",
              flush=True)
        if have != goal:
            print(f"    note: {have:,} volumes, not {goal:,} (earlier runs overshot)")
        return have

    def lists_at(self, goal: int) -> None:
        count = self.seed_to(goal)
        for name, path in (("list", CREATE_PATH), ("detail", CREATE_PATH + "/detail")):
            self._alive()
            found, tally = client.timed_gets(self.server.url, self.token,
                                             f"{path}?limit={LIST_LIMIT}", self.mode.list_repeat)
            p50 = percentile(found, 50)
            self.rows.append(Row(f"{name} limit={LIST_LIMIT} @ {count:,}",
                                 f"{len(found)} requests", ms(p50), ms(percentile(found, 99)),
                                 f"p50 < {ms(TARGET_LIST_P50)}", p50 < TARGET_LIST_P50,
                                 self._account(tally)))
        self.rss[count] = self.vm_rss_kb()
        if goal == max(self.mode.sizes):
            path = f"{CREATE_PATH}/detail?limit={LIST_LIMIT}"
            self._profiled("detail", lambda: self._repeat_for(path, self.mode.seconds))

    def _repeat_for(self, path: str, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            self._account(client.timed_gets(self.server.url, self.token, path, 5)[1])

    def memory_rows(self) -> None:
        if not self.rss:
            return
        sizes = sorted(self.rss)
        for n in sizes:
            self.rows.append(Row(f"server RSS @ {n:,} volumes", f"{self.rss[n] / 1024:.1f} MiB"))
        low, high = self.rss[sizes[0]], self.rss[sizes[-1]]
        growth = (high - low) / low
        self.rows.append(Row(f"RSS growth {sizes[0]:,} -> {sizes[-1]:,}",
                             f"{(high - low) / 1024:+.1f} MiB ({growth:+.0%})",
                             target=f"flat (< +{FLAT_MEMORY_GROWTH:.0%})",
                             ok=growth < FLAT_MEMORY_GROWTH))

    def run_all(self) -> str:
        """Every workload, then the profiles and the table (also after a failure, which is
        returned as text)."""
        started = time.perf_counter()
        failure = ""
        try:
            self.run()
        except (BenchError, ValueError, RuntimeError, httpx.HTTPError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        finally:
            self.db.close()
        for raw in self.profiles:
            print("\n" + profile.summarize(raw))
        print(f"\nresults ({time.perf_counter() - started:.0f}s, {load_average()} at the end)"
              f"{' - INCOMPLETE' if failure else ''}:\n{table(self.rows)}")
        return failure

    def run(self) -> None:
        # The smallest size first: the latency and create runs below add volumes of their own.
        sizes = sorted(self.mode.sizes)
        self.lists_at(sizes[0])
        self.available_latency(1, self.mode.samples_1)
        self.available_latency(CONNECTIONS, self.mode.samples_16)
        self.creates()
        self.show()
        for size in sizes[1:]:
            self.lists_at(size)
        self.memory_rows()


# --- reporting -----------------------------------------------------------------------------

HEADINGS = ("workload", "measured", "p50", "p99", "target", "met", "errors")


def table(rows: list[Row]) -> str:
    cells = [HEADINGS] + [(r.workload, r.measured, r.p50, r.p99, r.target, verdict(r.ok),
                           r.errors) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADINGS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def environment(server: StackvolProcess) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    wrk_version = subprocess.run([wrk.require_wrk(), "-v"], capture_output=True,
                                 text=True, check=False).stdout.split(" [")[0]
    return (f"machine: {cpu}, {len(os.sched_getaffinity(0))} cores; "
            f"Python {platform.python_version()}; {wrk_version}\n"
            f"server: {server.url} pid {server.proc.pid if server.proc else '?'}, "
            f"data {server.data_dir}, settings {server.settings or 'defaults'}\n"
            f"load: wrk 1 thread x {CONNECTIONS} connections; latency clients: httpx; "
            f"{load_average()}")


def load_average() -> str:
    """Other work on the machine skews every number; say how busy it was."""
    return "loadavg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _settings(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--setting wants KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1k and 10k volumes, short runs")
    parser.add_argument("--sizes", help="comma-separated volume counts (default: per mode)")
    parser.add_argument("--seconds", type=float, help="length of each wrk run")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="server setting (STACKVOL_KEY), e.g. log_level=WARNING")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="also record py-spy profiles of the create, show and detail "
                             "workloads into DIR (extra unmeasured runs) and summarise them")
    parser.add_argument("--keep", action="store_true", help="keep the data dir afterwards")
    parser.add_argument("--strict", action="store_true",
                        help="exit 2 when a target is missed (errors always exit 1)")
    return parser.parse_args(argv)


def _mode(args: argparse.Namespace) -> Mode:
    mode = QUICK if args.quick else FULL
    if args.sizes:
        mode = Mode(tuple(int(s) for s in args.sizes.split(",")), mode.seconds,
                    mode.samples_1, mode.samples_16, mode.list_repeat)
    if args.seconds:
        mode = Mode(mode.sizes, args.seconds, mode.samples_1, mode.samples_16, mode.list_repeat)
    return mode


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk.require_wrk()
    # SIGTERM (CI timeouts, kill) unwinds like Ctrl-C, so the server and temp dir go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.profile:
        if profile.find_py_spy() is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="stackvol-bench-"))
    server = StackvolProcess(root / "data", **_settings(args.setting))
    failure = "did not finish"
    try:
        server.start()
        print(environment(server), flush=True)
        bench = Bench(server, server.token("demo")[0], _mode(args), args.profile)
        failure = bench.run_all()
        print(f"\nerrors: {error_text(bench.total)}")
        if bench.total.errors and not failure:
            failure = f"requests errored; first: {bench.total.first_error}"
    finally:
        server.stop()
        if args.keep or failure:
            print(f"data and server log kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if failure:
        print(f"BENCHMARK FAILED: {failure}", file=sys.stderr)
        return 1
    if args.strict and any(r.ok is False for r in bench.rows):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
