"""Fitbit account exports other than the Fitabase minute/hour CSVs (see fitbit.py), same source.

Three layouts, each recognised by content:

- Legacy account archive / Takeout JSON (`steps-YYYY-MM-DD.json`, a file can span weeks):
  `[{"dateTime": "MM/DD/YY HH:MM:SS", "value": "12"}, ...]`, value a string. One 1-minute
  interval per element, in local wall-clock time (participant's zone, definitions v1).
  Recognised by a JSON array whose elements hold a `dateTime` in that form and a `value` that is
  a string of digits, with at least one time that is not midnight (the daily series of the same
  archive, e.g. sedentary minutes, are stamped 00:00:00; calories have decimal values and heart
  rate an object value). Limit: the archive's per-minute `distance-*.json` has the same shape
  as steps and cannot be told apart by content; only steps files should be given to Stepwise.
- Google-era Takeout CSV (`Physical Activity_GoogleData/steps_YYYY-MM-DD.csv`):
  `timestamp,steps,data source` with `2024-05-01T06:15:00Z` (fractional seconds occur). One
  1-minute interval per row. A timestamp with an offset or Z keeps its instant; one without is
  local wall clock in the participant's zone. `device` is the `data source` value (the tracker,
  the phone's `MobileTrack`, Health Connect mirrors, ...): the same minute from two devices is
  never added, because the warehouse takes one device per minute.
- Fitabase daily files, `dailyActivity` (`Id,ActivityDate,TotalSteps,...`) and `dailySteps`
  (`Id,ActivityDay,StepTotal`): the device's own daily totals, returned as device_daily_totals
  for cross-checking only (no intervals). Every row's `Id` must be the participant whose folder
  holds the file (WrongParticipant naming the line otherwise). Non-wear days (0 steps) are kept:
  they are the device's own figure, not ours.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import polars as pl

from pipeline.errors import CorruptFile, WrongParticipant
from pipeline.schema import conform_daily_totals, conform_reader_frame, empty_reader_frame
from pipeline.sources.base import ReadContext, ReadResult
from pipeline.sources.text_tools import (
    OFFSET_SUFFIX,
    CsvTable,
    decode_text,
    head_text,
    iter_json_array,
    json_key_line,
    parse_instants,
    parse_naive_times,
    parse_numbers,
    read_csv_table,
    reject_impossible_times,
    sniff_csv_header,
    wall_clock_to_utc,
)

JSON_TIME_FORMAT = "%m/%d/%y %H:%M:%S"
ISO_LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S%.f"
ISO_OFFSET_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
DAILY_DATE_FORMAT = "%m/%d/%Y"
ONE_MINUTE = timedelta(minutes=1)
DEVICE = "fitbit"

_JSON_DATETIME = re.compile(r'"dateTime"\s*:\s*"([^"]*)"')
_JSON_VALUE = re.compile(r'"value"\s*:\s*("[^"]*"|[^,}\s]+)')
_LEGACY_TIME = re.compile(r"^\d{2}/\d{2}/\d{2} (\d{2}:\d{2}:\d{2})$")
# (date column, steps column) of the Fitabase daily layouts
DAILY_LAYOUTS = (("ActivityDate", "TotalSteps"), ("ActivityDay", "StepTotal"))


def _is_legacy_steps_json(text: str) -> bool:
    if not text.lstrip().startswith("["):
        return False
    text = text[: text.rfind("}") + 1]  # the head may end inside an element
    times = _JSON_DATETIME.findall(text)
    values = _JSON_VALUE.findall(text)
    if not times or not values:
        return False
    matches = [_LEGACY_TIME.match(value) for value in times]
    return (
        all(matches)
        and any(match.group(1) != "00:00:00" for match in matches if match)
        and all(re.fullmatch(r'"?\d+"?', value) for value in values)
    )


class FitbitTakeoutReader:
    name = "fitbit"

    def detect(self, path: Path, head: bytes) -> bool:
        text = head_text(head)
        if not text:
            return False
        if _is_legacy_steps_json(text):
            return True
        names = set(sniff_csv_header(head))
        return {"timestamp", "steps"} <= names or any(
            {"Id", date_column, steps_column} <= names for date_column, steps_column in DAILY_LAYOUTS
        )

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        text = decode_text(path, path.read_bytes(), reader=self.name)
        if text.lstrip().startswith("["):
            return ReadResult(self._legacy_json(path, text, context))
        table = read_csv_table(path, text, reader=self.name)
        for date_column, steps_column in DAILY_LAYOUTS:
            if {"Id", date_column, steps_column} <= set(table.header):
                return self._daily_totals(table, date_column, steps_column, context)
        if {"timestamp", "steps"} <= set(table.header):
            return ReadResult(self._minute_csv(table, context))
        raise CorruptFile(
            path,
            "the header has neither timestamp,steps nor Id,ActivityDate,TotalSteps",
            reader=self.name,
            line=table.header_line,
        )

    # -- legacy JSON ---------------------------------------------------------------------------

    def _legacy_json(self, path: Path, text: str, context: ReadContext) -> pl.DataFrame:
        times: list[str] = []
        values: list[str] = []
        time_lines: list[int] = []
        value_lines: list[int] = []
        for line, element, start, end in iter_json_array(path, text, reader=self.name):
            if not isinstance(element, dict) or not isinstance(element.get("dateTime"), str):
                raise CorruptFile(path, 'an element has no "dateTime" string', reader=self.name, line=line)
            value = element.get("value")
            value_line = json_key_line(text, start, end, "value", line)
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise CorruptFile(
                    path, f'"value" is {value!r}, not a step count', reader=self.name, line=value_line
                )
            times.append(element["dateTime"])
            values.append(str(value))
            time_lines.append(json_key_line(text, start, end, "dateTime", line))
            value_lines.append(value_line)
        local = parse_naive_times(
            _json_table(path, "dateTime", times, time_lines), "dateTime", JSON_TIME_FORMAT, reader=self.name
        )
        value_table = _json_table(path, "value", values, value_lines)
        steps = parse_numbers(value_table, "value", reader=self.name)
        self._require_values(value_table, steps, "value")
        instants = wall_clock_to_utc(local, context.time_zone)
        frame = pl.DataFrame(
            {
                "source": self.name,
                "device": DEVICE,
                "start_utc": instants["utc"],
                "end_utc": instants["utc"] + ONE_MINUTE,
                "steps": steps,
                "clock_adjusted": instants["clock_adjusted"],
            }
        )
        reject_impossible_times(path, frame, pl.Series(time_lines, dtype=pl.Int64), reader=self.name)
        return conform_reader_frame(frame)

    # -- Google-era minute CSV -----------------------------------------------------------------

    def _minute_csv(self, table: CsvTable, context: ReadContext) -> pl.DataFrame:
        steps = parse_numbers(table, "steps", reader=self.name)
        stamps = table.column("timestamp").str.strip_chars().str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
        with_offset = stamps.str.contains(OFFSET_SUFFIX)
        start = pl.Series("start_utc", [None] * table.height, dtype=pl.Datetime("us", "UTC"))
        adjusted = pl.Series("clock_adjusted", [False] * table.height, dtype=pl.Boolean)
        if with_offset.any():
            rows = with_offset.arg_true()
            instants = parse_instants(
                table.take(rows), "timestamp", ISO_OFFSET_FORMAT, reader=self.name, values=stamps.gather(rows)
            )
            start = start.scatter(rows, instants)
        if (~with_offset).any():
            rows = (~with_offset).arg_true()
            local = parse_naive_times(
                table.take(rows), "timestamp", ISO_LOCAL_FORMAT, reader=self.name, values=stamps.gather(rows)
            )
            converted = wall_clock_to_utc(local, context.time_zone)
            start = start.scatter(rows, converted["utc"])
            adjusted = adjusted.scatter(rows, converted["clock_adjusted"])
        if "data source" in table.header:
            device = table.column("data source").replace("", None)
        else:
            device = pl.Series([DEVICE] * table.height, dtype=pl.String)
        frame = pl.DataFrame(
            {
                "source": self.name,
                "device": device.fill_null(DEVICE),
                "start_utc": start,
                "end_utc": start + ONE_MINUTE,
                "steps": steps,
                "clock_adjusted": adjusted,
            }
        )
        reject_impossible_times(table.path, frame, table.lines, reader=self.name)
        frame = frame.filter(pl.col("steps").is_not_null())  # an empty cell is no data, not 0
        return conform_reader_frame(frame)

    # -- Fitabase daily totals -----------------------------------------------------------------

    def _daily_totals(
        self, table: CsvTable, date_column: str, steps_column: str, context: ReadContext
    ) -> ReadResult:
        ids = table.column("Id")
        foreign = (ids != context.participant_id).arg_true()
        if foreign.len():
            row = int(foreign[0])
            raise WrongParticipant(
                table.path,
                f"row has Id {ids[row]!r} but the file is in the folder of participant "
                f"{context.participant_id!r}",
                reader=self.name,
                line=int(table.lines[row]),
            )
        dates = parse_naive_times(table, date_column, DAILY_DATE_FORMAT, reader=self.name).dt.date()
        steps = parse_numbers(table, steps_column, reader=self.name)
        totals = pl.DataFrame(
            {"source": self.name, "device": DEVICE, "local_date": dates, "steps": steps}
        ).filter(pl.col("steps").is_not_null())
        return ReadResult(empty_reader_frame(), conform_daily_totals(totals))

    def _require_values(self, table: CsvTable, values: pl.Series, column: str) -> None:
        missing = values.is_null().arg_true()
        if missing.len():
            line = int(table.lines[int(missing[0])])
            raise CorruptFile(table.path, f"{column!r} is empty", reader=self.name, line=line)


def _json_table(path: Path, key: str, values: list[str], lines: list[int]) -> CsvTable:
    """One key of the JSON elements as a text column, each value with the line it is on."""
    return CsvTable(
        path,
        [key],
        1,
        {key: pl.Series(key, values, dtype=pl.String)},
        pl.Series("line", lines, dtype=pl.Int64),
    )
