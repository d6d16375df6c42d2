"""Build warehouse.duckdb from the lake: SQL models in pipeline/sql, run in data-flow order.

The new database is written beside the old one (warehouse.duckdb.building), closed, and renamed
over it: analysts with the old file open keep a consistent snapshot and are never blocked.
Inputs from Python (registry, prescription, settings) are registered as Arrow tables; the SQL
never has a value spliced into it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline.config import Settings
from pipeline.errors import StorageError
from pipeline.lake import batch_files, fsync_dir
from pipeline.prescription import prescription_weeks
from pipeline.registry import Participant, PlanRow
from pipeline.schema import DAILY_TOTAL_COLUMNS, step_intervals_polars_schema

SQL_DIR = Path(__file__).resolve().parent / "sql"

# (table, model file) in the order the data flows. Staging renames and casts; marts compute.
MODELS: tuple[tuple[str, str], ...] = (
    ("participants", "staging/stg_participants.sql"),
    ("stg_step_intervals", "staging/stg_step_intervals.sql"),
    ("step_intervals", "marts/step_intervals.sql"),
    ("minute_steps", "marts/minute_steps.sql"),
    ("walking_segments", "marts/walking_segments.sql"),
    ("daily_activity", "marts/daily_activity.sql"),
    ("weekly_activity", "marts/weekly_activity.sql"),
    ("weekly_adherence", "marts/weekly_adherence.sql"),
    ("daily_crosscheck", "marts/daily_crosscheck.sql"),
)

# Build inputs dropped once the marts exist (analysts see the marts and the settings tables).
INTERMEDIATE_TABLES = ("lake_step_intervals", "lake_device_daily_totals", "registry_participants", "stg_step_intervals")


def report_dates(participants: list[Participant], as_of: date | None, now: datetime) -> dict[str, date]:
    """The report date per participant: --as-of for everyone, else today in their own zone."""
    from zoneinfo import ZoneInfo

    return {
        p.participant_id: as_of if as_of is not None else now.astimezone(ZoneInfo(p.time_zone)).date()
        for p in participants
    }


def programme_week_of(day: date, programme_start: date) -> int:
    return (day - programme_start).days // 7 + 1


def _register_inputs(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    participants: list[Participant],
    plan_rows: list[PlanRow],
    dates: dict[str, date],
    built_at: datetime,
) -> None:
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
    prescribed = pl.DataFrame(
        [asdict(w) for w in prescription_weeks(participants, plan_rows, max(weeks, 0), settings.definitions)],
        schema={"participant_id": pl.String, "programme_week": pl.Int32, "prescribed_minutes": pl.Float64,
                "prescribed_days": pl.Int32, "plan_source": pl.String},
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
    for name, frame in (
        ("registry_participants", registry),
        ("prescription_weeks", prescribed),
        ("definitions", definitions),
        ("source_priority", priority),
        ("run_info", run_info),
    ):
        _create_from_frame(con, name, frame)
    _create_from_parquet(con, "lake_step_intervals", batch_files(settings.data.intervals_dir), step_intervals_polars_schema())
    totals_schema = {"participant_id": pl.String, **DAILY_TOTAL_COLUMNS, "file_sha256": pl.String,
                     "ingested_at": pl.Datetime("us", "UTC")}
    _create_from_parquet(con, "lake_device_daily_totals", batch_files(settings.data.lake / "device_daily_totals"),
                         pl.Schema(totals_schema))


def _create_from_frame(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    con.register("_frame", frame.to_arrow())
    con.execute(f'create table "{name}" as select * from _frame')  # name from our own list, never user input
    con.unregister("_frame")


def _create_from_parquet(con: duckdb.DuckDBPyConnection, name: str, files: list[Path], schema: pl.Schema) -> None:
    if files:
        con.read_parquet([str(f) for f in files], union_by_name=True).create(name)
    else:
        _create_from_frame(con, name, pl.DataFrame(schema=schema))


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
        con = duckdb.connect(str(building))
        try:
            con.execute("set TimeZone = 'UTC'")  # never the machine's zone: see engineering notes
            _register_inputs(con, settings, participants, plan_rows, report_dates(participants, as_of, now), now)
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
        os.replace(building, target)
        fsync_dir(target.parent)
    except BaseException as exc:  # the old warehouse stays in place, untouched
        for path in leftovers:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        if _is_storage_failure(exc):
            raise StorageError(building, exc, doing="build the warehouse") from exc
        raise
    return target


def _is_storage_failure(exc: BaseException) -> bool:
    """Disk full or no permission, however DuckDB reports it (an IOException, or a failed commit
    of the write-ahead log)."""
    if isinstance(exc, (OSError, duckdb.IOException)):
        return True
    return isinstance(exc, duckdb.TransactionException) and "Could not write" in str(exc)


def read_report_date(warehouse: Path) -> date:
    """The run's report date as recorded in run_info (names the outbox folder)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.sql("select report_date from run_info").fetchall()[0][0]
    finally:
        con.close()
