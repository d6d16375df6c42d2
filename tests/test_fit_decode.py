"""pipeline.fitdecode against fitparse 1.2.0, the reference decoder.

- every real file in ../shared/realdata/fit: the same values for every field of the 8 messages we
  use, and the same files rejected (fitparse is capped to its first messages on big files to keep
  the suite fast; set STEPWISE_FIT_ORACLE_FULL=1 to compare every message);
- FIT files written byte by byte here: compressed-timestamp headers, chained files, developer
  fields, sub-fields, accumulated components, big-endian definitions, arrays, invalid values;
- random valid files and random mutations of them (hypothesis): identical values, or both reject,
  and our decoder never raises anything but CorruptFile.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import fitparse
import fitparse.records
import numpy as np
import pytest
from fitparse.profile import MESSAGE_TYPES
from fitparse.records import Crc
from fitparse.utils import FitParseError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile
from pipeline.fitdecode import MESSAGE_NAMES, decode_columns, decode_messages
from pipeline.fitdecode import assembly

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
FIT_DIR = REALDATA / "fit"
REAL_FILES = sorted(FIT_DIR.rglob("*.fit")) if FIT_DIR.is_dir() else []
ORACLE_FULL = os.environ.get("STEPWISE_FIT_ORACLE_FULL") == "1"
#: fitparse decodes ~5,000 messages/s: on big real files compare only its first messages, and only
#: confirm fitparse's rejection of small files (all are confirmed with STEPWISE_FIT_ORACLE_FULL=1).
ORACLE_MESSAGE_CAP = 1500
ORACLE_REJECTION_MAX_BYTES = 150_000
#: What fitparse 1.2.0 rejects in the real corpus (checked below against fitparse itself).
REJECTED = {
    "python-fitparse/activity-activity-filecrc.fit",
    "python-fitparse/activity-filecrc.fit",
    "python-fitparse/activity-settings-corruptheader.fit",
    "python-fitparse/activity-settings-nodata.fit",
    "python-fitparse/activity-unexpected-eof.fit",
    "python-fitparse/coros-pace-2-cycling-misaligned-fields.fit",
    "python-fitparse/nick.fit",
    "python-fitparse/strava-android-app-201.10-b1218918.fit",
}

needs_realdata = pytest.mark.skipif(not REAL_FILES, reason=f"real FIT files not found in {FIT_DIR}")


# -- the oracle ------------------------------------------------------------------------------------
def fitparse_messages(data: bytes, cap: int | None = None) -> tuple[dict[str, list[dict]], bool]:
    """fitparse's get_values() for our message types; True if it read the whole file."""
    fitparse.records.DEV_TYPES.clear()  # fitparse keeps developer fields across files; start afresh
    out: dict[str, list[dict]] = {name: [] for name in MESSAGE_NAMES}
    for count, message in enumerate(fitparse.FitFile(data).get_messages()):
        if cap is not None and count >= cap:
            return out, False
        if message.name in out:
            out[message.name].append(message.get_values())
    return out, True


def same_value(a: object, b: object) -> bool:
    """Equal and of the same type, recursively (1 == 1.0 == True is not good enough here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # type: ignore[arg-type]
    return a == b


def differences(expected: dict[str, list[dict]], actual: dict[str, list[dict]], prefix_only: bool) -> list[str]:
    found = []
    for name in MESSAGE_NAMES:
        want, got = expected[name], actual[name]
        if len(want) != len(got) and not (prefix_only and len(got) >= len(want)):
            found.append(f"{name}: {len(want)} messages expected, {len(got)} decoded")
        for i, (w, g) in enumerate(zip(want, got)):
            for key in w.keys() | g.keys():
                if key not in w or key not in g:
                    found.append(f"{name}[{i}].{key}: present only in {'fitparse' if key in w else 'ours'}")
                elif not same_value(w[key], g[key]):
                    found.append(f"{name}[{i}].{key}: fitparse {w[key]!r}, ours {g[key]!r}")
    return found


def assert_same_as_fitparse(data: bytes) -> None:
    """Both reject, or both decode to identical values."""
    try:
        expected, _ = fitparse_messages(data)
    except FitParseError:
        with pytest.raises(CorruptFile):
            decode_messages(data)
        return
    assert differences(expected, decode_messages(data), prefix_only=False) == []


# -- real files ------------------------------------------------------------------------------------
def _name(path: Path) -> str:
    return path.relative_to(FIT_DIR).as_posix()


@needs_realdata
@pytest.mark.realdata
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: _name(p))
def test_real_file_matches_fitparse(path: Path) -> None:
    data = path.read_bytes()
    try:
        ours = decode_messages(data)
    except CorruptFile as error:
        assert error.reader == "fit" and error.offset is not None
        assert _name(path) in REJECTED
        if ORACLE_FULL or len(data) <= ORACLE_REJECTION_MAX_BYTES:
            with pytest.raises(FitParseError):
                fitparse_messages(data)
        return
    assert _name(path) not in REJECTED
    expected, complete = fitparse_messages(data, cap=None if ORACLE_FULL else ORACLE_MESSAGE_CAP)
    assert differences(expected, ours, prefix_only=not complete) == []


@contextlib.contextmanager
def decoding_path(path: str) -> Iterator[None]:
    """Force one decoding path: "vectorised" (NumPy for everything), "python" (message by message)."""
    saved = assembly.SMALL_MESSAGE_COUNT, assembly.SMALL_LAYOUT_COUNT
    if path == "vectorised":
        assembly.SMALL_MESSAGE_COUNT = assembly.SMALL_LAYOUT_COUNT = 0
    elif path == "python":
        assembly.SMALL_MESSAGE_COUNT = 10**9
    try:
        yield
    finally:
        assembly.SMALL_MESSAGE_COUNT, assembly.SMALL_LAYOUT_COUNT = saved


@needs_realdata
@pytest.mark.realdata
@pytest.mark.parametrize("path_name", ["vectorised", "python"])
def test_decoding_paths_agree_on_real_files(path_name: str) -> None:
    """Each path alone gives the same dicts as the default mix (files up to 300 KB)."""
    for path in REAL_FILES:
        if _name(path) in REJECTED or (path.stat().st_size > 300_000 and not ORACLE_FULL):
            continue
        data = path.read_bytes()
        with decoding_path(path_name):
            forced = decode_messages(data)
        assert differences(decode_messages(data), forced, prefix_only=False) == [], _name(path)


@needs_realdata
@pytest.mark.realdata
def test_monitoring_file_columns() -> None:
    data = (FIT_DIR / "python-fitparse" / "MonitoringFile.fit").read_bytes()
    columns = decode_columns(data, path="MonitoringFile.fit")
    monitoring = columns["monitoring"]
    assert len(monitoring) == 337
    assert np.all(np.diff(monitoring.offsets) > 0)
    assert columns["file_id"].to_dicts()[0]["type"] == "monitoring_b"
    assert set(monitoring.columns) >= {"timestamp", "cycles", "activity_type"}


# -- FIT files written byte by byte ----------------------------------------------------------------
GLOBAL = {m.name: num for num, m in MESSAGE_TYPES.items()}
FIELD = {m.name: {f.name: num for num, f in m.fields.items()} for m in MESSAGE_TYPES.values()}
BASE = {"enum": 0x00, "sint8": 0x01, "uint8": 0x02, "sint16": 0x83, "uint16": 0x84, "sint32": 0x85,
        "uint32": 0x86, "string": 0x07, "float32": 0x88, "float64": 0x89, "uint8z": 0x0A,
        "uint16z": 0x8B, "uint32z": 0x8C, "byte": 0x0D, "sint64": 0x8E, "uint64": 0x8F}
STRUCT = {0x00: "B", 0x01: "b", 0x02: "B", 0x83: "h", 0x84: "H", 0x85: "i", 0x86: "I", 0x07: "s",
          0x88: "f", 0x89: "d", 0x0A: "B", 0x8B: "H", 0x8C: "I", 0x0D: "B", 0x8E: "q", 0x8F: "Q"}


class Definition:
    """A definition message and the matching data messages."""

    def __init__(self, local: int, message: str | int, fields: list[tuple], *, big_endian: bool = False,
                 dev_fields: list[tuple[int, int, int]] = ()) -> None:
        self.local = local
        self.global_num = GLOBAL[message] if isinstance(message, str) else message
        names = FIELD.get(message, {}) if isinstance(message, str) else {}
        # fields: (name or number, base type name[, count]); dev_fields: (number, size, dev index)
        self.fields = [(names[f[0]] if isinstance(f[0], str) else f[0], BASE[f[1]], f[2] if len(f) > 2 else 1)
                       for f in fields]
        self.dev_fields = list(dev_fields)
        self.endian = ">" if big_endian else "<"

    def size(self, code: int, count: int) -> int:
        return count * (1 if code == 0x07 else struct.calcsize(STRUCT[code]))

    def encode(self) -> bytes:
        header = 0x40 | self.local | (0x20 if self.dev_fields else 0)
        out = struct.pack(f"{self.endian}BBBHB", header, 0, self.endian == ">", self.global_num, len(self.fields))
        for num, code, count in self.fields:
            out += bytes([num, self.size(code, count), code])
        if self.dev_fields:
            out += bytes([len(self.dev_fields)]) + b"".join(bytes(d) for d in self.dev_fields)
        return out

    def data(self, *values: object, dev: bytes = b"", time_offset: int | None = None) -> bytes:
        header = self.local if time_offset is None else 0x80 | (self.local << 5) | time_offset
        out = bytes([header])
        for (num, code, count), value in zip(self.fields, values):
            if code == 0x07:
                out += struct.pack(f"{count}s", value)
            elif count > 1:
                out += struct.pack(f"{self.endian}{count}{STRUCT[code]}", *value)
            else:
                out += struct.pack(f"{self.endian}{STRUCT[code]}", value)
        return out + dev


def fit_file(*records: bytes, header_size: int = 14) -> bytes:
    body = b"".join(records)
    header = struct.pack("<BBHI4s", header_size, 0x20, 2132, len(body), b".FIT")
    if header_size == 14:
        header += struct.pack("<H", Crc.calculate(header))
    return header + body + struct.pack("<H", Crc.calculate(header + body))


FILE_ID = Definition(0, "file_id", [("type", "enum"), ("manufacturer", "uint16"), ("product", "uint16"),
                                    ("serial_number", "uint32z"), ("time_created", "uint32")])
T0 = 1_000_000_000  # 2021-09-09 in FIT seconds


def activity_file_id() -> bytes:
    return FILE_ID.encode() + FILE_ID.data(4, 1, 2697, 3_900_000_000, T0)


def test_compressed_timestamp_headers() -> None:
    record = Definition(1, "record", [("timestamp", "uint32"), ("heart_rate", "uint8")])
    compact = Definition(2, "record", [("heart_rate", "uint8"), ("cadence", "uint8")])
    event = Definition(3, "event", [("timestamp", "uint32"), ("event", "enum"), ("event_type", "enum")])
    body = [activity_file_id(), record.encode(), compact.encode(), event.encode(),
            record.data(T0 + 29, 120)]
    for step, offset in enumerate([30, 31, 2, 5, 5, 1]):  # rolls over twice
        body.append(compact.data(121 + step, 80, time_offset=offset))
    body.append(event.data(T0 + 100, 0, 0))  # a full timestamp in another message re-anchors
    body.append(compact.data(130, 81, time_offset=3))
    body.append(record.data(T0 + 140, 131, time_offset=13))  # own timestamp, then the header's
    data = fit_file(*body)
    assert_same_as_fitparse(data)
    start = decode_messages(data)["file_id"][0]["time_created"]
    seconds = [(r["timestamp"] - start).total_seconds() for r in decode_messages(data)["record"]]
    assert seconds == [29, 30, 31, 34, 37, 37, 65, 131, 141]


def test_chained_files() -> None:
    record_a = Definition(0, "record", [("timestamp", "uint32"), ("distance", "uint32"), ("speed", "uint16")])
    record_b = Definition(0, "record", [("timestamp", "uint32"), ("cadence", "uint8"), ("fractional_cadence", "uint8")],
                          big_endian=True)
    first = fit_file(activity_file_id(), record_a.encode(), record_a.data(T0, 1234, 2500),
                     record_a.data(T0 + 1, 1500, 2600))
    second = fit_file(FILE_ID.encode(), FILE_ID.data(32, 1, 2697, 1, T0 + 10), record_b.encode(),
                      record_b.data(T0 + 11, 55, 128), header_size=12)
    data = first + second
    assert_same_as_fitparse(data)
    messages = decode_messages(data)
    assert [m["type"] for m in messages["file_id"]] == ["activity", "monitoring_b"]
    assert messages["record"][2] == {"timestamp": messages["record"][2]["timestamp"], "cadence": 55,
                                     "fractional_cadence": 1.0}


def test_developer_fields() -> None:
    dev_id = Definition(1, "developer_data_id", [("developer_data_index", "uint8"), ("application_id", "byte", 16)])
    description = Definition(2, "field_description", [
        ("developer_data_index", "uint8"), ("field_definition_number", "uint8"), ("fit_base_type_id", "uint8"),
        ("field_name", "string", 16), ("units", "string", 8)])
    record = Definition(3, "record", [("timestamp", "uint32"), ("heart_rate", "uint8")],
                        dev_fields=[(0, 2, 0), (1, 4, 0), (2, 8, 0)])
    body = [activity_file_id(), dev_id.encode(), dev_id.data(0, tuple(range(16))), description.encode(),
            description.data(0, 0, 0x84, b"doughnuts_earned", b"count"),
            description.data(0, 1, 0x88, b"power_ratio", b""),
            description.data(0, 2, 0x07, b"", b""),  # unnamed: fitparse names it unnamed_dev_field_2
            record.encode()]
    for i in range(40):  # enough messages for the vectorised path
        dev = struct.pack("<Hf8s", i if i % 7 else 0xFFFF, 0.25 * i if i % 5 else math.nan, b"zone%d" % i)
        body.append(record.data(T0 + i, 100 + i, dev=dev))
    data = fit_file(*body)
    assert_same_as_fitparse(data)
    first = decode_messages(data)["record"][1]
    assert first["doughnuts_earned"] == 1 and first["power_ratio"] == 0.25 and first["unnamed_dev_field_2"] == "zone1"


def test_monitoring_steps_and_cycles() -> None:
    """cycles is reported as steps only when activity_type is a field of the message, as in fitparse."""
    info = Definition(0, "monitoring_info", [("timestamp", "uint32"), ("local_timestamp", "uint32"),
                                             ("activity_type", "enum", 2), ("cycles_to_distance", "uint16", 2)])
    with_type = Definition(1, "monitoring", [("timestamp", "uint32"), ("cycles", "uint32"), ("activity_type", "enum"),
                                             ("active_time", "uint32"), ("distance", "uint32")], big_endian=True)
    packed = Definition(2, "monitoring", [("timestamp_16", "uint16"), ("cycles", "uint32"),
                                          ("current_activity_type_intensity", "byte"), ("heart_rate", "uint8")])
    body = [FILE_ID.encode(), FILE_ID.data(32, 1, 1837, 3_900_000_000, T0), info.encode(),
            info.data(T0, T0 + 7200, (6, 1), (4000, 5000)), with_type.encode(), packed.encode()]
    for i in range(50):
        body.append(with_type.data(T0 + 60 * i, 100 + 10 * i, (6, 1, 2, 8)[i % 4], 1000 * i, 7 * i))
        body.append(packed.data((T0 + 60 * i + 30) & 0xFFFF, 20 + i, (0x26, 0x21, 0xFF, 0x48)[i % 4], 60 + i % 3))
    data = fit_file(*body)
    assert_same_as_fitparse(data)
    monitoring = decode_messages(data)["monitoring"]
    assert monitoring[0]["steps"] == 100 and "cycles" not in monitoring[0]
    assert monitoring[1]["cycles"] == 10.0 and monitoring[1]["activity_type"] == "walking"
    assert monitoring[1]["intensity"] == 1 and monitoring[5]["activity_type"] is None


def test_accumulated_components_and_subfields() -> None:
    compressed = Definition(0, "record", [("timestamp", "uint32"), ("compressed_speed_distance", "byte", 3),
                                          ("cycles", "uint8")])
    lap = Definition(1, "lap", [("timestamp", "uint32"), ("sport", "enum"), ("total_cycles", "uint32"),
                                ("avg_cadence", "uint8"), ("avg_speed", "uint16"), ("time_in_hr_zone", "uint32", 3),
                                ("start_position_lat", "sint32"), ("avg_altitude", "uint16")])
    body = [activity_file_id(), compressed.encode()]
    distance = 0
    unused = Definition(5, "record", [("cycles", "uint8")])
    for i in range(60):
        if i == 30:
            body.append(compressed.encode())  # a new definition restarts the running totals
        if i == 45:
            body.append(unused.encode())  # so does one that no message uses
        distance = (distance + 37 * i) % 4096
        speed = (150 * i) % 4096
        raw = speed | (distance << 12)
        body.append(compressed.data(T0 + i, tuple(raw.to_bytes(3, "little")), (i * 40) % 256))
    body.append(compressed.data(T0 + 61, (255, 255, 255), 255))
    body.append(lap.encode())
    for sport in (1, 2, 11, 0xFF):
        body.append(lap.data(T0 + 100, sport, 5000, 85, 3100, (60000, 0xFFFFFFFF, 5), -(2**31) + 1, 2600))
    data = fit_file(*body)
    assert_same_as_fitparse(data)
    laps = decode_messages(data)["lap"]
    assert laps[0]["total_strides"] == 5000 and laps[0]["avg_running_cadence"] == 85
    assert laps[1]["total_cycles"] == 5000 and laps[1]["time_in_hr_zone"] == (60.0, None, 0.005)


def test_every_message_type_with_invalid_values() -> None:
    """All-0xFF payloads give None (or no value) for every field of every message type, as in fitparse."""
    body = [activity_file_id()]
    for local, name in enumerate(MESSAGE_NAMES, start=1):
        fields = [(num, f.type.base_type.name if hasattr(f.type, "base_type") else f.type.name)
                  for num, f in sorted(MESSAGE_TYPES[GLOBAL[name]].fields.items())][:60]
        fields = [(num, base if base in BASE else "byte") for num, base in fields]
        definition = Definition(local % 16, GLOBAL[name], [(num, base) for num, base in fields])
        body.append(definition.encode())
        payload_size = sum(definition.size(code, count) for _, code, count in definition.fields)
        body.append(bytes([definition.local]) + b"\xff" * payload_size)
    assert_same_as_fitparse(fit_file(*body))


@pytest.mark.parametrize("path_name", ["default", "vectorised", "python"])
def test_columns_are_typed_arrays_in_file_order(path_name: str) -> None:
    walking = Definition(0, "record", [("timestamp", "uint32"), ("heart_rate", "uint8"), ("speed", "uint16"),
                                       ("cadence", "uint8")])
    other = Definition(1, "record", [("timestamp", "uint32"), ("heart_rate", "uint8")])
    body = [activity_file_id(), walking.encode(), other.encode()]
    for i in range(60):
        body.append(walking.data(T0 + i, 0xFF if i == 3 else 90 + i % 7, 1300 + i, 55))
        if i % 20 == 0:
            body.append(other.data(T0 + i, 100))
    with decoding_path(path_name):
        columns = decode_columns(bytearray(fit_file(*body)))
    records = columns["record"]
    assert len(records) == 63 and np.all(np.diff(records.offsets) > 0)
    timestamp, heart_rate, speed, cadence = (
        records.columns[name] for name in ("timestamp", "heart_rate", "speed", "cadence")
    )
    assert timestamp.kind == "datetime" and timestamp.values.dtype == np.dtype("datetime64[s]")
    assert heart_rate.kind == "int" and heart_rate.valid is not None and heart_rate.valid.sum() == 62
    assert speed.kind == "float" and speed.present is not None and speed.present.sum() == 60
    assert cadence.python_values()[:3] == [55, None, 55]  # the second message has no cadence
    assert np.all(np.diff(timestamp.values.astype(np.int64)) >= 0)


@pytest.mark.parametrize("problem", ["crc", "header", "signature", "truncated", "undefined", "field_size"])
def test_rejections_are_typed(problem: str) -> None:
    record = Definition(0, "record", [("timestamp", "uint32"), ("heart_rate", "uint8")])
    data = bytearray(fit_file(activity_file_id(), record.encode(), record.data(T0, 90)))
    if problem == "crc":
        data[-1] ^= 0x10
    elif problem == "header":
        data[12] ^= 0x01  # header checksum
    elif problem == "signature":
        data[8:12] = b".FTI"
    elif problem == "truncated":
        data = data[:-5]
    elif problem == "undefined":
        data = bytearray(fit_file(activity_file_id(), bytes([0x05]) + b"\x00" * 5))
    else:
        bad = Definition(0, "record", [("timestamp", "uint32")])
        encoded = bytearray(bad.encode())
        encoded[-2] = 3  # 3 bytes for a uint32
        data = bytearray(fit_file(activity_file_id(), bytes(encoded)))
    with pytest.raises(FitParseError):
        fitparse_messages(bytes(data))
    with pytest.raises(CorruptFile) as caught:
        decode_columns(bytes(data), path="watch.fit")
    assert caught.value.path == "watch.fit" and caught.value.reader == "fit"
    assert isinstance(caught.value.offset, int)


# -- random files and mutations ----------------------------------------------------------------------
_RANDOM_MESSAGES = [*MESSAGE_NAMES, "event", "hrv"]


def random_fit_file(seed: int) -> bytes:
    """A valid FIT file of random definitions (profile fields, odd sizes and types) and payloads."""
    rng = random.Random(seed)
    parts = []
    for _ in range(rng.choice([1, 1, 2])):
        body = [activity_file_id()]
        defined: list[Definition] = []
        for _ in range(rng.randint(1, 12)):
            if not defined or rng.random() < 0.25:
                name = rng.choice(_RANDOM_MESSAGES)
                fields_profile = sorted(MESSAGE_TYPES[GLOBAL[name]].fields.items())
                chosen = rng.sample(fields_profile, min(len(fields_profile), rng.randint(1, 12)))
                fields = []
                for num, f in chosen:
                    base = f.type.base_type.name if hasattr(f.type, "base_type") else f.type.name
                    base = base if base in BASE else "byte"
                    if rng.random() < 0.1:
                        base = rng.choice(["uint8", "uint16", "sint32", "float32", "uint32z"])
                    if base == "string":
                        count = rng.randint(1, 6)
                    elif f.components or f.type.name in ("date_time", "local_date_time"):
                        count = 1  # fitparse fails on arrays of these (TypeError)
                    else:
                        count = rng.choice([1, 1, 1, 2, 3])
                    fields.append((num, base, count))
                if rng.random() < 0.2:
                    fields.append((rng.choice([200, 201, 239]), rng.choice(["uint8", "uint16", "byte"]), 1))
                definition = Definition(rng.randint(0, 3), GLOBAL[name], fields, big_endian=rng.random() < 0.2)
                body.append(definition.encode())
                defined = [d for d in defined if d.local != definition.local] + [definition]
            definition = rng.choice(defined)
            size = sum(definition.size(code, count) for _, code, count in definition.fields)
            for _ in range(rng.choice([1, 2, 5, 40])):
                payload = bytes(rng.choice([0xFF, 0x00, rng.randrange(256)]) for _ in range(size))
                if rng.random() < 0.2:
                    header = 0x80 | (definition.local << 5) | rng.randrange(32)
                else:
                    header = definition.local
                body.append(bytes([header]) + payload)
        parts.append(fit_file(*body, header_size=rng.choice([12, 14])))
    return b"".join(parts)


def _fitparse_or_error(data: bytes) -> dict[str, list[dict]] | Exception:
    try:
        return fitparse_messages(data)[0]
    except Exception as error:  # noqa: BLE001 - fitparse also fails with TypeError, KeyError, ...
        return error


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("path_name", ["default", "vectorised", "python"])
def test_random_files_match_fitparse(path_name: str, seed: int) -> None:
    data = random_fit_file(seed)
    expected = _fitparse_or_error(data)
    with decoding_path(path_name):
        if isinstance(expected, Exception):
            # fitparse fails on some odd values (TypeError, ...): we must still decode or reject cleanly
            try:
                decode_messages(data)
            except CorruptFile:
                pass
            return
        assert differences(expected, decode_messages(data), prefix_only=False) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), edits=st.lists(
    st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]), st.floats(0, 1), st.integers(0, 255)),
    min_size=1, max_size=4), fix_crc=st.booleans())
def test_mutated_files_decode_or_raise_corrupt_file(seed: int, edits: list, fix_crc: bool) -> None:
    data = bytearray(random_fit_file(seed % 1000))
    for action, where, value in edits:
        at = min(int(where * len(data)), max(len(data) - 1, 0))
        if action == "flip" and data:
            data[at] ^= 1 << (value % 8)
        elif action == "set" and data:
            data[at] = value
        elif action == "insert":
            data[at:at] = bytes([value])
        elif action == "delete" and data:
            del data[at]
        elif action == "truncate":
            del data[at:]
    if fix_crc and len(data) > 14:
        data[-2:] = struct.pack("<H", Crc.calculate(bytes(data[:-2])))
    data = bytes(data)
    try:
        ours = decode_messages(data)
    except CorruptFile:
        ours = None
    expected = _fitparse_or_error(data)
    if isinstance(expected, FitParseError):
        assert ours is None, "fitparse rejects this file"
    elif not isinstance(expected, Exception):
        assert ours is not None, "fitparse reads this file"
        assert differences(expected, ours, prefix_only=False) == []


def test_crc_matches_fitparse_at_every_size_and_continues_from_a_register() -> None:
    # crc16 (crcmod's C loop) against fitparse's nibble-at-a-time FIT SDK algorithm: the header
    # (12 bytes), small monitoring files and large activity files, as bytes and as memoryviews
    from pipeline.fitdecode.crc import crc16

    generator = random.Random(7)
    for size in (0, 1, 2, 12, 13, 511, 512, 2_400, 100_003):
        data = generator.randbytes(size)
        assert crc16(data) == Crc.calculate(data), size
        assert crc16(memoryview(b"x" + data)[1:]) == Crc.calculate(data), size
        half = size // 2
        assert crc16(data[half:], crc16(data[:half])) == Crc.calculate(data), size
