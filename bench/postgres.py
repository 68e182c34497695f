"""The os-volumes API on PostgreSQL: create throughput and list latency up to 100k volumes.

    .venv/bin/python -m bench.postgres              # 1k, 10k and 100k volumes
    .venv/bin/python -m bench.postgres --quick      # 1k and 10k
    .venv/bin/python -m bench.postgres --api 2      # two API processes + one volume worker

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
Exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench import client, wrk
from bench.client import CREATE_BODY, CREATE_PATH, Tally, percentile
from tests.support.postgres import PostgresCluster
from tests.support.server import StackvolProcess, query_url

CONNECTIONS = 16
LIST_LIMIT = 1000


class Deployment:
    """A private cluster and the stackvol processes on it."""

    def __init__(self, root: Path, apis: int, seconds: float) -> None:
        self.root = root
        self.apis_wanted = apis
        self.seconds = seconds
        self.cluster = PostgresCluster()
        self.procs: list[StackvolProcess] = []
        self.url = ""

    def start(self) -> None:
        self.cluster.start()
        self.url = self.cluster.database("bench")
        common = {"database_url": self.url, "log_level": "WARNING", "task_poll_seconds": 0.05,
                  "compute_driver": "simulated"}
        if self.apis_wanted == 0:
            self.procs.append(StackvolProcess(self.root / "all", **common).start())
            return
        for i in range(self.apis_wanted):
            self.procs.append(StackvolProcess(self.root / f"api-{i}", role="api",
                                              **common).start())
        self.procs.append(StackvolProcess(self.root / "volume", role="volume",
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


def wrk_creates(dep: Deployment, token: str, seconds: float) -> tuple[float, Tally, int]:
    """wrk POSTs on every API at once; (accepted/s summed, tally, volumes made)."""
    import concurrent.futures

    script = wrk.lua_script("POST", client.headers(token), body=CREATE_BODY)
    before = dep.count()
    with concurrent.futures.ThreadPoolExecutor(len(dep.apis)) as pool:
        runs = list(pool.map(lambda api: wrk.run(api.url + CREATE_PATH, script, seconds,
                                                 CONNECTIONS), dep.apis))
    tally = Tally()
    for run in runs:
        tally.requests += run.requests
        tally.errors += run.errors
    return sum(r.rps for r in runs), tally, dep.count() - before


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.postgres", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1k and 10k volumes only")
    parser.add_argument("--api", type=int, default=0,
                        help="API processes (0: one all-in-one process)")
    parser.add_argument("--seconds", type=float, default=10, help="length of the wrk run")
    parser.add_argument("--through-api", type=int, default=10_000,
                        help="volumes made through the API; the rest are row copies (SQL)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
