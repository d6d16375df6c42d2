"""FitbitTakeoutReader: legacy steps JSON, Google-era minute CSV, Fitabase daily totals."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile, InputFileError, WrongParticipant
from pipeline.schema import DAILY_TOTAL_COLUMNS, READER_COLUMNS
from pipeline.sources.base import ReadContext
from pipeline.sources.fitbit_takeout import FitbitTakeoutReader

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
DAILY = REALDATA / "csv" / "fitbit_fitabase" / "dailyActivity_merged.csv"
needs_sample = pytest.mark.skipif(not DAILY.is_file(), reason=f"real sample not found at {DAILY}")
FIRST_ID = "1503960366"
NEW_YORK = ReadContext("p01", "America/New_York")
reader = FitbitTakeoutReader()


# -- helpers --------------------------------------------------------------------------------------


def legacy_json(entries: list[tuple[datetime, int | str]]) -> str:
    """The archive's pretty-printed layout: `[{ "dateTime" : "...", "value" : "12" },{ ... }]`."""
    blocks = [
        f'{{\n  "dateTime" : "{moment:%m/%d/%y %H:%M:%S}",\n  "value" : "{value}"\n}}'
        for moment, value in entries
    ]
    return "[" + ",".join(blocks) + "]"


def write(folder: Path, text: str | bytes, name: str = "export") -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read(path: Path, context: ReadContext = NEW_YORK) -> pl.DataFrame:
    result = reader.read(path, context)
    assert dict(result.intervals.schema) == READER_COLUMNS
    return result.intervals


def assert_typed_error(path: Path) -> None:
    try:
        reader.read(path, NEW_YORK)
    except InputFileError as error:
        assert error.path == str(path)
        assert error.line is not None or error.offset is not None
        assert error.reader == "fitbit"


# -- the real sample: Fitabase dailyActivity ---------------------------------------------------------


@needs_sample
@pytest.mark.realdata
def test_real_daily_activity_is_recognised_by_content():
    assert reader.detect(DAILY, DAILY.read_bytes()[:4096])


@needs_sample
@pytest.mark.realdata
def test_real_daily_activity_of_33_people_is_refused_naming_the_first_foreign_row():
    # awk: the first row whose Id is not 1503960366 is line 33 (Id 1624580081)
    with pytest.raises(WrongParticipant) as caught:
        reader.read(DAILY, ReadContext(FIRST_ID, "America/Chicago"))
    assert caught.value.line == 33
    assert "1624580081" in caught.value.problem


@needs_sample
@pytest.mark.realdata
def test_real_daily_totals_of_one_participant(tmp_path):
    # awk -F, '$1=="1503960366"{n++; s+=$3}': 31 days, 375,619 steps;
    # 4/12/2016 13,162 and 4/13/2016 10,735 (the first two rows).
    lines = DAILY.read_text().splitlines()
    own = write(
        tmp_path,
        "\n".join([lines[0], *(line for line in lines[1:] if line.startswith(FIRST_ID + ","))]) + "\n",
    )
    result = reader.read(own, ReadContext(FIRST_ID, "America/Chicago"))
    assert result.intervals.height == 0
    totals = result.device_daily_totals
    assert dict(totals.schema) == DAILY_TOTAL_COLUMNS
    assert totals.height == 31
    assert totals["steps"].sum() == 375_619
    by_day = dict(zip(totals["local_date"].to_list(), totals["steps"].to_list(), strict=True))
    assert by_day[date(2016, 4, 12)] == 13_162
    assert by_day[date(2016, 4, 13)] == 10_735
    assert totals["source"].unique().to_list() == ["fitbit"]


# -- legacy JSON ------------------------------------------------------------------------------------


def test_legacy_json_spanning_weeks_is_read_as_local_minutes(tmp_path):
    entries = [
        (datetime(2024, 1, 1, 0, 0), 0),
        (datetime(2024, 1, 1, 0, 1), 12),
        (datetime(2024, 1, 20, 18, 45), 104),
    ]
    frame = read(write(tmp_path, legacy_json(entries), "steps-2024-01-01.json"))
    assert frame["start_utc"].to_list() == [
        datetime(2024, 1, 1, 5, 0, tzinfo=UTC),
        datetime(2024, 1, 1, 5, 1, tzinfo=UTC),
        datetime(2024, 1, 20, 23, 45, tzinfo=UTC),
    ]
    assert ((frame["end_utc"] - frame["start_utc"]) == timedelta(minutes=1)).all()
    assert frame["steps"].to_list() == [0, 12, 104]
    assert frame["device"].unique().to_list() == ["fitbit"]


def test_autumn_hour_listed_twice_in_json_maps_first_to_earlier_instant(tmp_path):
    # New York 2024-11-03: 01:00-01:59 happens twice; the file lists 01:58, 01:59 twice
    times = [(1, 58), (1, 59), (1, 58), (1, 59), (2, 0)]
    entries = [(datetime(2024, 11, 3, hour, minute), 5) for hour, minute in times]
    frame = read(write(tmp_path, legacy_json(entries)))
    assert frame["start_utc"].to_list() == [
        datetime(2024, 11, 3, 5, 58, tzinfo=UTC),
        datetime(2024, 11, 3, 5, 59, tzinfo=UTC),
        datetime(2024, 11, 3, 6, 58, tzinfo=UTC),
        datetime(2024, 11, 3, 6, 59, tzinfo=UTC),
        datetime(2024, 11, 3, 7, 0, tzinfo=UTC),
    ]


def test_spring_gap_minute_is_moved_forward_and_flagged(tmp_path):
    frame = read(
        write(tmp_path, legacy_json([(datetime(2024, 3, 10, 2, 30), 7), (datetime(2024, 3, 10, 3, 0), 8)]))
    )
    assert frame["start_utc"].to_list() == [
        datetime(2024, 3, 10, 7, 30, tzinfo=UTC),
        datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
    ]
    assert frame["clock_adjusted"].to_list() == [True, False]


def test_detect_tells_steps_json_from_its_siblings(tmp_path):
    steps = legacy_json([(datetime(2024, 1, 1, 0, 0), 0), (datetime(2024, 1, 1, 0, 1), 12)]).encode()
    calories = (
        b'[{"dateTime":"01/01/24 00:00:00","value":"1.15"},{"dateTime":"01/01/24 00:01:00","value":"1.2"}]'
    )
    heart = b'[{"dateTime":"01/01/24 00:00:05","value":{"bpm":61,"confidence":2}}]'
    sedentary = (
        b'[{"dateTime":"01/01/24 00:00:00","value":"1100"},{"dateTime":"01/02/24 00:00:00","value":"998"}]'
    )
    assert reader.detect(tmp_path / "a", steps)
    weeks = legacy_json([(datetime(2024, 1, 1) + timedelta(minutes=n), n % 120) for n in range(400)]).encode()
    for cut in range(4000, 4096):  # the head may end anywhere inside an element
        assert reader.detect(tmp_path / "a", weeks[:cut])
    assert not reader.detect(tmp_path / "steps-2024.json", calories)
    assert not reader.detect(tmp_path / "steps-2024.json", heart)
    assert not reader.detect(tmp_path / "steps-2024.json", sedentary)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            '[{\n  "dateTime" : "01/01/24 00:00:00",\n  "value" : "3"\n},'
            '{\n  "dateTime" : "01/01/24 00:01:00",\n  "value" : "x"\n}]',
            6,
            "not a number",
        ),
        ('[{\n  "dateTime" : "01/01/24 00:00:00",\n  "value" : "-3"\n}]', 3, "negative"),
        ('[{\n  "dateTime" : "13/41/24 00:00:00",\n  "value" : "3"\n}]', 2, "not a time"),
        (
            '[{\n  "dateTime" : "01/01/24 00:00:00",\n  "value" : "3"\n},{\n  "dateTime" : "01/01/24 00:0',
            5,
            "JSON",
        ),
        ('[{\n  "dateTime" : "01/01/24 00:00:00",\n  "value" : "3"\n}\n{', 5, "unexpected"),
        ('[{\n  "dateTime" : "01/01/24 00:00:00",\n  "value" : null\n}]', 3, "value"),
    ],
)
def test_damaged_json_names_the_line(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(CorruptFile) as caught:
        reader.read(path, NEW_YORK)
    assert caught.value.line == line
    assert words in caught.value.problem


def test_binary_junk_in_json_is_a_typed_error(tmp_path):
    text = legacy_json([(datetime(2024, 1, 1, 0, 1), 3)]).encode()
    path = write(tmp_path, text[:20] + b"\xff\xfe\x00" + text[20:])
    with pytest.raises(CorruptFile) as caught:
        reader.read(path, NEW_YORK)
    assert caught.value.line == 2
    assert caught.value.path == str(path)


# -- Google-era minute CSV --------------------------------------------------------------------------


def test_google_era_csv_keeps_offsets_and_reads_bare_times_as_local(tmp_path):
    text = (
        "timestamp,steps,data source\n"
        "2024-05-01T06:15:00Z,51,Google Fitbit Air\n"
        "2024-05-01T06:14:03.552356Z,5,Phone Health Kit\n"
        "2024-05-01T08:00:00+02:00,9,Google Fitbit Air\n"
        "2024-05-01 08:00:00,7,\n"
        "2024-05-01T09:00:00Z,,Google Fitbit Air\n"
    )
    frame = read(write(tmp_path, text, "steps_2024-05-01.csv"), ReadContext("p01", "Europe/Berlin"))
    assert frame["start_utc"].to_list() == [
        datetime(2024, 5, 1, 6, 15, tzinfo=UTC),
        datetime(2024, 5, 1, 6, 14, 3, 552356, tzinfo=UTC),
        datetime(2024, 5, 1, 6, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 6, 0, tzinfo=UTC),  # local 08:00 CEST
    ]
    assert frame["steps"].to_list() == [51, 5, 9, 7]  # the empty cell is no data, not 0
    assert frame["device"].to_list() == [
        "Google Fitbit Air",
        "Phone Health Kit",
        "Google Fitbit Air",
        "fitbit",
    ]


def test_google_era_csv_bad_value_names_the_line(tmp_path):
    text = "timestamp,steps,data source\n2024-05-01T06:15:00Z,51,T\n2024-05-01T06:16:00Z,5x,T\n"
    with pytest.raises(CorruptFile) as caught:
        reader.read(write(tmp_path, text), NEW_YORK)
    assert caught.value.line == 3
    assert "'5x'" in caught.value.problem


# -- properties -------------------------------------------------------------------------------------

minutes = st.lists(
    st.tuples(st.integers(min_value=1, max_value=60 * 24 * 3), st.integers(min_value=0, max_value=250)),
    min_size=1,
    max_size=60,
)


def build(generated) -> tuple[str, list[tuple[datetime, int]]]:
    """Minutes spread over a few weeks (gaps given in minutes), read in UTC."""
    clock = datetime(2023, 6, 1, 0, 0)
    entries = []
    for gap, steps in generated:
        clock += timedelta(minutes=gap)
        entries.append((clock, steps))
    return legacy_json(entries), [(moment.replace(tzinfo=UTC), steps) for moment, steps in entries]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(minutes)
def test_generated_json_round_trips(generated):
    text, expected = build(generated)
    with tempfile.TemporaryDirectory() as folder:
        frame = read(write(Path(folder), text), ReadContext("p01", "UTC"))
    assert list(zip(frame["start_utc"], frame["steps"], strict=True)) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(minutes, st.sampled_from(["Z", "+05:30", "-08:00", ""]))
def test_generated_csv_round_trips(generated, suffix):
    _, expected = build(generated)
    offset = {"Z": 0, "+05:30": 330, "-08:00": -480, "": 0}[suffix]
    lines = ["timestamp,steps,data source"] + [
        f"{moment.replace(tzinfo=None) + timedelta(minutes=offset):%Y-%m-%dT%H:%M:%S}{suffix},{steps},Tracker"
        for moment, steps in expected
    ]
    with tempfile.TemporaryDirectory() as folder:
        frame = read(write(Path(folder), "\n".join(lines) + "\n"), ReadContext("p01", "UTC"))
    assert list(zip(frame["start_utc"], frame["steps"], strict=True)) == expected


damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(min_value=0.0, max_value=0.99)),
    st.tuples(st.just("junk"), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("latin1"), st.just(b"\xe9\xfe")),
    st.tuples(st.just("rename"), st.sampled_from(['"dateTime"', '"value"'])),
    st.tuples(st.just("number"), st.sampled_from(['"x"', '"-1"', "[]", '"1e999"', "{}"])),
)


def apply_damage(text: str, kind: str, argument, position: float) -> bytes:
    data = text.encode()
    if kind == "truncate":
        return data[: int(len(data) * argument)]
    if kind in ("junk", "latin1"):
        cut = int(len(data) * position)
        return data[:cut] + argument + data[cut:]
    if kind == "rename":
        return text.replace(argument, argument.upper(), 1).encode()
    blocks = text.split('"value" : ')
    target = 1 + int((len(blocks) - 2) * position)
    blocks[target] = argument + blocks[target][blocks[target].index("\n") :]
    return '"value" : '.join(blocks).encode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(minutes, damage, st.floats(min_value=0, max_value=0.999))
def test_damaged_json_raises_a_typed_error_naming_the_place(generated, harm, position):
    text, _ = build(generated)
    with tempfile.TemporaryDirectory() as folder:
        assert_typed_error(write(Path(folder), apply_damage(text, *harm, position)))


@settings(max_examples=40, deadline=None)
@given(minutes, st.integers(min_value=0, max_value=59), st.sampled_from(["x", "-2", "nan", ""]))
def test_a_bad_value_is_reported_on_the_line_of_its_element(generated, which, bad):
    text, expected = build(generated)
    target = which % len(expected)
    blocks = text.split('"value" : "')
    blocks[target + 1] = bad + blocks[target + 1][blocks[target + 1].index('"') :]
    damaged = '"value" : "'.join(blocks)
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), damaged)
        with pytest.raises(CorruptFile) as caught:
            reader.read(path, ReadContext("p01", "UTC"))
    assert caught.value.line == 3 + 3 * target  # element k starts on line 1 + 3k; its value is 2 lines down


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["1503960366", "4020332650", " 1503960366", ""]), min_size=1, max_size=10))
def test_any_foreign_id_in_daily_totals_is_refused_on_its_line(ids):
    lines = ["Id,ActivityDate,TotalSteps"] + [
        f"{identity},4/{12 + n}/2016,{1000 + n}" for n, identity in enumerate(ids)
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), "\n".join(lines) + "\n")
        foreign = [n for n, identity in enumerate(ids) if identity.strip() != FIRST_ID]  # cells are trimmed
        if not foreign:
            assert reader.read(path, ReadContext(FIRST_ID, "UTC")).device_daily_totals.height == len(ids)
            return
        with pytest.raises(WrongParticipant) as caught:
            reader.read(path, ReadContext(FIRST_ID, "UTC"))
    assert caught.value.line == foreign[0] + 2
