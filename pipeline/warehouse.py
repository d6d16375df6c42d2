"""Build warehouse.duckdb from the lake: SQL models in pipeline/sql, run in data-flow order.

First the derived rows (pipeline/derived.py, models in pipeline/sql/derived) are brought up to date
in a new build folder under DIR/lake/derived/, recomputing only the local days whose lake input
changed. Then the new database is written beside the old one (warehouse.duckdb.building) from
those rows, closed, and renamed over it: analysts with the old file open keep a consistent snapshot
(the old build folder stays until no one holds the old file) and are never blocked.
step_intervals, minute_steps and walking_segments are views over the build's Parquet files (up to
hundreds of millions of rows a year: copying them into every night's database would cost as much as
the history); the other tables are small and rebuilt every run from the derived per-day rows.
Inputs from Python (registry, prescription, settings) are registered as Arrow tables; the SQL
never has a value spliced into it (only our own folder names, as literals, where DuckDB cannot bind
a parameter: view definitions and COPY targets).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline.config import Settings
from pipeline.derived import STORED_TABLES, DerivedBuild, link_warehouse, refresh_derived, sql_literal
from pipeline.errors import StorageError
from pipeline.lake import fsync_dir
from pipeline.prescription import prescription_weeks
from pipeline.registry import Participant, PlanRow
from pipeline.schema import step_intervals_polars_schema

SQL_DIR = Path(__file__).resolve().parent / "sql"

# (table, model file) in the order the data flows. Staging renames and casts; marts compute. The
# heavy models (staging/stg_step_intervals.sql, derived/*.sql) run in pipeline/derived.py.
MODELS: tuple[tuple[str, str], ...] = (
    ("participants", "staging/stg_participants.sql"),
    ("daily_activity", "marts/daily_activity.sql"),
    ("weekly_activity", "marts/weekly_activity.sql"),
    ("weekly_adherence", "marts/weekly_adherence.sql"),
    ("daily_crosscheck", "marts/daily_crosscheck.sql"),
)

# Views over the derived Parquet files of the build: (view, model file, derived table). In the
# model, `derived_<table>` stands for the build's files of that table.
VIEWS: tuple[tuple[str, str, str], ...] = (
    ("step_intervals", "marts/step_intervals.sql", "intervals"),
    ("minute_steps", "marts/minute_steps.sql", "minute_steps"),
    ("walking_segments", "marts/walking_segments.sql", "walking_segments"),
)

# Derived tables the marts read during the build (temporary: analysts see the marts).
MART_INPUTS = ("day_facts", "day_sources", "device_totals")

# Build inputs dropped once the marts exist (analysts see the marts and the settings tables).
INTERMEDIATE_TABLES = ("registry_participants",)

# DuckDB resources: memory is bounded (it spills to DIR/lake/derived/.spill beyond the limit).
DUCKDB_MEMORY_LIMIT = "1500MB"


def report_dates(participants: list[Participant], as_of: date | None, now: datetime) -> dict[str, date]:
    """The report date per participant: --as-of for everyone, else today in their own zone."""
    from zoneinfo import ZoneInfo

    return {
        p.participant_id: as_of if as_of is not None else now.astimezone(ZoneInfo(p.time_zone)).date()
        for p in participants
    }


def programme_week_of(day: date, programme_start: date) -> int:
    return (day - programme_start).days // 7 + 1


def input_frames(
    settings: Settings,
    participants: list[Participant],
    plan_rows: list[PlanRow],
    dates: dict[str, date],
    built_at: datetime,
) -> dict[str, pl.DataFrame]:
    """The inputs that come from Python (registry, prescription, settings), as frames."""
    registry = pl.DataFrame(
        {
            "participant_id": [p.participant_id for p in participants],
            "clinic_id": [p.clinic_id for p in participants],
            "time_zone": [p.time_zone for p in participants],
            "programme_start": [p.programme_start for p in participants],
            "report_date": [dates[p.participant_id] for p in participants],
        },
        schema={"participant_id": pl.String, "clinic_id": pl.String, "time_zone": pl.String,
                "programme_start": pl.Date, "report_date": pl.Date},
    )
    weeks = max(
        [programme_week_of(dates[p.participant_id], p.programme_start) for p in participants] or [0]
    )
    prescribed = pl.DataFrame(  # rows as tuples: asdict() of ~53,000 weeks (1,000 patients, a year) takes seconds
        [(w.participant_id, w.programme_week, w.prescribed_minutes, w.prescribed_days, w.plan_source)
         for w in prescription_weeks(participants, plan_rows, max(weeks, 0), settings.definitions)],
        schema={"participant_id": pl.String, "programme_week": pl.Int32, "prescribed_minutes": pl.Float64,
                "prescribed_days": pl.Int32, "plan_source": pl.String},
        orient="row",
    )
    definitions = pl.DataFrame([asdict(settings.definitions)])
    priority = pl.DataFrame(
        {"source": list(settings.source_priority), "priority_rank": list(range(1, len(settings.source_priority) + 1))},
        schema={"source": pl.String, "priority_rank": pl.Int32},
    )
    run_info = pl.DataFrame(
        {"report_date": [max(dates.values()) if dates else built_at.date()],
         "definitions_version": [settings.definitions.version], "built_at": [built_at]},
        schema={"report_date": pl.Date, "definitions_version": pl.String, "built_at": pl.Datetime("us", "UTC")},
    )
    return {"registry_participants": registry, "prescription_weeks": prescribed, "definitions": definitions,
            "source_priority": priority, "run_info": run_info}


def _spill_folder(settings: Settings) -> Path:
    return settings.data.lake / "derived" / ".spill"


def _configure(con: duckdb.DuckDBPyConnection, spill: Path, *, keep_order: bool) -> None:
    con.execute("set TimeZone = 'UTC'")  # never the machine's zone: see engineering notes
    con.execute("set memory_limit = ?", [DUCKDB_MEMORY_LIMIT])
    con.execute("set temp_directory = ?", [str(spill)])
    if not keep_order:  # the derived rows: each file is written in its own order
        con.execute("set preserve_insertion_order = false")


def _derive(settings: Settings, frames: dict[str, pl.DataFrame], target: Path, now: datetime) -> DerivedBuild:
    """Bring the derived rows up to date (a scratch in-memory database; spills inside the data
    folder)."""
    con = duckdb.connect()
    try:
        _configure(con, _spill_folder(settings), keep_order=False)
        for name in ("registry_participants", "definitions", "source_priority"):
            _create_from_frame(con, name, frames[name], temporary=True)
        sql = (SQL_DIR / "staging/stg_participants.sql").read_text()
        con.execute(f"create temp table participants as {sql}")
        _create_from_frame(con, "empty_lake_rows", pl.DataFrame(schema=step_intervals_polars_schema()), temporary=True)
        return refresh_derived(con, settings.data.lake, target, frames, now=now)
    finally:
        con.close()


def _register_inputs(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame],
                     derived: DerivedBuild) -> None:
    for name, frame in frames.items():
        _create_from_frame(con, name, frame, temporary=name == "registry_participants")
    for table in MART_INPUTS:
        con.execute(f'create temp table "derived_{table}" as '  # names from our own list
                    "select * from read_parquet(?, hive_partitioning = false)", [[str(f) for f in derived.files(table)]])


def _create_views(con: duckdb.DuckDBPyConnection, derived: DerivedBuild) -> None:
    """step_intervals, minute_steps and walking_segments: views naming the build's files (a view
    cannot take a bound parameter; the literal is our own folder, quoted)."""
    for table, model, derived_table in VIEWS:
        assert derived_table in STORED_TABLES
        lines = [line for line in (SQL_DIR / model).read_text().splitlines() if not line.lstrip().startswith("--")]
        select = "\n".join(lines)
        placeholder = f"from derived_{derived_table}"
        assert select.count(placeholder) == 1, model
        source = f"from read_parquet({sql_literal(derived.glob(derived_table))}, hive_partitioning = false)"
        sql = select.replace(placeholder, source)
        con.execute(f'create view "{table}" as {sql}')


def _create_from_frame(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame, *,
                       temporary: bool = False) -> None:
    con.register("_frame", frame.to_arrow())
    if temporary:
        con.execute(f'create temp table "{name}" as select * from _frame')  # name from our own list
    else:
        con.execute(f'create table "{name}" as select * from _frame')  # name from our own list, never user input
    con.unregister("_frame")


def build_warehouse(
    settings: Settings,
    participants: list[Participant],
    plan_rows: list[PlanRow],
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> Path:
    """Build the warehouse beside the old one and swap it in. Returns the warehouse path."""
    now = now or datetime.now(UTC)
    target = settings.data.warehouse
    building = target.with_name(target.name + ".building")
    leftovers = (building, building.with_name(building.name + ".wal"))  # of a run killed mid-build
    try:
        for path in leftovers:
            path.unlink(missing_ok=True)
        shutil.rmtree(_spill_folder(settings), ignore_errors=True)  # DuckDB's spill files of a killed run
        frames = input_frames(settings, participants, plan_rows, report_dates(participants, as_of, now), now)
        derived = _derive(settings, frames, target, now)
        con = duckdb.connect(str(building))
        try:
            _configure(con, _spill_folder(settings), keep_order=True)  # the marts are stored in their order
            _register_inputs(con, frames, derived)
            _create_views(con, derived)
            for table, model in MODELS:
                sql = (SQL_DIR / model).read_text()
                con.execute(f'create or replace table "{table}" as {sql}')
            for table in INTERMEDIATE_TABLES:
                con.execute(f'drop table if exists "{table}"')
            con.execute("checkpoint")
        finally:
            con.close()
        with open(building, "rb+") as handle:
            os.fsync(handle.fileno())
        link_warehouse(derived, building)
        os.replace(building, target)
        fsync_dir(target.parent)
    except BaseException as exc:  # the old warehouse (and the build folder it reads) stays in place, untouched
        for path in leftovers:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        if _is_storage_failure(exc):
            raise StorageError(building, exc, doing="build the warehouse") from exc
        raise
    return target


def _is_storage_failure(exc: BaseException) -> bool:
    """Disk full or no permission, however DuckDB reports it (an IOException, a failed commit
    of the write-ahead log, or a failed checkpoint)."""
    if isinstance(exc, (OSError, duckdb.IOException)):
        return True
    return isinstance(exc, (duckdb.TransactionException, duckdb.FatalException)) and "Could not write" in str(exc)


def read_report_date(warehouse: Path) -> date:
    """The run's report date as recorded in run_info (names the outbox folder)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.sql("select report_date from run_info").fetchall()[0][0]
    finally:
        con.close()
