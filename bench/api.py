"""The volumes API benchmark: one command, a ceiling and a fresh real server, one table.

    .venv/bin/python -m bench.api --quick      # 1k and 10k volumes, short runs (< 3 min)
    .venv/bin/python -m bench.api              # adds 100k volumes (< ~15 min on 2 cores)

It first measures the ceiling (bench/ceiling.py: a bare Starlette app on uvicorn/uvloop/
httptools answering fixed JSON on the same paths), stops it, then starts its own
``stackvol serve`` (one process, embedded SQLite, file storage, simulated compute driver, a
fresh temp data dir) and measures the same workloads through the Nova face (/v2.1/os-volumes)
and the Cinder face (/volume/v3/{project}/volumes), plus attach+detach cycles and lists. wrk
drives throughput, small httpx clients latency; with two CPUs the server runs on one and the
load on the other (bench/pinning.py). It exits 1 if any request failed (2 with --strict when a
target is missed). Every volume is created through the API; the SQLite file is only read
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

from bench import attach, client, pinning, profile, wrk
from bench.ceiling import CeilingProcess
from bench.client import CREATE_BODY, CREATE_PATH, BenchError, Tally, percentile
from bench.table import CEILING, CINDER, NOVA, Goal, Results, at_least, below
from tests.support.server import StackvolProcess

CONNECTIONS = 16
LIST_LIMIT = 1000
SHOW_IDS = 1000  # wrk rotates over this many volumes, not one hot row
MiB = 1024 * 1024

# The goals of issue #14 (judged on both faces; relative ones against the ceiling).
CREATES_GOAL = at_least(1500, share=0.20)
AVAILABLE_GOAL = below(0.005, "latency")
SHOW_GOAL = at_least(0, share=0.60)
ATTACH_GOAL = below(0.005, "latency")
LIST_GOAL = below(0.015, "latency")
LIST_GOAL_FROM = 10_000  # the list target applies at 10k and 100k volumes
RSS_GOAL = below(100 * MiB, "memory")
RSS_GOAL_FROM = 100_000
FLAT_MEMORY_GROWTH = 0.20  # RSS at the largest N within +20% of the smallest
FLAT_GOAL = Goal(f"flat (< +{FLAT_MEMORY_GROWTH:.0%})",
                 lambda growth, _ceiling: growth < FLAT_MEMORY_GROWTH)

# The headline rows, in table order (lists and memory follow, per size).
CREATED = f"creates to available, {CONNECTIONS} conn"
ACCEPTED = f"creates accepted (wrk), {CONNECTIONS} conn"
CREATE_P50 = f"create->available p50, {CONNECTIONS} conn"
AVAILABLE_P50 = "POST->available p50, 1 conn"
SHOW = f"GET show (wrk, {CONNECTIONS} conn)"
ATTACH = "attach+detach cycle p50, 1 conn"


@dataclass(frozen=True)
class Mode:
    sizes: tuple[int, ...]
    seconds: float  # each wrk run
    samples_1: int  # POST→available samples at 1 connection
    samples_16: int
    list_repeat: int = 20
    attach_cycles: int = 50


QUICK = Mode(sizes=(1_000, 10_000), seconds=4, samples_1=100, samples_16=320)
FULL = Mode(sizes=(1_000, 10_000, 100_000), seconds=10, samples_1=300, samples_16=960,
            attach_cycles=200)


@dataclass(frozen=True)
class Target:
    """One column: where to send requests and which volumes collection to use."""

    column: str
    url: str
    collection: str
    token: str


def error_text(tally: Tally) -> str:
    ratio = tally.errors / tally.requests if tally.requests else 0.0
    return f"{tally.errors}/{tally.requests} ({ratio:.2%})"


def wrk_tally(result: wrk.WrkResult, what: str) -> Tally:
    first = (f"wrk {what}: {result.non_2xx} non-2xx, {result.socket_errors} socket errors"
             if result.errors else "")
    return Tally(requests=result.requests, errors=result.errors, first_error=first)


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


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
    ceiling: CeilingProcess
    mode: Mode
    pins: pinning.Pinning
    profile_dir: Path | None = None
    results: Results = field(default_factory=Results)
    total: Tally = field(default_factory=Tally)
    failed: list[str] = field(default_factory=list)  # "metric (column): errors, first"
    rss: dict[int, int] = field(default_factory=dict)  # volumes -> VmRSS kB
    profiles: list[Path] = field(default_factory=list)
    # The best creates/s wrk achieved (None until the create workload ran): sizes the seeding
    # chunks. Unknown, a chunk of wrk's shortest run (1 s) could overshoot a small size.
    seed_rate: float | None = None
    db: Observer | None = None

    # --- plumbing -------------------------------------------------------------------------

    def _alive(self) -> None:
        if self.server.proc is None or self.server.proc.poll() is not None:
            raise BenchError(f"the server died; see {self.server.log_path}")

    def _account(self, tally: Tally, metric: str, column: str) -> None:
        self.total.add(tally)
        if tally.errors:
            self.failed.append(f"{metric} ({column}): {error_text(tally)}, "
                               f"first: {tally.first_error}")

    def _observer(self) -> Observer:
        assert self.db is not None, "the stackvol server is not running"
        return self.db

    def vm_rss_kb(self) -> int:
        assert self.server.proc is not None
        status = Path(f"/proc/{self.server.proc.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0])

    def drain(self, stall_seconds: float = 60.0) -> float:
        """Wait until no volume is ``creating``; seconds waited. Errored volumes are errors.

        Fails only if the backlog stops shrinking for ``stall_seconds``: a slow server is a
        result to report, a stuck one is a failure.
        """
        db = self._observer()
        start = time.perf_counter()
        self.settled_count()
        last_note = progress_at = start
        lowest = noted = math.inf
        while (creating := db.count("creating")) > 0:
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
        failed = db.count("error")
        if failed:
            self.total.add(Tally(requests=0, errors=failed,
                                 first_error=f"{failed} volumes went to 'error'"))
        return time.perf_counter() - start

    def settled_count(self) -> int:
        """The volume count once requests wrk left in flight have landed."""
        db = self._observer()
        last = db.count()
        while True:
            time.sleep(0.1)
            now = db.count()
            if now == last:
                return now
            last = now

    def _wrk_create(self, target: Target, seconds: float) -> wrk.WrkResult:
        script = wrk.lua_script("POST", client.headers(target.token), body=CREATE_BODY)
        return wrk.run(target.url + target.collection, script, seconds, CONNECTIONS)

    def _profiled(self, name: str, work: Callable[[], Any]) -> None:
        """Run ``work`` (about ``mode.seconds`` long) again under py-spy; not measured."""
        if self.profile_dir is None or self.db is None:  # only stackvol is profiled
            return
        assert self.server.proc is not None
        out = self.profile_dir / f"{name}.txt"
        sampler = profile.record(self.server.proc.pid, self.mode.seconds, out)
        work()
        sampler.wait()
        self.profiles.append(out)

    # --- workloads on any target ----------------------------------------------------------

    def available_latency(self, target: Target, connections: int, samples: int) -> None:
        print(f"  [{target.column}] POST -> available, {connections} connection(s), "
              f"{samples} volumes ...", flush=True)
        found, tally = client.latency_to_available(target.url, target.token, connections,
                                                   samples, target.collection)
        metric = AVAILABLE_P50 if connections == 1 else CREATE_P50
        self._account(tally, metric, target.column)
        p50 = percentile(found, 50)
        print(f"    p50 {ms(p50)}, p99 {ms(percentile(found, 99))}, {len(found)} volumes",
              flush=True)
        self.results.put(metric, target.column, p50, "latency")

    def creates(self, target: Target) -> None:
        print(f"  [{target.column}] creates/s, wrk {CONNECTIONS} connections, "
              f"{self.mode.seconds:.0f}s ...", flush=True)
        before = self.db.count() if self.db else 0
        result = self._wrk_create(target, self.mode.seconds)
        self._account(wrk_tally(result, "create"), ACCEPTED, target.column)
        self.results.put(ACCEPTED, target.column, result.rps, "rate")
        if self.db is None:  # the ceiling: nothing to wait for, its volumes are born available
            self.results.put(CREATED, target.column, result.rps, "rate")
            return
        self.seed_rate = max(result.rps, self.seed_rate or 0.0)
        drained = self.drain()
        made = self.db.count() - before
        end_to_end = made / (result.seconds + drained)
        print(f"    {result.rps:,.0f}/s accepted (p50 {ms(result.p50)}), {made:,} volumes "
              f"available {drained:.1f}s after wrk stopped: {end_to_end:,.0f}/s", flush=True)
        self.results.put(CREATED, target.column, end_to_end, "rate")
        self._profiled(f"{target.column.lower()}-create",
                       lambda: (self._wrk_create(target, self.mode.seconds), self.drain()))

    def show(self, target: Target) -> None:
        print(f"  [{target.column}] GET show, wrk {CONNECTIONS} connections, "
              f"{self.mode.seconds:.0f}s ...", flush=True)
        listing = httpx.get(f"{target.url}{target.collection}?limit={SHOW_IDS}",
                            headers=client.headers(target.token), timeout=60)
        listing.raise_for_status()
        paths = [f"{target.collection}/{v['id']}" for v in listing.json()["volumes"]]
        script = wrk.lua_script("GET", client.headers(target.token), paths=paths)

        def run() -> wrk.WrkResult:
            return wrk.run(target.url, script, self.mode.seconds, CONNECTIONS)

        result = run()
        print(f"    {result.rps:,.0f} req/s over {len(paths)} ids, p50 {ms(result.p50)}",
              flush=True)
        self._account(wrk_tally(result, "show"), SHOW, target.column)
        self.results.put(SHOW, target.column, result.rps, "rate")
        self._profiled(f"{target.column.lower()}-show", run)

    # --- stackvol only --------------------------------------------------------------------

    def attach_cycles(self, nova: Target, cinder: Target) -> None:
        print("  booting a server for the attach cycles ...", flush=True)
        server_id = attach.boot_server(nova.url, nova.token)
        project = cinder.collection.split("/")[3]
        for target, cycle in ((nova, attach.nova_cycle), (cinder, attach.cinder_cycle(project))):
            self._alive()
            print(f"  [{target.column}] attach+detach, 1 connection, up to "
                  f"{self.mode.attach_cycles} cycles or {3 * self.mode.seconds:.0f}s ...",
                  flush=True)
            # A time budget too: a cycle that waits on the worker's poll takes seconds.
            found, halves, tally = attach.cycles(target.url, target.token, target.collection,
                                                 server_id, self.mode.attach_cycles, cycle,
                                                 budget=3 * self.mode.seconds)
            self._account(tally, ATTACH, target.column)
            p50 = percentile(found, 50)
            print(f"    {len(found)} cycles: p50 {ms(p50)}, p99 {ms(percentile(found, 99))}; "
                  f"attach half p50 {ms(percentile(halves, 50))}", flush=True)
            self.results.put(ATTACH, target.column, p50, "latency")

    def seed_to(self, goal: int, target: Target) -> int:
        """Create volumes through the API until the project holds ``goal``; the count reached."""
        db = self._observer()
        have = self.settled_count()
        start, first = time.perf_counter(), have
        print(f"  seeding {have:,} -> {goal:,} volumes ...", flush=True)
        # Big steps with wrk (sized to undershoot even at the best rate seen), then the exact
        # remainder with httpx (all of it while the rate is unknown: the smallest size).
        while self.seed_rate and (seconds := math.floor((goal - have) * 0.8 / self.seed_rate)) >= 1:
            self._alive()
            result = self._wrk_create(target, min(seconds, 30))
            self._account(wrk_tally(result, "seed"), "seeding", target.column)
            self.seed_rate = max(result.rps, self.seed_rate)
            have = self.settled_count()
            eta = (goal - have) / result.rps if result.rps else math.inf
            print(f"    {have:,} volumes ({result.rps:,.0f}/s accepted, "
                  f"{db.count('creating'):,} still creating), ~{eta:.0f}s to go",
                  flush=True)
        self._account(client.create_many(target.url, target.token, goal - have, CONNECTIONS),
                      "seeding", target.column)
        self.drain()
        have = db.count()
        took = time.perf_counter() - start
        print(f"    {have:,} volumes available; seeded {have - first:,} in {took:.0f}s",
              flush=True)
        if have != goal:
            print(f"    note: {have:,} volumes, not {goal:,} (earlier runs overshot)")
        return have

    def lists_at(self, goal: int, faces: tuple[Target, Target]) -> None:
        count = self.seed_to(goal, faces[0])
        for name, suffix in (("list", ""), ("detail", "/detail")):
            metric = f"{name} limit={LIST_LIMIT} p50 @ {count:,}"
            for target in faces:
                self._alive()
                found, tally = client.timed_gets(target.url, target.token,
                                                 f"{target.collection}{suffix}?limit={LIST_LIMIT}",
                                                 self.mode.list_repeat)
                self._account(tally, metric, target.column)
                self.results.put(metric, target.column, percentile(found, 50), "latency",
                                 goal=LIST_GOAL if goal >= LIST_GOAL_FROM else None)
        self.rss[count] = self.vm_rss_kb()
        self.results.put(f"server RSS @ {count:,} (one process)", NOVA,
                         self.rss[count] * 1024.0, "memory",
                         goal=RSS_GOAL if goal >= RSS_GOAL_FROM else None)
        if goal == max(self.mode.sizes):
            path = f"{faces[0].collection}/detail?limit={LIST_LIMIT}"
            self._profiled("detail", lambda: self._repeat_for(faces[0], path, self.mode.seconds))

    def _repeat_for(self, target: Target, path: str, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            self._account(client.timed_gets(target.url, target.token, path, 5)[1],
                          "profiling", target.column)

    def memory_growth(self) -> None:
        if len(self.rss) < 2:
            return
        sizes = sorted(self.rss)
        low, high = self.rss[sizes[0]], self.rss[sizes[-1]]
        growth = (high - low) / low
        self.results.put(f"RSS growth {sizes[0]:,} -> {sizes[-1]:,}", NOVA, growth, "growth",
                         goal=FLAT_GOAL,
                         text=f"{(high - low) / 1024:+.1f} MiB ({growth:+.0%})")

    # --- the run --------------------------------------------------------------------------

    def run_all(self) -> str:
        """Every workload, then the profiles and the table (also after a failure, which is
        returned as text)."""
        started = time.perf_counter()
        failure = ""
        try:
            self.run()
        except (BenchError, ValueError, RuntimeError, KeyError, httpx.HTTPError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        finally:
            self.ceiling.stop()
            if self.db is not None:
                self.db.close()
        for raw in self.profiles:
            print("\n" + profile.summarize(raw))
        print(f"\nresults ({time.perf_counter() - started:.0f}s, {load_average()} at the end)"
              f"{' - INCOMPLETE' if failure else ''}:\n{self.results.table()}")
        return failure

    def declare_rows(self) -> None:
        """The headline rows first, in a fixed order, whatever was measured first."""
        for metric, unit, goal in ((CREATED, "rate", CREATES_GOAL), (ACCEPTED, "rate", None),
                                   (CREATE_P50, "latency", None),
                                   (AVAILABLE_P50, "latency", AVAILABLE_GOAL),
                                   (SHOW, "rate", SHOW_GOAL), (ATTACH, "latency", ATTACH_GOAL)):
            self.results.declare(metric, unit, goal, no_ceiling=metric == ATTACH)

    def run(self) -> None:
        self.declare_rows()
        self.measure_ceiling()
        self.start_server()
        faces = self.faces()
        # The smallest size first: the latency and create runs below add volumes of their own.
        sizes = sorted(self.mode.sizes)
        self.lists_at(sizes[0], faces)
        self.each(faces)
        self.attach_cycles(*faces)
        for size in sizes[1:]:
            self.lists_at(size, faces)
        self.memory_growth()

    def each(self, targets: tuple[Target, ...]) -> None:
        """The four headline workloads, each face right after the other (same conditions)."""
        for workload in (lambda t: self.available_latency(t, 1, self.mode.samples_1),
                         lambda t: self.available_latency(t, CONNECTIONS, self.mode.samples_16),
                         self.creates, self.show):
            for target in targets:
                if self.db is not None:
                    self._alive()
                workload(target)

    def measure_ceiling(self) -> None:
        """The ceiling first, alone on its CPU, stopped before stackvol starts."""
        with self.pins.spawning_server():
            self.ceiling.start()
        assert self.ceiling.proc is not None
        print(f"ceiling: {self.ceiling.url} pid {self.ceiling.proc.pid} (bench/ceiling.py, "
              f"uvicorn loop=uvloop http=httptools); {self.pins.describe(self.ceiling.proc.pid)}",
              flush=True)
        try:
            self.each((Target(CEILING, self.ceiling.url, CREATE_PATH, "ceiling-no-auth"),))
        finally:
            self.ceiling.stop()

    def start_server(self) -> None:
        with self.pins.spawning_server():
            self.server.start()
        self.db = Observer(self.server.data_dir / "stackvol.sqlite")
        print(server_line(self.server, self.pins), flush=True)

    def faces(self) -> tuple[Target, Target]:
        token, body = self.server.token("demo")
        project = body["project"]["id"]
        return (Target(NOVA, self.server.url, CREATE_PATH, token),
                Target(CINDER, self.server.url, f"/volume/v3/{project}/volumes", token))


# --- reporting -----------------------------------------------------------------------------


def environment(pins: pinning.Pinning) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    wrk_version = subprocess.run([wrk.require_wrk(), "-v"], capture_output=True,
                                 text=True, check=False).stdout.split(" [")[0]
    return (f"machine: {cpu}, {len(pins.original)} cores; "
            f"Python {platform.python_version()}; {wrk_version}\n"
            f"load: wrk 1 thread x {CONNECTIONS} connections; latency clients: httpx; "
            f"{pins.describe()}; {load_average()}")


def server_line(server: StackvolProcess, pins: pinning.Pinning) -> str:
    pid = server.proc.pid if server.proc else None
    return (f"server: {server.url} pid {pid or '?'}, data {server.data_dir}, "
            f"settings {server.settings or 'defaults'}; {pins.describe(pid)}")


def load_average() -> str:
    """Other work on the machine skews every number; say how busy it was."""
    return "loadavg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
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
    parser.add_argument("--samples", type=int,
                        help="POST->available samples at 1 connection (16 connections: x3), "
                             "and attach cycles")
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
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else mode.sizes
    seconds = args.seconds or mode.seconds
    if args.samples:
        return Mode(sizes, seconds, args.samples, args.samples * 3, mode.list_repeat,
                    args.samples)
    return Mode(sizes, seconds, mode.samples_1, mode.samples_16, mode.list_repeat,
                mode.attach_cycles)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk.require_wrk()
    # SIGTERM (CI timeouts, kill) unwinds like Ctrl-C, so the servers and temp dir go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.profile:
        if profile.find_py_spy() is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="stackvol-bench-"))
    pins = pinning.plan()
    bench = Bench(StackvolProcess(root / "data", **_settings(args.setting)),
                  CeilingProcess(root / "ceiling.log"), _mode(args), pins, args.profile)
    failure = "did not finish"
    try:
        print(environment(pins), flush=True)
        failure = bench.run_all()
        print(f"\nerrors: {error_text(bench.total)}")
        for line in bench.failed:
            print(f"  {line}")
        if bench.total.errors and not failure:
            failure = f"requests errored; first: {bench.total.first_error}"
    finally:
        bench.ceiling.stop()
        bench.server.stop()
        pins.restore()  # this process may go on (the tests call main())
        if args.keep or failure:
            print(f"data and server logs kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if failure:
        print(f"BENCHMARK FAILED: {failure}", file=sys.stderr)
        return 1
    if args.strict and bench.results.missed():
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
