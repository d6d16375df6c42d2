"""Implausible values are kept and flagged per definitions v1, never silently dropped or clipped;
values that cannot be steps at all (negative, NaN, infinite) reject their file with a reason."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import duckdb
import pytest

from pipeline.config import Settings
from pipeline.ingest import ingest_inbox, sha256_of
from pipeline.registry import read_participants
from pipeline.warehouse import build_warehouse
from tests.robustness import helpers as h
from tests.robustness.corpus import fit_activity, narrow_csv


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    data = tmp_path_factory.mktemp("implausible") / "data"
    h.write_participants(data, [{"participant_id": "p1", "clinic_id": "c1", "time_zone": "UTC",
                                 "programme_start": "2024-01-01", "display_name": "P One"}])
    inbox = data / "inbox" / "p1"
    inbox.mkdir(parents=True)
    files = {
        "absurd.csv": narrow_csv("p1", [("1/2/2024 2:00:00 PM", "1000000000")]),
        "fraction.csv": narrow_csv("p1", [("1/2/2024 1:00:00 PM", "12.5")]),
        # one day of 50,001 steps over 501 minutes: just over the threshold
        "busy.csv": narrow_csv("p1", [(f"1/3/2024 {8 + m // 60}:{m % 60:02d}:00 AM", "99.8")
                                      for m in range(240)]
                               + [(f"1/3/2024 {1 + m // 60}:{m % 60:02d}:00 PM", "100.0") for m in range(261)]),
        "old.csv": narrow_csv("p1", [("1/1/1970 12:00:00 AM", "30")]),
        "future.csv": narrow_csv("p1", [("1/1/2100 12:00:00 AM", "40")]),
        "negative.csv": narrow_csv("p1", [("1/4/2024 9:00:00 AM", "-5")]),
        "nan.csv": narrow_csv("p1", [("1/4/2024 9:00:00 AM", "nan")]),
    }
    for name, text in files.items():
        (inbox / name).write_text(text)
    (inbox / "walk-2100.FIT").write_bytes(fit_activity(datetime(2100, 1, 6, 9, 30, tzinfo=UTC)))
    settings = Settings.for_folder(data)
    participants = read_participants(settings.data.participants_csv)
    report = ingest_inbox(settings.data, participants)
    build_warehouse(settings, participants, [], as_of=date(2024, 1, 10))
    con = duckdb.connect(str(settings.data.warehouse), read_only=True)
    yield settings, report, con
    con.close()


def test_absurd_and_fractional_minutes_are_kept_exactly(warehouse):
    _, _, con = warehouse
    rows = con.sql("select strftime(minute_utc, '%Y-%m-%d %H:%M'), steps from minute_steps "
                   "where steps in (1e9, 12.5) order by 1").fetchall()
    assert rows == [("2024-01-02 13:00", 12.5), ("2024-01-02 14:00", 1e9)]


def test_a_day_over_fifty_thousand_steps_is_flagged_not_clipped(warehouse):
    _, _, con = warehouse
    days = dict(con.sql("select local_date, (steps, implausible) from daily_activity "
                        "where local_date in ('2024-01-02', '2024-01-03')").fetchall())
    steps, implausible = days[date(2024, 1, 2)]
    assert implausible and steps in (1_000_000_012.0, 1_000_000_013.0)  # 1e9 + 12.5, rounded
    assert days[date(2024, 1, 3)] == (round(240 * 99.8 + 261 * 100.0), True)
    week = con.sql("select steps from weekly_adherence where programme_week = 1").fetchall()
    assert week[0][0] >= 1_000_000_000  # the weekly sum is not clipped either


def test_dates_far_from_the_programme_are_kept_in_the_warehouse(warehouse):
    _, _, con = warehouse
    years = sorted(year for (year,) in con.sql("select distinct year(start_utc) from step_intervals").fetchall())
    assert 1970 in years and 2100 in years


def test_values_that_cannot_be_steps_reject_their_file_with_a_reason(warehouse):
    settings, report, con = warehouse
    assert report.quarantined == 2 and report.ingested == 6
    for name, words in (("negative.csv", "negative"), ("nan.csv", "invalid steps")):
        path = settings.data.inbox / "p1" / name
        reason = json.loads((settings.data.quarantine / sha256_of(path) / "reason.json").read_text())
        assert words in reason["problem"]
        assert con.execute("select count(*) from step_intervals where file_sha256 = ?",
                           [sha256_of(path)]).fetchall() == [(0,)]
