"""Build a warehouse from hand-made intervals, bypassing the readers (tests of the SQL models)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipeline.config import Settings
from pipeline.lake import write_interval_batch
from pipeline.registry import Participant, PlanRow
from pipeline.schema import step_intervals_polars_schema
from pipeline.warehouse import build_warehouse

INGESTED_AT = datetime(2025, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def interval(pid: str, start: str | datetime, end: str | datetime, steps: float, *, source: str = "fitbit",
             device: str = "dev", cumulative: float | None = None, activity_type: str | None = None,
             file_sha256: str = "f" * 64, ingested_at: datetime = INGESTED_AT, tz: str = "UTC") -> dict:
    start = utc(start) if isinstance(start, str) else start
    end = utc(end) if isinstance(end, str) else end
    from zoneinfo import ZoneInfo

    return {
        "participant_id": pid, "source": source, "device": device, "file_sha256": file_sha256,
        "start_utc": start, "end_utc": end, "steps": float(steps), "cumulative_steps": cumulative,
        "distance_m": None, "activity_type": activity_type,
        "local_date": start.astimezone(ZoneInfo(tz)).date(), "clock_adjusted": False, "ingested_at": ingested_at,
    }


def worn_day(pid: str, day: date, tz: str, *, hours=range(8, 20), walk: list[tuple[int, int, float]] = (),
             source: str = "fitbit") -> list[dict]:
    """A worn local day: one 5-step minute at :00 of each hour in `hours`, plus walks given as
    (start hour, start minute, minutes) at 110 steps/min (all local wall-clock)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    rows = []
    for hour in hours:
        start = datetime(day.year, day.month, day.day, hour, 0, tzinfo=zone)
        rows.append(interval(pid, start, start + timedelta(minutes=1), 5, source=source, tz=tz))
    for hour, minute, length in walk:
        first = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        for offset in range(int(length)):
            start = first + timedelta(minutes=offset + 1)  # walks start after the :00 worn minute
            rows.append(interval(pid, start, start + timedelta(minutes=1), 110, source=source, tz=tz))
    return rows


def build(tmp_path: Path, participants: list[Participant], rows: list[dict], as_of: date,
          plan_rows: list[PlanRow] = ()) -> duckdb.DuckDBPyConnection:
    settings = Settings.for_folder(tmp_path)
    frame = pl.DataFrame(rows, schema=step_intervals_polars_schema()) if rows else pl.DataFrame(
        schema=step_intervals_polars_schema())
    write_interval_batch(frame, settings.data.intervals_dir, "test")
    path = build_warehouse(settings, participants, list(plan_rows), as_of=as_of)
    return duckdb.connect(str(path), read_only=True)


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    rows = con.execute(sql, params or []).fetchall()
    assert len(rows) == 1, rows
    return rows[0][0] if len(rows[0]) == 1 else rows[0]
