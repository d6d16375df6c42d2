"""The canonical interval schema, read from schemas/step_intervals.v1.json.

The JSON Schema is the one definition; the Arrow schema and the polars schema are derived from
it here, so readers, the lake and the glossary test all agree.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import polars as pl
import pyarrow as pa

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
STEP_INTERVALS_SCHEMA_FILE = SCHEMAS_DIR / "step_intervals.v1.json"

_ARROW_TYPES = {
    "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
    "float64": pa.float64(),
    "date32": pa.date32(),
}


def _arrow_type(spec: dict) -> pa.DataType:
    if "x-arrow" in spec:
        return _ARROW_TYPES[spec["x-arrow"]]
    kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    if "string" in kinds:
        return pa.string()
    if "boolean" in kinds:
        return pa.bool_()
    raise ValueError(f"no Arrow type for {spec}")


@cache
def step_intervals_json_schema() -> dict:
    return json.loads(STEP_INTERVALS_SCHEMA_FILE.read_text())


@cache
def step_intervals_arrow_schema() -> pa.Schema:
    spec = step_intervals_json_schema()
    required = set(spec["required"])
    return pa.schema(
        [
            pa.field(name, _arrow_type(prop), nullable=name not in required)
            for name, prop in spec["properties"].items()
        ]
    )


def step_intervals_polars_schema() -> pl.Schema:
    return pl.Schema(pl.from_arrow(step_intervals_arrow_schema().empty_table()).schema)


# What a reader returns: the canonical columns less those the ingest step adds
# (participant, file hash, local date, ingest time).
READER_COLUMNS: dict[str, pl.DataType] = {
    "source": pl.String,
    "device": pl.String,
    "start_utc": pl.Datetime("us", "UTC"),
    "end_utc": pl.Datetime("us", "UTC"),
    "steps": pl.Float64,
    "cumulative_steps": pl.Float64,
    "distance_m": pl.Float64,
    "activity_type": pl.String,
    "clock_adjusted": pl.Boolean,
}


def empty_reader_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=READER_COLUMNS)


def conform_reader_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Add missing optional columns as nulls and cast to the reader schema, in schema order."""
    exprs = []
    for name, dtype in READER_COLUMNS.items():
        if name in frame.columns:
            exprs.append(pl.col(name).cast(dtype))
        elif name == "clock_adjusted":
            exprs.append(pl.lit(False, dtype=dtype).alias(name))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(exprs)


# A device's own daily total, as some formats give it (Fitbit dailyActivity, Samsung per-device
# rows, FIT monitoring day totals). Kept for the daily_crosscheck table only.
DAILY_TOTAL_COLUMNS: dict[str, pl.DataType] = {
    "source": pl.String,
    "device": pl.String,
    "local_date": pl.Date,
    "steps": pl.Float64,
}


def conform_daily_totals(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select([pl.col(name).cast(dtype) for name, dtype in DAILY_TOTAL_COLUMNS.items()])
