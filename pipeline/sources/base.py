"""The reader interface: every export format is one module with one `Reader`.

A reader recognises its format from the file's content (`detect`, given the first bytes) and
turns the file into canonical step intervals (`read`). Readers know nothing of DuckDB, the lake
or other readers; they raise `InputFileError` subclasses naming the file and the line or offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import polars as pl

HEAD_BYTES = 4096


@dataclass(frozen=True)
class ReadContext:
    """What a reader may know about the file it reads."""

    participant_id: str
    time_zone: str  # IANA name from participants.csv
    # The file's bytes when the caller has already read them (small files), else None. A reader
    # may decode these instead of opening the file again; most readers stream from the path.
    content: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class ReadResult:
    """What a reader gives back for one file.

    - `intervals`: canonical step intervals (columns of pipeline.schema.READER_COLUMNS);
    - `device_daily_totals`: the device's own daily totals where the format gives them, kept for
      cross-checking only (columns of pipeline.schema.DAILY_TOTAL_COLUMNS), never added to steps.
    """

    intervals: pl.DataFrame
    device_daily_totals: pl.DataFrame | None = None


class Reader(Protocol):
    #: the `source` value of the rows this reader produces (decides source priority)
    name: str

    def detect(self, path: Path, head: bytes) -> bool:
        """True when `head` (the first HEAD_BYTES of the file) is this reader's format."""
        ...

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        """The file as canonical intervals (and device daily totals, where the format has them).

        Raises an `InputFileError` subclass naming the file and the line or byte offset."""
        ...


def local_wall_clock_to_utc(naive: pl.Series, time_zone: str) -> pl.DataFrame:
    """Local wall-clock times (no offset) -> UTC instants, by the DST rules of definitions v1.

    - In the repeated autumn hour, the first occurrence of a wall-clock time in the series maps
      to the earlier instant and a second occurrence to the later one (a time listed once maps to
      the earlier instant).
    - A time inside the skipped spring hour is moved forward by the size of the gap and marked
      `clock_adjusted`.

    Returns columns `utc` (Datetime us UTC) and `clock_adjusted` (bool), in the input order.
    """
    frame = pl.DataFrame({"naive": naive.cast(pl.Datetime("us"))})
    if frame.is_empty():  # polars panics on an empty series with an expression for `ambiguous`
        return pl.DataFrame(schema={"utc": pl.Datetime("us", "UTC"), "clock_adjusted": pl.Boolean})
    occurrence = pl.col("naive").cum_count().over("naive")
    frame = frame.with_columns(
        pl.col("naive")
        .dt.replace_time_zone(
            time_zone,
            ambiguous=pl.when(occurrence >= 2).then(pl.lit("latest")).otherwise(pl.lit("earliest")),
            non_existent="null",
        )
        .dt.convert_time_zone("UTC")
        .alias("utc")
    )
    gaps = frame.filter(pl.col("utc").is_null() & pl.col("naive").is_not_null())
    if gaps.height:
        zone = ZoneInfo(time_zone)
        # PEP 495: a non-existent local time with fold=0 takes the offset before the gap, which
        # is exactly "moved forward by the size of the gap".
        fixed = {
            value: datetime.fromisoformat(value.isoformat()).replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))
            for value in gaps["naive"].unique().to_list()
        }
        mapping = pl.DataFrame(
            {"naive": list(fixed.keys()), "moved": list(fixed.values())},
            schema={"naive": pl.Datetime("us"), "moved": pl.Datetime("us", "UTC")},
        )
        frame = frame.join(mapping, on="naive", how="left", maintain_order="left")
        return frame.select(
            pl.coalesce("utc", "moved").alias("utc"),
            (pl.col("utc").is_null() & pl.col("moved").is_not_null()).alias("clock_adjusted"),
        )
    return frame.select("utc", pl.lit(False).alias("clock_adjusted"))
