"""The warehouse build is incremental (pipeline/derived.py): after new files, a changed registry or
nothing at all, every table equals a build from scratch on the same lake, and only what changed is
recomputed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from pipeline.config import Settings
from pipeline.derived import RECENT_DAYS, WRITERS, _Builder, current_build, remove_unused_builds
from pipeline.ingest import ingest_inbox
from pipeline.registry import read_participants, read_plan_rows
from pipeline.warehouse import build_warehouse
from tests.robustness import helpers as h
from tests.robustness.corpus import fit_monitoring, narrow_csv

NOW = datetime(2024, 11, 27, 12, 0, tzinfo=UTC)


def _run(data: Path, as_of: str) -> dict:
    """The flow's ingest and build through the library; returns what the derived build did."""
    settings = Settings.for_folder(data)
    participants = read_participants(settings.data.participants_csv)
    plan_rows = read_plan_rows(settings.data.prescriptions_csv, participants)
    ingest_inbox(settings.data, participants, now=NOW)
    build_warehouse(settings, participants, plan_rows, as_of=date.fromisoformat(as_of), now=NOW)
    return _state(data)


def _state(data: Path) -> dict:
    folder = current_build(data / "lake" / "derived", data / "warehouse.duckdb")
    assert folder is not None
    return json.loads((folder / ".state.json").read_text())


def _from_scratch(data: Path, workdir: Path, as_of: str) -> dict:
    """Every table of a warehouse built with no previous build, from the same lake."""
    copy = workdir / f"scratch-{len(list(workdir.glob('scratch-*')))}"
    shutil.copytree(data / "lake", copy / "lake", ignore=shutil.ignore_patterns("derived"))
    for name in ("participants.csv", "prescriptions.csv"):
        if (data / name).exists():
            shutil.copy2(data / name, copy / name)
    settings = Settings.for_folder(copy)
    participants = read_participants(settings.data.participants_csv)
    build_warehouse(settings, participants, read_plan_rows(settings.data.prescriptions_csv, participants),
                    as_of=date.fromisoformat(as_of), now=NOW)
    assert _state(copy)["mode"] == "full"
    return h.warehouse_snapshot(copy / "warehouse.duckdb")


def _assert_same_as_from_scratch(data: Path, workdir: Path, as_of: str) -> None:
    incremental = h.warehouse_snapshot(data / "warehouse.duckdb")
    scratch = _from_scratch(data, workdir, as_of)
    assert incremental.keys() == scratch.keys()
    different = [table for table in incremental if incremental[table] != scratch[table]]
    assert different == [], f"incremental build differs from a build from scratch in {different}"


def _build_and_query(folder: Path, people: list, as_of: date, sql: str) -> list[tuple]:
    """Build the warehouse of `folder` (its lake as it is) and return the rows of `sql`."""
    build_warehouse(Settings.for_folder(folder), people, [], as_of=as_of, now=NOW)
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def _linked(before: Path, after: Path, table: str) -> list[str]:
    """The files of `table` that build `after` hard-linked from build `before`."""
    return [p.name for p in (after / table).glob("*.parquet")
            if (before / table / p.name).exists() and os.path.samefile(p, before / table / p.name)]


def _local(day: str, hour: int, minute: int, zone: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=ZoneInfo(zone))


def _fitabase_rows(start: datetime, minutes: int, steps: int) -> list[tuple[str, str]]:
    """Fitabase narrow rows (local wall-clock times) for `minutes` minutes from `start`."""
    rows = []
    for k in range(minutes):
        moment = start + timedelta(minutes=k)  # wall-clock arithmetic in the zone of `start`
        rows.append((f"{moment.month}/{moment.day}/{moment.year} {moment.strftime('%I:%M:%S %p').lstrip('0')}",
                     str(steps)))
    return rows


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """A folder after two nights (the small cohort's first files, then the rest with a re-export,
    a month edge, a DST night and a second watch), and the derived build of each night."""
    workdir = tmp_path_factory.mktemp("incremental")
    data = h.small_cohort(workdir / "data", part="initial")
    first = _run(data, h.FIRST_AS_OF)
    h.small_cohort(data, part="later")
    zone = "America/New_York"  # P002, a Fitbit user
    extra = data / "inbox" / "P002" / "extra"
    extra.mkdir(parents=True)
    # a re-export overlapping days already in the lake (different counts: the newest export wins)
    (extra / "reexport.csv").write_text(narrow_csv("P002", _fitabase_rows(_local("2024-10-10", 9, 0, zone), 90, 101)))
    # a local month edge (31 October -> 1 November) and the night the clocks go back (3 November)
    (extra / "month-edge.csv").write_text(narrow_csv(
        "P002", _fitabase_rows(_local("2024-10-31", 23, 40, zone), 45, 112)
        + _fitabase_rows(_local("2024-11-03", 0, 30, zone), 30, 95)))
    # a second watch's monitoring file over an old day of P007 (Sydney; DST began 6 October)
    fit = data / "inbox" / "P007" / "other-watch.fit"
    fit.write_bytes(fit_monitoring(datetime(2024, 10, 5, 13, 0, tzinfo=UTC), messages=48))
    second = _run(data, h.AS_OF)
    return workdir, data, first, second


def test_the_first_build_is_full_and_the_next_one_incremental(nights):
    _, _, first, second = nights
    assert first["mode"] == "full"
    assert second["mode"] == "incremental"
    assert second["recomputed_participants"] == 0  # no participant in full: only changed days
    assert second["changed_days"] > 0


def test_after_new_files_every_table_equals_a_build_from_scratch(nights):
    workdir, data, _, _ = nights
    _assert_same_as_from_scratch(data, workdir, h.AS_OF)


def test_a_build_in_many_small_chunks_equals_one_in_a_single_chunk(nights, monkeypatch):
    """CHUNK_ROWS only bounds memory: participants computed a few at a time give the same tables."""
    workdir, data, _, _ = nights
    whole = _from_scratch(data, workdir, h.AS_OF)
    monkeypatch.setattr("pipeline.derived.CHUNK_ROWS", 1)  # one participant per chunk
    chunked = _from_scratch(data, workdir, h.AS_OF)
    assert [table for table in whole if whole[table] != chunked[table]] == []


def test_the_re_export_and_the_month_edge_reached_the_warehouse(nights):
    _, data, _, _ = nights
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        steps = con.execute("select steps from minute_steps where participant_id = 'P002' and minute_utc = ?",
                            [_local("2024-10-10", 9, 30, "America/New_York")]).fetchall()
        edge = con.execute("select local_date, count(*) from minute_steps where participant_id = 'P002' "
                           "and steps = 112 group by 1 order by 1").fetchall()
    finally:
        con.close()
    assert steps == [(101.0,)]
    assert edge == [(date(2024, 10, 31), 20), (date(2024, 11, 1), 25)]


def test_a_night_with_nothing_new_recomputes_nothing(nights, tmp_path):
    workdir, data, _, _ = nights
    copy = h.copy_folder(data, tmp_path / "data")
    state = _run(copy, h.AS_OF)
    assert (state["mode"], state["files_written"]) == ("unchanged", 0)
    assert h.warehouse_snapshot(copy / "warehouse.duckdb") == h.warehouse_snapshot(data / "warehouse.duckdb")


def test_one_new_day_recomputes_only_the_days_around_it(nights, tmp_path):
    workdir, data, _, _ = nights
    copy = h.copy_folder(data, tmp_path / "data")
    (copy / "inbox" / "P002" / "extra" / "next-day.csv").write_text(narrow_csv(
        "P002", _fitabase_rows(_local("2024-11-26", 8, 0, "America/New_York"), 60, 120)))
    state = _run(copy, h.AS_OF)
    assert state["mode"] == "incremental" and state["changed_days"] <= 3 and state["files_linked"] > 0
    _assert_same_as_from_scratch(copy, workdir, h.AS_OF)


def test_the_first_night_after_a_full_build_rewrites_only_its_last_days(nights, tmp_path):
    """A full build writes each chunk's last RECENT_DAYS days in a file of their own, so the next
    night, which recomputes the last day or two, rewrites those days and not the whole month."""
    workdir, data, _, _ = nights
    copy = h.copy_folder(data, tmp_path / "data")
    shutil.rmtree(copy / "lake" / "derived")
    (copy / "warehouse.duckdb").unlink()
    assert _run(copy, h.AS_OF)["mode"] == "full"
    con = duckdb.connect()
    full = current_build(copy / "lake" / "derived", copy / "warehouse.duckdb")
    ((latest,),) = con.execute("select max(local_date) from read_parquet(?)",
                               [str(full / "minute_steps" / "*.parquet")]).fetchall()
    (copy / "inbox" / "P002" / "extra" / "next-day.csv").write_text(narrow_csv(
        "P002", _fitabase_rows(_local("2024-11-26", 8, 0, "America/New_York"), 60, 120)))
    assert _run(copy, h.AS_OF)["mode"] == "incremental"
    night = current_build(copy / "lake" / "derived", copy / "warehouse.duckdb")
    build_id = night.name.removeprefix("build-")
    written = [str(p) for p in (night / "minute_steps").glob(f"{build_id}-*.parquet")]
    ((first,),) = con.execute("select min(local_date) from read_parquet(?)", [written]).fetchall()
    assert first > latest - timedelta(days=RECENT_DAYS)  # not the month's first days (1 November before)
    _assert_same_as_from_scratch(copy, workdir, h.AS_OF)


def _edit_registry(data: Path, participant_id: str, **changes: str) -> None:
    path = data / "participants.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    edited = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        if cells[0] == participant_id:
            for column, value in changes.items():
                cells[header.index(column)] = value
        edited.append(",".join(cells))
    path.write_text("\n".join(edited) + "\n")


def test_a_changed_time_zone_recomputes_that_participant(nights, tmp_path):
    workdir, data, _, _ = nights
    copy = h.copy_folder(data, tmp_path / "data")
    _edit_registry(copy, "P002", time_zone="America/Chicago")
    state = _run(copy, h.AS_OF)
    assert (state["mode"], state["recomputed_participants"], state["changed_days"]) == ("incremental", 1, 0)
    _assert_same_as_from_scratch(copy, workdir, h.AS_OF)


def test_a_participant_added_to_and_one_removed_from_the_registry(nights, tmp_path):
    workdir, data, _, _ = nights
    copy = h.copy_folder(data, tmp_path / "data")
    path = copy / "participants.csv"
    lines = path.read_text().splitlines()
    kept = [line for line in lines if not line.startswith("P007,")]  # P007's lake rows stay in the lake
    kept.append("N001,riverside,Europe/London,2024-11-01,New Person,,,")
    path.write_text("\n".join(kept) + "\n")
    inbox = copy / "inbox" / "N001"
    inbox.mkdir(parents=True)
    (inbox / "first.csv").write_text(narrow_csv("N001", _fitabase_rows(_local("2024-11-04", 10, 0, "Europe/London"),
                                                                        40, 104)))
    state = _run(copy, h.AS_OF)
    assert state["mode"] == "incremental"
    _assert_same_as_from_scratch(copy, workdir, h.AS_OF)


def test_a_changed_programme_start_or_prescription_reaches_the_marts_without_recomputing(nights, tmp_path):
    workdir, data, _, _ = nights
    copy = h.copy_folder(data, tmp_path / "data")
    _edit_registry(copy, "0042", programme_start="2024-10-09")
    with open(copy / "prescriptions.csv", "a") as handle:
        handle.write("P007,3,45,2\n")
    state = _run(copy, h.AS_OF)
    assert (state["mode"], state["files_written"]) == ("unchanged", 0)
    _assert_same_as_from_scratch(copy, workdir, h.AS_OF)
    con = duckdb.connect(str(copy / "warehouse.duckdb"), read_only=True)
    try:
        assert con.sql("select min(local_date) from daily_activity where participant_id = '0042'").fetchall() == [
            (date(2024, 10, 9),)]
        assert con.sql("select prescribed_minutes from weekly_adherence where participant_id = 'P007' "
                       "and programme_week = 3").fetchall() == [(45.0,)]
    finally:
        con.close()


HELD_READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.sql("select count(*), sum(steps) from minute_steps").fetchall(), flush=True)
sys.stdin.readline()
print(con.sql("select count(*), sum(steps) from minute_steps").fetchall(), flush=True)
"""


def test_an_old_build_stays_while_a_reader_holds_its_warehouse(nights, tmp_path):
    """The reader is another process, as an analyst's is (DuckDB's file lock is per process)."""
    _, data, _, _ = nights
    copy = h.copy_folder(data, tmp_path / "data")
    root = copy / "lake" / "derived"
    old = current_build(root, copy / "warehouse.duckdb")
    reader = subprocess.Popen([sys.executable, "-c", HELD_READER, str(copy / "warehouse.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        before = reader.stdout.readline()
        _edit_registry(copy, "P002", time_zone="America/Chicago")  # a full build: every file new
        _run(copy, h.AS_OF)
        _run(copy, h.AS_OF)  # the next run removes unused builds, not the one held open
        assert old.exists()
        reader.stdin.write("again\n")
        reader.stdin.flush()
        assert reader.stdout.readline() == before
    finally:
        reader.communicate(timeout=60)
    remove_unused_builds(root, keep=current_build(root, copy / "warehouse.duckdb"))
    assert not old.exists()
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == [
        current_build(root, copy / "warehouse.duckdb").name]


def _cohort_generator():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cohort_generator.py"
    spec = importlib.util.spec_from_file_location("cohort_generator", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_nightly_fit_monitoring_days_across_a_month_edge_and_a_dst_night(tmp_path):
    """The benchmark's cohort (FIT monitoring day files with cumulative counters, one Fitbit
    user): a week up to the night the clocks go forward in Europe, then one new day per
    participant per night into April; each night equals a build from scratch."""
    gen = _cohort_generator()
    data = tmp_path / "data"
    start = date(2024, 3, 26)
    gen.generate(data, 3, 5, fitbit_share=0.34, start=start, workers=1)
    assert _run(data, "2024-03-31")["mode"] == "full"
    for night in range(1, 4):
        gen.add_day(data, workers=1)
        as_of = (start + timedelta(days=5 + night)).isoformat()
        state = _run(data, as_of)
        assert state["mode"] == "incremental" and state["recomputed_participants"] == 0
        _assert_same_as_from_scratch(data, tmp_path, as_of)


def test_a_lake_file_rewritten_in_place_recomputes_its_participant(tmp_path):
    """Lake batch files are never rewritten by the pipeline, but if one is (or disappears), the
    build notices by size and modification time and recomputes that participant in full."""
    from pipeline.registry import Participant
    from tests.warehouse_helpers import build, worn_day

    people = [Participant("p1", "c1", "Europe/London", date(2024, 3, 25)),
              Participant("p2", "c1", "Europe/London", date(2024, 3, 25))]
    rows = worn_day("p1", date(2024, 3, 30), "Europe/London", walk=[(10, 0, 12)])
    other = worn_day("p2", date(2024, 3, 31), "Europe/London", walk=[(9, 0, 20)])
    build(tmp_path, people, rows + other, date(2024, 4, 2)).close()
    changed = worn_day("p1", date(2024, 3, 31), "Europe/London", walk=[(11, 0, 30)])
    build(tmp_path, people, changed + other, date(2024, 4, 2)).close()  # the same batch file, new rows
    state = _state(tmp_path)
    assert (state["mode"], state["recomputed_participants"]) == ("incremental", 2)
    build(tmp_path / "scratch", people, changed + other, date(2024, 4, 2)).close()
    assert _state(tmp_path / "scratch")["mode"] == "full"
    assert h.warehouse_snapshot(tmp_path / "warehouse.duckdb") == h.warehouse_snapshot(
        tmp_path / "scratch" / "warehouse.duckdb")


def test_walking_segments_after_new_minutes_equal_a_build_from_scratch(tmp_path):
    """walking_segments are kept from the previous build up to just before the changed days and
    recomputed from there (pipeline/derived.py, _Builder.segments): a walk continued by new
    minutes after midnight joins the old segment, a new minute that bridges two old segments
    merges them and renumbers every later one, and the segments of untouched months stay as
    they were (their files hard-linked)."""
    from pipeline.lake import write_interval_batch
    from pipeline.registry import Participant
    from pipeline.schema import step_intervals_polars_schema
    from tests.warehouse_helpers import interval, worn_day

    people = [Participant("p1", "c1", "Europe/London", date(2024, 1, 20)),
              Participant("p2", "c1", "UTC", date(2024, 1, 20))]
    days = [date(2024, 1, 20) + timedelta(days=k) for k in range(22)]  # 20 January to 10 February
    first = [row for day in days for row in worn_day("p1", day, "Europe/London", walk=[(9, 0, 12), (15, 30, 4)])]
    first += [row for day in days for row in worn_day("p2", day, "UTC", walk=[(11, 0, 15), (11, 19, 15)])]
    first += worn_day("p1", days[-1], "Europe/London", hours=[], walk=[(23, 44, 15)])  # 23:45 to 23:59
    later = [interval("p1", f"2024-02-11T00:{m:02d}:00+00:00", f"2024-02-11T00:{m + 1:02d}:00+00:00", 120)
             for m in range(1, 21)]  # joins the walk before midnight over a gap of one minute
    later += [interval("p2", f"2024-02-05T11:{m:02d}:00+00:00", f"2024-02-05T11:{m + 1:02d}:00+00:00", 120)
              for m in (17, 18)]  # bridges the two walks of 5 February (minutes 11:01-15 and 11:20-34)

    def night(folder: Path, batches: list[tuple[str, list[dict]]]) -> list[tuple]:
        for name, rows in batches:
            write_interval_batch(pl.DataFrame(rows, schema=step_intervals_polars_schema()),
                                 Settings.for_folder(folder).data.intervals_dir, name)
        return _build_and_query(folder, people, date(2024, 2, 12),
                                "select * from walking_segments order by participant_id, segment_number")

    night(tmp_path / "data", [("first", first)])
    before = current_build(tmp_path / "data" / "lake" / "derived", tmp_path / "data" / "warehouse.duckdb")
    segments = night(tmp_path / "data", [("later", later)])
    state = _state(tmp_path / "data")
    assert (state["mode"], state["recomputed_participants"]) == ("incremental", 0)
    assert segments == night(tmp_path / "scratch", [("first", first), ("later", later)])
    assert _state(tmp_path / "scratch")["mode"] == "full"

    by_participant = {p: [s for s in segments if s[0] == p] for p in ("p1", "p2")}
    assert [s[1] for s in by_participant["p2"]] == list(range(1, 44))  # 2 a day for 22 days, one merged
    merged = [s for s in by_participant["p2"] if s[4] == date(2024, 2, 5)]
    assert [(s[5], s[6], s[7]) for s in merged] == [(32, 34, True)]  # walking minutes, span, bout
    last = by_participant["p1"][-1]
    assert (last[4], last[5], last[6]) == (date(2024, 2, 10), 35, 36)  # 23:45 to 00:20, one minute missing

    after = current_build(tmp_path / "data" / "lake" / "derived", tmp_path / "data" / "warehouse.duckdb")
    assert _linked(before, after, "walking_segments"), "January's segments should be carried over, not recomputed"


def test_a_build_from_before_segments_and_totals_were_derived_rows_is_carried_on(nights, tmp_path):
    """A data folder whose last build predates derived walking_segments and device totals (no
    such folders, fingerprints or totals listing, an index without last_utc) is not rebuilt from
    scratch: its derived rows are kept, everyone's segments computed and every total file read,
    equal to a build from scratch."""
    workdir, data, _, _ = nights
    copy = h.copy_folder(data, tmp_path / "data")
    folder = current_build(copy / "lake" / "derived", copy / "warehouse.duckdb")
    for table in ("walking_segments", "device_totals"):
        shutil.rmtree(folder / table)
    (folder / ".totals_files.parquet").unlink()
    meta = json.loads((folder / ".state.json").read_text())
    del meta["segments_code"], meta["totals_code"]
    (folder / ".state.json").write_text(json.dumps(meta))
    index = pl.read_parquet(folder / ".index.parquet")
    index.filter(~pl.col("table").is_in(["walking_segments", "device_totals"])).drop("last_utc").write_parquet(
        folder / ".index.parquet")
    assert h.warehouse_snapshot(data / "warehouse.duckdb")["daily_crosscheck"][0] > 0  # totals to carry
    (copy / "inbox" / "P002" / "extra" / "next-day.csv").write_text(narrow_csv(
        "P002", _fitabase_rows(_local("2024-11-26", 8, 0, "America/New_York"), 60, 120)))
    state = _run(copy, h.AS_OF)
    assert (state["mode"], state["recomputed_participants"]) == ("incremental", 0)
    _assert_same_as_from_scratch(copy, workdir, h.AS_OF)


def test_device_totals_fold_in_only_the_new_lake_files(tmp_path):
    """daily_crosscheck's device totals are kept between builds (pipeline/derived.py,
    _Builder.device_totals): a night reads only the lake's new total files, a larger total for a
    day already seen replaces it (a smaller one does not), untouched months stay hard-linked, and
    the table equals a build from scratch."""
    from pipeline.lake import write_daily_totals_batch
    from pipeline.registry import Participant

    people = [Participant("p1", "c1", "UTC", date(2024, 1, 20))]

    def totals(rows: list[tuple[str, float]]) -> pl.DataFrame:
        return pl.DataFrame(
            [("p1", "garmin", "fr", date.fromisoformat(day), steps, "a" * 64, NOW) for day, steps in rows],
            schema={"participant_id": pl.String, "source": pl.String, "device": pl.String, "local_date": pl.Date,
                    "steps": pl.Float64, "file_sha256": pl.String, "ingested_at": pl.Datetime("us", "UTC")},
            orient="row")

    def night(folder: Path, batches: list[tuple[str, list[tuple[str, float]]]]) -> list[tuple]:
        for name, rows in batches:
            write_daily_totals_batch(totals(rows), Settings.for_folder(folder).data.lake / "device_daily_totals", name)
        return _build_and_query(folder, people, date(2024, 2, 12),
                                "select local_date, device_steps from daily_crosscheck order by 1")

    first = [("2024-01-30", 8000), ("2024-02-01", 3000), ("2024-02-03", 9000)]
    later = [("2024-02-01", 6500), ("2024-02-02", 7000)]
    smaller = [("2024-02-03", 100)]  # a partial sync file of a day already complete
    assert night(tmp_path / "data", [("first", first)]) == [
        (date(2024, 1, 30), 8000), (date(2024, 2, 1), 3000), (date(2024, 2, 3), 9000)]
    before = current_build(tmp_path / "data" / "lake" / "derived", tmp_path / "data" / "warehouse.duckdb")
    rows = night(tmp_path / "data", [("later", later), ("smaller", smaller)])
    assert rows == [(date(2024, 1, 30), 8000), (date(2024, 2, 1), 6500), (date(2024, 2, 2), 7000),
                    (date(2024, 2, 3), 9000)]
    assert rows == night(tmp_path / "scratch", [("first", first), ("later", later), ("smaller", smaller)])
    after = current_build(tmp_path / "data" / "lake" / "derived", tmp_path / "data" / "warehouse.duckdb")
    assert len(_linked(before, after, "device_totals")) == 1, "January's totals should be carried over, February's rewritten"
    read = pl.read_parquet(after / ".totals_files.parquet")["relpath"].to_list()
    assert len(read) == 3 and all("participant_id=p1" in path for path in read)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names each fsynced file through /proc/self/fd (Linux)")
def test_a_build_without_syncfs_fsyncs_every_file_it_wrote(tmp_path, monkeypatch):
    from pipeline import lake
    from tests.test_ingest_batches import NOW, sample_folder

    settings = sample_folder(tmp_path / "data", ("P001",))
    participants = read_participants(settings.data.participants_csv)
    ingest_inbox(settings.data, participants, now=NOW)
    monkeypatch.setattr(lake, "_sync_filesystems", lambda folders: False)
    synced: set[str] = set()
    real_fsync = lake.os.fsync

    def fsync(fd: int) -> None:
        synced.add(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(lake.os, "fsync", fsync)
    build_warehouse(settings, participants, read_plan_rows(settings.data.prescriptions_csv, participants))
    (build,) = (settings.data.lake / "derived").glob("build-*")
    written = {path.name for path in build.rglob("*.parquet")}
    assert len(written) > 10 and written <= synced  # each derived file, and the build's own catalogues


def test_files_written_side_by_side_each_hold_the_rows_of_their_own_query(tmp_path):
    """_copy_to_files runs the COPYs on WRITERS connections at once: whichever finishes first, file
    k holds the rows of query k, and the files are listed in query order (the first query is the
    largest, so it finishes last)."""
    (tmp_path / "minute_steps").mkdir()
    con = duckdb.connect()
    try:
        con.execute("create table rows_by_month as select i // 1000 as month, i from range(200000) as r(i) "
                    "where i < 100000 or i % 1000 < 3")
        with _Builder(con, tmp_path, tmp_path, "test") as builder:
            assert len(builder.writers) == WRITERS >= 2
            months = [0, *range(100, 130)]
            builder._copy_to_files("minute_steps", [("select * from rows_by_month where month = ?", [month])
                                                    for month in months])
        files = sorted((tmp_path / "minute_steps").glob("*.parquet"))
        assert [name for _, name in builder.written] == [f.name for f in files] and len(files) == len(months)
        for month, file in zip(months, files):
            got = con.execute("select distinct month from read_parquet(?)", [str(file)]).fetchall()
            assert got == [(month,)], file.name
    finally:
        con.close()


def test_a_write_that_fails_on_one_connection_fails_the_build_step(tmp_path):
    """The error is raised once both writers have stopped, and no query is started after it."""
    (tmp_path / "day_facts").mkdir()
    con = duckdb.connect()
    try:
        con.execute("create table some_rows as select 1 as x")
        with _Builder(con, tmp_path, tmp_path, "test") as builder:
            with pytest.raises(duckdb.CatalogException, match="no_such_table"):
                builder._copy_to_files("day_facts", [("select * from no_such_table", []),
                                                     *[("select * from range(3000000)", [])] * 2,
                                                     *[("select * from some_rows", [])] * 20])
        written = sorted((tmp_path / "day_facts").glob("*.parquet"))
        assert len(written) < 20, "the other writer went on after the failure"
    finally:
        con.close()
