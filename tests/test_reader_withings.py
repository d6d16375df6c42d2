"""WithingsReader: raw_tracker_steps.csv (JSON arrays in cells, re-synced duplicate minutes)."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile, InputFileError
from pipeline.schema import READER_COLUMNS
from pipeline.sources.base import ReadContext
from pipeline.sources.withings import WithingsReader

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
SAMPLE = REALDATA / "csv" / "withings" / "raw_tracker_steps.csv"
needs_sample = pytest.mark.skipif(not SAMPLE.is_file(), reason=f"real sample not found at {SAMPLE}")
BERLIN = ReadContext("p01", "Europe/Berlin")
reader = WithingsReader()


# -- helpers --------------------------------------------------------------------------------------


def write(folder: Path, text: str | bytes, name: str = "steps.csv") -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def cell(values: list[int]) -> str:
    """How Withings writes an array: bare when one element, quoted when it holds commas."""
    packed = json.dumps(values, separators=(",", ":"))
    return f'"{packed}"' if len(values) > 1 else packed


def row(start: str, durations: list[int], values: list[int]) -> str:
    return f"{start},{cell(durations)},{cell(values)}"


def read(path: Path, context: ReadContext = BERLIN) -> pl.DataFrame:
    result = reader.read(path, context)
    assert dict(result.intervals.schema) == READER_COLUMNS
    return result.intervals


def daily_local_sums(frame: pl.DataFrame, zone: str) -> dict[date, float]:
    sums = frame.group_by(pl.col("start_utc").dt.convert_time_zone(zone).dt.date().alias("day")).agg(
        pl.col("steps").sum()
    )
    return dict(zip(sums["day"].to_list(), sums["steps"].to_list(), strict=True))


def assert_typed_error(path: Path) -> None:
    """Reading a damaged file either works or raises an InputFileError naming file and place."""
    try:
        reader.read(path, BERLIN)
    except InputFileError as error:
        assert error.path == str(path)
        assert error.line is not None or error.offset is not None
        assert error.reader == "withings"


# -- the real sample --------------------------------------------------------------------------------


@needs_sample
@pytest.mark.realdata
def test_real_sample_is_recognised_by_content():
    assert reader.detect(SAMPLE, SAMPLE.read_bytes()[:4096])


@needs_sample
@pytest.mark.realdata
def test_real_sample_totals_without_duplicate_minutes():
    # Hand-checked with a separate stdlib script and with awk (keyed by start + offset):
    # 9,090 rows expand to 17,059 slots, 2,575 of them exact repeats -> 14,484 distinct slots,
    # 522,619 steps with the repeats and 451,066 without. Per local day (all offsets are +01:00):
    # 2019-12-28 14,718 -> 7,359 (formats.md quotes 7,370 from Withings' aggregates file);
    # 2019-12-29 16,778 -> 16,739; 2019-12-30 8,094 (no repeats); 2020-01-02 2,756 -> 1,378.
    frame = read(SAMPLE)
    assert frame.height == 14_484
    assert frame["steps"].sum() == 451_066
    days = daily_local_sums(frame, "Europe/Berlin")
    assert days[date(2019, 12, 28)] == 7_359
    assert days[date(2019, 12, 29)] == 16_739
    assert days[date(2019, 12, 30)] == 8_094
    assert days[date(2020, 1, 2)] == 1_378
    assert frame["start_utc"].is_sorted()
    assert frame["start_utc"].n_unique() == frame.height
    # first row: 2019-12-28T11:49:00+01:00 [60,60] [6,5]
    assert frame.row(0, named=True)["start_utc"] == datetime(2019, 12, 28, 10, 49, tzinfo=UTC)
    assert frame["steps"][:2].to_list() == [6, 5]
    assert frame["source"].unique().to_list() == ["withings"]


# -- traps ------------------------------------------------------------------------------------------


def test_json_arrays_in_quoted_cells_expand_to_consecutive_slots(tmp_path):
    path = write(
        tmp_path,
        "start,duration,value\n"
        + row("2019-12-28T12:28:00+01:00", [60, 61, 59, 120], [36, 88, 101, 7])
        + "\n"
        + row("2019-12-28T13:00:00+01:00", [60], [9])
        + "\n",
    )
    frame = read(path)
    local = [t.astimezone(timezone(timedelta(hours=1))).strftime("%H:%M:%S") for t in frame["start_utc"]]
    assert local == ["12:28:00", "12:29:00", "12:30:01", "12:31:00", "13:00:00"]
    ends = [(e - s).total_seconds() for s, e in zip(frame["start_utc"], frame["end_utc"], strict=True)]
    assert ends == [60, 61, 59, 120, 60]
    assert frame["steps"].to_list() == [36, 88, 101, 7, 9]


def test_resynced_duplicate_minutes_are_counted_once(tmp_path):
    path = write(
        tmp_path,
        "start,duration,value\n"
        + row("2020-01-02T10:29:00+01:00", [60, 60, 60], [11, 7, 89])
        + "\n"
        + row("2020-01-02T10:48:00+01:00", [60], [8])
        + "\n"
        # the re-sync repeats the first run, and a longer run overlaps its last minute
        + row("2020-01-02T10:29:00+01:00", [60, 60, 60], [11, 7, 89])
        + "\n"
        + row("2020-01-02T10:31:00+01:00", [60, 60], [89, 5])
        + "\n",
    )
    frame = read(path)
    assert frame["steps"].sum() == 11 + 7 + 89 + 5 + 8
    assert frame.height == 5


def test_same_instant_written_with_another_offset_is_still_a_duplicate(tmp_path):
    path = write(
        tmp_path,
        "start,duration,value\n"
        + row("2020-01-02T10:29:00+01:00", [60], [11])
        + "\n"
        + row("2020-01-02T09:29:00Z", [60], [11])
        + "\n",
    )
    assert read(path)["steps"].to_list() == [11]


def test_a_changed_count_for_the_same_minute_takes_the_later_row(tmp_path):
    path = write(
        tmp_path,
        "start,duration,value\n"
        + row("2020-01-02T10:29:00+01:00", [60], [11])
        + "\n"
        + row("2020-01-02T10:29:00+01:00", [60], [14])
        + "\n",
    )
    assert read(path)["steps"].to_list() == [14]


def test_offsets_keep_their_instant_whatever_the_participant_zone(tmp_path):
    path = write(
        tmp_path, "start,duration,value\n" + row("2020-03-29T01:59:00+01:00", [60, 60], [3, 4]) + "\n"
    )
    frame = read(path, ReadContext("p01", "Pacific/Auckland"))
    assert frame["start_utc"].to_list() == [
        datetime(2020, 3, 29, 0, 59, tzinfo=UTC),
        datetime(2020, 3, 29, 1, 0, tzinfo=UTC),
    ]
    assert not frame["clock_adjusted"].any()


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (row("2019-12-28T12:00:00+01:00", [60, 60], [1]), 2, "slots"),
        (row("2019-12-28T12:00:00+01:00", [60], [-3]), 2, "negative"),
        ('2019-12-28T12:00:00+01:00,"[60,",[1]', 2, "JSON"),
        ('2019-12-28T12:00:00+01:00,[60],["a"]', 2, "numbers"),
        ("2019-12-28T12:00:00,[60],[1]", 2, "offset"),
        ("2019-12-28T12:00:00+01:00,[0],[1]", 2, "0 s"),
        ('9999-12-31T23:59:00+00:00,"[60,60]","[1,2]"', 2, "outside the years"),
    ],
)
def test_damaged_rows_name_the_line(tmp_path, body, line, words):
    path = write(tmp_path, "start,duration,value\n" + body + "\n")
    with pytest.raises(CorruptFile) as caught:
        reader.read(path, BERLIN)
    assert caught.value.line == line
    assert words in caught.value.problem
    assert caught.value.path == str(path)


def test_binary_junk_and_other_encodings_are_typed_errors(tmp_path):
    binary = write(tmp_path, b"start,duration,value\n\x00\x01\x02\xff", "a.csv")
    with pytest.raises(CorruptFile) as caught:
        reader.read(binary, BERLIN)
    assert caught.value.line == 2
    latin1 = write(
        tmp_path, "start,duration,value\n2019-12-28T12:00:00+01:00,[60],[1]\n# Z\xfcrich\n".encode("latin-1")
    )
    with pytest.raises(CorruptFile) as caught:
        reader.read(latin1, BERLIN)
    assert caught.value.line == 3
    assert "UTF-8" in caught.value.problem


def test_detect_needs_the_header_not_the_name(tmp_path):
    assert reader.detect(tmp_path / "x.txt", b"start,duration,value\n2019-12-28T12:00:00+01:00,[60],[1]\n")
    assert not reader.detect(tmp_path / "raw_tracker_steps.csv", b"start,end,value\n")
    assert not reader.detect(tmp_path / "raw_tracker_steps.csv", b"\x00\x01\x02binary")


# -- properties -------------------------------------------------------------------------------------

runs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),  # gap in minutes before the run
        st.lists(
            st.tuples(st.sampled_from([59, 60, 61, 120]), st.integers(min_value=0, max_value=250)),
            min_size=1,
            max_size=6,
        ),
        st.booleans(),  # repeated later by a re-sync
    ),
    min_size=1,
    max_size=8,
)


def build_file(generated) -> tuple[str, list[tuple[datetime, int, int]]]:
    """A valid file and its expected slots (start instant, seconds, steps), without repeats."""
    clock = datetime(2020, 1, 5, 8, 0, tzinfo=timezone(timedelta(hours=1)))
    lines, repeats, expected = ["start,duration,value"], [], []
    for gap, slots, repeated in generated:
        clock += timedelta(minutes=gap)
        text = row(clock.isoformat(), [d for d, _ in slots], [v for _, v in slots])
        lines.append(text)
        if repeated:
            repeats.append(text)
        for seconds, steps in slots:
            expected.append((clock.astimezone(UTC), seconds, steps))
            clock += timedelta(seconds=seconds)
    return "\n".join(lines + repeats) + "\n", expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs)
def test_generated_files_round_trip(generated):
    text, expected = build_file(generated)
    with tempfile.TemporaryDirectory() as folder:
        frame = read(write(Path(folder), text))
    got = [
        (start, round((end - start).total_seconds()), steps)
        for start, end, steps in zip(frame["start_utc"], frame["end_utc"], frame["steps"], strict=True)
    ]
    assert got == expected


damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(min_value=0.05, max_value=0.95)),
    st.tuples(st.just("junk"), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("latin1"), st.just(b"\xe9\xff")),
    st.tuples(st.just("rename"), st.sampled_from(["start", "duration", "value"])),
    st.tuples(st.just("number"), st.sampled_from(["x", "-5", "1e999", "[1,2"])),
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
        return (header.replace(argument, argument.upper()) + "\n" + rest).encode()
    lines = text.split("\n")
    line = 1 + int((len(lines) - 2) * position)  # a data line
    lines[line] = lines[line].replace("60", argument, 1)
    return "\n".join(lines).encode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs, damage, st.floats(min_value=0, max_value=0.999))
def test_damaged_files_raise_a_typed_error_naming_the_place(generated, harm, position):
    text, _ = build_file(generated)
    with tempfile.TemporaryDirectory() as folder:
        assert_typed_error(write(Path(folder), apply_damage(text, *harm, position)))


@settings(max_examples=40, deadline=None)
@given(runs, st.integers(min_value=0, max_value=7), st.sampled_from(["x", "-4", "nan"]))
def test_a_bad_step_count_is_reported_on_its_line(generated, which, bad):
    text, _ = build_file(generated)
    lines = text.rstrip("\n").split("\n")
    target = 1 + which % (len(lines) - 1)
    start = lines[target].split(",", 1)[0]
    lines[target] = f"{start},[60],[{bad}]"
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), "\n".join(lines) + "\n")
        with pytest.raises(CorruptFile) as caught:
            reader.read(path, BERLIN)
    assert caught.value.line == target + 1


def test_integer_too_long_to_convert_is_corrupt_with_its_line(tmp_path):
    """Found by fuzzing: json.loads raises a bare ValueError past Python's 4,300-digit limit."""
    path = write(tmp_path, "start,duration,value\n" + row("2019-12-28T11:49:00+01:00", [60], [1])
                 + '\n2019-12-28T11:50:00+01:00,"[60]","[' + "1" * 5000 + ']"\n')
    with pytest.raises(CorruptFile) as caught:
        read(path)
    assert caught.value.line == 3 and caught.value.path == str(path) and "too long" in caught.value.problem
