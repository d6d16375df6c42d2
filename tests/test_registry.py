"""Formats are recognised by content: every real sample is claimed by exactly one reader."""

from __future__ import annotations

import pytest

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
