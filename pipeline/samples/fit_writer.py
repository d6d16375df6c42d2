"""A small FIT encoder for the sample cohort: all-day monitoring files and recorded walks.

Only what the sample files need: normal record headers, little-endian definition messages, no
developer fields, no compressed-timestamp headers. A file is the 14-byte header (with its own
CRC), the records, and the FIT CRC-16 of everything before it.

Field numbers, base types and scales are those of the FIT profile (Profile.xlsx of the Garmin FIT
SDK; the same table ships in fitparse.profile, which the tests compare with). The table below
lists just the fields written here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

FIT_EPOCH = datetime(1989, 12, 31, tzinfo=timezone.utc)
PROTOCOL_VERSION = 0x20  # 2.0
PROFILE_VERSION = 2132  # 21.32

# enum values from the profile
FILE_ACTIVITY = 4
FILE_MONITORING_B = 32
MANUFACTURER_GARMIN = 1
ACTIVITY_TYPE_RUNNING = 1
ACTIVITY_TYPE_WALKING = 6
ACTIVITY_TYPE_SEDENTARY = 8
SPORT_WALKING = 11
SUB_SPORT_GENERIC = 0
EVENT_SESSION = 8
EVENT_LAP = 9
EVENT_ACTIVITY = 26
EVENT_TYPE_STOP = 1
ACTIVITY_MANUAL = 0


@dataclass(frozen=True)
class BaseType:
    code: int  # the base-type byte of a field definition
    struct_format: str
    invalid: int  # the value that means "no value"; never written

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.struct_format)


ENUM = BaseType(0x00, "B", 0xFF)
UINT8 = BaseType(0x02, "B", 0xFF)
UINT16 = BaseType(0x84, "H", 0xFFFF)
UINT32 = BaseType(0x86, "I", 0xFFFFFFFF)
UINT32Z = BaseType(0x8C, "I", 0)


@dataclass(frozen=True)
class Field:
    number: int
    base_type: BaseType
    scale: int = 1  # raw value = physical value * scale


@dataclass(frozen=True)
class Message:
    global_number: int
    fields: dict[str, Field]


TIMESTAMP = Field(253, UINT32)  # date_time: seconds since FIT_EPOCH (UTC)

PROFILE: dict[str, Message] = {
    "file_id": Message(0, {
        "type": Field(0, ENUM),
        "manufacturer": Field(1, UINT16),
        "product": Field(2, UINT16),
        "serial_number": Field(3, UINT32Z),
        "time_created": Field(4, UINT32),
    }),
    "device_info": Message(23, {
        "timestamp": TIMESTAMP,
        "device_index": Field(0, UINT8),
        "manufacturer": Field(2, UINT16),
        "serial_number": Field(3, UINT32Z),
        "product": Field(4, UINT16),
        "software_version": Field(5, UINT16, scale=100),
    }),
    "monitoring_info": Message(103, {
        "timestamp": TIMESTAMP,
        "local_timestamp": Field(0, UINT32),  # local_date_time: local wall clock as FIT seconds
        "activity_type": Field(1, ENUM),  # an array: the activity types the file counts
    }),
    "monitoring": Message(55, {
        "timestamp": TIMESTAMP,
        "timestamp_16": Field(26, UINT16),  # low 16 bits of the timestamp
        "activity_type": Field(5, ENUM),
        # `cycles` has scale 2, but its `steps` sub-field (activity_type walking or running) has
        # scale 1: we only write it for walking and running, so the raw value is steps.
        "cycles": Field(3, UINT32),
    }),
    "record": Message(20, {
        "timestamp": TIMESTAMP,
        "distance": Field(5, UINT32, scale=100),  # m
        "cadence": Field(4, UINT8),  # strides (one foot) per minute
        "fractional_cadence": Field(53, UINT8, scale=128),
    }),
    "lap": Message(19, {
        "timestamp": TIMESTAMP,
        "event": Field(0, ENUM),
        "event_type": Field(1, ENUM),
        "start_time": Field(2, UINT32),
        "total_elapsed_time": Field(7, UINT32, scale=1000),  # s
        "total_timer_time": Field(8, UINT32, scale=1000),  # s
        "total_distance": Field(9, UINT32, scale=100),  # m
        "total_strides": Field(10, UINT32),  # total_cycles; strides for sport walking/running
        "sport": Field(25, ENUM),
        "message_index": Field(254, UINT16),
    }),
    "session": Message(18, {
        "timestamp": TIMESTAMP,
        "event": Field(0, ENUM),
        "event_type": Field(1, ENUM),
        "start_time": Field(2, UINT32),
        "sport": Field(5, ENUM),
        "sub_sport": Field(6, ENUM),
        "total_elapsed_time": Field(7, UINT32, scale=1000),  # s
        "total_timer_time": Field(8, UINT32, scale=1000),  # s
        "total_distance": Field(9, UINT32, scale=100),  # m
        "total_strides": Field(10, UINT32),  # total_cycles; strides for sport walking/running
        "first_lap_index": Field(25, UINT16),
        "num_laps": Field(26, UINT16),
        "message_index": Field(254, UINT16),
    }),
    "activity": Message(34, {
        "timestamp": TIMESTAMP,
        "total_timer_time": Field(0, UINT32, scale=1000),  # s
        "num_sessions": Field(1, UINT16),
        "type": Field(2, ENUM),
        "event": Field(3, ENUM),
        "event_type": Field(4, ENUM),
        "local_timestamp": Field(5, UINT32),
    }),
}

_CRC_TABLE = (
    0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
    0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
)


def fit_crc(data: bytes, crc: int = 0) -> int:
    """The FIT CRC-16 (the SDK's nibble-table algorithm)."""
    for byte in data:
        for nibble in (byte & 0x0F, byte >> 4):
            low = _CRC_TABLE[crc & 0x0F]
            crc = ((crc >> 4) & 0x0FFF) ^ low ^ _CRC_TABLE[nibble]
    return crc


def fit_seconds(instant: datetime) -> int:
    """An aware datetime as FIT date_time (whole seconds since 1989-12-31 00:00 UTC)."""
    if instant.tzinfo is None:
        raise ValueError("FIT timestamps need an aware datetime")
    return int((instant - FIT_EPOCH).total_seconds())


def fit_local_seconds(instant: datetime, utc_offset: timedelta) -> int:
    """FIT local_date_time: the local wall clock read as if it were UTC."""
    return fit_seconds(instant) + int(utc_offset.total_seconds())


class FitEncoder:
    """Collects messages and returns the finished file. Local message types are assigned per
    distinct field layout (a new definition is written whenever a layout first appears)."""

    def __init__(self) -> None:
        self._records = bytearray()
        self._layouts: dict[tuple, int] = {}

    def add(self, message_name: str, **values: int | float | list[int] | None) -> None:
        message = PROFILE[message_name]
        present = [(message.fields[name], value) for name, value in values.items() if value is not None]
        field_layout = tuple((field.number, field.base_type.code, _count(value)) for field, value in present)
        layout = (message.global_number, field_layout)
        local_type = self._local_type(layout)
        payload = b"".join(_encode(field, value) for field, value in present)
        self._records += bytes([local_type]) + payload

    def to_bytes(self) -> bytes:
        header = struct.pack("<BBHI4s", 14, PROTOCOL_VERSION, PROFILE_VERSION, len(self._records), b".FIT")
        header += struct.pack("<H", fit_crc(header))
        body = header + bytes(self._records)
        return body + struct.pack("<H", fit_crc(body))

    def _local_type(self, layout: tuple) -> int:
        if layout in self._layouts:
            return self._layouts[layout]
        local_type = len(self._layouts) % 16
        self._layouts = {kept: number for kept, number in self._layouts.items() if number != local_type}
        self._layouts[layout] = local_type
        global_number, fields = layout
        definition = struct.pack("<BBBHB", 0x40 | local_type, 0, 0, global_number, len(fields))
        for number, base_code, count in fields:
            base_type = next(kind for kind in (ENUM, UINT8, UINT16, UINT32, UINT32Z) if kind.code == base_code)
            definition += struct.pack("<BBB", number, base_type.size * count, base_code)
        self._records += definition
        return local_type


def _count(value: int | float | list) -> int:
    return len(value) if isinstance(value, list) else 1


def _encode(field: Field, value: int | float | list) -> bytes:
    items = value if isinstance(value, list) else [value]
    raw_values = [round(item * field.scale) for item in items]
    limit = 1 << (8 * field.base_type.size)
    for raw in raw_values:
        if not 0 <= raw < limit or raw == field.base_type.invalid:
            raise ValueError(f"field {field.number}: {raw} does not fit its base type or is its invalid value")
    return struct.pack("<" + field.base_type.struct_format * len(raw_values), *raw_values)


@dataclass(frozen=True)
class Device:
    serial_number: int
    product: int = 3113  # a Garmin wrist watch product id
    software_version: float = 12.3


@dataclass(frozen=True)
class MonitoringMessage:
    time_utc: datetime
    activity_type: int  # ACTIVITY_TYPE_WALKING, ..._RUNNING or ..._SEDENTARY
    cumulative_steps: int | None  # counter of this type since local midnight; None: no `cycles`


def monitoring_file(
    device: Device,
    local_midnight_utc: datetime,
    utc_offset: timedelta,
    messages: list[MonitoringMessage],
) -> bytes:
    """A monitoring_b file of one local day. A message carries the full `timestamp` when it is
    the first one or an hour after the last full one, else only `timestamp_16`."""
    encoder = FitEncoder()
    encoder.add(
        "file_id", type=FILE_MONITORING_B, manufacturer=MANUFACTURER_GARMIN, product=device.product,
        serial_number=device.serial_number, time_created=fit_seconds(messages[-1].time_utc),
    )
    start = fit_seconds(local_midnight_utc)
    encoder.add(
        "device_info", timestamp=start, device_index=0, manufacturer=MANUFACTURER_GARMIN,
        serial_number=device.serial_number, product=device.product, software_version=device.software_version,
    )
    encoder.add(
        "monitoring_info", timestamp=start, local_timestamp=fit_local_seconds(local_midnight_utc, utc_offset),
        activity_type=[ACTIVITY_TYPE_WALKING, ACTIVITY_TYPE_RUNNING],
    )
    last_full: int | None = None
    for message in messages:
        seconds = fit_seconds(message.time_utc)
        if last_full is None or seconds - last_full >= 3600:
            time_fields = {"timestamp": seconds}
            last_full = seconds
        else:
            time_fields = {"timestamp_16": seconds & 0xFFFF}
        encoder.add(
            "monitoring", **time_fields, activity_type=message.activity_type, cycles=message.cumulative_steps
        )
    return encoder.to_bytes()


@dataclass(frozen=True)
class RecordedWalk:
    """A walk recorded as an activity: one record a second, constant cadence."""

    start_utc: datetime
    seconds: int
    strides_per_minute: int  # record.cadence; steps per minute = 2 x strides per minute
    metres_per_second: float = 1.3

    @property
    def total_strides(self) -> int:
        return round(self.strides_per_minute * self.seconds / 60)


def activity_file(device: Device, walk: RecordedWalk, utc_offset: timedelta) -> bytes:
    """file_id, device_info, a record every second from start to end (both included), lap,
    session (sport walking) and activity."""
    encoder = FitEncoder()
    start = fit_seconds(walk.start_utc)
    end = start + walk.seconds
    encoder.add(
        "file_id", type=FILE_ACTIVITY, manufacturer=MANUFACTURER_GARMIN, product=device.product,
        serial_number=device.serial_number, time_created=start,
    )
    encoder.add(
        "device_info", timestamp=start, device_index=0, manufacturer=MANUFACTURER_GARMIN,
        serial_number=device.serial_number, product=device.product, software_version=device.software_version,
    )
    for second in range(walk.seconds + 1):
        encoder.add(
            "record", timestamp=start + second, distance=second * walk.metres_per_second,
            cadence=walk.strides_per_minute, fractional_cadence=0,
        )
    totals = {
        "start_time": start, "total_elapsed_time": walk.seconds, "total_timer_time": walk.seconds,
        "total_distance": walk.seconds * walk.metres_per_second, "total_strides": walk.total_strides,
        "sport": SPORT_WALKING, "event_type": EVENT_TYPE_STOP, "message_index": 0,
    }
    encoder.add("lap", timestamp=end, event=EVENT_LAP, **totals)
    encoder.add(
        "session", timestamp=end, event=EVENT_SESSION, sub_sport=SUB_SPORT_GENERIC,
        first_lap_index=0, num_laps=1, **totals,
    )
    encoder.add(
        "activity", timestamp=end, total_timer_time=walk.seconds, num_sessions=1, type=ACTIVITY_MANUAL,
        event=EVENT_ACTIVITY, event_type=EVENT_TYPE_STOP,
        local_timestamp=fit_local_seconds(walk.start_utc + timedelta(seconds=walk.seconds), utc_offset),
    )
    return encoder.to_bytes()
