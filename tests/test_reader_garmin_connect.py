"""GarminConnectReader: Activities.csv (one row per workout; layouts and locales differ)."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile, InputFileError
from pipeline.schema import READER_COLUMNS
from pipeline.sources.base import ReadContext
from pipeline.sources.garmin_connect import (
    GarminConnectReader,
    activity_family,
    decimal_mark,
    duration_seconds,
    infer_distance_unit,
)
from pipeline.sources.text_tools import decode_text, read_csv_table

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
SAMPLE = REALDATA / "csv" / "garmin_connect" / "Activities_2021.csv"
needs_sample = pytest.mark.skipif(not SAMPLE.is_file(), reason=f"real sample not found at {SAMPLE}")
EUGENE = ReadContext("p01", "America/Los_Angeles")
reader = GarminConnectReader()

# The newer layout (with Steps), as Garmin Connect writes it: every value quoted except the first
# columns, `--` for missing, thousands separators.
NEW_HEADER = (
    "Activity Type,Date,Favorite,Title,Distance,Calories,Time,Avg HR,Max HR,Aerobic TE,"
    "Avg Run Cadence,Max Run Cadence,Avg Pace,Best Pace,Total Ascent,Total Descent,Avg Stride Length,"
    "Steps,Decompression,Best Lap Time,Number of Laps,Moving Time,Elapsed Time,Min Elevation,Max Elevation"
)


def session(
    activity: str,
    start: str,
    *,
    distance: str = "2.10",
    time: str = "00:30:00",
    cadence: str = "--",
    stride: str = "0.70",
    steps: str = "3,000",
    moving: str = "00:30:00",
    elapsed: str = "00:31:00",
) -> str:
    quoted = [
        distance,
        "120",
        time,
        "95",
        "110",
        "0.5",
        cadence,
        "--",
        "--",
        "--",
        "--",
        "--",
        stride,
        steps,
        "No",
        "00:12.01",
        "3",
        moving,
        elapsed,
        "12",
        "40",
    ]
    return f'{activity},{start},false,"{activity} session",' + ",".join(f'"{value}"' for value in quoted)


# -- helpers --------------------------------------------------------------------------------------


def write(folder: Path, text: str | bytes, name: str = "Activities.csv") -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read(path: Path, context: ReadContext = EUGENE, the_reader: GarminConnectReader = reader) -> pl.DataFrame:
    frame = the_reader.read(path, context).intervals
    assert dict(frame.schema) == READER_COLUMNS
    return frame


def assert_typed_error(path: Path) -> None:
    try:
        reader.read(path, EUGENE)
    except InputFileError as error:
        assert error.path == str(path)
        assert error.line is not None or error.offset is not None
        assert error.reader == "garmin_connect"


# -- the real sample (2021 layout, no Steps column) ----------------------------------------------------


@needs_sample
@pytest.mark.realdata
def test_real_sample_is_recognised_by_content():
    assert reader.detect(SAMPLE, SAMPLE.read_bytes()[:4096])


@needs_sample
@pytest.mark.realdata
def test_real_sample_without_steps_column_gives_no_invented_steps():
    # 144 sessions (wc -l: 145 lines with the header), every one "Running"; the layout has no Steps
    # column, so no interval is written (steps are never estimated from Avg Run Cadence).
    assert read(SAMPLE).height == 0
    table = read_csv_table(SAMPLE, decode_text(SAMPLE, SAMPLE.read_bytes(), reader="t"), reader="t")
    assert table.height == 144
    assert {activity_family(value) for value in table.column("Activity Type").to_list()} == {"running"}


@needs_sample
@pytest.mark.realdata
def test_real_sample_distance_unit_is_inferred_as_miles():
    # Row 1 by hand: 167 spm x 0.87 m/step x 22.25 min = 3,233 m for Distance "2.02" -> 1,600 m per
    # unit: miles (Avg Pace 11:02 per unit agrees: 2.02 mi in 22:15 is 11:01/mi).
    table = read_csv_table(SAMPLE, decode_text(SAMPLE, SAMPLE.read_bytes(), reader="t"), reader="t")
    assert decimal_mark(table) == "."
    assert infer_distance_unit(table, decimal=".") == "mi"


@needs_sample
@pytest.mark.realdata
def test_real_sample_with_a_steps_column_added_reads_each_run_once(tmp_path):
    # The real rows, every value quoted, with a Steps column appended as newer layouts have it
    # (filled with Avg Run Cadence x Time, thousands-separated): 144 running sessions -> 144
    # intervals, and the unit inference (steps x stride) still says miles.
    rows = list(csv.reader(io.StringIO(SAMPLE.read_text())))
    header = rows[0]
    cadence, timer = header.index("Avg Run Cadence"), header.index("Time")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([*header, "Steps"])
    added = []
    for row in rows[1:]:
        steps = round(int(row[cadence]) * duration_seconds(row[timer]) / 60)
        added.append(steps)
        writer.writerow([*row, f"{steps:,}"])
    frame = read(write(tmp_path, out.getvalue()))
    assert frame.height == 144
    assert frame["steps"].sum() == sum(added)
    last = frame.filter(pl.col("start_utc") == frame["start_utc"].max()).row(0, named=True)
    # "Running,2022-04-18 10:31:59" (PDT), Elapsed Time "00:22:15", Distance "2.02" (mi)
    assert last["start_utc"] == datetime(2022, 4, 18, 17, 31, 59, tzinfo=UTC)
    assert last["end_utc"] - last["start_utc"] == timedelta(minutes=22, seconds=15)
    assert last["distance_m"] == pytest.approx(2.02 * 1609.344)
    assert last["activity_type"] == "running"


# -- traps ----------------------------------------------------------------------------------------


def test_new_layout_quoted_values_thousands_and_missing_markers(tmp_path):
    text = (
        "\n".join(
            [
                NEW_HEADER,
                session("Walking", "2025-02-07 08:00:00", steps="3,000", stride="0.70", distance="2.10"),
                session(
                    "Hiking",
                    "2025-02-08 09:00:00",
                    steps="12,345",
                    stride="0.72",
                    distance="8.89",
                    time="02:10:00",
                    moving="01:59:00",
                    elapsed="02:15:30",
                ),
                session("Walking", "2025-02-09 10:00:00", steps="--"),  # no count: no interval
                session("Cycling", "2025-02-09 11:00:00", steps="--", stride="--", distance="20.1"),
                session(
                    "Strength Training", "2025-02-09 18:00:00", steps="1,200", stride="--", distance="0.00"
                ),
            ]
        )
        + "\n"
    )
    frame = read(write(tmp_path, text), ReadContext("p01", "UTC"))
    assert frame["steps"].to_list() == [3000, 12345]
    assert frame["activity_type"].to_list() == ["walking", "hiking"]
    assert frame["start_utc"].to_list() == [
        datetime(2025, 2, 7, 8, tzinfo=UTC),
        datetime(2025, 2, 8, 9, tzinfo=UTC),
    ]
    # Elapsed Time is the span on the clock: 00:31:00 and 02:15:30
    assert (frame["end_utc"] - frame["start_utc"]).to_list() == [
        timedelta(minutes=31),
        timedelta(hours=2, minutes=15, seconds=30),
    ]
    # 3,000 x 0.70 m = 2,100 m for "2.10" -> km
    assert frame["distance_m"].to_list() == pytest.approx([2100.0, 8890.0])


def test_decimal_comma_locale(tmp_path):
    text = (
        "\n".join(
            [
                NEW_HEADER,
                session(
                    "Running",
                    "2025-05-12 21:33:50",
                    distance="5,81",
                    steps="5.050",
                    stride="1,15",
                    time="00:33:08",
                    moving="00:33:08",
                    elapsed="00:33:08",
                ),
                session(
                    "Walking",
                    "2025-05-13 07:00:00",
                    distance="1,40",
                    steps="2.000",
                    stride="0,70",
                    time="00:20:00",
                    moving="00:20:00",
                    elapsed="00:20:00",
                ),
            ]
        )
        + "\n"
    )
    frame = read(write(tmp_path, text), ReadContext("p01", "Europe/Vilnius"))
    assert frame["steps"].to_list() == [5050, 2000]
    assert frame["distance_m"].to_list() == pytest.approx([5810.0, 1400.0])


def test_declared_distance_unit_wins_over_the_inference(tmp_path):
    text = NEW_HEADER + "\n" + session("Walking", "2025-02-07 08:00:00", stride="--", distance="1.50") + "\n"
    path = write(tmp_path, text)
    assert read(path)["distance_m"].to_list() == [None]  # no stride length: no evidence, no guess
    assert read(path, the_reader=GarminConnectReader(distance_unit="mi"))[
        "distance_m"
    ].to_list() == pytest.approx([1.5 * 1609.344])


def test_dst_days_follow_definitions_v1(tmp_path):
    text = (
        "\n".join(
            [
                NEW_HEADER,
                session(
                    "Walking", "2024-11-03 01:30:00"
                ),  # New York: listed once -> the earlier (EDT) instant
                session("Walking", "2024-03-10 02:30:00"),  # inside the skipped spring hour -> moved forward
            ]
        )
        + "\n"
    )
    frame = read(write(tmp_path, text), ReadContext("p01", "America/New_York"))
    assert frame["start_utc"].to_list() == [
        datetime(2024, 11, 3, 5, 30, tzinfo=UTC),
        datetime(2024, 3, 10, 7, 30, tzinfo=UTC),
    ]
    assert frame["clock_adjusted"].to_list() == [False, True]


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (lambda text: text.replace("2025-02-08 09:00:00", "08/02/2025 09:00"), 3, "not a time"),
        (lambda text: text.replace('"12,345"', '"-12"'), 3, "negative"),
        (lambda text: text.replace('"12,345"', '"lots"'), 3, "not a number"),
        (lambda text: text.replace('"02:15:30"', '"2h15"'), 3, "duration"),
        (lambda text: text.replace(",Date,", ",Start,", 1), 1, "Date"),
        (lambda text: text.rsplit(",", 5)[0] + "\n", 3, "fields"),
    ],
)
def test_damage_names_the_line(tmp_path, change, line, words):
    text = (
        "\n".join(
            [
                NEW_HEADER,
                session("Walking", "2025-02-07 08:00:00"),
                session("Hiking", "2025-02-08 09:00:00", steps="12,345", elapsed="02:15:30"),
            ]
        )
        + "\n"
    )
    path = write(tmp_path, change(text))
    with pytest.raises(CorruptFile) as caught:
        reader.read(path, EUGENE)
    assert caught.value.line == line
    assert words in caught.value.problem


def test_export_saved_in_another_encoding_is_recognised_then_refused_on_its_line(tmp_path):
    text = NEW_HEADER.replace("Decompression", "Training Stress Score\u00ae") + "\n"
    text += session("Walking", "2025-02-07 08:00:00") + "\n"
    path = write(tmp_path, text.encode("cp1252"))
    assert reader.detect(path, path.read_bytes()[:4096])
    with pytest.raises(CorruptFile) as caught:
        reader.read(path, EUGENE)
    assert caught.value.line == 1
    assert "UTF-8" in caught.value.problem
    junk = write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00", "x.csv")
    assert not reader.detect(junk, junk.read_bytes())
    with pytest.raises(CorruptFile):
        reader.read(junk, EUGENE)


def test_detect_reads_the_header_not_the_name(tmp_path):
    assert reader.detect(tmp_path / "export (3).txt", (NEW_HEADER + "\n").encode())
    assert not reader.detect(tmp_path / "Activities.csv", b"Date,Steps\n2025-01-01,3\n")


def test_small_parsers():
    assert duration_seconds("01:12:28") == 4348
    assert duration_seconds("00:28:10.5") == 1690.5
    assert duration_seconds("12:01") == 721
    assert duration_seconds("1:75:00") is None
    assert [
        activity_family(name)
        for name in ("Treadmill Running", "Casual Walking", "Hiking", "Cycling", "Virtual Run")
    ] == ["running", "walking", "hiking", None, "running"]


# -- properties -----------------------------------------------------------------------------------

sessions = st.lists(
    st.tuples(
        st.sampled_from(["Walking", "Running", "Hiking", "Cycling", "Pool Swim", "Trail Running"]),
        st.datetimes(min_value=datetime(2018, 1, 1), max_value=datetime(2030, 1, 1)).map(
            lambda d: d.replace(microsecond=0)
        ),
        st.integers(min_value=60, max_value=5 * 3600),  # elapsed seconds
        st.one_of(st.none(), st.integers(min_value=0, max_value=60_000)),  # steps (None = "--")
    ),
    min_size=1,
    max_size=12,
)


def build(generated) -> tuple[str, list[tuple[datetime, timedelta, int, str]]]:
    lines, expected = [NEW_HEADER], []
    for activity, start, seconds, steps in generated:
        elapsed = str(timedelta(seconds=seconds)).zfill(8)
        lines.append(
            session(
                activity,
                f"{start:%Y-%m-%d %H:%M:%S}",
                steps="--" if steps is None else f"{steps:,}",
                elapsed=elapsed,
                stride="--",
            )
        )
        family = activity_family(activity)
        if family and steps is not None:
            expected.append((start.replace(tzinfo=UTC), timedelta(seconds=seconds), steps, family))
    return "\n".join(lines) + "\n", expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions)
def test_generated_files_round_trip(generated):
    text, expected = build(generated)
    with tempfile.TemporaryDirectory() as folder:
        frame = read(write(Path(folder), text), ReadContext("p01", "UTC"))
    got = list(
        zip(
            frame["start_utc"],
            frame["end_utc"] - frame["start_utc"],
            frame["steps"],
            frame["activity_type"],
            strict=True,
        )
    )
    assert got == expected


damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(min_value=0.0, max_value=0.99)),
    st.tuples(st.just("junk"), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("latin1"), st.just(b"\xe9\xfe")),
    st.tuples(st.just("rename"), st.sampled_from(["Activity Type", "Date", "Elapsed Time", "Steps"])),
    st.tuples(st.just("number"), st.sampled_from(["x", "-1", "1.2.3", '"unclosed'])),
)


def apply_damage(text: str, kind: str, argument, position: float) -> bytes:
    data = text.encode()
    if kind == "truncate":
        return data[: int(len(data) * argument)]
    if kind in ("junk", "latin1"):
        cut = int(len(data) * position)
        return data[:cut] + argument + data[cut:]
    if kind == "rename":
        header, rest = text.split("\n", 1)
        return (header.replace(argument, argument + " (old)", 1) + "\n" + rest).encode()
    lines = text.split("\n")
    line = 1 + int((len(lines) - 2) * position)
    lines[line] = lines[line].replace('"0.5"', f'"{argument}"').replace('"No"', argument)
    return "\n".join(lines).encode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions, damage, st.floats(min_value=0, max_value=0.999))
def test_damaged_files_raise_a_typed_error_naming_the_place(generated, harm, position):
    text, _ = build(generated)
    with tempfile.TemporaryDirectory() as folder:
        assert_typed_error(write(Path(folder), apply_damage(text, *harm, position)))


@settings(max_examples=40, deadline=None)
@given(sessions, st.integers(min_value=0, max_value=11), st.sampled_from(["x", "-3", "nan", "1.2.3"]))
def test_a_bad_step_count_of_a_walk_is_reported_on_its_line(generated, which, bad):
    generated = [("Walking", start, seconds, 10) for _, start, seconds, _ in generated]
    text, _ = build(generated)
    lines = text.rstrip("\n").split("\n")
    target = 1 + which % (len(lines) - 1)
    lines[target] = lines[target].replace('"10"', f'"{bad}"')
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), "\n".join(lines) + "\n")
        with pytest.raises(CorruptFile) as caught:
            reader.read(path, EUGENE)
    assert caught.value.line == target + 1
