"""What a clinic summary shows, read from the warehouse marts one clinic at a time.

Reads only `weekly_adherence`, `daily_activity`, `daily_crosscheck` and `run_info`, with the
queries in `sql/` and every value bound as a parameter. Nothing here recomputes a metric: the
rows carry the marts' numbers as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timezone
from functools import cache
from pathlib import Path

import duckdb

from pipeline.errors import StepwiseError

SQL_DIR = Path(__file__).with_name("sql")


class ReportDataError(StepwiseError):
    """The warehouse cannot give what a clinic summary needs."""

    def __init__(self, warehouse: Path | str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"{warehouse}: {problem}",
            hint=hint or "Build the warehouse (the nightly run does) and render the summaries again",
        )
        self.warehouse = str(warehouse)


@dataclass(frozen=True)
class RunInfo:
    report_date: date
    definitions_version: str
    built_at_utc: datetime  # aware, UTC


@dataclass(frozen=True)
class WeekRow:
    """One row of weekly_adherence (units: minutes, steps, days, steps/min, percent)."""

    participant_id: str
    clinic_id: str
    programme_week: int
    week_start: date
    week_end: date
    walk_minutes: float | None
    walking_minutes_all: float | None
    moderate_minutes: float | None
    vigorous_minutes: float | None
    steps: int | None
    mean_daily_steps: float | None
    walking_days: int | None
    valid_days: int | None
    low_confidence_days: int | None
    peak30_cadence: float | None
    prescribed_minutes: float | None
    prescribed_days: int | None
    adherence_pct: float | None
    status: str
    flags: tuple[str, ...]
    sources: tuple[str, ...]
    definitions_version: str
    last_data_utc: datetime | None  # aware, UTC; the same on every row of a participant

    @property
    def in_progress(self) -> bool:
        return self.status == "in_progress"


WEEK_FIELDS = tuple(f.name for f in fields(WeekRow))  # read once: a clinic of 200 at a year has 10,600 weeks


@dataclass(frozen=True)
class DayNote:
    """A day of daily_activity that qualifies the numbers (implausible, clock change, totals only)."""

    participant_id: str
    local_date: date
    programme_week: int | None
    steps: float | None
    implausible: bool
    clock_adjusted: bool
    low_confidence: bool


@dataclass(frozen=True)
class CrosscheckRow:
    """A day where a device's own total differs from the computed steps (daily_crosscheck)."""

    participant_id: str
    local_date: date
    source: str
    device: str | None
    device_steps: float | None
    computed_steps: float | None
    difference: float | None
    days_differing: int  # days with a difference for this participant, all of them


@dataclass(frozen=True)
class ClinicData:
    clinic_id: str
    report_date: date
    run: RunInfo
    weeks: dict[str, list[WeekRow]]  # participant_id -> weeks in programme order
    day_notes: dict[str, list[DayNote]]
    crosscheck: dict[str, list[CrosscheckRow]]


@cache
def query(name: str) -> str:
    """The text of `sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def open_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection: a report never writes to the analysts' warehouse."""
    if not path.exists():
        raise ReportDataError(path, "the warehouse file does not exist")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise ReportDataError(path, f"cannot open the warehouse read-only ({exc})") from exc


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def _records(con: duckdb.DuckDBPyConnection, name: str, parameters: dict, warehouse: Path) -> list[dict]:
    try:
        cursor = con.execute(query(name), parameters)
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    except duckdb.CatalogException as exc:
        raise ReportDataError(warehouse, f"a table the summaries read is missing ({exc})") from exc
    except duckdb.BinderException as exc:
        raise ReportDataError(
            warehouse,
            f"a column the summaries read is missing ({exc})",
            hint="The warehouse does not match the reports' contract; rebuild it with this version",
        ) from exc


def read_run_info(con: duckdb.DuckDBPyConnection, warehouse: Path) -> RunInfo:
    rows = _records(con, "run_info", {}, warehouse)
    if not rows:
        raise ReportDataError(warehouse, "run_info is empty")
    row = rows[0]
    return RunInfo(row["report_date"], str(row["definitions_version"]), _utc(row["built_at_utc"]))


def _group(rows: Iterable, participant_ids: Sequence[str]) -> dict[str, list]:
    grouped: dict[str, list] = {pid: [] for pid in participant_ids}
    for row in rows:
        grouped[row.participant_id].append(row)
    return grouped


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()
    return rows[0][0] > 0


def _week(row: dict) -> WeekRow:
    values = {name: row[name] for name in WEEK_FIELDS}
    values["flags"] = tuple(row["flags"] or ())
    values["sources"] = tuple(row["sources"] or ())
    values["last_data_utc"] = _utc(row["last_data_utc"])
    values["definitions_version"] = str(row["definitions_version"])
    return WeekRow(**values)


def read_clinic(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    clinic_id: str,
    participant_ids: Sequence[str],
    report_date: date,
    run: RunInfo,
) -> ClinicData:
    """One clinic's rows: only patients whose warehouse clinic_id and registry clinic agree."""
    parameters = {"clinic_id": clinic_id, "participant_ids": list(participant_ids), "report_date": report_date}
    weeks = [_week(row) for row in _records(con, "clinic_weeks", parameters, warehouse)]
    notes = [DayNote(**row) for row in _records(con, "clinic_day_notes", parameters, warehouse)]
    checks: list[CrosscheckRow] = []
    if _has_table(con, "daily_crosscheck"):  # the contract allows it to be empty; tolerate absent too
        checks = [CrosscheckRow(**row) for row in _records(con, "clinic_crosscheck", parameters, warehouse)]
    return ClinicData(
        clinic_id=clinic_id,
        report_date=report_date,
        run=run,
        weeks=_group(weeks, participant_ids),
        day_notes=_group(notes, participant_ids),
        crosscheck=_group(checks, participant_ids),
    )
