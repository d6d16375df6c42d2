"""Withings account export: `raw_tracker_steps.csv`.

Layout (recognised by its header `start,duration,value`):

    start,duration,value
    2019-12-28T12:12:00+01:00,"[60,60,60,60,60]","[24,0,0,0,12]"

- `start`: ISO-8601 time with its UTC offset (the instant is kept; no zone rule applies);
- `duration`, `value`: JSON arrays packed into one cell each, of equal length: a run of
  consecutive slots (usually 60 s, sometimes 59/61/120 s) and the steps counted in each. Slot k
  starts at `start` + the durations of slots 0..k-1. Each slot becomes one interval.

Re-syncs repeat minutes: the same row, or a longer run overlapping an earlier one, appears again
later in the file. An exact duplicate slot (same start instant, duration and steps) is kept once.
Two different slots at the same start instant (none in the real sample) are a re-sync that
changed the count: the later one in the file wins. In the real sample (9,090 rows, 17,059 slots)
2,575 slots are exact repeats; 2019-12-28 sums to 14,718 steps with them and 7,359 without.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl

from pipeline.errors import CorruptFile
from pipeline.schema import conform_reader_frame
from pipeline.sources.base import ReadContext, ReadResult
from pipeline.sources.text_tools import (
    CsvTable,
    decode_text,
    missing_columns,
    parse_instants,
    read_csv_table,
    reject_impossible_times,
    sniff_csv_header,
)

COLUMNS = ["start", "duration", "value"]
START_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
MAX_SLOT_SECONDS = 86_400  # slots are about a minute; a day-long one is damage


class WithingsReader:
    name = "withings"

    def detect(self, path: Path, head: bytes) -> bool:
        return set(COLUMNS) <= set(sniff_csv_header(head))

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        table = read_csv_table(path, decode_text(path, path.read_bytes(), reader=self.name), reader=self.name)
        missing = missing_columns(table.header, COLUMNS)
        if missing:
            raise CorruptFile(
                path, f"the header lacks column {missing[0]!r}", reader=self.name, line=table.header_line
            )
        starts = parse_instants(table, "start", START_FORMAT, reader=self.name)
        slots = self._slots(table)
        frame = slots.with_columns(
            start_utc=starts.gather(slots["row"]) + pl.duration(microseconds=pl.col("offset_us")),
        ).with_columns(end_utc=pl.col("start_utc") + pl.duration(microseconds=pl.col("duration_us")))
        reject_impossible_times(path, frame, table.lines.gather(frame["row"]), reader=self.name)
        frame = deduplicate_slots(frame)
        return ReadResult(
            conform_reader_frame(
                frame.select(
                    pl.lit(self.name).alias("source"),
                    pl.lit(None, dtype=pl.String).alias("device"),
                    "start_utc",
                    "end_utc",
                    "steps",
                )
            )
        )

    def _slots(self, table: CsvTable) -> pl.DataFrame:
        """One row per slot: source row index, offset from the row start, duration, steps."""
        rows: list[int] = []
        offsets: list[int] = []
        durations: list[int] = []
        steps: list[float] = []
        duration_cells = table.column("duration").to_list()
        value_cells = table.column("value").to_list()
        for index, (duration_cell, value_cell) in enumerate(zip(duration_cells, value_cells, strict=True)):
            line = int(table.lines[index])
            lengths = self._json_numbers(table.path, duration_cell, "duration", line)
            counts = self._json_numbers(table.path, value_cell, "value", line)
            if len(lengths) != len(counts):
                raise CorruptFile(
                    table.path,
                    f"'duration' lists {len(lengths)} slots but 'value' lists {len(counts)}",
                    reader=self.name,
                    line=line,
                )
            offset = 0
            for length, count in zip(lengths, counts, strict=True):
                if not 0 < length <= MAX_SLOT_SECONDS:
                    raise CorruptFile(
                        table.path, f"'duration' holds a slot of {length} s", reader=self.name, line=line
                    )
                if count < 0:
                    raise CorruptFile(
                        table.path,
                        f"'value' holds a negative step count ({count})",
                        reader=self.name,
                        line=line,
                    )
                rows.append(index)
                offsets.append(offset)
                duration_us = round(length * 1_000_000)
                durations.append(duration_us)
                steps.append(float(count))
                offset += duration_us
        return pl.DataFrame(
            {"row": rows, "offset_us": offsets, "duration_us": durations, "steps": steps},
            schema={"row": pl.UInt32, "offset_us": pl.Int64, "duration_us": pl.Int64, "steps": pl.Float64},
        )

    def _json_numbers(self, path: Path, cell: str, column: str, line: int) -> list[float]:
        try:
            values = json.loads(cell)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise CorruptFile(
                path, f"column {column!r} holds {cell[:60]!r}, not a JSON array", reader=self.name, line=line
            ) from exc
        except ValueError as exc:  # an integer of more digits than Python converts (sys.int_info)
            raise CorruptFile(
                path,
                f"column {column!r} holds a number too long to be a step count or duration ({cell[:40]!r}...)",
                reader=self.name,
                line=line,
            ) from exc
        if not isinstance(values, list) or not all(_is_finite_number(value) for value in values):
            raise CorruptFile(
                path,
                f"column {column!r} holds {cell[:60]!r}, not a JSON array of numbers",
                reader=self.name,
                line=line,
            )
        return values


def deduplicate_slots(frame: pl.DataFrame) -> pl.DataFrame:
    """Keep each exact (start, duration, steps) slot once; of different slots sharing a start
    instant, keep the one latest in the file. Sorted by start."""
    return (
        frame.with_row_index("file_order")
        .unique(subset=["start_utc", "duration_us", "steps"], keep="first", maintain_order=True)
        .unique(subset=["start_utc"], keep="last", maintain_order=True)
        .sort("start_utc", "file_order")
        .drop("file_order")
    )


def _is_finite_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        return False
