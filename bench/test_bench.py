"""Tests of the benchmark itself: ``.venv/bin/pytest bench``.

The parsers are checked against real tool output; the last test runs the whole benchmark, small,
against a real server, so a broken benchmark is caught before anyone relies on its numbers.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import httpx
import pytest

from bench import api, ceiling, client, pinning, postgres, profile, table, wrk
from bench.client import percentile

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:33375/v2.1/os-volumes
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    55.51ms   21.45ms   1.55s    71.05%
    Req/Sec   145.38     48.18   292.00     68.69%
  Latency Distribution
     50%  651.00us
     75%   65.69ms
     90%   86.06ms
     99%    1.22s
  1444 requests in 5.01s, 1.03MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:    288.39
Transfer/sec:    210.66KB
"""


def test_wrk_report_is_parsed_with_units_and_errors() -> None:
    result = wrk.parse(WRK_OUTPUT)
    assert result.requests == 1444
    assert result.seconds == pytest.approx(5.01)
    assert result.rps == pytest.approx(288.39)
    assert result.p50 == pytest.approx(651e-6)
    assert result.p99 == pytest.approx(1.22)
    assert (result.non_2xx, result.socket_errors, result.errors) == (7, 3, 10)


def test_trailing_spaces_in_wrk_report_are_tolerated() -> None:
    # wrk pads some durations ("1.46s "); a strict parser lost a 20-minute run to it.
    padded = WRK_OUTPUT.replace("99%    1.22s\n", "99%    1.22s \n")
    assert padded != WRK_OUTPUT
    assert wrk.parse(padded).p99 == pytest.approx(1.22)


def test_clean_wrk_report_has_no_errors() -> None:
    clean = "\n".join(line for line in WRK_OUTPUT.splitlines()
                      if not line.lstrip().startswith(("Socket", "Non-2xx")))
    assert wrk.parse(clean).errors == 0


def test_garbled_wrk_report_is_refused() -> None:
    with pytest.raises(ValueError):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused")


def test_lua_script_rotates_paths_and_sets_body() -> None:
    script = wrk.lua_script("POST", {"X-Auth-Token": "tok"}, body='{"a": 1}',
                            paths=["/x/1", "/x/2"])
    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["X-Auth-Token"] = "tok"' in script
    assert 'wrk.body = "{\\"a\\": 1}"' in script
    assert 'local paths = {"/x/1", "/x/2"}' in script
    assert "request = function()" in script


def test_percentile_is_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_profile_summary_counts_self_and_inclusive(tmp_path: Path) -> None:
    raw = tmp_path / "show.txt"
    raw.write_text(
        "main (stackvol/cli/main.py:1);show (stackvol/http/compute/volumes.py:40);"
        "execute (sqlalchemy/engine/base.py:9) 3\n"
        "main (stackvol/cli/main.py:1);show (stackvol/http/compute/volumes.py:41) 1\n"
    )
    text = profile.summarize(raw)
    assert "4 on-CPU samples" in text
    assert "sqlalchemy 75.0, stackvol 25.0" in text
    assert " 75.0  execute (sqlalchemy/engine/base.py)" in text
    assert "100.0  show (stackvol/http/compute/volumes.py)" in text
    assert "cli/main.py" not in text.split("incl%")[1]


def test_table_judges_faces_against_the_ceiling() -> None:
    results = table.Results()
    results.declare("creates", "rate", table.at_least(1500, share=0.20))
    results.declare("attach", "latency", table.below(0.005, "latency"), no_ceiling=True)
    results.put("creates", table.CEILING, 10_000.0, "rate")
    results.put("creates", table.NOVA, 2_500.0, "rate")
    results.put("creates", table.CINDER, 1_800.0, "rate")  # >= 1,500/s but < 20% of ceiling
    results.put("attach", table.NOVA, 0.004, "latency")
    results.put("attach", table.CINDER, 0.002, "latency")
    creates, attach = results.rows.values()
    assert (creates.relative(table.NOVA), creates.relative(table.CINDER)) == ("25%", "18%")
    assert creates.met() is False and attach.met() is True
    assert attach.cell(table.CEILING) == table.NOTHING
    assert results.missed()
    text = results.table()
    assert text.splitlines()[0].split() == [
        "metric", "ceiling", "Nova", "Nova/ceiling", "Cinder", "Cinder/ceiling", "target", "met"]
    assert "10,000/s" in text and "4.00 ms" in text and ">= 1,500/s and >= 20% of ceiling" in text


def test_latency_ratio_is_a_multiple_of_the_ceiling() -> None:
    assert table.ratio(0.006, 0.002, "latency") == "3.0x"
    assert table.ratio(1.0, math.nan, "rate") == "n/a"


def test_curve_table_gives_mean_spread_and_efficiency_against_one_process() -> None:
    points = [postgres.Point(1, 100, 50, 1000, 800), postgres.Point(1, 300, 50, 1000, 800),
              postgres.Point(2, 300, 60, 2000, 800)]
    lines = postgres.curve_table(points).splitlines()
    assert lines[0].startswith("| processes | runs | creates accepted/s |")
    assert lines[2] == "| 1 | 2 | 200 (100-300) | 50 (50-50) | 1,000 (1,000-1,000) | " \
        "800 (800-800) | 100% / 100% / 100% / 100% |"
    # rate(2) / (2 * rate(1)): 300 / 400, 60 / 100, 2000 / 2000, 800 / 1600.
    assert lines[3] == "| 2 | 1 | 300 | 60 | 2,000 | 800 | 75% / 60% / 100% / 50% |"


def test_curve_table_without_one_process_says_so() -> None:
    table_text = postgres.curve_table([postgres.Point(2, 300, 60, 2000, 800)])
    assert table_text.splitlines()[-1].endswith("| n/a (no N=1 run) |")


def test_cpu_table_averages_ms_per_operation_by_role() -> None:
    cpu = {"API": 1.0, "worker": 2.0, "PostgreSQL": 3.0, "wrk": 0.1}
    points = [postgres.Point(1, 1, 1, 1, 1, cpu, cpu),
              postgres.Point(1, 1, 1, 1, 1, {**cpu, "API": 2.0}, cpu)]
    row = postgres.cpu_table(points).splitlines()[2]
    assert row == "| 1 | 1.50 | 2.00 | 3.00 | 0.10 | 1.00 | 2.00 | 3.00 | 0.10 |"


def test_ceiling_answers_both_faces_with_fixed_json(tmp_path: Path) -> None:
    process = ceiling.CeilingProcess(tmp_path / "ceiling.log").start()
    try:
        http = httpx.Client(base_url=process.url)
        for collection in ("/v2.1/os-volumes", "/volume/v3/p1/volumes"):
            created = http.post(collection, content=client.CREATE_BODY)
            assert created.status_code == 202
            assert created.json()["volume"]["status"] == "creating"
            shown = http.get(f"{collection}/{created.json()['volume']['id']}")
            assert shown.json()["volume"]["status"] == "available"
            assert len(http.get(f"{collection}?limit=1000").json()["volumes"]) == 1000
    finally:
        process.stop()
    assert process.proc is not None and process.proc.poll() is not None


def test_pinning_splits_server_and_clients_when_there_are_two_cpus() -> None:
    plan = pinning.plan()
    if len(plan.original) < 2:
        assert not plan.active and "none" in plan.describe()
        return
    assert plan.server and plan.clients and not plan.server & plan.clients
    try:
        with plan.spawning_server():
            assert os.sched_getaffinity(0) == plan.server
        assert os.sched_getaffinity(0) == plan.clients
    finally:
        plan.restore()
    assert os.sched_getaffinity(0) == plan.original


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_small_benchmark_runs_clean_against_a_real_server(
        capsys: pytest.CaptureFixture[str]) -> None:
    before = os.sched_getaffinity(0)
    code = api.main(["--quick", "--sizes", "200", "--seconds", "1", "--samples", "5"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert os.sched_getaffinity(0) == before  # the pinning is undone for the caller
    assert "errors: 0/" in out
    table_text = out.split("results (")[1]
    for metric in (api.CREATED, api.ACCEPTED, api.CREATE_P50, api.AVAILABLE_P50, api.SHOW,
                   api.ATTACH, "list limit=1000 p50 @ 200", "detail limit=1000 p50 @ 200",
                   "server RSS @ 200"):
        row = next(line for line in table_text.splitlines() if line.startswith(metric))
        assert "n/a" not in row, row
    attach_row = next(line for line in table_text.splitlines() if line.startswith(api.ATTACH))
    assert table.NOTHING in attach_row  # no ceiling for attach
    assert "pinning:" in out
