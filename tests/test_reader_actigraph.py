"""ActiGraphReader: ActiLife epoch CSV with its 10-line header block."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile, InputFileError
from pipeline.schema import READER_COLUMNS
from pipeline.sources.actigraph import ActiGraphReader, net_date_format_to_strftime
from pipeline.sources.base import ReadContext

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
SAMPLE = REALDATA / "csv" / "actigraph" / "ActiLife_1sec_epoch_example1sec.csv"
needs_sample = pytest.mark.skipif(not SAMPLE.is_file(), reason=f"real sample not found at {SAMPLE}")
NEW_YORK = ReadContext("p01", "America/New_York")
LONDON = ReadContext("p01", "Europe/London")
reader = ActiGraphReader()

COLUMNS = (
    "Date, Time, Axis1,Axis2,Axis3,Steps,Lux,Inclinometer Off,Inclinometer Standing,"
    "Inclinometer Sitting,Inclinometer Lying,Vector Magnitude"
)
NET_TO_PY = {
    "M/d/yyyy": "{d.month}/{d.day}/{d.year}",
    "d/M/yyyy": "{d.day}/{d.month}/{d.year}",
    "dd/MM/yyyy": "{d.day:02d}/{d.month:02d}/{d.year}",
    "yyyy-MM-dd": "{d.year}-{d.month:02d}-{d.day:02d}",
}


# -- helpers --------------------------------------------------------------------------------------


def actilife(
    start: datetime,
    epoch_seconds: int,
    rows: list[tuple[datetime, int]],
    *,
    date_format: str = "M/d/yyyy",
    columns: str = COLUMNS,
    with_date_time: bool = True,
) -> str:
    """An ActiLife epoch CSV as ActiLife writes it (header block, padded column names)."""

    def show(moment: datetime) -> str:
        return NET_TO_PY[date_format].format(d=moment)

    epoch = str(timedelta(seconds=epoch_seconds)).zfill(8)
    lines = [
        "------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.3 Firmware v2.5.0 "
        f"date format {date_format} at 30 Hz  Filter Normal -----------",
        "Serial Number: NEO1F00000001",
        f"Start Time {start:%H:%M:%S}",
        f"Start Date {show(start)}",
        f"Epoch Period (hh:mm:ss) {epoch}",
        f"Download Time {start:%H:%M:%S}",
        f"Download Date {show(start)}",
        "Current Memory Address: 0",
        "Current Battery Voltage: 4.15     Mode = 61",
        "--------------------------------------------------",
    ]
    names = [name for name in columns.split(",")]
    if not with_date_time:
        names = [name for name in names if name.strip() not in ("Date", "Time")]
    lines.append(",".join(names))
    for moment, steps in rows:
        values = {"Steps": str(steps)}
        fields = []
        for name in names:
            key = name.strip()
            if key == "Date":
                fields.append(show(moment))
            elif key == "Time":
                fields.append(f"{moment:%H:%M:%S}")
            else:
                fields.append(values.get(key, "0"))
        lines.append(",".join(fields))
    return "\r\n".join(lines) + "\r\n"


def write(folder: Path, text: str | bytes, name: str = "epochs.csv") -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read(path: Path, context: ReadContext = NEW_YORK) -> pl.DataFrame:
    frame = reader.read(path, context).intervals
    assert dict(frame.schema) == READER_COLUMNS
    return frame


def assert_typed_error(path: Path) -> None:
    try:
        reader.read(path, NEW_YORK)
    except InputFileError as error:
        assert error.path == str(path)
        assert error.line is not None or error.offset is not None
        assert error.reader == "actigraph"


# -- the real sample ------------------------------------------------------------------------------


@needs_sample
@pytest.mark.realdata
def test_real_sample_is_recognised_by_content():
    assert reader.detect(SAMPLE, SAMPLE.read_bytes()[:4096])


@needs_sample
@pytest.mark.realdata
def test_real_one_second_file_sums_exactly():
    # Hand-checked with awk on column 6 (Steps) after the 11 header lines: 180 epochs of 1 s,
    # 36 steps; per local minute 08:58 -> 0, 08:59 -> 6, 09:00 -> 30; first step at 08:59:36.
    frame = read(SAMPLE)
    assert frame.height == 180
    assert frame["steps"].sum() == 36
    assert frame["start_utc"][0] == datetime(2019, 2, 14, 13, 58, tzinfo=UTC)  # 08:58 EST
    assert frame["end_utc"][-1] == datetime(2019, 2, 14, 14, 1, tzinfo=UTC)
    assert ((frame["end_utc"] - frame["start_utc"]) == timedelta(seconds=1)).all()
    per_minute = (
        frame.group_by(pl.col("start_utc").dt.truncate("1m")).agg(pl.col("steps").sum()).sort("start_utc")
    )
    assert per_minute["steps"].to_list() == [0, 6, 30]
    first_step = frame.filter(pl.col("steps") > 0).row(0, named=True)
    assert first_step["start_utc"] == datetime(2019, 2, 14, 13, 59, 36, tzinfo=UTC)
    assert frame["device"].unique().to_list() == ["ActiGraph Link:TAS1E31150129"]
    assert frame["source"].unique().to_list() == ["actigraph"]


# -- traps ----------------------------------------------------------------------------------------


def test_header_block_sets_epoch_and_date_format_and_padded_names_are_found(tmp_path):
    # 3/11/2024 in d/M/yyyy is 3 November: a month-first reading would give 11 March
    start = datetime(2024, 11, 3, 9, 0)
    rows = [(start + timedelta(minutes=i), steps) for i, steps in enumerate([0, 12, 101])]
    path = write(tmp_path, actilife(start, 60, rows, date_format="d/M/yyyy"))
    frame = read(path, LONDON)
    assert frame["start_utc"].to_list() == [datetime(2024, 11, 3, 9, i, tzinfo=UTC) for i in range(3)]
    assert ((frame["end_utc"] - frame["start_utc"]) == timedelta(minutes=1)).all()
    assert frame["steps"].to_list() == [0, 12, 101]
    assert frame["device"][0] == "ActiGraph GT3X+:NEO1F00000001"


def test_autumn_hour_listed_twice_maps_to_consecutive_instants(tmp_path):
    # London 2024-10-27: 01:00-01:59 happens twice (BST then GMT); the file lists it twice
    first = [datetime(2024, 10, 27, 0, 58) + timedelta(minutes=i) for i in range(62)]  # 00:58..01:59
    second = [datetime(2024, 10, 27, 1, 0) + timedelta(minutes=i) for i in range(62)]  # 01:00..02:01
    rows = [(moment, 10) for moment in first + second]
    path = write(tmp_path, actilife(first[0], 60, rows))
    frame = read(path, LONDON)
    expected = [datetime(2024, 10, 26, 23, 58, tzinfo=UTC) + timedelta(minutes=i) for i in range(124)]
    assert frame["start_utc"].to_list() == expected
    assert frame["steps"].sum() == 1240


def test_files_without_date_and_time_columns_are_timed_from_the_header(tmp_path):
    start = datetime(2024, 5, 1, 10, 0)
    rows = [(start + timedelta(seconds=10 * i), i) for i in range(4)]
    path = write(tmp_path, actilife(start, 10, rows, with_date_time=False))
    frame = read(path, ReadContext("p01", "UTC"))
    assert frame["start_utc"].to_list() == [datetime(2024, 5, 1, 10, 0, 10 * i, tzinfo=UTC) for i in range(4)]
    assert frame["steps"].to_list() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (lambda text: text.replace(",Steps,", ",Stepz,"), 11, "no Steps column"),
        (
            lambda text: text.replace("1/2/2024,10:01:00,0,0,0,5,", "1/2/2024,10:01:00,0,0,0,-5,"),
            13,
            "negative",
        ),
        (
            lambda text: text.replace("1/2/2024,10:01:00,0,0,0,5,", "1/2/2024,10:01:00,0,0,0,five,"),
            13,
            "not a number",
        ),
        (lambda text: text.replace("1/2/2024,10:01:00", "31/2/2024,10:01:00"), 13, "not a time"),
        (
            lambda text: text.replace("Epoch Period (hh:mm:ss) 00:01:00", "Epoch Period (hh:mm:ss) 1 min"),
            5,
            "epoch",
        ),
        (
            lambda text: text.replace("--------------------------------------------------\r\n", ""),
            10,
            "dashes",
        ),
        (
            lambda text: text.replace("1/2/2024,10:01:00,0,0,0,5,0,0,0,0,0,0", "1/2/2024,10:01:00,0,0,0,5"),
            13,
            "fields",
        ),
    ],
)
def test_damage_names_the_line(tmp_path, change, line, words):
    start = datetime(2024, 1, 2, 10, 0)
    text = actilife(
        start, 60, [(start, 0), (start + timedelta(minutes=1), 5), (start + timedelta(minutes=2), 7)]
    )
    path = write(tmp_path, change(text))
    with pytest.raises(CorruptFile) as caught:
        reader.read(path, NEW_YORK)
    assert caught.value.line == line
    assert words in caught.value.problem


def test_binary_junk_after_the_header_is_a_typed_error(tmp_path):
    start = datetime(2024, 1, 2, 10, 0)
    text = actilife(start, 60, [(start, 1), (start + timedelta(minutes=1), 2)])
    path = write(tmp_path, text.encode() + b"\x00\x00\xff\xfe junk")
    with pytest.raises(CorruptFile) as caught:
        reader.read(path, NEW_YORK)
    assert caught.value.line == 14
    assert caught.value.path == str(path)


def test_detect_uses_the_first_line_only(tmp_path):
    start = datetime(2024, 1, 2, 10, 0)
    text = actilife(start, 60, [(start, 1)])
    assert reader.detect(tmp_path / "notes.txt", text.encode()[:4096])
    assert not reader.detect(tmp_path / "ActiLife.csv", b"Date,Time,Axis1,Steps\n1/2/2024,10:00:00,0,1\n")


def test_net_date_formats():
    assert net_date_format_to_strftime("M/d/yyyy") == "%m/%d/%Y"
    assert net_date_format_to_strftime("dd.MM.yyyy") == "%d.%m.%Y"
    assert net_date_format_to_strftime("yyyy-MM-dd") == "%Y-%m-%d"
    assert net_date_format_to_strftime("dddd MMMM yyyy") is None


# -- properties -----------------------------------------------------------------------------------

recordings = st.tuples(
    st.sampled_from([1, 5, 10, 15, 30, 60]),
    st.sampled_from(sorted(NET_TO_PY)),
    st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=40),
)


def build(recording) -> tuple[str, list[tuple[datetime, int]]]:
    epoch, date_format, start, steps = recording
    rows = [(start + timedelta(seconds=epoch * i), count) for i, count in enumerate(steps)]
    return actilife(start, epoch, rows, date_format=date_format), rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recordings)
def test_generated_files_round_trip(recording):
    text, rows = build(recording)
    epoch = timedelta(seconds=recording[0])
    with tempfile.TemporaryDirectory() as folder:
        frame = read(write(Path(folder), text), ReadContext("p01", "UTC"))
    assert frame["start_utc"].to_list() == [moment.replace(tzinfo=UTC) for moment, _ in rows]
    assert ((frame["end_utc"] - frame["start_utc"]) == epoch).all()
    assert frame["steps"].to_list() == [count for _, count in rows]


damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(min_value=0.0, max_value=0.99)),
    st.tuples(st.just("junk"), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("latin1"), st.just(b"\xe9\xfe")),
    st.tuples(st.just("rename"), st.sampled_from(["Steps", "Date", "Epoch Period", "Start Date"])),
    st.tuples(st.just("number"), st.sampled_from(["x", "-1", "inf", "1,5"])),
)


def apply_damage(text: str, kind: str, argument, position: float) -> bytes:
    data = text.encode()
    if kind == "truncate":
        return data[: int(len(data) * argument)]
    if kind in ("junk", "latin1"):
        cut = int(len(data) * position)
        return data[:cut] + argument + data[cut:]
    if kind == "rename":
        return text.replace(argument, argument.lower() + "_", 1).encode()
    lines = text.split("\r\n")
    line = 11 + int((len(lines) - 12) * position)
    fields = lines[line].split(",")
    fields[5] = argument
    lines[line] = ",".join(fields)
    return "\r\n".join(lines).encode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recordings, damage, st.floats(min_value=0, max_value=0.999))
def test_damaged_files_raise_a_typed_error_naming_the_place(recording, harm, position):
    text, _ = build(recording)
    with tempfile.TemporaryDirectory() as folder:
        assert_typed_error(write(Path(folder), apply_damage(text, *harm, position)))


@settings(max_examples=40, deadline=None)
@given(recordings, st.integers(min_value=0, max_value=39), st.sampled_from(["x", "-3", "nan", ""]))
def test_a_bad_step_count_is_reported_on_its_line(recording, which, bad):
    text, rows = build(recording)
    lines = text.split("\r\n")
    target = 11 + which % len(rows)  # 0-based index of a data line
    fields = lines[target].split(",")
    fields[5] = bad
    lines[target] = ",".join(fields)
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), "\r\n".join(lines))
        with pytest.raises(CorruptFile) as caught:
            reader.read(path, ReadContext("p01", "UTC"))
    assert caught.value.line == target + 1
