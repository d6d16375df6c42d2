"""Formats are recognised by content: every real sample is claimed by exactly one reader. And
participants.csv: ids that become folder names are refused when they cannot be one."""

from __future__ import annotations

import pytest

from pipeline.errors import RegistryError
from pipeline.registry import read_participants
from pipeline.sources.base import HEAD_BYTES
from pipeline.sources.registry import READERS

EXPECTED = {
    "csv/apple_health/export.xml": "apple_health",
    "csv/samsung_health/com.samsung.shealth.step_daily_trend.csv": "samsung_health",
    "csv/google_fit/Daily_activity_metrics_2018-2021.csv": "google_fit",
    "csv/google_fit/per_day_15min_2023-11-20.csv": "google_fit",
    "csv/fitbit_fitabase/minuteStepsNarrow_merged.head16.csv": "fitbit",
    "csv/fitbit_fitabase/hourlySteps_merged.csv": "fitbit",
    "csv/fitbit_fitabase/dailyActivity_merged.csv": "fitbit",
    "csv/garmin_connect/Activities_2021.csv": "garmin_connect",
    "csv/actigraph/ActiLife_1sec_epoch_example1sec.csv": "actigraph",
    "csv/withings/raw_tracker_steps.csv": "withings",
    "fit/python-fitparse/MonitoringFile.fit": "fit",
}


@pytest.mark.realdata
@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_each_real_sample_has_exactly_one_reader(realdata, relative):
    path = realdata / relative
    head = path.read_bytes()[:HEAD_BYTES]
    claimed = [reader.name for reader in READERS if reader.detect(path, head)]
    assert claimed == [EXPECTED[relative]]


@pytest.mark.realdata
def test_a_steps_free_export_is_claimed_by_no_reader(realdata):
    path = realdata / "csv/fitbit_fitabase/minuteIntensitiesWide_merged.head2000.csv"
    assert [r.name for r in READERS if r.detect(path, path.read_bytes()[:HEAD_BYTES])] == []


# -- participants.csv: ids that become folder names ------------------------------------------

PARTICIPANTS_HEADER = "participant_id,clinic_id,time_zone,programme_start\n"


def _participants(tmp_path, *rows: str):
    path = tmp_path / "participants.csv"
    path.write_text(PARTICIPANTS_HEADER + "".join(row + "\n" for row in rows), encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize("column", ["participant_id", "clinic_id"])
@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("../escape", "path separator"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ('""', "is empty"),
        (".", "current or the parent folder"),
        ("..", "current or the parent folder"),
        ('"c\x01"', "U+0001"),
        ('"c\x1b[31m"', "U+001B"),
        ('"c\nd"', "U+000A"),
        ('"c\x0cd"', "U+000C"),
        ('"c\x00d"', "U+0000"),
        ("c\u202ed", "U+202E"),  # right-to-left override
        ("c" * 256, "255 bytes"),
    ],
)
def test_ids_that_cannot_be_folder_names_stop_the_run(tmp_path, column, value, words):
    good = {"participant_id": "p1", "clinic_id": "c1"}
    bad = {**good, column: value}
    path = _participants(tmp_path, "p0,c0,UTC,2024-01-01",
                         f"{bad['participant_id']},{bad['clinic_id']},UTC,2024-01-01")
    with pytest.raises(RegistryError) as caught:
        read_participants(path)
    error = caught.value
    assert error.path == str(path) and error.line == (4 if value == '"c\nd"' else 3)
    assert f"column {column}:" in error.message and words in error.message
    assert error.one_line().startswith(f"{path} (line {error.line}): column {column}: ")


def test_ids_that_look_like_numbers_stay_text(tmp_path):
    path = _participants(tmp_path, "0042,007,Europe/London,2024-01-01", "1e3,1.50,UTC,2024-01-01",
                         "Müller-7,clinic north,UTC,2024-01-01")
    participants = read_participants(path)
    assert [(p.participant_id, p.clinic_id) for p in participants] == [
        ("0042", "007"), ("1e3", "1.50"), ("Müller-7", "clinic north")]


def test_rows_are_numbered_by_their_physical_line(tmp_path):
    path = _participants(tmp_path, "p1,c1,UTC,2024-01-01", "", "p2,c1,Nowhere/Zone,2024-01-01")
    with pytest.raises(RegistryError) as caught:
        read_participants(path)
    assert caught.value.line == 4 and "Nowhere/Zone" in caught.value.message
