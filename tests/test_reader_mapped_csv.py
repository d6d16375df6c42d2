"""MappedCsvReader: any CSV through a declared TOML/YAML column mapping."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile, InputFileError, UnrecognisedFormat, WrongParticipant
from pipeline.schema import READER_COLUMNS
from pipeline.sources.base import ReadContext
from pipeline.sources.mapped_csv import MappedCsvReader

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
GOOGLE_FIT = REALDATA / "csv" / "google_fit" / "Daily_activity_metrics_2018-2021.csv"
HOURLY = REALDATA / "csv" / "fitbit_fitabase" / "hourlySteps_merged.csv"
needs_google_fit = pytest.mark.skipif(
    not GOOGLE_FIT.is_file(), reason=f"real sample not found at {GOOGLE_FIT}"
)
needs_hourly = pytest.mark.skipif(not HOURLY.is_file(), reason=f"real sample not found at {HOURLY}")
PARIS = ReadContext("p01", "Europe/Paris")
reader = MappedCsvReader()

GOOGLE_FIT_MAPPING = """
recognise = ["Date", "Step count", "Distance (m)"]
start = "Date"
duration_seconds = 86400
steps = "Step count"
distance = "Distance (m)"
distance_unit = "m"
time_format = "%Y-%m-%d"
zone = "participant"
device = "Google Fit"
"""

SIMPLE_MAPPING = """
start = "Start"
end = "End"
steps = "Steps"
time_format = "%Y-%m-%d %H:%M"
zone = "participant"
"""


# -- helpers --------------------------------------------------------------------------------------


def data_folder(root: Path) -> tuple[Path, Path]:
    """`<root>/data/inbox/p01/` and `<root>/data/mappings/`."""
    inbox = root / "data" / "inbox" / "p01"
    library = root / "data" / "mappings"
    inbox.mkdir(parents=True)
    library.mkdir(parents=True)
    return inbox, library


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read(path: Path, context: ReadContext = PARIS) -> pl.DataFrame:
    frame = reader.read(path, context).intervals
    assert dict(frame.schema) == READER_COLUMNS
    return frame


def assert_typed_error(path: Path) -> None:
    try:
        reader.read(path, PARIS)
    except InputFileError as error:
        assert error.path == str(path) or error.path.endswith((".toml", ".yaml", ".yml"))
        assert error.line is not None or error.offset is not None
        assert error.reader == "mapped_csv"


# -- real samples ---------------------------------------------------------------------------------


@needs_google_fit
@pytest.mark.realdata
def test_real_google_fit_daily_file_through_a_library_mapping(tmp_path):
    # Hand-checked with awk -F, on columns 15 (Step count) and 16 (Distance (m)): 1,053 rows,
    # 1,029 with a step count (blank = no data), 3,479,908 steps; 2018-04-03 1,627 steps and
    # 852.189 m; 2019-01-15 742; 2020-07-04 2,119.
    inbox, library = data_folder(tmp_path)
    csv_path = inbox / "Daily activity metrics.csv"
    shutil.copy(GOOGLE_FIT, csv_path)
    write(library, "google_fit_daily.toml", GOOGLE_FIT_MAPPING)
    assert reader.detect(csv_path, csv_path.read_bytes()[:4096])
    frame = read(csv_path)
    assert frame.height == 1_029
    assert frame["steps"].sum() == 3_479_908
    days = {
        start.astimezone(PARIS.zone).date(): row
        for start, row in zip(frame["start_utc"], frame.iter_rows(named=True), strict=True)
    }
    assert days[date(2018, 4, 3)]["steps"] == 1_627
    assert days[date(2018, 4, 3)]["distance_m"] == pytest.approx(852.189, abs=0.001)
    assert days[date(2018, 4, 3)]["start_utc"] == datetime(
        2018, 4, 2, 22, 0, tzinfo=UTC
    )  # local midnight, CEST
    assert days[date(2019, 1, 15)]["steps"] == 742
    assert days[date(2020, 7, 4)]["steps"] == 2_119
    assert frame["device"].unique().to_list() == ["Google Fit"]


@needs_hourly
@pytest.mark.realdata
def test_real_fitabase_hourly_file_with_a_participant_column(tmp_path):
    # awk: the first row of another Id is line 719; Id 1503960366 has 717 hours, 374,546 steps,
    # 24 hours on 4/12/2016 summing to 13,158 (dailyActivity says 13,162 for that day).
    inbox, _ = data_folder(tmp_path)
    mapping = """
start = "ActivityHour"
duration_seconds = 3600
steps = "StepTotal"
time_format = "%m/%d/%Y %I:%M:%S %p"
zone = "participant"
participant_column = "Id"
"""
    write(inbox, "stepwise-mapping.toml", mapping)
    everyone = inbox / "hourly.csv"
    shutil.copy(HOURLY, everyone)
    with pytest.raises(WrongParticipant) as caught:
        reader.read(everyone, ReadContext("1503960366", "America/Chicago"))
    assert caught.value.line == 719
    lines = HOURLY.read_text().splitlines()
    own = write(
        inbox,
        "own.csv",
        "\n".join([lines[0], *(line for line in lines[1:] if line.startswith("1503960366,"))]) + "\n",
    )
    frame = read(own, ReadContext("1503960366", "America/Chicago"))
    assert frame.height == 717
    assert frame["steps"].sum() == 374_546
    local_day = frame["start_utc"].dt.convert_time_zone("America/Chicago").dt.date()
    assert frame.filter(local_day == date(2016, 4, 12))["steps"].sum() == 13_158


# -- lookup and detection -------------------------------------------------------------------------


def test_lookup_order_file_then_folder_then_library(tmp_path):
    inbox, library = data_folder(tmp_path)
    text = "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,5\n"
    csv_path = write(inbox, "walk.csv", text)
    write(library, "generic.toml", SIMPLE_MAPPING + 'device = "library"\n')
    assert read(csv_path)["device"].to_list() == ["library"]
    write(
        inbox,
        "stepwise-mapping.yaml",
        "start: Start\nend: End\nsteps: Steps\ntime_format: '%Y-%m-%d %H:%M'\nzone: utc\ndevice: folder\n",
    )
    assert read(csv_path)["device"].to_list() == ["folder"]
    write(inbox, "walk.mapping.toml", SIMPLE_MAPPING + 'device = "file"\n')
    assert read(csv_path)["device"].to_list() == ["file"]


def test_library_mapping_claims_only_matching_headers(tmp_path):
    inbox, library = data_folder(tmp_path)
    write(library, "generic.toml", SIMPLE_MAPPING)
    other = write(inbox, "other.csv", "When,Count\n2024-05-01 10:00,5\n")
    mine = write(inbox, "mine.csv", "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,5\n")
    assert not reader.detect(other, other.read_bytes())
    assert reader.detect(mine, mine.read_bytes())
    assert not reader.detect(mine, b"\x00\x01binary")


def test_the_most_specific_library_mapping_wins_and_a_tie_is_an_error(tmp_path):
    inbox, library = data_folder(tmp_path)
    csv_path = write(inbox, "walk.csv", "Start,End,Steps,Kind\n2024-05-01 10:00,2024-05-01 10:01,5,walk\n")
    write(library, "a.toml", SIMPLE_MAPPING + 'device = "a"\n')
    write(library, "b.toml", SIMPLE_MAPPING + 'device = "b"\nrecognise = ["Start", "End", "Steps", "Kind"]\n')
    assert read(csv_path)["device"].to_list() == ["b"]
    write(library, "c.toml", SIMPLE_MAPPING + 'device = "c"\nrecognise = ["Kind", "Start", "End", "Steps"]\n')
    with pytest.raises(UnrecognisedFormat) as caught:
        reader.read(csv_path, PARIS)
    assert "b.toml" in caught.value.problem and "c.toml" in caught.value.problem


def test_a_declared_mapping_that_does_not_fit_names_the_missing_column(tmp_path):
    inbox, _ = data_folder(tmp_path)
    csv_path = write(inbox, "walk.csv", "Begin,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,5\n")
    write(inbox, "walk.mapping.toml", SIMPLE_MAPPING)
    assert reader.detect(csv_path, csv_path.read_bytes())
    with pytest.raises(UnrecognisedFormat) as caught:
        reader.read(csv_path, PARIS)
    assert (
        "mapping walk.mapping.toml declares column 'Start' which the file does not have"
        in caught.value.problem
    )
    assert caught.value.line == 1


# -- values, zones, errors --------------------------------------------------------------------------


def test_bad_number_names_column_and_row(tmp_path):
    inbox, _ = data_folder(tmp_path)
    rows = [f"2024-05-01 10:{minute:02d},2024-05-01 10:{minute + 1:02d},{minute}" for minute in range(13)]
    rows.insert(12, "2024-05-01 11:00,2024-05-01 11:01,abc")  # the 13th data row = line 14
    csv_path = write(inbox, "walk.csv", "Start,End,Steps\n" + "\n".join(rows) + "\n")
    write(inbox, "walk.mapping.toml", SIMPLE_MAPPING)
    with pytest.raises(CorruptFile) as caught:
        reader.read(csv_path, PARIS)
    assert caught.value.problem == "column 'Steps' row 14: 'abc' is not a number"
    assert caught.value.line == 14


def test_negative_steps_name_the_line_and_fractional_or_huge_are_kept(tmp_path):
    inbox, _ = data_folder(tmp_path)
    write(inbox, "stepwise-mapping.toml", SIMPLE_MAPPING)
    good = write(
        inbox,
        "good.csv",
        "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,2.5\n2024-05-01 10:01,2024-05-01 10:02,900000\n",
    )
    assert read(good)["steps"].to_list() == [2.5, 900000]
    bad = write(
        inbox,
        "bad.csv",
        "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,2\n2024-05-01 10:01,2024-05-01 10:02,-1\n",
    )
    with pytest.raises(CorruptFile) as caught:
        reader.read(bad, PARIS)
    assert caught.value.line == 3


def test_zones_offsets_durations_units_and_separators(tmp_path):
    inbox, _ = data_folder(tmp_path)
    write(
        inbox,
        "walk.mapping.yaml",
        """
# a semicolon file with a title line, decimal commas and a duration in minutes
delimiter: ";"
skip_lines: 1
start: Begin
duration: Minutes
duration_unit: min
steps: Steps
distance: Miles
distance_unit: mi
time_format: "%Y-%m-%dT%H:%M:%S%z"
zone: offset-in-value
decimal: ","
thousands: "."
""",
    )
    csv_path = write(
        inbox,
        "walk.csv",
        "My walks export\nBegin;Minutes;Steps;Miles\n2024-05-01T10:00:00+02:00;1,5;1.234;0,5\n",
    )
    frame = read(csv_path, ReadContext("p01", "Asia/Tokyo"))
    row = frame.row(0, named=True)
    assert row["start_utc"] == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert row["end_utc"] - row["start_utc"] == timedelta(seconds=90)
    assert row["steps"] == 1234
    assert row["distance_m"] == pytest.approx(804.672)
    write(inbox, "utc.mapping.toml", SIMPLE_MAPPING.replace('zone = "participant"', 'zone = "utc"'))
    utc = write(inbox, "utc.csv", "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:15,30\n")
    assert read(utc, ReadContext("p01", "Asia/Tokyo"))["start_utc"].to_list() == [
        datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    ]


def test_autumn_hour_listed_twice_in_participant_zone(tmp_path):
    inbox, _ = data_folder(tmp_path)
    write(inbox, "walk.mapping.toml", SIMPLE_MAPPING.replace('end = "End"', "duration_seconds = 60"))
    rows = [
        "2024-10-27 02:58",
        "2024-10-27 02:59",
        "2024-10-27 02:58",
        "2024-10-27 02:59",
        "2024-10-27 03:00",
    ]
    csv_path = write(inbox, "walk.csv", "Start,Steps\n" + "\n".join(f"{moment},10" for moment in rows) + "\n")
    frame = read(csv_path, PARIS)  # Paris 2024-10-27: 02:00-02:59 happens twice
    assert frame["start_utc"].to_list() == [
        datetime(2024, 10, 27, 0, 58, tzinfo=UTC),
        datetime(2024, 10, 27, 0, 59, tzinfo=UTC),
        datetime(2024, 10, 27, 1, 58, tzinfo=UTC),
        datetime(2024, 10, 27, 1, 59, tzinfo=UTC),
        datetime(2024, 10, 27, 2, 0, tzinfo=UTC),
    ]


def test_empty_steps_are_missing_not_zero(tmp_path):
    inbox, _ = data_folder(tmp_path)
    write(inbox, "walk.mapping.toml", SIMPLE_MAPPING)
    csv_path = write(
        inbox,
        "walk.csv",
        "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,\n2024-05-01 10:01,2024-05-01 10:02,0\n",
    )
    assert read(csv_path)["steps"].to_list() == [0]


@pytest.mark.parametrize(
    ("mapping", "line", "words"),
    [
        ('start = "Start"\nend = "End"\nstpes = "Steps"\n', 3, "unknown key 'stpes'"),
        (
            'start = "Start"\nend = "End"\nsteps = "Steps\ntime_format = "%H"\nzone = "utc"\n',
            3,
            "not valid TOML",
        ),
        (
            'start = "Start"\nend = "End"\nsteps = "Steps"\ntime_format = "%H"\nzone = "local"\n',
            5,
            "zone 'local'",
        ),
        (
            'start = "Start"\nend = "End"\nduration_seconds = 60\n'
            'steps = "Steps"\ntime_format = "%H"\nzone = "utc"\n',
            3,
            "exactly one",
        ),
        (
            'start = "Start"\nend = "End"\nsteps = "Steps"\ntime_format = "%Y"\nzone = "offset-in-value"\n',
            4,
            "%z",
        ),
        (
            'start = "Start"\nend = "End"\nsteps = "Steps"\ndistance = "D"\n'
            'distance_unit = "leagues"\ntime_format = "%Y"\nzone = "utc"\n',
            5,
            "distance_unit",
        ),
    ],
)
def test_mapping_mistakes_name_the_mapping_file_and_line(tmp_path, mapping, line, words):
    inbox, _ = data_folder(tmp_path)
    mapping_path = write(inbox, "walk.mapping.toml", mapping)
    csv_path = write(inbox, "walk.csv", "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,5\n")
    with pytest.raises(UnrecognisedFormat) as caught:
        reader.read(csv_path, PARIS)
    assert caught.value.path == str(mapping_path)
    assert caught.value.line == line
    assert words in caught.value.problem


def test_broken_yaml_mapping_names_its_line(tmp_path):
    inbox, _ = data_folder(tmp_path)
    mapping_path = write(inbox, "stepwise-mapping.yml", "start: Start\nend: [End\nsteps: Steps\n")
    csv_path = write(inbox, "walk.csv", "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,5\n")
    with pytest.raises(UnrecognisedFormat) as caught:
        reader.read(csv_path, PARIS)
    assert caught.value.path == str(mapping_path)
    assert caught.value.line is not None and caught.value.line >= 2


def test_binary_junk_and_impossible_dates_are_typed_errors(tmp_path):
    inbox, _ = data_folder(tmp_path)
    write(inbox, "stepwise-mapping.toml", SIMPLE_MAPPING)
    junk = write(inbox, "junk.csv", b"Start,End,Steps\n\x00\x9c\xff")
    with pytest.raises(CorruptFile) as caught:
        reader.read(junk, PARIS)
    assert caught.value.line == 2
    far = write(
        inbox,
        "far.csv",
        "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,5\n2424-05-01 10:00,2424-05-01 10:01,5\n",
    )
    with pytest.raises(CorruptFile) as caught:
        reader.read(far, PARIS)
    assert caught.value.line == 3
    assert "1900-2199" in caught.value.problem


def test_an_end_before_the_start_names_the_row(tmp_path):
    inbox, _ = data_folder(tmp_path)
    write(inbox, "walk.mapping.toml", SIMPLE_MAPPING)
    csv_path = write(
        inbox,
        "walk.csv",
        "Start,End,Steps\n2024-05-01 10:00,2024-05-01 10:01,5\n2024-05-01 10:05,2024-05-01 10:01,5\n",
    )
    with pytest.raises(CorruptFile) as caught:
        reader.read(csv_path, PARIS)
    assert caught.value.line == 3


# -- properties -----------------------------------------------------------------------------------

layouts = st.fixed_dictionaries(
    {
        "delimiter": st.sampled_from([",", ";", "\t", "|"]),
        "skip_lines": st.integers(min_value=0, max_value=3),
        "timing": st.sampled_from(["end", "duration", "fixed"]),
        "zone": st.sampled_from(["utc", "offset-in-value", "participant"]),
        "quote": st.booleans(),
    }
)
records = st.lists(
    st.tuples(
        st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2029, 1, 1)).map(
            lambda d: d.replace(second=0, microsecond=0)
        ),
        st.integers(min_value=1, max_value=240),  # minutes
        st.one_of(st.none(), st.integers(min_value=0, max_value=30_000)),
    ),
    min_size=1,
    max_size=25,
)


def build(layout, generated) -> tuple[str, str, list[tuple[datetime, datetime, int]]]:
    """A mapping, a CSV it describes, and the expected intervals (participant zone is UTC)."""
    fmt = "%Y-%m-%d %H:%M:%S%z" if layout["zone"] == "offset-in-value" else "%Y-%m-%d %H:%M:%S"
    mapping = [
        f'delimiter = "{layout["delimiter"]}"'.replace("\t", "\\t"),
        f"skip_lines = {layout['skip_lines']}",
        'start = "Start time"',
        'steps = "Step count"',
        f'time_format = "{fmt}"',
        f'zone = "{layout["zone"]}"',
    ]
    columns = ["Start time", "Step count"]
    if layout["timing"] == "end":
        mapping.append('end = "End time"')
        columns.append("End time")
    elif layout["timing"] == "duration":
        mapping += ['duration = "Minutes"', 'duration_unit = "min"']
        columns.append("Minutes")
    else:
        mapping.append("duration_seconds = 600")
    lines = [f"title line {n}" for n in range(layout["skip_lines"])]
    wrap = (lambda value: f'"{value}"') if layout["quote"] else str
    lines.append(layout["delimiter"].join(wrap(name) for name in columns))
    expected = []
    for start, minutes, steps in generated:
        length = timedelta(minutes=minutes if layout["timing"] != "fixed" else 10)
        shown = start.strftime("%Y-%m-%d %H:%M:%S") + ("+0000" if layout["zone"] == "offset-in-value" else "")
        ends = (start + length).strftime("%Y-%m-%d %H:%M:%S") + (
            "+0000" if layout["zone"] == "offset-in-value" else ""
        )
        values = [shown, "" if steps is None else str(steps)]
        if layout["timing"] == "end":
            values.append(ends)
        elif layout["timing"] == "duration":
            values.append(str(minutes))
        lines.append(layout["delimiter"].join(wrap(value) for value in values))
        if steps is not None:
            expected.append((start.replace(tzinfo=UTC), (start + length).replace(tzinfo=UTC), steps))
    return "\n".join(mapping) + "\n", "\n".join(lines) + "\n", expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts, records)
def test_generated_files_round_trip(layout, generated):
    mapping, text, expected = build(layout, generated)
    with tempfile.TemporaryDirectory() as folder:
        inbox, library = data_folder(Path(folder))
        write(library, "generated.toml", mapping)
        path = write(inbox, "export.csv", text)
        assert reader.detect(path, path.read_bytes()[:4096])
        frame = read(path, ReadContext("p01", "UTC"))
    assert list(zip(frame["start_utc"], frame["end_utc"], frame["steps"], strict=True)) == expected


damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(min_value=0.0, max_value=0.99)),
    st.tuples(st.just("junk"), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("latin1"), st.just(b"\xe9\xfe")),
    st.tuples(st.just("rename"), st.sampled_from(["Start time", "Step count", "End time", "Minutes"])),
    st.tuples(st.just("number"), st.sampled_from(["x", "-1", "1e999", '"'])),
)


def apply_damage(text: str, kind: str, argument, position: float, skip_lines: int) -> bytes:
    data = text.encode()
    if kind == "truncate":
        return data[: int(len(data) * argument)]
    if kind in ("junk", "latin1"):
        cut = int(len(data) * position)
        return data[:cut] + argument + data[cut:]
    lines = text.split("\n")
    if kind == "rename":
        lines[skip_lines] = lines[skip_lines].replace(argument, argument.upper())
        return "\n".join(lines).encode()
    target = skip_lines + 1 + int((len(lines) - skip_lines - 2) * position)
    lines[target] = (
        lines[target][: len(lines[target]) // 2] + argument + lines[target][len(lines[target]) // 2 :]
    )
    return "\n".join(lines).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts, records, damage, st.floats(min_value=0, max_value=0.999))
def test_damaged_files_raise_a_typed_error_naming_the_place(layout, generated, harm, position):
    mapping, text, _ = build(layout, generated)
    with tempfile.TemporaryDirectory() as folder:
        inbox, _ = data_folder(Path(folder))
        write(inbox, "export.mapping.toml", mapping)  # declared for the file: always claimed
        assert_typed_error(
            write(inbox, "export.csv", apply_damage(text, *harm, position, layout["skip_lines"]))
        )


@settings(max_examples=40, deadline=None)
@given(layouts, records, st.integers(min_value=0, max_value=24), st.sampled_from(["x", "-3", "nan", "1.2.3"]))
def test_a_bad_step_count_is_reported_on_its_line(layout, generated, which, bad):
    generated = [(start, minutes, 5) for start, minutes, _ in generated]
    mapping, text, _ = build(layout, generated)
    lines = text.rstrip("\n").split("\n")
    target = layout["skip_lines"] + 1 + which % len(generated)
    fields = lines[target].split(layout["delimiter"])
    fields[1] = f'"{bad}"' if layout["quote"] else bad
    lines[target] = layout["delimiter"].join(fields)
    with tempfile.TemporaryDirectory() as folder:
        inbox, _ = data_folder(Path(folder))
        write(inbox, "export.mapping.toml", mapping)
        path = write(inbox, "export.csv", "\n".join(lines) + "\n")
        with pytest.raises(CorruptFile) as caught:
            reader.read(path, ReadContext("p01", "UTC"))
    assert caught.value.line == target + 1
    assert "Step count" in caught.value.problem
