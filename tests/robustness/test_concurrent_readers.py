"""Analysts reading while a nightly run rebuilds: a read-only connection held open across the whole
run keeps a consistent old snapshot, a new connection afterwards sees the new one, readers of the
warehouse and of the lake never fail, and the run never fails because of them.

The held connection lives in its own process, as an analyst's would: inside one process DuckDB
hands a second connect() to the same file the database instance already open (so a new
connection there keeps seeing the old file until every connection to it is closed).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time

import duckdb
import pytest

from tests.robustness import helpers as h

TOTALS = "select count(*), sum(steps) from minute_steps"

HELD_READER = """
import json, sys, hashlib
import duckdb
from tests.robustness.helpers import connection_snapshot
con = duckdb.connect(sys.argv[1], read_only=True)
first = repr(connection_snapshot(con))
watched = ("minute_steps", "weekly_adherence")
first_watched = repr(connection_snapshot(con, watched))
print("open", flush=True)
queries = changed = 0
while sys.stdin.readline().strip() == "again":   # the test says "again" until the run is over
    queries += 1
    changed += repr(connection_snapshot(con, watched)) != first_watched
    print("ok", flush=True)
last = repr(connection_snapshot(con))
print(json.dumps({"queries": queries, "changed": changed, "same_at_end": last == first,
                  "digest": hashlib.sha256(last.encode()).hexdigest()}), flush=True)
"""


def _totals(path) -> tuple:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return tuple(con.sql(TOTALS).fetchall()[0])
    finally:
        con.close()


def _digest(snapshot: dict) -> str:
    return hashlib.sha256(repr(snapshot).encode()).hexdigest()


@pytest.fixture
def readers_during_a_run(baseline, tmp_path):
    data = h.copy_folder(baseline.after_first, tmp_path / "data")
    h.small_cohort(data, part="later")
    held = subprocess.Popen([h.PYTHON, "-c", HELD_READER, str(data / "warehouse.duckdb")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=h.env(), cwd=h.ROOT)
    assert held.stdout.readline().strip() == "open"
    seen = {"fresh": set(), "lake": set(), "errors": []}
    stop = threading.Event()
    lake_glob = str(data / "lake" / "step_intervals" / "**" / "*.parquet")

    def read_continuously() -> None:
        lake_reader = duckdb.connect()
        while not stop.is_set():
            try:
                held.stdin.write("again\n")
                held.stdin.flush()
                assert held.stdout.readline().strip() == "ok"
                fresh = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
                try:
                    seen["fresh"].add(tuple(fresh.sql(TOTALS).fetchall()[0]))
                finally:
                    fresh.close()
                seen["lake"].add(lake_reader.execute("select count(*) from read_parquet(?)", [lake_glob]).fetchall()[0][0])
            except Exception as exc:  # noqa: BLE001 - every failure of a reader is a finding
                seen["errors"].append(repr(exc))
            time.sleep(0.005)
        lake_reader.close()

    thread = threading.Thread(target=read_continuously, daemon=True)
    thread.start()
    result = h.run(data)
    time.sleep(0.3)
    stop.set()
    thread.join(60)
    held.stdin.write("done\n")
    held.stdin.flush()
    report = json.loads(held.stdout.readline())
    held.wait(30)
    yield data, result, seen, report


def test_a_run_rebuilds_under_readers_who_keep_their_snapshot(readers_during_a_run, baseline):
    data, result, seen, held = readers_during_a_run
    assert result.returncode == 0, result.stderr[-3000:]  # the run never fails because of a reader
    assert seen["errors"] == []
    # the connection held across the run saw the same old warehouse at every query and at the end
    assert held["queries"] > 10 and held["changed"] == 0 and held["same_at_end"]
    assert held["digest"] == _digest(baseline.first_warehouse)
    # a new connection after the run sees the new warehouse; during it, the old or the new one
    new = h.warehouse_snapshot(data / "warehouse.duckdb")
    assert new == baseline.incremental["warehouse"]
    old_totals, new_totals = (_totals(path) for path in (baseline.after_first / "warehouse.duckdb",
                                                         data / "warehouse.duckdb"))
    assert seen["fresh"] <= {old_totals, new_totals} and new_totals in seen["fresh"]
    # lake readers only ever saw whole files, from the old lake's rows up to the new lake's
    old_rows = h.parquet_rows(h.visible_files(baseline.after_first / "lake" / "step_intervals"))[0]
    assert min(seen["lake"]) == old_rows and max(seen["lake"]) == baseline.incremental["lake_step_intervals"][0]
