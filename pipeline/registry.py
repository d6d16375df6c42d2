"""participants.csv and prescriptions.csv -> typed records. Errors name the file and the line.

participant_id stays a string, even when it looks like a number ("0042" is not 42).
participant_id and clinic_id become folder names (inbox/<participant_id>/, outbox/<clinic_id>/):
a value that could not be one, or would point elsewhere (`..`, `a/b`), stops the run.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.errors import RegistryError

PARTICIPANT_COLUMNS = ("participant_id", "clinic_id", "time_zone", "programme_start")
OPTIONAL_PARTICIPANT_COLUMNS = ("display_name", "start_minutes", "week12_minutes", "final_minutes")
PRESCRIPTION_COLUMNS = ("participant_id", "from_week", "minutes_per_week", "days_per_week")
# Unicode categories no folder name may hold: control characters (tab, newline, NUL, ESC ...),
# invisible format characters (right-to-left override, zero-width space) and line separators.
_UNPRINTABLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
MAX_FOLDER_NAME_BYTES = 255


@dataclass(frozen=True)
class Participant:
    participant_id: str
    clinic_id: str
    time_zone: str
    programme_start: date
    display_name: str | None = None  # clinic outputs only, never the warehouse
    start_minutes: float | None = None
    week12_minutes: float | None = None
    final_minutes: float | None = None


@dataclass(frozen=True)
class PlanRow:
    """A physiotherapist's plan from `from_week` onward (prescriptions.csv)."""

    participant_id: str
    from_week: int
    minutes_per_week: float
    days_per_week: int
    row_order: int  # position in the file: among equal from_week, the later row wins


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryError(path, f"not UTF-8 text ({exc.reason})") from exc
    # newline="": lines end at \n, \r\n or \r only (a form feed or U+2028 in a cell stays in
    # it); each row is numbered by the physical line it ends on
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [name for name in required if name not in (reader.fieldnames or [])]
        if missing:
            raise RegistryError(path, f"missing column(s) {', '.join(missing)}", line=1)
        return [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader]
    except csv.Error as exc:
        raise RegistryError(path, f"not a well-formed CSV ({exc})", line=reader.line_num) from None


def _optional_number(value: str, path: Path, line: int, column: str) -> float | None:
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise RegistryError(path, f"{column} {value!r} is not a number", line=line) from None
    if number <= 0:
        raise RegistryError(path, f"{column} must be positive, got {value}", line=line)
    return number


def _folder_name(row: dict[str, str], column: str, path: Path, line: int) -> str:
    """The value of `column`, which becomes a folder name; RegistryError naming file, line and
    column when it cannot be one."""
    value = row[column]
    unprintable = next((c for c in value if unicodedata.category(c) in _UNPRINTABLE_CATEGORIES), None)
    if not value:
        problem = "is empty"
    elif value in (".", ".."):
        problem = "would name the current or the parent folder"
    elif "/" in value or "\\" in value:
        problem = "holds a path separator (/ or \\)"
    elif unprintable is not None:
        problem = f"holds the control or invisible character U+{ord(unprintable):04X}"
    elif len(value.encode("utf-8")) > MAX_FOLDER_NAME_BYTES:
        problem = f"is longer than a folder name may be ({MAX_FOLDER_NAME_BYTES} bytes)"
    else:
        return value
    raise RegistryError(path, f"column {column}: {value!r} cannot name a folder: it {problem}", line=line)


def read_participants(path: Path) -> list[Participant]:
    if not path.exists():
        raise RegistryError(path, "participants.csv is missing")
    participants: list[Participant] = []
    seen: set[str] = set()
    for line, row in _rows(path, PARTICIPANT_COLUMNS):
        pid = _folder_name(row, "participant_id", path, line)
        if pid in seen:
            raise RegistryError(path, f"participant_id {pid!r} appears twice", line=line)
        seen.add(pid)
        clinic_id = _folder_name(row, "clinic_id", path, line)
        try:
            ZoneInfo(row["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise RegistryError(path, f"time_zone {row['time_zone']!r} is not an IANA zone", line=line) from None
        try:
            start = date.fromisoformat(row["programme_start"])
        except ValueError:
            raise RegistryError(
                path, f"programme_start {row['programme_start']!r} is not YYYY-MM-DD", line=line
            ) from None
        participants.append(
            Participant(
                participant_id=pid,
                clinic_id=clinic_id,
                time_zone=row["time_zone"],
                programme_start=start,
                display_name=row.get("display_name") or None,
                start_minutes=_optional_number(row.get("start_minutes", ""), path, line, "start_minutes"),
                week12_minutes=_optional_number(row.get("week12_minutes", ""), path, line, "week12_minutes"),
                final_minutes=_optional_number(row.get("final_minutes", ""), path, line, "final_minutes"),
            )
        )
    return participants


def read_plan_rows(path: Path, participants: list[Participant]) -> list[PlanRow]:
    """prescriptions.csv is optional: no file, no plan rows."""
    if not path.exists():
        return []
    known = {p.participant_id for p in participants}
    plan: list[PlanRow] = []
    for order, (line, row) in enumerate(_rows(path, PRESCRIPTION_COLUMNS)):
        pid = row["participant_id"]
        if pid not in known:
            raise RegistryError(path, f"participant_id {pid!r} is not in participants.csv", line=line)
        try:
            from_week = int(row["from_week"])
            days = int(row["days_per_week"])
            minutes = float(row["minutes_per_week"])
        except ValueError:
            raise RegistryError(
                path, "from_week and days_per_week must be whole numbers, minutes_per_week a number", line=line
            ) from None
        if from_week < 1 or not 0 <= days <= 7 or minutes < 0:
            raise RegistryError(
                path, "from_week must be >= 1, days_per_week 0-7, minutes_per_week >= 0", line=line
            )
        plan.append(PlanRow(pid, from_week, minutes, days, order))
    return plan
