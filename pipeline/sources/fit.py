"""FIT files from watches (Garmin, Coros, Wahoo, Suunto, ...): all-day monitoring and activities.

A FIT file is recognised by its header (size 12 or 14, then `.FIT` at bytes 8-11), never by its
name. `file_id.type` says what it holds:

Monitoring files (`monitoring_a`, `monitoring_b`): the watch's all-day step counter -> source
`fit_monitoring`.

- Each `monitoring` message carries a **counter per activity type** (walking, running) that is
  **cumulative since the device's local midnight** and resets there. It is decoded (as fitparse
  does) as `cycles` (the raw value / 2) unless the message names its activity type, when it is
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

Decoding is `pipeline.fitdecode.decode_columns`: one column per field and message type, with the
values fitparse would give (fitparse is the decoder's test oracle; only its profile tables are
used at run time). The few file_id, monitoring_info, session and activity messages are read as
dicts; monitoring and record messages are processed column-wise with NumPy. Times are handled as
int64 microseconds since 1970-01-01 UTC. The decoder raises `CorruptFile` naming the byte offset
of the damaged structure (file header, message or checksum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.errors import CorruptFile, InputFileError, UnrecognisedFormat
from pipeline.fitdecode import Column, FitColumns, MessageColumns, decode_columns
from pipeline.schema import DAILY_TOTAL_COLUMNS, READER_COLUMNS, conform_reader_frame
from pipeline.sources.base import ReadContext, ReadResult

UTC = timezone.utc
FIT_RELATIVE_TIME_LIMIT = 0x10000000  # FIT date_time values below this count from power-on

MONITORING_FILE_TYPES = frozenset({"monitoring_a", "monitoring_b"})
ACTIVITY_FILE_TYPE = "activity"
MONITORING_SOURCE = "fit_monitoring"
ACTIVITY_SOURCE = "fit_activity"

# FIT `activity_type` values whose monitoring counter counts steps.
STEP_COUNTING_ACTIVITY_TYPES = {6: "walking", 1: "running"}
STEP_COUNTING_NAMES = frozenset(STEP_COUNTING_ACTIVITY_TYPES.values())
STEP_SPORTS = frozenset({"walking", "running", "hiking"})
MAX_DEVICE_UTC_OFFSET = timedelta(hours=14)

# Instants are int64 microseconds since 1970-01-01 UTC ("us" below), the unit of the output.
MICROSECOND = timedelta(microseconds=1)
SECOND = 1_000_000
DAY = 86_400 * SECOND
MAX_RECORD_GAP = 60 * SECOND  # a longer gap between activity records is a pause
UNIX_EPOCH = datetime(1970, 1, 1)  # naive, like the decoder's UTC datetimes
FIT_EPOCH = (datetime(1989, 12, 31) - UNIX_EPOCH) // MICROSECOND
# The instants a Python datetime can hold (years 1-9999); a decoded time outside them is no time.
EARLIEST = (datetime.min - UNIX_EPOCH) // MICROSECOND
LATEST = (datetime.max - UNIX_EPOCH) // MICROSECOND


class FitReader:
    name = "fit"

    def detect(self, path: Path, head: bytes) -> bool:
        return len(head) >= 12 and head[0] in (12, 14) and head[8:12] == b".FIT"

    def read(self, path: Path, context: ReadContext) -> ReadResult:
        decoded = _decode(path, context.content)
        file_ids = _dicts(decoded, "file_id")
        file_types = _file_types(file_ids, path)
        frames, daily_totals = [], None
        if file_types & MONITORING_FILE_TYPES:
            device = _device_name(file_ids, MONITORING_FILE_TYPES)
            readings = _monitoring_readings(decoded, context, path)
            frames.append(_monitoring_intervals(readings, device))
            daily_totals = _monitoring_daily_totals(readings, device)
        if ACTIVITY_FILE_TYPE in file_types:
            device = _device_name(file_ids, {ACTIVITY_FILE_TYPE})
            frames.append(_activity_intervals(decoded, context, device))
        if not frames:
            kinds = ", ".join(sorted(file_types))
            raise UnrecognisedFormat(path, f"FIT file of type {kinds} holds no step data", reader=self.name)
        return ReadResult(_in_time_order(frames), daily_totals)


# --- decoding ---------------------------------------------------------------------------------


def _decode(path: Path, content: bytes | None = None) -> FitColumns:
    """The messages the reader uses (chained FIT files included), as columns in file order. CRCs
    are checked; the decoder raises `CorruptFile` with the byte offset on a damaged file.
    `content`: the file's bytes, when the caller has already read them."""
    try:
        data = path.read_bytes() if content is None else content
    except OSError as error:
        raise InputFileError(path, f"the file cannot be opened ({error.strerror})", reader="fit") from error
    return decode_columns(data, path=path)


def _dicts(decoded: FitColumns, name: str) -> list[dict[str, Any]]:
    """The messages of a type with few of them (file_id, session, ...) as field -> value dicts."""
    return decoded[name].to_dicts() if name in decoded else []


def _file_types(file_ids: list[dict], path: Path) -> set[str]:
    if not file_ids:
        raise CorruptFile(path, "the FIT file has no file_id message", reader="fit")
    return {"unknown" if f.get("type") is None else str(f.get("type")) for f in file_ids}


def _device_name(file_ids: list[dict], file_types: set[str] | frozenset[str]) -> str:
    """`manufacturer:product:serial_number` of the first file_id of one of `file_types`."""
    file_id = next(f for f in file_ids if str(f.get("type")) in file_types)
    product = file_id.get("garmin_product")
    if product is None:
        product = file_id.get("product")
    parts = (file_id.get("manufacturer"), product, file_id.get("serial_number"))
    return ":".join("unknown" if part is None else str(part) for part in parts)


# --- field values -----------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A finite number, or None (the decoder gives None for invalid values; arrays are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _instant(value: Any, relative_anchor: int | None = None) -> int | None:
    """A FIT time value in us: a datetime (the decoder's naive UTC) as it is; an integer (seconds
    since power-on) only with the `relative_anchor`, the instant of power-on. None: unusable."""
    if isinstance(value, datetime):
        return (value.replace(tzinfo=None) - UNIX_EPOCH) // MICROSECOND
    if relative_anchor is not None and isinstance(value, int) and 0 <= value < FIT_RELATIVE_TIME_LIMIT:
        instant = relative_anchor + value * SECOND
        return instant if EARLIEST <= instant <= LATEST else None
    return None


def _column(messages: MessageColumns | None, name: str) -> tuple[Column | None, int]:
    """A field's column (None when no message has it) and the number of messages."""
    if messages is None:
        return None, 0
    return messages.columns.get(name), len(messages)


def _usable(column: Column) -> np.ndarray:
    """Where a column holds a value: valid (not fitparse's None) and present in the message."""
    usable = np.ones(len(column.values), dtype=bool)
    for mask in (column.valid, column.present):
        if mask is not None:
            usable &= mask
    return usable


def _numbers(messages: MessageColumns | None, name: str) -> np.ndarray:
    """A field of every message as float64: its finite number, else NaN (no value, an array, a
    name). Typed columns are converted at once; mixed ones value by value, like `_number`."""
    column, size = _column(messages, name)
    if column is None:
        return np.full(size, np.nan)
    if column.kind in ("int", "float"):
        numbers = column.values.astype(np.float64)
        return np.where(_usable(column) & np.isfinite(numbers), numbers, np.nan)
    numbers = [_number(value) for value in column.python_values()]
    return np.array([math.nan if number is None else number for number in numbers], dtype=np.float64)


def _instants(
    messages: MessageColumns | None, name: str, relative_anchor: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A time field of every message in us, and where it is usable (see `_instant`)."""
    column, size = _column(messages, name)
    if column is None:
        return np.zeros(size, dtype=np.int64), np.zeros(size, dtype=bool)
    if column.kind == "datetime":  # whole seconds, the common case
        seconds = column.values.astype("datetime64[s]").astype(np.int64)
        usable = _usable(column) & (seconds >= EARLIEST // SECOND) & (seconds <= LATEST // SECOND)
        return np.where(usable, seconds, 0) * SECOND, usable
    instants = [_instant(value, relative_anchor) for value in column.python_values()]
    usable = np.array([instant is not None for instant in instants], dtype=bool)
    return np.array([instant or 0 for instant in instants], dtype=np.int64), usable


def _utc_series(instants: np.ndarray) -> pl.Series:
    return pl.Series(instants, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


def _repeat(text: str, size: int) -> pl.Series:
    return pl.Series([text], dtype=pl.String).new_from_index(0, size)


def _dates(days: np.ndarray) -> pl.Series:
    """Days since 1970-01-01 as dates."""
    return pl.Series(days, dtype=pl.Int64).cast(pl.Int32).cast(pl.Date)


# --- monitoring files -------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringReadings:
    """The file's monitoring messages placed in time, in time order (file order among equal times).

    A message with no time at all is left out: counters are cumulative, so its steps are still
    counted by the next message of its activity type."""

    time_utc: np.ndarray  # us
    reset_day: np.ndarray  # days since 1970-01-01
    reset_day_start_utc: np.ndarray  # us
    activity_type: np.ndarray  # "walking" / "running", else None (object)
    counter: np.ndarray  # the step counter; NaN unless the activity type counts steps

    def step_carrying(self) -> np.ndarray:
        return (self.activity_type != None) & ~np.isnan(self.counter)  # noqa: E711 - element-wise


def _monitoring_readings(decoded: FitColumns, context: ReadContext, path: Path) -> MonitoringReadings:
    monitoring = decoded.get("monitoring")
    monitoring_info = _dicts(decoded, "monitoring_info")
    times, timed = _monitoring_times(monitoring, monitoring_info, path)
    order = np.argsort(times[timed], kind="stable")
    times = times[timed][order]
    reset_days, reset_day_starts = _reset_days(times, monitoring_info, context)
    return MonitoringReadings(
        time_utc=times,
        reset_day=reset_days,
        reset_day_start_utc=reset_day_starts,
        activity_type=np.array(_step_activity_types(monitoring), dtype=object)[timed][order],
        counter=_step_counters(monitoring)[timed][order],
    )


def _monitoring_times(
    monitoring: MessageColumns | None, monitoring_info: list[dict], path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Full UTC times (us) of the monitoring messages, rebuilding `timestamp_16` ones, and which
    messages have a time.

    The reference is the previous monitoring time, starting from the first
    `monitoring_info.timestamp` (or, without one, the first full monitoring timestamp). Only
    the monitoring messages are chained: other messages (device_info, event) may carry
    unrelated times, such as the sync time written before the data."""
    full, has_full = _instants(monitoring, "timestamp")
    low_bits, has_low_bits = _low_16_bits(monitoring)
    info_times = (_instant(info.get("timestamp")) for info in monitoring_info)
    reference = next((t for t in info_times if t is not None), None)
    if reference is None and has_full.any():
        reference = int(full[np.argmax(has_full)])
    if reference is None:
        if monitoring is not None and len(monitoring):
            problem = "the monitoring data has no full timestamp to place its 16-bit times"
            raise CorruptFile(path, problem, reader="fit")
        return full, has_full
    timed = has_full | has_low_bits
    full, has_full, low_bits = full[timed], has_full[timed], low_bits[timed]
    # A 16-bit time lies within +/- 32,768 s of the previous time (the reference for the first
    # one): the nearest signed 16-bit difference of FIT seconds. A run of them after a full time
    # is that time plus the running sum of the differences.
    low_bits_of_time = np.where(has_full, ((full - FIT_EPOCH) // SECOND) & 0xFFFF, low_bits)
    reference_low_bits = ((reference - FIT_EPOCH) // SECOND) & 0xFFFF
    previous_low_bits = np.concatenate(([reference_low_bits], low_bits_of_time[:-1]))
    difference = ((low_bits - previous_low_bits + 0x8000) & 0xFFFF) - 0x8000
    elapsed = np.cumsum(np.where(has_full, 0, difference * SECOND))
    last_full = np.maximum.accumulate(np.where(has_full, np.arange(len(full)), -1))
    after_full = last_full >= 0
    base = np.where(after_full, full[last_full], reference)
    times = np.zeros(len(timed), dtype=np.int64)
    times[timed] = base + elapsed - np.where(after_full, elapsed[last_full], 0)
    return times, timed


def _low_16_bits(monitoring: MessageColumns | None) -> tuple[np.ndarray, np.ndarray]:
    """`timestamp_16` of every message (its low 16 bits, when an integer) and where it has one."""
    column, size = _column(monitoring, "timestamp_16")
    if column is None:
        return np.zeros(size, dtype=np.int64), np.zeros(size, dtype=bool)
    if column.kind == "int":
        usable = _usable(column)
        return np.where(usable, column.values & 0xFFFF, 0).astype(np.int64), usable
    low_bits = [value & 0xFFFF if isinstance(value, int) else None for value in column.python_values()]
    usable = np.array([bits is not None for bits in low_bits], dtype=bool)
    return np.array([bits or 0 for bits in low_bits], dtype=np.int64), usable


def _reset_days(
    times: np.ndarray, monitoring_info: list[dict], context: ReadContext
) -> tuple[np.ndarray, np.ndarray]:
    """Per time (us): its reset day (days since 1970-01-01, the local date 1 us earlier) and the
    UTC instant (us) of that day's local midnight.

    The device clock is that of the latest monitoring_info at or before the time (else the first
    one); the participant's zone when the file gives no plausible local offset."""
    since, utc_offsets = _device_clocks(monitoring_info)
    if len(since):
        clock = np.maximum(np.searchsorted(since, times, side="right") - 1, 0)
        utc_offset = utc_offsets[clock]
        days = (times + utc_offset - 1) // DAY
        return days, days * DAY - utc_offset
    local = _utc_series(times).dt.convert_time_zone(context.time_zone).dt.replace_time_zone(None)
    days = (local.cast(pl.Int64).to_numpy() - 1) // DAY
    unique_days, day_of_time = np.unique(days, return_inverse=True)
    midnights = [_midnight_utc(day, context.zone) for day in unique_days.tolist()]
    return days, np.array(midnights, dtype=np.int64)[day_of_time]


def _midnight_utc(day: int, zone: tzinfo) -> int:
    midnight = datetime.combine(date(1970, 1, 1) + timedelta(days=day), time(0), tzinfo=zone)
    return _instant(midnight.astimezone(UTC))  # type: ignore[return-value]


def _device_clocks(monitoring_info: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(from UTC time, UTC offset) in us of the monitoring_info messages with a plausible local
    time, in time order."""
    clocks = []
    for info in monitoring_info:
        since, local = info.get("timestamp"), info.get("local_timestamp")
        if not (isinstance(since, datetime) and isinstance(local, datetime)):
            continue
        if abs(local - since) <= MAX_DEVICE_UTC_OFFSET:
            clocks.append((_instant(since), (local - since) // MICROSECOND))
    clocks.sort(key=lambda clock: clock[0])
    return np.array([c[0] for c in clocks], dtype=np.int64), np.array([c[1] for c in clocks], dtype=np.int64)


def _step_activity_types(monitoring: MessageColumns | None) -> list[str | None]:
    """walking / running per message when its activity type counts steps, else None. The type is
    `activity_type`, else the low 5 bits of `current_activity_type_intensity`."""
    if monitoring is None:
        return []
    column = monitoring.columns.get("activity_type")
    if column is not None and column.kind == "object" and column.valid is None and column.present is None:
        names = column.values.tolist()
        if all(type(name) is str for name in names):  # the common case: every message names its type
            return [name if name in STEP_COUNTING_NAMES else None for name in names]
    activity_types = _python_values(monitoring, "activity_type")
    packed = _python_values(monitoring, "current_activity_type_intensity")
    return [_step_activity_type(value, packed_value) for value, packed_value in zip(activity_types, packed)]


def _python_values(messages: MessageColumns, name: str) -> list:
    column = messages.columns.get(name)
    return [None] * len(messages) if column is None else column.python_values()


def _step_activity_type(value: Any, packed: Any) -> str | None:
    if value is None:
        if isinstance(packed, (tuple, list)):
            packed = packed[0] if packed else None
        value = packed & 0x1F if isinstance(packed, int) and not isinstance(packed, bool) else None
    if isinstance(value, str):
        return value if value in STEP_COUNTING_ACTIVITY_TYPES.values() else None
    return STEP_COUNTING_ACTIVITY_TYPES.get(value) if isinstance(value, int) else None


def _step_counters(monitoring: MessageColumns | None) -> np.ndarray:
    """The cumulative step counter: `steps`, else 2 x `cycles` (the decoder halves the raw value
    as fitparse does); NaN when there is none or it is negative."""
    steps = _numbers(monitoring, "steps")
    counters = np.where(np.isnan(steps), 2 * _numbers(monitoring, "cycles"), steps)
    return np.where(counters >= 0, counters, np.nan)


def _monitoring_intervals(readings: MonitoringReadings, device: str) -> pl.DataFrame:
    """One row per step-carrying reading: steps since the previous counter of its activity type
    and reset day (the counter itself after a reset or with none), from the previous monitoring
    time of any type, not earlier than the local midnight that starts the reset day."""
    times = readings.time_utc
    first_of_time = np.searchsorted(times, times, side="left")  # times are sorted
    previous_time = np.where(first_of_time > 0, times[first_of_time - 1], np.iinfo(np.int64).min)
    start = np.maximum(readings.reset_day_start_utc, previous_time)
    carrying = readings.step_carrying()
    counter = readings.counter[carrying]
    previous_counter = _previous_in_group(counter, _activity_day_keys(readings, carrying))
    after_reset = np.isnan(previous_counter) | (counter < previous_counter)
    return _interval_frame(
        MONITORING_SOURCE,
        device,
        start_utc=start[carrying],
        end_utc=times[carrying],
        steps=np.where(after_reset, counter, counter - previous_counter),
        cumulative_steps=counter,
        activity_type=readings.activity_type[carrying],
    )


def _activity_day_keys(readings: MonitoringReadings, carrying: np.ndarray) -> np.ndarray:
    """One integer per (reset day, activity type) of the step-carrying readings."""
    return 2 * readings.reset_day[carrying] + (readings.activity_type[carrying] == "running")


def _previous_in_group(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per value, the previous value with the same key (NaN for the first of its key)."""
    order = np.argsort(keys, kind="stable")
    same_key = keys[order][1:] == keys[order][:-1]
    previous = np.full(len(values), np.nan)
    previous[order[1:][same_key]] = values[order[:-1][same_key]]
    return previous


def _monitoring_daily_totals(readings: MonitoringReadings, device: str) -> pl.DataFrame:
    """Per reset day: the last counter of each activity type, summed."""
    carrying = readings.step_carrying()
    keys = _activity_day_keys(readings, carrying)
    _, first_from_end = np.unique(keys[::-1], return_index=True)
    last_of_key = len(keys) - 1 - first_from_end  # the last reading of each activity type and day
    days, day_of_last = np.unique(readings.reset_day[carrying][last_of_key], return_inverse=True)
    steps = np.zeros(len(days))
    np.add.at(steps, day_of_last, readings.counter[carrying][last_of_key])
    return pl.DataFrame(
        [
            _repeat(MONITORING_SOURCE, len(days)).alias("source"),
            _repeat(device, len(days)).alias("device"),
            _dates(days).alias("local_date"),
            pl.Series("steps", steps, dtype=pl.Float64),
        ]
    )


# --- activity files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityRecords:
    """Records with a usable time, in time order (file order among equal times)."""

    time_utc: np.ndarray  # us
    steps_per_minute: np.ndarray  # NaN: no cadence
    distance_m: np.ndarray  # NaN: no distance


def _activity_intervals(decoded: FitColumns, context: ReadContext, device: str) -> pl.DataFrame:
    power_on = _power_on_instant(_dicts(decoded, "activity"), context)
    walking_sessions = [
        (session["sport"], window)
        for session in _dicts(decoded, "session")
        if session.get("sport") in STEP_SPORTS and (window := _session_window(session, power_on)) is not None
    ]
    if not walking_sessions:  # a ride or a swim: its cadence is not steps, skip its records
        return pl.DataFrame(schema=READER_COLUMNS)
    records = _activity_records(decoded.get("record"), power_on)
    return pl.concat(
        [_record_intervals(records, start, end, sport, device) for sport, (start, end) in walking_sessions]
    )


def _power_on_instant(activities: list[dict], context: ReadContext) -> int | None:
    """The instant (us) of relative time 0, for old watches that write times relative to power-on:
    the first `activity` message pairs one relative time with its local wall-clock time."""
    for activity in activities:
        relative = activity.get("timestamp")
        local = activity.get("local_timestamp")
        if isinstance(relative, int) and not isinstance(relative, bool) and isinstance(local, datetime):
            local_utc = local.replace(tzinfo=context.zone).astimezone(UTC)
            return _instant(local_utc) - relative * SECOND  # type: ignore[operator]
    return None


def _activity_records(records: MessageColumns | None, power_on: int | None) -> ActivityRecords:
    times, timed = _instants(records, "timestamp", power_on)
    cadence = _numbers(records, "cadence")
    fraction = _numbers(records, "fractional_cadence")
    steps_per_minute = 2 * (cadence + np.where(np.isnan(fraction), 0.0, fraction))
    order = np.argsort(times[timed], kind="stable")
    return ActivityRecords(
        time_utc=times[timed][order],
        steps_per_minute=steps_per_minute[timed][order],
        distance_m=_numbers(records, "distance")[timed][order],
    )


def _session_window(session: dict, power_on: int | None) -> tuple[int, int] | None:
    """[start_time, start_time + total_elapsed_time] in us, the end rounded up to a whole second
    (record times are whole seconds; start_time is truncated); session.timestamp without an
    elapsed time."""
    start = _instant(session.get("start_time"), power_on)
    elapsed = _number(session.get("total_elapsed_time"))
    if start is None:
        return None
    if elapsed is not None and 0 <= elapsed < 366 * 86400:
        return start, start + math.ceil(elapsed) * SECOND
    end = _instant(session.get("timestamp"), power_on)
    return (start, end) if end is not None and end >= start else None


def _record_intervals(
    records: ActivityRecords, start: int, end: int, activity_type: str, device: str
) -> pl.DataFrame:
    """The session's records from `start` to `end`: one interval per record with a cadence,
    (previous record, this record], when the gap is over 0 and at most MAX_RECORD_GAP."""
    first = np.searchsorted(records.time_utc, start, side="left")
    stop = np.searchsorted(records.time_utc, end, side="right")
    times = records.time_utc[first:stop]
    gaps = np.diff(times)
    steps_per_minute = records.steps_per_minute[first + 1 : stop]
    counted = (gaps > 0) & (gaps <= MAX_RECORD_GAP) & ~np.isnan(steps_per_minute)
    return _interval_frame(
        ACTIVITY_SOURCE,
        device,
        start_utc=times[:-1][counted],
        end_utc=times[1:][counted],
        steps=(steps_per_minute * (gaps / SECOND) / 60)[counted],
        distance_m=np.diff(records.distance_m[first:stop])[counted],  # NaN unless both records have one
        activity_type=np.full(int(counted.sum()), activity_type, dtype=object),
    )


# --- output -----------------------------------------------------------------------------------


def _in_time_order(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The frames' rows by end time (frame order, then row order, among equal times). A single
    frame (the common case, e.g. a monitoring file) is ordered with NumPy: a polars query's fixed
    cost (~1 ms) would be most of the time spent on a small file."""
    if len(frames) > 1:
        return conform_reader_frame(pl.concat(frames).sort("end_utc", maintain_order=True))
    (frame,) = frames
    order = np.argsort(frame["end_utc"].to_numpy(), kind="stable")
    if np.any(order[1:] < order[:-1]):  # not already in time order
        frame = frame[order]
    return frame


def _interval_frame(
    source: str,
    device: str,
    *,
    start_utc: np.ndarray,
    end_utc: np.ndarray,
    steps: np.ndarray,
    activity_type: np.ndarray,
    cumulative_steps: np.ndarray | None = None,
    distance_m: np.ndarray | None = None,
) -> pl.DataFrame:
    """Reader rows from arrays: times in us, NaN for no number, None for no activity type."""
    size = len(end_utc)
    no_numbers = np.full(size, np.nan)
    cumulative_steps = no_numbers if cumulative_steps is None else cumulative_steps
    distance_m = no_numbers if distance_m is None else distance_m
    # Columns built with their final types (the frame is not cast: a polars query per small
    # file costs more than building it).
    return pl.DataFrame(
        [
            _repeat(source, size).alias("source"),
            _repeat(device, size).alias("device"),
            _utc_series(start_utc).alias("start_utc"),
            _utc_series(end_utc).alias("end_utc"),
            pl.Series("steps", steps, dtype=pl.Float64, nan_to_null=True),
            pl.Series("cumulative_steps", cumulative_steps, dtype=pl.Float64, nan_to_null=True),
            pl.Series("distance_m", distance_m, dtype=pl.Float64, nan_to_null=True),
            pl.Series("activity_type", activity_type.tolist(), dtype=pl.String),
            pl.Series("clock_adjusted", np.zeros(size, dtype=bool), dtype=pl.Boolean),
        ]
    )
