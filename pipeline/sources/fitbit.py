"""Fitbit minute and hourly step CSVs in the Fitabase research layout.

- narrow  `Id,ActivityMinute,Steps`            one row per minute
- wide    `Id,ActivityHour,Steps00..Steps59`   one row per hour, one column per minute
- hourly  `Id,ActivityHour,StepTotal`          one row per hour (coarse: counts toward day steps only)

Times are local wall clock (`M/D/YYYY h:mm:ss AM/PM`, no zone) and are read in the participant's
zone. Every row's `Id` must be the participant whose inbox folder holds the file: a row of anyone
else rejects the file (it is never attributed to the wrong person).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from pipeline.errors import WrongParticipant
from pipeline.schema import conform_reader_frame
from pipeline.sources.base import ReadContext, ReadResult, local_wall_clock_to_utc
from pipeline.sources.csv_tools import header_names, parse_numbers, parse_times, read_text_csv, require_column

FITABASE_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
WIDE_MINUTE_COLUMNS = [f"Steps{minute:02d}" for minute in range(60)]


class FitabaseReader:
    name = "fitbit"

    def detect(self, path: Path, head: bytes) -> bool:
        names = set(header_names(head))
        if not {"Id"} <= names:
            return False
        return (
            {"ActivityMinute", "Steps"} <= names
            or ({"ActivityHour"} | set(WIDE_MINUTE_COLUMNS)) <= names
            or {"ActivityHour", "StepTotal"} <= names
        )

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        frame = read_text_csv(path, reader=self.name)
        self._check_participant(frame, path, context)
        columns = set(frame.columns)
        if {"ActivityMinute", "Steps"} <= columns:
            starts = parse_times(frame, "ActivityMinute", FITABASE_TIME_FORMAT, path, reader=self.name)
            local = _local_rows(starts, parse_numbers(frame, "Steps", path, reader=self.name), timedelta(minutes=1))
        elif {"ActivityHour", "StepTotal"} <= columns:
            starts = parse_times(frame, "ActivityHour", FITABASE_TIME_FORMAT, path, reader=self.name)
            local = _local_rows(starts, parse_numbers(frame, "StepTotal", path, reader=self.name), timedelta(hours=1))
        else:
            hours = parse_times(frame, "ActivityHour", FITABASE_TIME_FORMAT, path, reader=self.name)
            per_minute = [
                _local_rows(
                    hours + timedelta(minutes=minute),
                    parse_numbers(frame, column, path, reader=self.name),
                    timedelta(minutes=1),
                )
                for minute, column in enumerate(WIDE_MINUTE_COLUMNS)
            ]
            local = pl.concat(per_minute).sort("local_start", maintain_order=True)
        local = local.filter(pl.col("steps").is_not_null())
        instants = local_wall_clock_to_utc(local["local_start"], context.time_zone)
        return ReadResult(conform_reader_frame(
            pl.DataFrame(
                {
                    "source": self.name,
                    "device": "fitbit",
                    "start_utc": instants["utc"],
                    "end_utc": instants["utc"] + local["length"],
                    "steps": local["steps"],
                    "clock_adjusted": instants["clock_adjusted"],
                }
            )
        ))

    def _check_participant(self, frame: pl.DataFrame, path: Path, context: ReadContext) -> None:
        ids = require_column(frame, "Id", path, reader=self.name).str.strip_chars()
        foreign = ids != context.participant_id
        if foreign.any():
            row = int(foreign.arg_true()[0])
            raise WrongParticipant(
                path,
                f"row has Id {ids[row]!r} but the file is in the folder of participant "
                f"{context.participant_id!r}",
                reader=self.name,
                line=row + 2,
            )


def _local_rows(starts: pl.Series, steps: pl.Series, length: timedelta) -> pl.DataFrame:
    """Local starts, steps and the interval length, typed even when the file has no rows."""
    return pl.DataFrame({"local_start": starts, "steps": steps}).with_columns(
        pl.lit(length, dtype=pl.Duration("us")).alias("length")
    )
