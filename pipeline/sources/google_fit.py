"""Google Fit CSVs from Google Takeout (Fit / "Daily activity metrics").

- Daily file (`Daily activity metrics.csv`, older `Daily Summaries.csv`): one row per local date
  (`Date`, `YYYY-MM-DD`). Columns are found by name in any order (the set differs between users
  and years). Each date with a `Step count` becomes ONE coarse interval from local midnight to the
  next local midnight in the participant's zone (23 or 25 hours on DST days), with
  `Distance (m)` as distance_m. An empty cell is missing, not 0: a date without a step count gives
  no interval (and an empty distance stays null).
- Per-day file (`Daily activity metrics/YYYY-MM-DD.csv`): 96 rows of 15 minutes; `Start time`
  and `End time` are clock times with offset (`09:30:00.000+02:00`) and the date exists ONLY in
  the file name. This is the one place where a reader looks at the name, for the date and
  nothing else (the format is still recognised by content); a name without a `YYYY-MM-DD` date
  is refused. Each row with a `Step count` becomes a 15-minute interval (the last one ends at
  00:00 of the next day); a blank step count is no interval.

Google Fit merges the phone and any connected watch itself, so there is a single device,
"google_fit". Column names are those of an English-language account.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from pipeline.errors import CorruptFile, UnrecognisedFormat
from pipeline.schema import conform_reader_frame, empty_reader_frame
from pipeline.sources.base import HEAD_BYTES, ReadContext, ReadResult, local_wall_clock_to_utc
from pipeline.sources.csv_tools import header_names

DATE_COLUMN = "Date"
START_COLUMN = "Start time"
END_COLUMN = "End time"
STEPS_COLUMN = "Step count"
DISTANCE_COLUMN = "Distance (m)"
# Metric columns only Google Fit writes (any two of them, with Date, mark a daily file).
FIT_METRIC_COLUMNS = frozenset(
    {
        STEPS_COLUMN,
        DISTANCE_COLUMN,
        "Move Minutes count",
        "Heart Points",
        "Heart Minutes",
        "Calories (kcal)",
        "Walking duration (ms)",
        "Average speed (m/s)",
        "Inactive duration (ms)",
    }
)
CLOCK_WITH_OFFSET = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$")
DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%:z"
DEVICE = "google_fit"


class GoogleFitReader:
    name = "google_fit"

    def detect(self, path: Path, head: bytes) -> bool:
        names = set(header_names(head))
        if DATE_COLUMN in names:
            return len(names & FIT_METRIC_COLUMNS) >= 2
        if {START_COLUMN, END_COLUMN} <= names and names & FIT_METRIC_COLUMNS:
            # the first data row, when the head holds it, must start with a clock time + offset
            lines = head.decode("utf-8-sig", errors="ignore").split("\n")
            first_row = lines[1].strip() if len(lines) > 1 else ""
            if not first_row or (len(lines) == 2 and len(head) >= HEAD_BYTES):
                return True  # no row yet, or only a cut-off part of one
            return bool(CLOCK_WITH_OFFSET.match(first_row.split(",")[0].strip()))
        return False

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        table = _table(_read_csv_records(path, self.name), path, self.name)
        if DATE_COLUMN in table.columns:
            return ReadResult(self._daily(table, path, context))
        if {START_COLUMN, END_COLUMN} <= set(table.columns):
            return ReadResult(self._per_day(table, path))
        raise UnrecognisedFormat(
            path, f"the header has neither {DATE_COLUMN!r} nor {START_COLUMN!r}/{END_COLUMN!r}",
            reader=self.name, line=1,
        )

    def _daily(self, table: pl.DataFrame, path: Path, context: ReadContext) -> pl.DataFrame:
        dates = _dates(table, path, self.name)
        repeated = dates.is_duplicated()
        if repeated.any():
            row = int(repeated.arg_true()[1])
            raise CorruptFile(
                path, f"the date {dates[row]} appears on more than one row", reader=self.name,
                line=int(table["line"][row]),
            )
        days = pl.DataFrame(
            {
                "local_date": dates,
                "steps": _numbers(table, STEPS_COLUMN, path, self.name),
                "distance_m": _numbers(table, DISTANCE_COLUMN, path, self.name),
            }
        ).filter(pl.col("steps").is_not_null())
        if days.is_empty():
            return empty_reader_frame()
        midnight = days["local_date"].cast(pl.Datetime("us"))
        starts = local_wall_clock_to_utc(midnight, context.time_zone)
        ends = local_wall_clock_to_utc(midnight + timedelta(days=1), context.time_zone)
        return conform_reader_frame(
            pl.DataFrame(
                {
                    "source": self.name,
                    "device": DEVICE,
                    "start_utc": starts["utc"],
                    "end_utc": ends["utc"],
                    "steps": days["steps"],
                    "distance_m": days["distance_m"],
                    "clock_adjusted": starts["clock_adjusted"],
                }
            )
        )

    def _per_day(self, table: pl.DataFrame, path: Path) -> pl.DataFrame:
        day = _date_from_name(path, self.name)
        starts = _instants(table, START_COLUMN, day, path, self.name)
        ends = _instants(table, END_COLUMN, day, path, self.name)
        # the last slot ends at 00:00 of the next day, written as 00:00:00.000
        ends = pl.select(pl.when(ends <= starts).then(ends + timedelta(days=1)).otherwise(ends)).to_series()
        slots = pl.DataFrame(
            {
                "line": table["line"],
                "start_utc": starts,
                "end_utc": ends,
                "steps": _numbers(table, STEPS_COLUMN, path, self.name),
                "distance_m": _numbers(table, DISTANCE_COLUMN, path, self.name),
            }
        )
        too_long = (slots["end_utc"] - slots["start_utc"]) > timedelta(hours=1)
        if too_long.any():
            row = int(too_long.arg_true()[0])
            raise CorruptFile(
                path, "a row spans more than an hour; per-day Google Fit rows are 15 minutes", reader=self.name,
                line=int(slots["line"][row]),
            )
        return conform_reader_frame(
            slots.filter(pl.col("steps").is_not_null()).select(
                pl.lit(self.name).alias("source"),
                pl.lit(DEVICE).alias("device"),
                "start_utc",
                "end_utc",
                "steps",
                "distance_m",
            )
        )


def _date_from_name(path: Path, reader: str) -> date:
    """The date of a per-day file: the last YYYY-MM-DD in its name (Takeout writes 2023-11-20.csv)."""
    found = DATE_IN_NAME.findall(Path(path).stem)
    problem = (
        f"a Google Fit per-day file carries its date only in its name (YYYY-MM-DD.csv), "
        f"and {Path(path).name!r} has none"
    )
    if found:
        try:
            return date.fromisoformat(found[-1])
        except ValueError:
            problem = f"the date {found[-1]!r} in the name of this Google Fit per-day file is not a calendar date"
    raise CorruptFile(path, problem, reader=reader, offset=0, hint="Keep the file name Takeout gave it (YYYY-MM-DD.csv)")


# -- CSV helpers ---------------------------------------------------------------------------


def _read_csv_records(path: Path, reader: str) -> list[tuple[int, list[str]]]:
    """Every non-blank CSV record of a UTF-8 file (BOM allowed), with the line it starts on."""
    raw = path.read_bytes()
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFile(path, f"not UTF-8 text ({exc.reason})", reader=reader, offset=bom + exc.start) from exc
    if "\x00" in text:
        raise CorruptFile(path, "holds NUL bytes: not a text file", reader=reader, offset=raw.index(b"\x00"))
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = []
    line = 1
    try:
        for row in rows:
            if any(field.strip() for field in row):
                records.append((line, row))
            line = rows.line_num + 1
    except csv.Error as exc:
        raise CorruptFile(path, f"not a well-formed CSV ({exc})", reader=reader, line=line) from exc
    return records


def _table(records: list[tuple[int, list[str]]], path: Path, reader: str) -> pl.DataFrame:
    """Header + rows -> all-text frame (blank = null) with each row's line number."""
    if not records:
        raise CorruptFile(path, "the file is empty: no header line", reader=reader, line=1)
    header_line, header = records[0]
    names = [name.strip() for name in header]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated or "" in names:
        raise CorruptFile(
            path, f"the header has repeated or empty column names {duplicated}", reader=reader, line=header_line
        )
    width = len(names)
    rows = []
    lines = []
    for line, row in records[1:]:
        if len(row) != width:
            raise CorruptFile(
                path, f"the row has {len(row)} fields where the header has {width}", reader=reader, line=line
            )
        rows.append(row)
        lines.append(line)
    frame = pl.DataFrame(rows, schema={name: pl.String for name in names}, orient="row")
    return frame.select(
        [pl.when(pl.col(name).str.strip_chars() != "").then(pl.col(name).str.strip_chars()).alias(name) for name in names]
    ).with_columns(pl.Series("line", lines, dtype=pl.Int64))


def _bad_row(path: Path, reader: str, table: pl.DataFrame, column: str, bad: pl.Series, problem: str) -> CorruptFile:
    """The error for the first row flagged in `bad`; `problem` holds {value} for the cell's text."""
    row = int(bad.fill_null(True).arg_true()[0])
    return CorruptFile(
        path, problem.format(value=repr(table[column][row])), reader=reader, line=int(table["line"][row])
    )


def _numbers(table: pl.DataFrame, column: str, path: Path, reader: str) -> pl.Series:
    """Column as non-negative Float64 (blank or absent column = null); a bad value raises with its line."""
    if column not in table.columns:
        return pl.Series(column, [None] * table.height, dtype=pl.Float64)
    text = table[column]
    values = text.cast(pl.Float64, strict=False)
    bad = (text.is_not_null() & (values.is_null() | ~values.is_finite() | (values < 0))).fill_null(False)
    if bad.any():
        raise _bad_row(path, reader, table, column, bad, f"column {column!r} holds {{value}}, which is not a count or amount")
    return values


def _dates(table: pl.DataFrame, path: Path, reader: str) -> pl.Series:
    text = table[DATE_COLUMN]
    values = text.str.to_date("%Y-%m-%d", strict=False)
    bad = (values.is_null() | (text.str.len_chars() != 10)).fill_null(True)
    if bad.any():
        raise _bad_row(path, reader, table, DATE_COLUMN, bad, f"column {DATE_COLUMN!r} holds {{value}}, which is not a date YYYY-MM-DD")
    return values


def _instants(table: pl.DataFrame, column: str, day: date, path: Path, reader: str) -> pl.Series:
    text = table[column]
    well_formed = text.str.contains(CLOCK_WITH_OFFSET.pattern).fill_null(False)
    values = (pl.lit(day.isoformat() + "T") + text).alias(column)
    values = pl.select(values.str.to_datetime(TIME_FORMAT, strict=False, time_unit="us")).to_series()
    bad = ~well_formed | values.is_null()
    if bad.any():
        raise _bad_row(path, reader, table, column, bad, f"column {column!r} holds {{value}}, which is not a time like 09:30:00.000+02:00")
    return values.dt.convert_time_zone("UTC")
