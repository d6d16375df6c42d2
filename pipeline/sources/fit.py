"""FIT files from watches (Garmin, Coros, Wahoo, Suunto, ...): all-day monitoring and activities.

A FIT file is recognised by its header (size 12 or 14, then `.FIT` at bytes 8-11), never by its
name. `file_id.type` says what it holds:

Monitoring files (`monitoring_a`, `monitoring_b`): the watch's all-day step counter -> source
`fit_monitoring`.

- Each `monitoring` message carries a **counter per activity type** (walking, running) that is
  **cumulative since the device's local midnight** and resets there. fitparse reports it as
  `cycles` (the raw value / 2) unless the message names its activity type, when it reports
  `steps`; the counter is therefore `steps`, else `2 * cycles`.
- The activity type is `activity_type`, else the low 5 bits of
  `current_activity_type_intensity`; only walking (6) and running (1) carry steps.
- The device's local midnight is `monitoring_info.local_timestamp - monitoring_info.timestamp`
  away from UTC (the participant's zone when a file does not say). A message at exactly local
  00:00 still carries the day that just ended (its final count): a message's **reset day** is the
  local date of (its local time - 1 microsecond).
- Most messages carry only `timestamp_16`, the low 16 bits of the time. It is rebuilt from the
  previous monitoring time (the first one from `monitoring_info.timestamp`) by the nearest
  signed 16-bit difference; each rebuilt time becomes the next reference.
- One row per step-carrying message: `end_utc` = its time, `cumulative_steps` = the counter,
  `steps` = the counter minus the previous counter of the same activity type and reset day in
  this file (the counter itself after a reset or when there is none), `start_utc` = the previous
  monitoring time of any type, not earlier than the local midnight that starts the reset day.
  Zero-step rows are kept: they show the watch was on. The warehouse re-derives steps and starts
  across the files of one device from `cumulative_steps`; this module only works within a file.
- Device daily totals: per reset day, the last counter of each activity type, summed.

Activity files (`activity`): a recorded walk, run or hike -> source `fit_activity`.

- Only sessions whose sport is walking, running or hiking count (a bike's cadence is not steps).
- `record.cadence` is strides per minute: steps per minute = 2 x (cadence + fractional_cadence).
  Each record with a cadence stands for the time since the previous record of its session,
  (previous, this]; the first record of a session and gaps over 60 s (pauses) give no row.
- Old watches write times relative to power-on (values below 0x10000000); they are placed in
  time through the `activity` message, whose `local_timestamp` is read in the participant's zone.

Decoding is isolated in `_decode_messages` (fitparse today); any decoding failure becomes a
`CorruptFile` naming the byte offset where decoding stopped.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Callable

import fitparse
import polars as pl
from fitparse.utils import FitCRCError, FitEOFError, FitHeaderError, FitParseError

from pipeline.errors import CorruptFile, InputFileError, UnrecognisedFormat
from pipeline.schema import READER_COLUMNS, conform_daily_totals, conform_reader_frame
from pipeline.sources.base import ReadContext, ReadResult

UTC = timezone.utc
FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)
FIT_RELATIVE_TIME_LIMIT = 0x10000000  # FIT date_time values below this count from power-on

MONITORING_FILE_TYPES = frozenset({"monitoring_a", "monitoring_b"})
ACTIVITY_FILE_TYPE = "activity"
MONITORING_SOURCE = "fit_monitoring"
ACTIVITY_SOURCE = "fit_activity"

# FIT `activity_type` values whose monitoring counter counts steps.
STEP_COUNTING_ACTIVITY_TYPES = {6: "walking", 1: "running"}
STEP_SPORTS = frozenset({"walking", "running", "hiking"})
MAX_RECORD_GAP = timedelta(seconds=60)  # a longer gap between activity records is a pause
MAX_DEVICE_UTC_OFFSET = timedelta(hours=14)
JUST_BEFORE = timedelta(microseconds=1)

# What fitparse raises on damaged or non-FIT bytes besides its own FitParseError family.
_DECODER_FAILURES = (
    FitParseError,  # FitEOFError, FitCRCError, FitHeaderError
    struct.error,
    KeyError,
    ValueError,
    IndexError,
    TypeError,
    AttributeError,
    OverflowError,
    ZeroDivisionError,
)

Messages = dict[str, list[dict[str, Any]]]
ToUtc = Callable[[Any], "datetime | None"]  # a FIT time value -> UTC instant (None: unusable)


class FitReader:
    name = "fit"

    def detect(self, path: Path, head: bytes) -> bool:
        return len(head) >= 12 and head[0] in (12, 14) and head[8:12] == b".FIT"

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        messages = _decode_messages(path)
        file_types = _file_types(messages, path)
        frames, daily_totals = [], None
        if file_types & MONITORING_FILE_TYPES:
            device = _device_name(messages, MONITORING_FILE_TYPES)
            readings = _monitoring_readings(messages, context, path)
            frames.append(_monitoring_intervals(readings, device))
            daily_totals = _monitoring_daily_totals(readings, device)
        if ACTIVITY_FILE_TYPE in file_types:
            device = _device_name(messages, {ACTIVITY_FILE_TYPE})
            frames.append(_activity_intervals(messages, context, device))
        if not frames:
            kinds = ", ".join(sorted(file_types))
            raise UnrecognisedFormat(path, f"FIT file of type {kinds} holds no step data", reader=self.name)
        intervals = pl.concat(frames).sort("end_utc", maintain_order=True)
        return ReadResult(conform_reader_frame(intervals), daily_totals)


# --- decoding ---------------------------------------------------------------------------------


def _decode_messages(path: Path) -> Messages:
    """Every data message of the file (chained FIT files included): message name -> the
    messages' field values (fitparse `get_values()`), in file order. CRCs are checked."""
    fit = None
    try:
        fit = fitparse.FitFile(str(path), check_crc=True)
        messages: Messages = {}
        for message in fit.get_messages():
            messages.setdefault(message.name, []).append(message.get_values())
        return messages
    except OSError as error:
        raise InputFileError(path, f"the file cannot be opened ({error.strerror})", reader="fit") from error
    except _DECODER_FAILURES as error:
        offset = _decoding_stopped_at(fit)
        raise CorruptFile(path, _plain_problem(error, offset), reader="fit", offset=offset) from error
    finally:
        if fit is not None:
            fit.close()


def _decoding_stopped_at(fit: fitparse.FitFile | None) -> int | None:
    """The byte offset fitparse had reached when it failed (0: the header was refused)."""
    if fit is None:
        return 0
    handle = getattr(fit, "_file", None)
    try:
        return handle.tell() if handle is not None else None
    except (OSError, ValueError):
        return None


def _plain_problem(error: Exception, offset: int | None) -> str:
    if isinstance(error, FitEOFError):
        if offset == 0:
            return "the file is empty or shorter than a FIT header"
        return "the file ends in the middle of the FIT data: it was cut off"
    if isinstance(error, FitCRCError):
        return "the FIT checksum does not match the data: the file was damaged after the watch wrote it"
    if isinstance(error, FitHeaderError):
        return "the FIT file header is damaged: this is not a readable FIT file"
    return f"a FIT message cannot be decoded ({type(error).__name__}: {error})"


def _file_types(messages: Messages, path: Path) -> set[str]:
    file_ids = messages.get("file_id", [])
    if not file_ids:
        raise CorruptFile(path, "the FIT file has no file_id message", reader="fit")
    return {"unknown" if f.get("type") is None else str(f.get("type")) for f in file_ids}


def _device_name(messages: Messages, file_types: set[str] | frozenset[str]) -> str:
    """`manufacturer:product:serial_number` of the first file_id of one of `file_types`."""
    file_id = next(f for f in messages["file_id"] if str(f.get("type")) in file_types)
    product = file_id.get("garmin_product")
    if product is None:
        product = file_id.get("product")
    parts = (file_id.get("manufacturer"), product, file_id.get("serial_number"))
    return ":".join("unknown" if part is None else str(part) for part in parts)


# --- field values -----------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A finite number, or None (fitparse gives None for invalid values; arrays are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _utc(value: Any) -> datetime | None:
    """A FIT absolute time (fitparse: naive UTC datetime) as an aware UTC datetime."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None


# --- monitoring files -------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringReading:
    """One monitoring message placed in time; `counter` only for step-counting activity types."""

    order: int  # position among the file's monitoring messages
    time_utc: datetime
    reset_day: date
    reset_day_start_utc: datetime
    activity_type: str | None
    counter: float | None


def _monitoring_readings(messages: Messages, context: ReadContext, path: Path) -> list[MonitoringReading]:
    """The file's monitoring messages in time order (file order among equal times).

    A message with no time at all is left out: counters are cumulative, so its steps are still
    counted by the next message of its activity type."""
    monitoring = messages.get("monitoring", [])
    times = _monitoring_times(monitoring, messages.get("monitoring_info", []), path)
    clocks = _device_clocks(messages.get("monitoring_info", []), context)
    readings = []
    for order, (message, time_utc) in enumerate(zip(monitoring, times)):
        if time_utc is None:
            continue
        clock = _device_clock_at(clocks, time_utc)
        reset_day = (time_utc.astimezone(clock) - JUST_BEFORE).date()
        readings.append(
            MonitoringReading(
                order=order,
                time_utc=time_utc,
                reset_day=reset_day,
                reset_day_start_utc=datetime.combine(reset_day, time(0), tzinfo=clock).astimezone(UTC),
                activity_type=_step_activity_type(message),
                counter=_step_counter(message),
            )
        )
    return sorted(readings, key=lambda reading: (reading.time_utc, reading.order))


def _monitoring_times(monitoring: list[dict], monitoring_info: list[dict], path: Path) -> list[datetime | None]:
    """Full UTC times of the monitoring messages, rebuilding `timestamp_16` ones.

    The reference is the previous monitoring time, starting from the first
    `monitoring_info.timestamp` (or, without one, the first full monitoring timestamp). Only
    the monitoring messages are chained: other messages (device_info, event) may carry
    unrelated times, such as the sync time written before the data."""
    reference = _first_full_time(monitoring_info) or _first_full_time(monitoring)
    if reference is None and monitoring:
        raise CorruptFile(path, "the monitoring data has no full timestamp to place its 16-bit times", reader="fit")
    times = []
    for message in monitoring:
        full = _utc(message.get("timestamp"))
        low_bits = message.get("timestamp_16")
        if full is None and isinstance(low_bits, int):
            full = _rebuild_from_low_16_bits(low_bits, reference)
        times.append(full)
        reference = full or reference
    return times


def _first_full_time(messages: list[dict]) -> datetime | None:
    return next((t for t in (_utc(m.get("timestamp")) for m in messages) if t is not None), None)


def _rebuild_from_low_16_bits(low_bits: int, reference: datetime) -> datetime:
    """The time nearest to `reference` (within +/- 32,768 s) whose FIT seconds end in `low_bits`."""
    reference_seconds = int((reference - FIT_EPOCH).total_seconds())
    delta = (low_bits - reference_seconds) & 0xFFFF
    if delta >= 0x8000:
        delta -= 0x10000
    return reference + timedelta(seconds=delta)


def _device_clocks(monitoring_info: list[dict], context: ReadContext) -> list[tuple[datetime, tzinfo]]:
    """(from UTC time, device clock) pairs in time order; the participant's zone when the file
    gives no plausible local offset."""
    clocks = []
    for info in monitoring_info:
        since, local = _utc(info.get("timestamp")), _utc(info.get("local_timestamp"))
        if since is not None and local is not None and abs(local - since) <= MAX_DEVICE_UTC_OFFSET:
            clocks.append((since, timezone(local - since)))
    clocks.sort(key=lambda clock: clock[0])
    return clocks or [(FIT_EPOCH, context.zone)]


def _device_clock_at(clocks: list[tuple[datetime, tzinfo]], time_utc: datetime) -> tzinfo:
    """The clock of the latest monitoring_info at or before `time_utc` (else the first one)."""
    index = bisect_right([since for since, _ in clocks], time_utc) - 1
    return clocks[max(index, 0)][1]


def _step_activity_type(message: dict) -> str | None:
    """walking / running when the message's activity type counts steps, else None."""
    value = message.get("activity_type")
    if value is None:
        packed = message.get("current_activity_type_intensity")
        if isinstance(packed, (tuple, list)):
            packed = packed[0] if packed else None
        value = packed & 0x1F if isinstance(packed, int) and not isinstance(packed, bool) else None
    if isinstance(value, str):
        return value if value in STEP_COUNTING_ACTIVITY_TYPES.values() else None
    return STEP_COUNTING_ACTIVITY_TYPES.get(value) if isinstance(value, int) else None


def _step_counter(message: dict) -> float | None:
    """The cumulative step counter: `steps`, else 2 x `cycles` (fitparse halves the raw value)."""
    steps = _number(message.get("steps"))
    if steps is None:
        cycles = _number(message.get("cycles"))
        steps = None if cycles is None else 2 * cycles
    return steps if steps is not None and steps >= 0 else None


def _monitoring_intervals(readings: list[MonitoringReading], device: str) -> pl.DataFrame:
    rows = []
    last_counter: dict[tuple[str, date], float] = {}
    earlier_time, current_time = None, None
    for reading in readings:
        if reading.time_utc != current_time:
            earlier_time, current_time = current_time, reading.time_utc
        if reading.activity_type is None or reading.counter is None:
            continue
        key = (reading.activity_type, reading.reset_day)
        previous = last_counter.get(key)
        last_counter[key] = reading.counter
        start = reading.reset_day_start_utc
        if earlier_time is not None and earlier_time > start:
            start = earlier_time
        rows.append(
            {
                "start_utc": start,
                "end_utc": reading.time_utc,
                "steps": _steps_since(previous, reading.counter),
                "cumulative_steps": reading.counter,
                "activity_type": reading.activity_type,
            }
        )
    return _interval_frame(rows, MONITORING_SOURCE, device)


def _steps_since(previous_counter: float | None, counter: float) -> float:
    """Steps since the previous counter value; after a reset (or with none) the counter itself."""
    if previous_counter is None or counter < previous_counter:
        return counter
    return counter - previous_counter


def _monitoring_daily_totals(readings: list[MonitoringReading], device: str) -> pl.DataFrame:
    """Per reset day: the last counter of each activity type, summed."""
    last_counter: dict[tuple[date, str], float] = {}
    for reading in readings:
        if reading.activity_type is not None and reading.counter is not None:
            last_counter[(reading.reset_day, reading.activity_type)] = reading.counter
    day_totals: dict[date, float] = {}
    for (day, _), counter in last_counter.items():
        day_totals[day] = day_totals.get(day, 0.0) + counter
    days = sorted(day_totals)
    return conform_daily_totals(
        pl.DataFrame(
            {
                "source": [MONITORING_SOURCE] * len(days),
                "device": [device] * len(days),
                "local_date": days,
                "steps": [day_totals[day] for day in days],
            },
            schema={"source": pl.String, "device": pl.String, "local_date": pl.Date, "steps": pl.Float64},
        )
    )


# --- activity files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityRecord:
    time_utc: datetime
    steps_per_minute: float | None
    distance_m: float | None


def _activity_intervals(messages: Messages, context: ReadContext, device: str) -> pl.DataFrame:
    to_utc = _activity_clock(messages, context)
    walking_sessions = [
        (session["sport"], window)
        for session in messages.get("session", [])
        if session.get("sport") in STEP_SPORTS and (window := _session_window(session, to_utc)) is not None
    ]
    rows = []
    if walking_sessions:  # a ride or a swim: its cadence is not steps, skip its records
        records = _activity_records(messages.get("record", []), to_utc)
        record_times = [record.time_utc for record in records]
        for sport, (start, end) in walking_sessions:
            in_session = records[bisect_left(record_times, start) : bisect_right(record_times, end)]
            rows.extend(_record_intervals(in_session, sport))
    return _interval_frame(rows, ACTIVITY_SOURCE, device)


def _activity_clock(messages: Messages, context: ReadContext) -> ToUtc:
    """FIT time value -> UTC. Absolute times as they are; times relative to power-on through the
    `activity` message that pairs one relative time with its local wall-clock time."""
    anchor = None
    for activity in messages.get("activity", []):
        relative = activity.get("timestamp")
        local = activity.get("local_timestamp")
        if isinstance(relative, int) and not isinstance(relative, bool) and isinstance(local, datetime):
            anchor = local.replace(tzinfo=context.zone).astimezone(UTC) - timedelta(seconds=relative)
            break

    def to_utc(value: Any) -> datetime | None:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC)
        if anchor is not None and isinstance(value, int) and 0 <= value < FIT_RELATIVE_TIME_LIMIT:
            return anchor + timedelta(seconds=value)
        return None

    return to_utc


def _activity_records(records: list[dict], to_utc: ToUtc) -> list[ActivityRecord]:
    """Records with a usable time, in time order (file order among equal times)."""
    placed = []
    for record in records:
        time_utc = to_utc(record.get("timestamp"))
        if time_utc is None:
            continue
        cadence = _number(record.get("cadence"))
        fraction = _number(record.get("fractional_cadence")) or 0.0
        placed.append(
            ActivityRecord(
                time_utc=time_utc,
                steps_per_minute=None if cadence is None else 2 * (cadence + fraction),
                distance_m=_number(record.get("distance")),
            )
        )
    return sorted(placed, key=lambda record: record.time_utc)


def _session_window(session: dict, to_utc: ToUtc) -> tuple[datetime, datetime] | None:
    """[start_time, start_time + total_elapsed_time], the end rounded up to a whole second
    (record times are whole seconds; start_time is truncated); session.timestamp without an
    elapsed time."""
    start = to_utc(session.get("start_time"))
    elapsed = _number(session.get("total_elapsed_time"))
    if start is None:
        return None
    if elapsed is not None and 0 <= elapsed < 366 * 86400:
        return start, start + timedelta(seconds=math.ceil(elapsed))
    end = to_utc(session.get("timestamp"))
    return (start, end) if end is not None and end >= start else None


def _record_intervals(records: list[ActivityRecord], activity_type: str) -> list[dict]:
    """One interval per record with a cadence: (previous record, this record]."""
    rows = []
    for previous, record in zip(records, records[1:]):
        gap = record.time_utc - previous.time_utc
        if record.steps_per_minute is None or not timedelta(0) < gap <= MAX_RECORD_GAP:
            continue
        distance = None
        if record.distance_m is not None and previous.distance_m is not None:
            distance = record.distance_m - previous.distance_m
        rows.append(
            {
                "start_utc": previous.time_utc,
                "end_utc": record.time_utc,
                "steps": record.steps_per_minute * gap.total_seconds() / 60,
                "cumulative_steps": None,
                "distance_m": distance,
                "activity_type": activity_type,
            }
        )
    return rows


# --- output -----------------------------------------------------------------------------------


def _interval_frame(rows: list[dict], source: str, device: str) -> pl.DataFrame:
    columns = ["start_utc", "end_utc", "steps", "cumulative_steps", "distance_m", "activity_type"]
    frame = pl.DataFrame(
        {name: [row.get(name) for row in rows] for name in columns},
        schema={name: READER_COLUMNS[name] for name in columns},
    )
    return conform_reader_frame(frame.with_columns(source=pl.lit(source), device=pl.lit(device)))
