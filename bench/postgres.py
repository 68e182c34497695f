"""The os-volumes API on PostgreSQL: create throughput and list latency up to 100k volumes.

    .venv/bin/python -m bench.postgres              # 1k, 10k and 100k volumes
    .venv/bin/python -m bench.postgres --quick      # 1k and 10k
    .venv/bin/python -m bench.postgres --api 2      # two API processes + one volume worker
    .venv/bin/python -m bench.postgres --curve 1,2  # creates and shows at 1 and 2 API processes

It starts a private PostgreSQL cluster (tests/support/postgres.py: initdb on a free loopback port,
fsync off) and stackvol on it: by default one all-in-one process; with ``--api N``, N API
processes (``--role api``) and one volume worker (``--role volume``), load spread over the APIs.
The first ``--through-api`` volumes (10k) are created through the API; beyond that, to reach
100k in minutes rather than the better part of an hour on a small machine, rows are copied with
SQL from the newest volume (same project, later timestamps). Creates are driven by wrk (16
connections, one wrk per API) and counted "accepted" (wrk's rate) and "to available" (volumes
made / time until none is ``creating``); list and detail ``limit=1000`` are timed at each size
on the first page and on a page deep in the list (a marker 1,000 from the end): both must stay
flat as the table grows.

``--curve 1,2`` measures instead how creates and shows scale with API processes: for each N (and
``--repeat`` times), a fresh cluster, N API processes and one volume worker (``--volume-workers``
for more); wrk creates on every API at once, then wrk GETs of ``/v2.1/os-volumes/{id}`` (and of
the Cinder face's ``/volume/v3/{project_id}/volumes/{id}``) rotating over 1,000 ids, one wrk of
16 connections per API as for creates; one table of the rates and of each N's per-process
efficiency against N=1, and one of the CPU ms each create and show cost each role (API, worker,
PostgreSQL, wrk). Nothing is pinned: wrk runs on the same cores as the servers and PostgreSQL.
Exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import client, wrk
from bench.client import CREATE_BODY, CREATE_PATH, Tally, percentile
from tests.support.postgres import PostgresCluster
from tests.support.server import StackvolProcess, query_url

CONNECTIONS = 16
LIST_LIMIT = 1000
SHOW_IDS = 1000


class Deployment:
    """A private cluster and the stackvol processes on it."""

    def __init__(self, root: Path, apis: int, seconds: float, workers: int = 1) -> None:
        self.root = root
        self.apis_wanted = apis
        self.workers_wanted = workers
        self.seconds = seconds
        self.cluster = PostgresCluster()
        self.procs: list[StackvolProcess] = []
        self.url = ""

    def start(self) -> None:
        self.cluster.start()
        self.url = self.cluster.database("bench")
        common: dict[str, Any] = {"database_url": self.url, "log_level": "WARNING",
                                  "task_poll_seconds": 0.05, "compute_driver": "simulated"}
        if self.apis_wanted == 0:
            self.procs.append(StackvolProcess(self.root / "all", **common).start())
            return
        for i in range(self.apis_wanted):
            self.procs.append(StackvolProcess(self.root / f"api-{i}", role="api",
                                              **common).start())
        for i in range(self.workers_wanted):  # claims skip locked rows: workers share a queue
            self.procs.append(StackvolProcess(self.root / f"volume-{i}", role="volume",
                                              worker_concurrency=32, **common).start())

    @property
    def apis(self) -> list[StackvolProcess]:
        return [p for p in self.procs if p.settings.get("role") != "volume"]

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()
        self.cluster.stop()

    def count(self, where: str = "") -> int:
        return query_url(self.url, f"SELECT count(*) FROM volumes {where}")[0][0]

    def drained(self, timeout: float = 600) -> float:
        """Wait until no volume is ``creating``; when that happened."""
        deadline = time.monotonic() + timeout
        while self.count("WHERE status = 'creating'") and time.monotonic() < deadline:
            time.sleep(0.05)
        return time.perf_counter()


def wrk_everywhere(dep: Deployment, script: str, path: str,
                   seconds: float) -> tuple[float, Tally]:
    """One wrk per API, all at once, ``CONNECTIONS`` each; (req/s summed, tally)."""
    with concurrent.futures.ThreadPoolExecutor(len(dep.apis)) as pool:
        runs = list(pool.map(lambda api: wrk.run(api.url + path, script, seconds,
                                                 CONNECTIONS), dep.apis))
    tally = Tally()
    for one in runs:
        tally.requests += one.requests
        tally.errors += one.errors
        if one.errors and not tally.first_error:
            tally.first_error = (f"wrk {path}: {one.non_2xx} non-2xx, "
                                 f"{one.socket_errors} socket errors")
    return sum(r.rps for r in runs), tally


def wrk_creates(dep: Deployment, token: str, seconds: float) -> tuple[float, Tally, int]:
    """wrk POSTs on every API at once; (accepted/s summed, tally, volumes made)."""
    script = wrk.lua_script("POST", client.headers(token), body=CREATE_BODY)
    before = dep.count()
    accepted, tally = wrk_everywhere(dep, script, CREATE_PATH, seconds)
    return accepted, tally, dep.count() - before


def wrk_shows(dep: Deployment, token: str, collection: str,
              seconds: float) -> tuple[float, Tally]:
    """wrk GETs of ``{collection}/{id}`` on every API at once, rotating over ``SHOW_IDS`` ids
    (the oldest volumes: every process sees the same rows)."""
    ids = [r[0] for r in query_url(dep.url, "SELECT id FROM volumes ORDER BY created_at, id "
                                   f"LIMIT {SHOW_IDS}")]
    script = wrk.lua_script("GET", client.headers(token),
                            paths=[f"{collection}/{i}" for i in ids])
    return wrk_everywhere(dep, script, collection, seconds)


def fill(dep: Deployment, token: str, goal: int, tally: Tally, through_api: int) -> None:
    """Create volumes through the API up to ``through_api``, then copy rows up to ``goal``."""
    while (have := dep.count()) < min(goal, through_api):
        step = min(goal, through_api) - have
        tally.add(client.create_many(dep.apis[0].url, token, step, connections=32))
    dep.drained()
    if (missing := goal - dep.count()) > 0:
        copy_rows(dep.url, missing)


def copy_rows(url: str, count: int) -> None:
    """``count`` more volumes, copies of the newest made through the API (same project, later
    timestamps): what the list queries see is the same as for volumes made one by one."""
    columns = [r[0] for r in query_url(
        url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'volumes' "
        "AND column_name NOT IN ('id', 'created_at') ORDER BY ordinal_position")]
    names = ", ".join(f'"{c}"' for c in columns)
    query_url(url, f"INSERT INTO volumes (id, created_at, {names}) "
              f"SELECT gen_random_uuid()::text, v.created_at + n * interval '1 millisecond', "
              f"{', '.join(f'v.{n}' for n in names.split(', '))} FROM (SELECT * FROM volumes "
              f"ORDER BY created_at DESC, id DESC LIMIT 1) v, generate_series(1, ?) n", count)
    query_url(url, "ANALYZE volumes")


def list_rows(dep: Deployment, token: str, count: int, tally: Tally) -> list[str]:
    api = dep.apis[0]
    last = query_url(dep.url, "SELECT id FROM volumes ORDER BY created_at, id "
                     f"LIMIT 1 OFFSET {max(0, count - LIST_LIMIT - 1)}")[0][0]
    rows = []
    for name, path in (("list", CREATE_PATH), ("detail", CREATE_PATH + "/detail")):
        for where, extra in (("first page", ""), ("deep page", f"&marker={last}")):
            took, got = client.timed_gets(api.url, token, f"{path}?limit={LIST_LIMIT}{extra}", 20)
            tally.add(got)
            rows.append(f"| {name} limit={LIST_LIMIT}, {where} @ {count:,} | "
                        f"p50 {percentile(took, 50) * 1000:.1f} ms, "
                        f"p99 {percentile(took, 99) * 1000:.1f} ms |")
    return rows


def run(args: argparse.Namespace) -> int:
    sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    with tempfile.TemporaryDirectory(prefix="stackvol-bench-pg-") as tmp:
        dep = Deployment(Path(tmp), args.api, args.seconds)
        try:
            dep.start()
            token, _ = dep.apis[0].token("demo")
            tally = Tally()
            out = [f"stackvol on PostgreSQL: {len(dep.apis)} API process(es)"
                   f"{' + 1 volume worker' if args.api else ' (all-in-one)'}", "",
                   "| workload | result |", "|---|---|"]
            start = time.perf_counter()
            accepted, got, made = wrk_creates(dep, token, args.seconds)
            to_available = made / (dep.drained() - start)
            tally.add(got)
            out.append(f"| creates/s, {CONNECTIONS} connections per API, {args.seconds:.0f} s |"
                       f" accepted {accepted:,.0f}/s, to available {to_available:,.0f}/s |")
            for size in sizes:
                fill(dep, token, size, tally, args.through_api)
                out.extend(list_rows(dep, token, dep.count(), tally))
            out.append(f"| requests failed | {tally.errors} of {tally.requests:,} |")
            print("\n".join(out))
            if tally.errors:
                print(f"first error: {tally.first_error}", file=sys.stderr)
                return 1
            return 0
        finally:
            dep.stop()


T = TypeVar("T")
CPU_ROLES = ("API", "worker", "PostgreSQL", "wrk")
_TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """Every live process: pid -> (parent pid, CPU seconds incl. its reaped children)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        # utime, stime, cutime, cstime: a backend PostgreSQL reaped still counts in its parent.
        out[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / _TICK)
    return out


def _tree_cpu(procs: dict[int, tuple[int, float]], roots: list[int]) -> float:
    """CPU seconds of ``roots`` and every live descendant (PostgreSQL's backends)."""
    seen, todo, total = set(), list(roots), 0.0
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in procs:
            continue
        seen.add(pid)
        total += procs[pid][1]
        todo.extend(children.get(pid, []))
    return total


def cpu_now(dep: Deployment) -> dict[str, float]:
    """CPU seconds used so far by each role; wrk counts as this process's waited-for children."""
    procs = _processes()
    pids = {"API": [p.proc.pid for p in dep.apis if p.proc],
            "worker": [p.proc.pid for p in dep.procs if p not in dep.apis and p.proc],
            "PostgreSQL": [dep.cluster.proc.pid] if dep.cluster.proc else []}
    used = {role: _tree_cpu(procs, roots) for role, roots in pids.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used["wrk"] = children.ru_utime + children.ru_stime
    return used


def cpu_per_op(dep: Deployment, work: Callable[[], tuple[T, int]]) -> tuple[T, dict[str, float]]:
    """Run ``work`` (its result and how many operations it did); CPU ms per operation by role."""
    before = cpu_now(dep)
    result, ops = work()
    after = cpu_now(dep)
    return result, {role: (after[role] - before[role]) * 1000 / max(ops, 1) for role in after}


@dataclass(frozen=True)
class Point:
    """One run at ``processes`` API processes: rates summed over every API."""

    processes: int
    accepted: float
    to_available: float
    show: float
    cinder_show: float
    create_cpu: dict[str, float] = field(default_factory=dict)  # CPU ms per create, by role
    show_cpu: dict[str, float] = field(default_factory=dict)  # CPU ms per Nova show, by role


def measure_point(root: Path, processes: int, seconds: float, tally: Tally,
                  workers: int = 1) -> Point:
    """A fresh cluster and ``processes`` APIs + one worker: creates, then shows on each face."""
    dep = Deployment(root, processes, seconds, workers)
    try:
        dep.start()
        token, body = dep.apis[0].token("demo")
        start = time.perf_counter()

        def creates() -> tuple[tuple[float, Tally, float], int]:
            accepted, got, made = wrk_creates(dep, token, seconds)
            return (accepted, got, made / (dep.drained() - start)), made

        (accepted, got, to_available), create_cpu = cpu_per_op(dep, creates)
        tally.add(got)
        if (missing := SHOW_IDS - dep.count()) > 0:
            tally.add(client.create_many(dep.apis[0].url, token, missing))
            dep.drained()

        def shows() -> tuple[tuple[float, Tally], int]:
            rate, got = wrk_shows(dep, token, CREATE_PATH, seconds)
            return (rate, got), got.requests

        (show, got), show_cpu = cpu_per_op(dep, shows)
        tally.add(got)
        cinder = f"/volume/v3/{body['project']['id']}/volumes"
        cinder_show, got = wrk_shows(dep, token, cinder, seconds)
        tally.add(got)
        return Point(processes, accepted, to_available, show, cinder_show, create_cpu,
                     show_cpu)
    finally:
        dep.stop()


CURVE_METRICS = (("creates accepted/s", "accepted"), ("creates to available/s", "to_available"),
                 ("Nova show req/s", "show"), ("Cinder show req/s", "cinder_show"))


def _rate(values: list[float]) -> str:
    """The mean, and with several runs their range: the spread is the error bar."""
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:,.0f}"
    return f"{mean:,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def curve_table(points: list[Point]) -> str:
    """processes | each rate (mean, range) | per-process efficiency of each rate vs N=1.

    Efficiency is rate(N) / (N * rate(1)): 100% is linear scaling, 50% at N=2 is no gain.
    Without an N=1 point there is nothing to compare against and the column says so.
    """
    by_n: dict[int, list[Point]] = {}
    for point in points:
        by_n.setdefault(point.processes, []).append(point)

    def mean(n: int, attr: str) -> float:
        return statistics.fmean(getattr(p, attr) for p in by_n[n])

    heads = (["processes", "runs"] + [name for name, _ in CURVE_METRICS]
             + ["efficiency vs N=1 (accepted / available / Nova show / Cinder show)"])
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for n in sorted(by_n):
        cells = [str(n), str(len(by_n[n]))]
        cells += [_rate([getattr(p, attr) for p in by_n[n]]) for _, attr in CURVE_METRICS]
        if 1 in by_n and all(mean(1, attr) > 0 for _, attr in CURVE_METRICS):
            cells.append(" / ".join(f"{mean(n, attr) / (n * mean(1, attr)):.0%}"
                                    for _, attr in CURVE_METRICS))
        else:
            cells.append("n/a (no N=1 run)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_table(points: list[Point]) -> str:
    """CPU ms per create (until available) and per Nova show, by role, mean over runs: what the
    16-core model is built from (it does not depend on how busy the machine was as much as a
    rate does)."""
    by_n: dict[int, list[Point]] = {}
    for point in points:
        by_n.setdefault(point.processes, []).append(point)
    heads = ["processes"] + [f"create: {r}" for r in CPU_ROLES] + [f"show: {r}" for r in CPU_ROLES]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for n in sorted(by_n):
        cells = [str(n)]
        for attr in ("create_cpu", "show_cpu"):
            cells += [f"{statistics.fmean(getattr(p, attr).get(r, math.nan) for p in by_n[n]):.2f}"
                      for r in CPU_ROLES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_average() -> str:
    return "loadavg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def run_curve(args: argparse.Namespace) -> int:
    counts = [int(n) for n in args.curve.split(",")]
    points: list[Point] = []
    tally = Tally()
    print(f"curve: API processes {counts} + {args.volume_workers} volume worker(s), "
          f"{args.repeat} run(s) each, wrk {args.seconds:.0f} s, "
          f"{CONNECTIONS} connections per API, {os.cpu_count()} CPUs, nothing pinned; "
          f"{load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="stackvol-bench-pg-") as tmp:
        for repeat in range(args.repeat):
            for n in counts:  # interleaved, so a change in machine load hits every N
                point = measure_point(Path(tmp) / f"n{n}-r{repeat}", n, args.seconds, tally,
                                      args.volume_workers)
                points.append(point)
                print(f"  N={n} run {repeat + 1}: accepted {point.accepted:,.0f}/s, "
                      f"to available {point.to_available:,.0f}/s, "
                      f"Nova show {point.show:,.0f}/s, Cinder show {point.cinder_show:,.0f}/s; "
                      f"{load_average()}", flush=True)
    print()
    print(curve_table(points))
    print("\nCPU ms per operation (creates: until available; shows: Nova face)\n")
    print(cpu_table(points))
    print(f"\nrequests failed: {tally.errors} of {tally.requests:,}; {load_average()}")
    if tally.errors:
        print(f"first error: {tally.first_error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.postgres", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1k and 10k volumes only")
    parser.add_argument("--api", type=int, default=0,
                        help="API processes (0: one all-in-one process)")
    parser.add_argument("--seconds", type=float, default=10, help="length of the wrk run")
    parser.add_argument("--through-api", type=int, default=10_000,
                        help="volumes made through the API; the rest are row copies (SQL)")
    parser.add_argument("--curve", default="",
                        help="comma-separated API process counts (e.g. 1,2): the scaling table "
                             "of creates and shows instead of the list runs")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each --curve point")
    parser.add_argument("--volume-workers", type=int, default=1,
                        help="volume worker processes (--role volume) with --curve")
    args = parser.parse_args(argv)
    return run_curve(args) if args.curve else run(args)


if __name__ == "__main__":
    sys.exit(main())
