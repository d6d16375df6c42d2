"""Synthetic marts in the reports' warehouse contract, with their truth: for the report tests,
the render benchmark and demos of the summaries without wearable data.

Each patient follows a named pattern (on track, overload, falling behind, ...). The weekly rows
apply definitions v1 to the pattern's numbers so that status and flags agree with the numbers,
and `expected_attention` says which patients a summary must list. This is test data, not the
warehouse: the real marts are built from the lake by pipeline/sql.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from pipeline.config import DEFINITIONS_VERSION, Definitions
from pipeline.registry import Participant

CONTRACT_DDL = """
CREATE TABLE weekly_adherence (
    participant_id VARCHAR, clinic_id VARCHAR, programme_week INTEGER, week_start DATE, week_end DATE,
    walk_minutes DOUBLE, walking_minutes_all DOUBLE, moderate_minutes DOUBLE, vigorous_minutes DOUBLE,
    steps BIGINT, mean_daily_steps DOUBLE, walking_days INTEGER, valid_days INTEGER,
    peak30_cadence DOUBLE, prescribed_minutes DOUBLE, prescribed_days INTEGER, adherence_pct DOUBLE,
    status VARCHAR, flags VARCHAR[], definitions_version VARCHAR, low_confidence_days INTEGER,
    sources VARCHAR[], last_data_utc TIMESTAMPTZ
);
CREATE TABLE daily_activity (
    participant_id VARCHAR, local_date DATE, programme_week INTEGER, steps DOUBLE,
    walking_minutes_all DOUBLE, bout_minutes DOUBLE, moderate_minutes DOUBLE, vigorous_minutes DOUBLE,
    worn_hours INTEGER, valid_day BOOLEAN, low_confidence BOOLEAN, implausible BOOLEAN,
    minute_resolution BOOLEAN, peak30_cadence DOUBLE, clock_adjusted BOOLEAN
);
CREATE TABLE daily_crosscheck (
    participant_id VARCHAR, local_date DATE, source VARCHAR, device VARCHAR,
    device_steps DOUBLE, computed_steps DOUBLE, difference DOUBLE
);
CREATE TABLE run_info (report_date DATE, definitions_version VARCHAR, built_at TIMESTAMPTZ);
"""

# pattern -> the attention kind a summary must list the patient under (None: not listed)
PATTERNS: dict[str, str | None] = {
    "on_track": None,
    "partial": None,
    "insufficient": None,
    "just_started": None,
    "overload": "overload",
    "falling_behind": "falling_behind",
    "no_recent_data": "no_recent_data",
    "not_met": "not_met",
}

FIRST_NAMES = ("Ada", "Bram", "Chiara", "Dev", "Elif", "Farah", "Gus", "Hana", "Ines", "Jonas",
               "Kofi", "Lena", "Mateo", "Nour", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tova")
LAST_NAMES = ("Abbott", "Baptiste", "Castillo", "Dimitrov", "Eze", "Fischer", "Gallagher", "Haddad",
              "Ibsen", "Jovanovic", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor")


@dataclass(frozen=True)
class SyntheticPatient:
    participant_id: str
    clinic_id: str
    display_name: str
    pattern: str  # a key of PATTERNS
    programme_start: date
    time_zone: str = "Europe/London"
    scale: float = 1.0  # multiplies the pattern's minutes and steps, so patients' numbers differ
    sources: tuple[str, ...] = ("fit_monitoring",)

    def participant(self) -> Participant:
        return Participant(
            participant_id=self.participant_id,
            clinic_id=self.clinic_id,
            time_zone=self.time_zone,
            programme_start=self.programme_start,
            display_name=self.display_name,
        )


def expected_attention(patient: SyntheticPatient) -> str | None:
    return PATTERNS[patient.pattern]


def _synthetic_name(index: int) -> str:
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    last = LAST_NAMES[index // len(FIRST_NAMES) % len(LAST_NAMES)]
    unique = "" if index < len(FIRST_NAMES) * len(LAST_NAMES) else f" {index}"
    return f"{first} {last}{unique}"


def synthetic_clinic(
    clinic_id: str, patients: int, report_date: date, *, weeks: int = 12, id_prefix: str = "S-"
) -> list[SyntheticPatient]:
    """A clinic of `patients` with `weeks` completed weeks each and a mix of patterns."""
    mix = ("on_track", "on_track", "partial", "on_track", "overload", "falling_behind", "on_track",
           "no_recent_data", "not_met", "insufficient", "partial", "on_track")
    start = report_date - timedelta(days=7 * weeks + 3)
    return [
        SyntheticPatient(
            participant_id=f"{id_prefix}{index + 1:03d}",
            clinic_id=clinic_id,
            display_name=_synthetic_name(index),
            pattern=mix[index % len(mix)],
            programme_start=start - timedelta(days=index % 5),
            scale=0.9 + (index % 7) * 0.03,
        )
        for index in range(patients)
    ]


def _prescribed(week: int, d: Definitions) -> tuple[float, int]:
    raw = d.start_minutes + (d.week12_minutes - d.start_minutes) * (min(week, 12) - 1) / 11
    minutes = math.floor(raw / d.round_to_minutes + 0.5) * d.round_to_minutes
    return minutes, 3 if week <= 4 else 4 if week <= 12 else 5


def _week_numbers(patient: SyntheticPatient, week: int, completed: int, prescribed: float, days: int) -> dict:
    """The pattern's walk minutes, walking days and valid days for one week."""
    last = week == completed
    ratio, walking_days, valid_days = 1.05, days, 7
    if patient.pattern == "partial" and week >= completed - 1:
        ratio, walking_days = 0.7, max(days - 1, 0)
    elif patient.pattern == "overload" and last:
        ratio = 1.7
    elif patient.pattern == "falling_behind" and week >= completed - 2:
        ratio, walking_days, valid_days = 0.3 + 0.02 * (completed - week), 1, 6
    elif patient.pattern == "not_met" and last:
        ratio, walking_days = 0.4, 1
    elif patient.pattern == "insufficient" and last:
        ratio, walking_days, valid_days = 0.4, 1, 2
    walk = round(prescribed * ratio * patient.scale)
    return {"walk_minutes": float(walk), "walking_days": walking_days, "valid_days": valid_days}


def _status(walk: float, prescribed: float, walking_days: int, days: int, valid: int, d: Definitions) -> str:
    if valid == 0 and walk == 0:
        return "no_data"
    if walk >= prescribed and walking_days >= days:
        return "met"
    if valid < d.status_min_valid_days:
        return "insufficient_data"
    if 100 * walk / prescribed >= d.partial_min_adherence_pct:
        return "partial"
    return "not_met"


def _patient_rows(patient: SyntheticPatient, report_date: date, d: Definitions) -> tuple[list, list, list]:
    zone = ZoneInfo(patient.time_zone)
    stop_day = report_date - timedelta(days=8 if patient.pattern == "no_recent_data" else 1)
    last_seen = datetime.combine(stop_day, time(20, 15), zone).astimezone(timezone.utc)
    completed = (report_date - patient.programme_start).days // 7  # weeks whose last day has ended
    weekly, daily, crosscheck = [], [], []
    previous: dict | None = None
    for week in range(1, completed + 2):
        week_start = patient.programme_start + timedelta(days=7 * (week - 1))
        if week_start > report_date:
            break
        week_end = week_start + timedelta(days=6)
        in_progress = week > completed
        prescribed, days = _prescribed(week, d)
        numbers = _week_numbers(patient, week, completed, prescribed, days)
        if in_progress:  # the days so far
            elapsed = (report_date - week_start).days
            numbers = {k: (v * elapsed / 7 if k == "walk_minutes" else min(v, elapsed)) for k, v in numbers.items()}
        data_days = [week_start + timedelta(days=i) for i in range(7) if week_start + timedelta(days=i) <= stop_day]
        if not in_progress and len(data_days) < 7:  # the device stopped sending during this week
            numbers = {
                "walk_minutes": float(round(numbers["walk_minutes"] * len(data_days) / 7)),
                "walking_days": min(numbers["walking_days"], len(data_days)),
                "valid_days": min(numbers["valid_days"], len(data_days)),
            }
        if not data_days:
            numbers = {"walk_minutes": 0.0, "walking_days": 0, "valid_days": 0}
        walk, walking_days, valid = numbers["walk_minutes"], int(numbers["walking_days"]), int(numbers["valid_days"])
        has_data = valid > 0 or walk > 0
        steps_per_day = round((5200 + 40 * walk) * patient.scale)
        adherence = 100 * walk / prescribed if has_data else None
        flags: list[str] = []
        status = "in_progress"
        if not in_progress:
            status = _status(walk, prescribed, walking_days, days, valid, d)
            if has_data and walk > d.overload_ratio * prescribed:
                flags.append("overload")
            if (
                previous is not None
                and adherence is not None
                and previous["adherence_pct"] is not None
                and adherence < d.falling_behind_pct
                and previous["adherence_pct"] < d.falling_behind_pct
                and valid >= d.falling_behind_min_valid_days
                and previous["valid_days"] >= d.falling_behind_min_valid_days
            ):
                flags.append("falling_behind")
            if week == completed and (report_date - stop_day).days > d.no_recent_data_days:
                flags.append("no_recent_data")
        row = {
            "participant_id": patient.participant_id,
            "clinic_id": patient.clinic_id,
            "programme_week": week,
            "week_start": week_start,
            "week_end": week_end,
            "walk_minutes": walk if has_data else None,
            "walking_minutes_all": round(walk * 1.6 + 30) if has_data else None,
            "moderate_minutes": round(walk * 0.55) if has_data else None,
            "vigorous_minutes": round(walk * 0.05) if has_data else None,
            "steps": steps_per_day * len(data_days) if has_data else None,
            "mean_daily_steps": float(steps_per_day) if has_data else None,
            "walking_days": walking_days if has_data else None,
            "valid_days": valid,
            "peak30_cadence": round(96 + 8 * min(walk / prescribed, 1.5) * patient.scale, 1) if has_data else None,
            "prescribed_minutes": prescribed,
            "prescribed_days": days,
            "adherence_pct": adherence,
            "status": status,
            "flags": sorted(flags),
            "definitions_version": DEFINITIONS_VERSION,
            "low_confidence_days": 0 if has_data else None,
            "sources": list(patient.sources) if has_data else [],
            "last_data_utc": last_seen,
        }
        weekly.append(row)
        previous = row
        for day in data_days:
            if day > report_date - timedelta(days=1):
                continue
            is_valid = (day - week_start).days < max(valid, 1)
            implausible = patient.pattern == "overload" and day == week_end and not in_progress and week == completed
            daily.append({
                "participant_id": patient.participant_id, "local_date": day, "programme_week": week,
                "steps": 61000.0 if implausible else float(steps_per_day),
                "walking_minutes_all": walk / 7 * 1.6, "bout_minutes": walk / 7, "moderate_minutes": walk / 7 * 0.55,
                "vigorous_minutes": 0.0, "worn_hours": 14 if is_valid else 4, "valid_day": is_valid,
                "low_confidence": False, "implausible": implausible, "minute_resolution": True,
                "peak30_cadence": row["peak30_cadence"] if is_valid else None, "clock_adjusted": False,
            })
        if has_data and patient.pattern == "partial" and not in_progress and week == completed:
            device = float(steps_per_day + 1234)
            crosscheck.append({
                "participant_id": patient.participant_id, "local_date": week_end, "source": patient.sources[0],
                "device": "watch", "device_steps": device, "computed_steps": float(steps_per_day),
                "difference": device - steps_per_day,
            })
    return weekly, daily, crosscheck


def write_synthetic_warehouse(
    path: Path, patients: list[SyntheticPatient], report_date: date, definitions: Definitions = Definitions()
) -> None:
    """Write warehouse.duckdb with the contract tables filled from the patients' patterns."""
    weekly, daily, crosscheck = [], [], []
    for patient in patients:
        rows = _patient_rows(patient, report_date, definitions)
        weekly += rows[0]
        daily += rows[1]
        crosscheck += rows[2]
    built_at = datetime.combine(report_date, time(2, 5), timezone.utc)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(CONTRACT_DDL)
        for table, rows in (("weekly_adherence", weekly), ("daily_activity", daily), ("daily_crosscheck", crosscheck)):
            if rows:
                arrow_rows = pa.Table.from_pylist(rows)  # noqa: F841 (read by the INSERT below)
                columns = ", ".join(rows[0])
                con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM arrow_rows")
        con.execute("INSERT INTO run_info VALUES (?, ?, ?)", [report_date, definitions.version, built_at])
    finally:
        con.close()


def sample_cohort(report_date: date) -> list[SyntheticPatient]:
    """Three clinics with look-alike ids (A-01, A-010, A-0100) and names (Ann Lee, Ann Leeds), one
    patient per pattern in the first clinic: the cohort the report tests render."""
    start = report_date - timedelta(days=7 * 8 + 2)  # 8 completed weeks, the 9th in progress
    north = [
        SyntheticPatient("A-01", "north", "Ann Lee", "on_track", start),
        SyntheticPatient("A-02", "north", "Bilal Haddad", "overload", start, scale=1.0),
        SyntheticPatient("A-03", "north", "Carmen Ruiz", "falling_behind", start - timedelta(days=7)),
        SyntheticPatient("A-04", "north", "Dmitri Volkov", "no_recent_data", start, sources=("apple_health",)),
        SyntheticPatient("A-05", "north", "Efua Mensah", "not_met", start),
        SyntheticPatient("A-06", "north", "Fergus Doyle", "insufficient", start),
        SyntheticPatient("A-07", "north", "Grace Ho", "partial", start, sources=("fit_monitoring", "apple_health")),
        SyntheticPatient("A-08", "north", "Hamid Karimi", "just_started", report_date - timedelta(days=3)),
    ]
    south = [
        SyntheticPatient("A-010", "south", "Ann Leeds", "overload", start, "Australia/Sydney", scale=1.13),
        SyntheticPatient("A-011", "south", "Ivo Petrov", "on_track", start, "Australia/Sydney", scale=1.21),
        SyntheticPatient("A-012", "south", "Jia Wen", "no_recent_data", start, "Australia/Sydney", scale=1.17),
    ]
    east = [
        SyntheticPatient("A-0100", "east", "Kwame Asante", "falling_behind", start, "America/New_York", scale=0.83),
        SyntheticPatient("A-0101", "east", "Lucia Bianchi", "partial", start, "America/New_York", scale=0.87),
    ]
    return north + south + east
