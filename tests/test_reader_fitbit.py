"""Fitabase minute/hourly CSVs: real files (figures checked by hand with awk) and the traps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import CorruptFile, WrongParticipant
from pipeline.sources.base import ReadContext
from pipeline.sources.fitbit import FitabaseReader

READER = FitabaseReader()
CHICAGO = ReadContext("1503960366", "America/Chicago")


def read(path: Path, context: ReadContext = CHICAGO):
    head = path.read_bytes()[:4096]
    assert READER.detect(path, head)
    return READER.read(path, context).intervals


def test_real_narrow_minutes(realdata):
    frame = read(realdata / "csv/fitbit_fitabase/minuteStepsNarrow_merged.head16.csv")
    assert frame.height == 16 and frame["steps"].sum() == 238
    # 4/12/2016 12:33:00 AM in Chicago (CDT, UTC-5)
    assert frame["start_utc"][0] == datetime(2016, 4, 12, 5, 33, tzinfo=UTC)
    assert frame["source"].unique().to_list() == ["fitbit"]


def test_real_hourly_one_participant(realdata, tmp_path):
    lines = (realdata / "csv/fitbit_fitabase/hourlySteps_merged.csv").read_text().splitlines()
    own = tmp_path / "hourly.csv"
    own.write_text("\n".join([lines[0]] + [l for l in lines[1:] if l.startswith("1503960366,")]) + "\n")
    frame = read(own)
    day = frame.filter(
        (frame["start_utc"] >= datetime(2016, 4, 12, 5, tzinfo=UTC)) & (frame["start_utc"] < datetime(2016, 4, 13, 5, tzinfo=UTC))
    )
    assert day.height == 24 and day["steps"].sum() == 13158  # the device's own daily total says 13,162


def test_real_merged_file_with_other_participants_is_rejected(realdata):
    with pytest.raises(WrongParticipant) as caught:
        read(realdata / "csv/fitbit_fitabase/hourlySteps_merged.csv")
    assert caught.value.line == 719 and "1624580081" in str(caught.value)


def test_intensity_file_is_not_a_steps_file(realdata):
    path = realdata / "csv/fitbit_fitabase/minuteIntensitiesWide_merged.head2000.csv"
    assert not READER.detect(path, path.read_bytes()[:4096])


def test_wide_layout_gives_sixty_minutes(tmp_path):
    path = tmp_path / "wide.csv"
    header = "Id,ActivityHour," + ",".join(f"Steps{m:02d}" for m in range(60))
    path.write_text(header + "\n7,1/2/2024 9:00:00 AM," + ",".join(str(m) for m in range(60)) + "\n")
    frame = read(path, ReadContext("7", "UTC"))
    assert frame.height == 60 and frame["steps"].sum() == sum(range(60))
    assert frame["start_utc"][59] == datetime(2024, 1, 2, 9, 59, tzinfo=UTC)


def test_repeated_autumn_hour_maps_first_to_earlier_instant(tmp_path):
    path = tmp_path / "narrow.csv"
    path.write_text("Id,ActivityMinute,Steps\n7,11/3/2024 1:30:00 AM,10\n7,11/3/2024 1:30:00 AM,20\n7,11/3/2024 1:45:00 AM,30\n")
    frame = read(path, ReadContext("7", "America/New_York"))
    assert frame["start_utc"].to_list() == [
        datetime(2024, 11, 3, 5, 30, tzinfo=UTC), datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
        datetime(2024, 11, 3, 5, 45, tzinfo=UTC)]


def test_skipped_spring_hour_moves_forward_and_is_flagged(tmp_path):
    path = tmp_path / "narrow.csv"
    path.write_text("Id,ActivityMinute,Steps\n7,3/10/2024 2:30:00 AM,10\n7,3/10/2024 3:30:00 AM,20\n")
    frame = read(path, ReadContext("7", "America/New_York"))
    assert frame["start_utc"].to_list() == [datetime(2024, 3, 10, 7, 30, tzinfo=UTC)] * 2
    assert frame["clock_adjusted"].to_list() == [True, False]


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("7,1/2/2024 9:00:00 AM,10\n7,1/2/2024 9:01:00 AM,ten\n", 3, "not a number"),
        ("7,1/2/2024 9:00:00 AM,-5\n", 2, "negative"),
        ("7,2024-01-02 09:00,5\n", 2, "not a time"),
    ],
)
def test_bad_values_name_the_line(tmp_path, body, line, words):
    path = tmp_path / "narrow.csv"
    path.write_text("Id,ActivityMinute,Steps\n" + body)
    with pytest.raises(CorruptFile) as caught:
        read(path, ReadContext("7", "UTC"))
    assert caught.value.line == line and words in caught.value.problem and str(path) in str(caught.value)


# -- regressions found by fuzzing (tests/robustness) ------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Id,ActivityMinute,Steps", "Id,ActivityHour,StepTotal", "Id,ActivityHour," + ",".join(f"Steps{m:02d}" for m in range(60))],
)
def test_header_only_file_reads_as_no_intervals(tmp_path, header):
    path = tmp_path / "minuteStepsNarrow.csv"
    path.write_text(header + "\n")
    frame = read(path, ReadContext("7", "UTC"))
    assert frame.height == 0 and frame["end_utc"].dtype == frame["start_utc"].dtype


def test_vertical_tab_or_form_feed_does_not_end_the_header_line(tmp_path):
    """Polars splits lines at \\n only; detection must see the same first line (no Steps column here)."""
    for odd in ("\x0b", "\x0c"):
        path = tmp_path / "narrow.csv"
        path.write_bytes(f"Id,ActivityMinute,Steps{odd}7,1/2/2024 10:00:00 AM,100\n".encode())
        assert not READER.detect(path, path.read_bytes())


def test_vertical_tab_inside_a_row_keeps_line_numbers_physical(tmp_path):
    path = tmp_path / "narrow.csv"
    path.write_bytes(b"Id,ActivityMinute,Steps\n7,1/2/2024 9:00:00 AM,10\x0b\n7,1/2/2024 9:01:00 AM,ten\n")
    with pytest.raises(CorruptFile) as caught:
        read(path, ReadContext("7", "UTC"))
    assert caught.value.line == 3 and "'ten'" in caught.value.problem


def test_header_blanks_are_read_as_detection_reads_them(tmp_path):
    path = tmp_path / "narrow.csv"
    path.write_bytes(b"Id, ActivityMinute ,Steps\x0b\r\n7,1/2/2024 9:00:00 AM,10\r\n")
    assert read(path, ReadContext("7", "UTC"))["steps"].to_list() == [10.0]


def test_header_matching_two_layouts_is_read_by_the_one_it_has_all_columns_of(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("Id,ActivityMinute,ActivityHour,StepTotal\n7,x,1/2/2024 9:00:00 AM,300\n")
    frame = read(path, ReadContext("7", "UTC"))
    assert frame["steps"].to_list() == [300.0] and frame["end_utc"][0] == datetime(2024, 1, 2, 10, tzinfo=UTC)


def test_column_named_twice_after_trimming_is_corrupt(tmp_path):
    path = tmp_path / "narrow.csv"
    path.write_text("Id,ActivityMinute,Steps,Steps \n7,1/2/2024 9:00:00 AM,10,11\n")
    with pytest.raises(CorruptFile) as caught:
        read(path, ReadContext("7", "UTC"))
    assert caught.value.line == 1 and "'Steps' twice" in caught.value.problem
