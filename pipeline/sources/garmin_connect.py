"""Garmin Connect `Activities.csv` (the "All activities" export): one row per recorded workout.

Recognised by its header: `Activity Type`, `Date`, `Title` and a duration column (`Time`,
`Elapsed Time` or `Activity Time`). Layouts differ between years (the 2021 layout has no `Steps`
column, newer ones do), so every column is found by name.

What becomes an interval
- Walking, hiking and running sessions (any `Activity Type` naming walk*, hik* or run*: Walking,
  Treadmill Running, Trail Running, Hiking, ...) become ONE interval each:
  [Date, Date + duration) with the session's `Steps`, `activity_type` walking/hiking/running and
  the distance in metres where the unit is known. Other sports are skipped.
- The duration is `Elapsed Time` (wall clock from start to end, pauses included: the span the
  session really occupied), else `Time` (timer time), else `Activity Time`.
- Sessions without a step count give no interval: the whole file when the layout has no `Steps`
  column (as in the 2021 sample), a row whose Steps is `--`. Steps are never estimated (e.g. from
  the average cadence), and a 0-step placeholder is not written either: a session is wrist data,
  and by source priority a 0-step interval would blank out the real steps another source
  recorded in those minutes. An explicit "0" is kept.
- `Date` is the local wall-clock start with no zone: read in the participant's zone
  (`local_wall_clock_to_utc`, definitions v1).

Values
- Cells may be quoted; `--` and empty cells are missing.
- Numbers follow the account's locale: `"9,012"` (thousands comma, decimal point) in English
  exports, `"5,81"` (decimal comma) in many European ones. The decimal mark is decided from the
  columns that carry fractions (Distance, Aerobic TE, Avg Stride Length, ...): a comma followed by
  1-2 digits means a decimal comma; otherwise the decimal point (the documented layout).
- Distance has no unit label. The unit is a declared setting when the reader is built with
  `distance_unit=` ("km", "mi", "m"); otherwise it is inferred from the file itself.
  `Avg Stride Length` is metres per step (so in the 2021 sample, a miles account), so steps x
  stride (or average cadence x stride x timer minutes) gives metres walked; their median ratio to
  `Distance` is ~1,000 for km and ~1,609 for mi (the 2021 sample: 167 spm x 0.87 m x 22.25 min =
  3,233 m for "2.02" -> 1,600: miles). Without that evidence, or with a ratio in neither band
  (a stride in feet would give ~5,280), distance_m is left null rather than guessed.

Note for the warehouse: a session longer than 15 minutes is a coarse interval under definitions v1
(it counts toward the day's steps only and the day loses minute resolution).
"""

from __future__ import annotations

import re
from pathlib import Path
from statistics import median

import polars as pl

from pipeline.errors import CorruptFile
from pipeline.schema import conform_reader_frame, empty_reader_frame
from pipeline.sources.base import ReadContext, ReadResult
from pipeline.sources.text_tools import (
    CsvTable,
    decode_text,
    parse_naive_times,
    parse_numbers,
    read_csv_table,
    reject_impossible_times,
    sniff_csv_header,
    wall_clock_to_utc,
)

DURATION_COLUMNS = ("Elapsed Time", "Time", "Activity Time")
FRACTION_COLUMNS = (
    "Distance",
    "Aerobic TE",
    "Avg Stride Length",
    "Avg Vertical Ratio",
    "Avg Vertical Oscillation",
    "Training Stress Score®",
    "Avg Speed",
    "Max Speed",
    "Min Temp",
    "Max Temp",
)
MISSING = "--"
MAX_SESSION_SECONDS = 31 * 86_400  # longer is a damaged cell, not a walk
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
METRES_PER_UNIT = {"m": 1.0, "km": 1000.0, "mi": 1609.344}
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d{1,2}$")
_DECIMAL_POINT = re.compile(r"^-?\d+\.(?:\d{1,2}|\d{4,})$")
_DURATION = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d+))?$")


def activity_family(activity_type: str) -> str | None:
    """walking / hiking / running for the step-bearing sports, None for any other sport."""
    text = activity_type.lower()
    if "hik" in text:
        return "hiking"
    if "walk" in text:
        return "walking"
    if re.search(r"\brun", text):
        return "running"
    return None


def duration_seconds(text: str) -> float | None:
    """`HH:MM:SS`, `H:MM:SS.s` or `MM:SS.s` as seconds; None when it is none of these."""
    match = _DURATION.match(text.strip())
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    if int(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
        return None
    total = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


class GarminConnectReader:
    name = "garmin_connect"

    def __init__(self, distance_unit: str | None = None) -> None:
        if distance_unit is not None and distance_unit not in METRES_PER_UNIT:
            raise ValueError(f"distance_unit must be one of {sorted(METRES_PER_UNIT)}, not {distance_unit!r}")
        self.distance_unit = distance_unit

    def detect(self, path: Path, head: bytes) -> bool:
        names = set(sniff_csv_header(head))
        return {"Activity Type", "Date", "Title"} <= names and any(name in names for name in DURATION_COLUMNS)

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        table = read_csv_table(path, decode_text(path, path.read_bytes(), reader=self.name), reader=self.name)
        for required in ("Activity Type", "Date"):
            if required not in table.header:
                raise CorruptFile(
                    path, f"the header lacks column {required!r}", reader=self.name, line=table.header_line
                )
        duration_columns = [name for name in DURATION_COLUMNS if name in table.header]
        if not duration_columns:
            raise CorruptFile(
                path, "the header has no duration column (Time)", reader=self.name, line=table.header_line
            )
        table = _without_missing_markers(table)
        decimal = decimal_mark(table)
        thousands = "." if decimal == "," else ","
        sessions = _step_sessions(table)
        walks = table.take(sessions["row"])
        # validated even when the layout has no steps: a damaged file is never read as "no data"
        starts = parse_naive_times(
            walks, "Date", DATE_FORMAT, reader=self.name, values=_with_seconds(walks.column("Date"))
        )
        seconds = pl.Series("seconds", self._durations(walks, duration_columns), dtype=pl.Float64)
        if "Steps" not in table.header:
            return ReadResult(empty_reader_frame())  # older layout: no step counts to read
        steps = parse_numbers(walks, "Steps", reader=self.name, thousands=thousands, decimal=decimal)
        distance = pl.Series("distance_m", [None] * walks.height, dtype=pl.Float64)
        unit = self.distance_unit or infer_distance_unit(table, decimal=decimal)
        if unit is not None and "Distance" in table.header:
            distance = parse_numbers(
                walks, "Distance", reader=self.name, thousands=thousands, decimal=decimal
            )
            distance = distance * METRES_PER_UNIT[unit]
        instants = wall_clock_to_utc(starts, context.time_zone)
        frame = pl.DataFrame(
            {
                "source": self.name,
                "device": pl.Series([None] * walks.height, dtype=pl.String),
                "start_utc": instants["utc"],
                "end_utc": instants["utc"]
                + (seconds * 1_000_000).round().cast(pl.Int64).cast(pl.Duration("us")),
                "steps": steps,
                "distance_m": distance,
                "activity_type": sessions["family"],
                "clock_adjusted": instants["clock_adjusted"],
            }
        )
        reject_impossible_times(path, frame, walks.lines, reader=self.name)
        frame = frame.filter(pl.col("steps").is_not_null())  # a session whose Steps is `--` has no count
        return ReadResult(conform_reader_frame(frame))

    def _durations(self, table: CsvTable, columns: list[str]) -> list[float]:
        """Per row, the first duration column with a value, as seconds."""
        result: list[float] = []
        for index in range(table.height):
            line = int(table.lines[index])
            value = None
            for column in columns:
                text = table.column(column)[index]
                if text:
                    value = duration_seconds(text)
                    if value is None or value > MAX_SESSION_SECONDS:
                        raise CorruptFile(
                            table.path,
                            f"column {column!r} row {line}: {text!r} is not a duration (HH:MM:SS)",
                            reader=self.name,
                            line=line,
                        )
                    break
            if value is None:
                raise CorruptFile(
                    table.path,
                    f"row {line} has no duration ({', '.join(columns)} all missing)",
                    reader=self.name,
                    line=line,
                )
            result.append(value)
        return result


def _without_missing_markers(table: CsvTable) -> CsvTable:
    """`--` (Garmin's "no value") becomes an empty cell, i.e. missing."""
    columns = {name: values.replace(MISSING, "") for name, values in table.columns.items()}
    return CsvTable(table.path, table.header, table.header_line, columns, table.lines)


def _with_seconds(dates: pl.Series) -> pl.Series:
    """`2021-07-01 09:47` -> `2021-07-01 09:47:00` (some exports drop the seconds)."""
    return dates.str.replace(r"^(\d{4}-\d{2}-\d{2} \d{1,2}:\d{2})$", "${1}:00")


def _step_sessions(table: CsvTable) -> pl.DataFrame:
    families = [activity_family(value) for value in table.column("Activity Type").to_list()]
    rows = [index for index, family in enumerate(families) if family is not None]
    return pl.DataFrame(
        {"row": rows, "family": [families[index] for index in rows]},
        schema={"row": pl.UInt32, "family": pl.String},
    )


def decimal_mark(table: CsvTable) -> str:
    """',' when the columns that carry fractions use a decimal comma, else '.'."""
    comma = point = 0
    for column in FRACTION_COLUMNS:
        if column in table.columns:
            for value in table.column(column).to_list():
                if _DECIMAL_COMMA.match(value):
                    comma += 1
                elif _DECIMAL_POINT.match(value):
                    point += 1
    return "," if comma > point else "."


def infer_distance_unit(table: CsvTable, *, decimal: str) -> str | None:
    """km or mi from the metres implied by Avg Stride Length (m per step); None without evidence."""
    if "Distance" not in table.header or "Avg Stride Length" not in table.header:
        return None
    thousands = "." if decimal == "," else ","

    def numbers(column: str) -> list[float | None]:
        """Lenient: a value that does not parse is no evidence (this is only a vote)."""
        if column not in table.header:
            return [None] * table.height
        cleaned = table.column(column).str.replace_all(thousands, "", literal=True)
        if decimal != ".":
            cleaned = cleaned.str.replace_all(decimal, ".", literal=True)
        return cleaned.cast(pl.Float64, strict=False).to_list()

    distance = numbers("Distance")
    stride = numbers("Avg Stride Length")
    steps = numbers("Steps")
    cadence = numbers("Avg Run Cadence")
    timer_column = next((name for name in ("Moving Time", "Time") if name in table.header), None)
    minutes = [
        (duration_seconds(text) or 0.0) / 60 if text else None
        for text in (table.column(timer_column).to_list() if timer_column else [""] * table.height)
    ]
    ratios = []
    for index in range(table.height):
        if not distance[index] or not stride[index]:
            continue
        if steps[index]:
            metres = steps[index] * stride[index]
        elif cadence[index] and minutes[index]:
            metres = cadence[index] * stride[index] * minutes[index]
        else:
            continue
        ratios.append(metres / distance[index])
    if not ratios:
        return None
    typical = median(ratios)
    if 800 <= typical <= 1250:
        return "km"
    if 1350 <= typical <= 1950:
        return "mi"
    return None
