"""Samsung Health CSV exports ("Download personal data").

Every file starts with a UTF-8 BOM and a metadata line naming the data type
(`com.samsung.shealth.step_daily_trend,6307003,6`); the header is line 2 and every data row ends
with a trailing comma. Line numbers in errors count the metadata line, as an editor shows them.

- `com.samsung.shealth.step_daily_trend`: one row per local date and `source_type`. `day_time`
  is the epoch ms of 00:00 UTC *standing for the local date*: it is read as a date, never
  converted through a zone (doing so moves the day back west of UTC). Rows with `source_type`
  -2 are Samsung's merge over all devices: each becomes ONE coarse interval from local midnight
  to the next local midnight in the participant's zone (23 or 25 hours on DST days), with
  `count` steps and `distance` metres. Device rows (0 = phone, 108 = watch, others) are the same
  steps counted per device: they go to `device_daily_totals` for cross-checking and are never
  added. Where a (date, source_type) pair appears more than once (re-syncs), the row with the
  latest `update_time` wins. An empty `count` is missing (no interval), not 0.
- `com.samsung.shealth.tracker.pedometer_step_count`: one row per measured interval
  (`start_time`, `end_time`, `count`, `distance`, `deviceuuid`; columns may carry the prefix
  `com.samsung.health.step_count.`). `start_time`/`end_time` are UTC; `time_offset` (`UTC+0900`)
  is the phone's local offset and only changes how Samsung displays them. (Evidence: in the real
  daily-trend sample the phone's nightly `update_time` is 04:00 in summer and 05:00 in winter,
  i.e. midnight in New York written in UTC.) `binning_data` (a reference to a JSON file) is
  ignored. Device = `deviceuuid`; exact repeats of a row are kept once.

Samsung's export holds the whole history every time; the warehouse de-duplicates across exports.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import polars as pl

from pipeline.errors import CorruptFile, UnrecognisedFormat
from pipeline.schema import conform_daily_totals, conform_reader_frame, empty_reader_frame
from pipeline.sources.base import ReadContext, ReadResult, local_wall_clock_to_utc
from pipeline.sources.csv_tools import first_line

DAILY_TREND = "com.samsung.shealth.step_daily_trend"
PEDOMETER = "com.samsung.shealth.tracker.pedometer_step_count"
PEDOMETER_PREFIX = "com.samsung.health.step_count."
MERGED_SOURCE_TYPE = -2
DEVICE_NAMES = {0: "phone", 108: "watch"}
MS_PER_DAY = 86_400_000
SAMSUNG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S%.f"  # 2019-06-12 08:23:00.000 (UTC)
TIME_OFFSET = re.compile(r"^UTC[+-]\d{4}$")
HEADER_LINE = 2  # line 1 is the metadata line

REQUIRED_COLUMNS = {
    DAILY_TREND: ("day_time", "count", "source_type"),
    PEDOMETER: ("start_time", "end_time", "count"),
}


class SamsungHealthReader:
    name = "samsung_health"

    def detect(self, path: Path, head: bytes) -> bool:
        kind = first_line(head).split(",")[0].strip()
        if kind not in REQUIRED_COLUMNS:
            return False
        records = _head_records(head, 2)
        if len(records) < 2:
            return True  # the metadata line alone is specific enough
        header = {_column_name(name) for name in records[1]}
        return set(REQUIRED_COLUMNS[kind]) <= header

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        records = _read_csv_records(path, self.name)
        if not records or records[0][1][0].strip() not in REQUIRED_COLUMNS:
            raise UnrecognisedFormat(
                path, f"line 1 is not a Samsung Health metadata line ({DAILY_TREND} or {PEDOMETER})",
                reader=self.name, line=1,
            )
        kind = records[0][1][0].strip()
        table = _table(records[1:], path, self.name, REQUIRED_COLUMNS[kind])
        if kind == DAILY_TREND:
            return self._daily_trend(table, path, context)
        return ReadResult(self._pedometer(table, path))

    # -- step_daily_trend ------------------------------------------------------------------

    def _daily_trend(self, table: pl.DataFrame, path: Path, context: ReadContext) -> ReadResult:
        parsed = pl.DataFrame(
            {
                "line": table["line"],
                "day_time": _integers(table, "day_time", path, self.name),
                "source_type": _integers(table, "source_type", path, self.name),
                "steps": _numbers(table, "count", path, self.name),
                "distance_m": _numbers(table, "distance", path, self.name),
                "update_time": _text(table, "update_time"),
            }
        )
        _require_present(parsed, "day_time", path, self.name)
        _require_present(parsed, "source_type", path, self.name)
        off_midnight = parsed["day_time"] % MS_PER_DAY != 0
        if off_midnight.any():
            row = int(off_midnight.arg_true()[0])
            raise CorruptFile(
                path,
                f"day_time {parsed['day_time'][row]} is not 00:00 UTC of a date, as Samsung writes it",
                reader=self.name,
                line=int(parsed["line"][row]),
            )
        days = (
            parsed.with_columns(
                (pl.col("day_time") // MS_PER_DAY).cast(pl.Int32).cast(pl.Date).alias("local_date")
            )
            .sort(["local_date", "source_type", "update_time", "line"], nulls_last=False)
            .unique(subset=["local_date", "source_type"], keep="last", maintain_order=True)
            .filter(pl.col("steps").is_not_null())
        )
        merged = days.filter(pl.col("source_type") == MERGED_SOURCE_TYPE)
        devices = days.filter(pl.col("source_type") != MERGED_SOURCE_TYPE)
        return ReadResult(
            intervals=self._whole_days(merged, context),
            device_daily_totals=conform_daily_totals(
                devices.select(
                    pl.lit(self.name).alias("source"),
                    pl.col("source_type")
                    .replace_strict(DEVICE_NAMES, default=None, return_dtype=pl.String)
                    .fill_null(pl.format("source_type {}", pl.col("source_type")))
                    .alias("device"),
                    "local_date",
                    "steps",
                )
            ),
        )

    def _whole_days(self, merged: pl.DataFrame, context: ReadContext) -> pl.DataFrame:
        if merged.is_empty():
            return empty_reader_frame()
        midnight = merged["local_date"].cast(pl.Datetime("us"))
        starts = local_wall_clock_to_utc(midnight, context.time_zone)
        ends = local_wall_clock_to_utc(midnight + timedelta(days=1), context.time_zone)
        return conform_reader_frame(
            pl.DataFrame(
                {
                    "source": self.name,
                    "device": "merged",
                    "start_utc": starts["utc"],
                    "end_utc": ends["utc"],
                    "steps": merged["steps"],
                    "distance_m": merged["distance_m"],
                    "clock_adjusted": starts["clock_adjusted"],
                }
            )
        )

    # -- pedometer_step_count --------------------------------------------------------------

    def _pedometer(self, table: pl.DataFrame, path: Path) -> pl.DataFrame:
        if "time_offset" in table.columns:
            offsets = table["time_offset"]
            bad = offsets.is_not_null() & ~offsets.str.contains(TIME_OFFSET.pattern)
            if bad.any():
                row = int(bad.arg_true()[0])
                raise CorruptFile(
                    path, f"time_offset {offsets[row]!r} is not like UTC+0900", reader=self.name,
                    line=int(table["line"][row]),
                )
        parsed = pl.DataFrame(
            {
                "line": table["line"],
                "device": _text(table, "deviceuuid"),
                "start_utc": _utc_times(table, "start_time", path, self.name),
                "end_utc": _utc_times(table, "end_time", path, self.name),
                "steps": _numbers(table, "count", path, self.name),
                "distance_m": _numbers(table, "distance", path, self.name),
            }
        )
        backwards = parsed["end_utc"] < parsed["start_utc"]
        if backwards.any():
            row = int(backwards.arg_true()[0])
            raise CorruptFile(path, "end_time is before start_time", reader=self.name, line=int(parsed["line"][row]))
        intervals = (
            parsed.filter(pl.col("steps").is_not_null())
            .with_columns(pl.col("device").fill_null("unknown device"))
            .unique(subset=["device", "start_utc", "end_utc", "steps"], keep="first", maintain_order=True)
            .with_columns(pl.lit(self.name).alias("source"))
        )
        return conform_reader_frame(intervals)


# -- CSV helpers ---------------------------------------------------------------------------


def _column_name(name: str) -> str:
    name = name.strip().strip('"')
    return name[len(PEDOMETER_PREFIX):] if name.startswith(PEDOMETER_PREFIX) else name


def _head_records(head: bytes, count: int) -> list[list[str]]:
    """The first `count` non-blank CSV records of a file's head, split as `_read_csv_records`
    splits the whole file (so detection sees the header the reader gets; a cut last record or a
    malformed one ends the list)."""
    records: list[list[str]] = []
    rows = csv.reader(io.StringIO(head.decode("utf-8-sig", errors="ignore"), newline=""))
    try:
        for row in rows:
            if any(field.strip() for field in row):
                records.append(row)
                if len(records) == count:
                    break
    except csv.Error:
        pass
    return records


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


def _table(records: list[tuple[int, list[str]]], path: Path, reader: str, required: tuple[str, ...]) -> pl.DataFrame:
    """Header + rows -> all-text frame (blank = null) with each row's line number."""
    if not records:
        raise CorruptFile(path, "the file ends before its header line", reader=reader, line=HEADER_LINE)
    header_line, header = records[0]
    names = [_column_name(name) for name in header]
    if names and names[-1] == "":
        names.pop()  # a trailing comma on the header too
    duplicated = {name for name in names if names.count(name) > 1}
    missing = [name for name in required if name not in names]
    if duplicated or missing or "" in names:
        problem = f"no column {missing[0]!r}" if missing else f"repeated or empty column names {sorted(duplicated)}"
        raise CorruptFile(path, f"the header has {problem}", reader=reader, line=header_line)
    width = len(names)
    rows = []
    lines = []
    for line, row in records[1:]:
        if len(row) == width + 1 and row[-1].strip() == "":
            row = row[:width]  # Samsung's trailing comma
        if len(row) != width:
            raise CorruptFile(
                path, f"the row has {len(row)} fields where the header has {width}", reader=reader, line=line
            )
        rows.append(row)
        lines.append(line)
    frame = pl.DataFrame(rows, schema={name: pl.String for name in names}, orient="row")
    return frame.select(
        [_blank_to_null(pl.col(name).str.strip_chars()).alias(name) for name in names]
    ).with_columns(pl.Series("line", lines, dtype=pl.Int64))


def _blank_to_null(text: pl.Expr) -> pl.Expr:
    return pl.when(text != "").then(text)


def _text(frame: pl.DataFrame, column: str) -> pl.Series:
    """An optional text column (all null when the file does not have it)."""
    if column in frame.columns:
        return frame[column]
    return pl.Series(column, [None] * frame.height, dtype=pl.String)


def _first_bad(bad: pl.Series) -> int:
    return int(bad.fill_null(False).arg_true()[0])


def _numbers(frame: pl.DataFrame, column: str, path: Path, reader: str) -> pl.Series:
    """Column as non-negative Float64 (blank = null); a bad value raises with its line."""
    if column not in frame.columns:
        return pl.Series(column, [None] * frame.height, dtype=pl.Float64)
    text = frame[column]
    values = text.cast(pl.Float64, strict=False)
    bad = text.is_not_null() & (values.is_null() | ~values.is_finite() | (values < 0))
    if bad.fill_null(False).any():
        row = _first_bad(bad)
        raise CorruptFile(
            path, f"column {column!r} holds {text[row]!r}, which is not a count or amount",
            reader=reader, line=int(frame["line"][row]),
        )
    return values


def _integers(frame: pl.DataFrame, column: str, path: Path, reader: str) -> pl.Series:
    text = frame[column]
    values = text.cast(pl.Int64, strict=False)
    bad = text.is_not_null() & values.is_null()
    if bad.any():
        row = _first_bad(bad)
        raise CorruptFile(
            path, f"column {column!r} holds {text[row]!r}, which is not a whole number",
            reader=reader, line=int(frame["line"][row]),
        )
    return values


def _require_present(frame: pl.DataFrame, column: str, path: Path, reader: str) -> None:
    missing = frame[column].is_null()
    if missing.any():
        row = _first_bad(missing)
        raise CorruptFile(path, f"column {column!r} is empty", reader=reader, line=int(frame["line"][row]))


def _utc_times(frame: pl.DataFrame, column: str, path: Path, reader: str) -> pl.Series:
    text = frame[column]
    values = text.str.to_datetime(SAMSUNG_TIME_FORMAT, strict=False, time_unit="us")
    bad = values.is_null()
    if bad.any():
        row = _first_bad(bad)
        raise CorruptFile(
            path, f"column {column!r} holds {text[row]!r}, which is not a time like 2019-06-12 08:23:00.000",
            reader=reader, line=int(frame["line"][row]),
        )
    return values.dt.replace_time_zone("UTC")
