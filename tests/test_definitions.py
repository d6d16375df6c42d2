"""Definitions v1 on small hand-made interval series, through the real SQL models."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from pipeline.registry import Participant, PlanRow
from tests.warehouse_helpers import build, interval, one, worn_day

UTC_P = Participant("p1", "c1", "UTC", date(2024, 1, 1))


def minutes(pid: str, start: str, pattern: str, *, source: str = "fitbit", walk_steps: float = 110) -> list[dict]:
    """One 1-minute interval per character of `pattern` from `start` (UTC): W walking, . 0 steps."""
    first = datetime.fromisoformat(start + "+00:00")
    rows = []
    for offset, mark in enumerate(pattern):
        begin = first + timedelta(minutes=offset)
        rows.append(interval(pid, begin, begin + timedelta(minutes=1), walk_steps if mark == "W" else 0, source=source))
    return rows


def bout_minutes(tmp_path, pattern: str) -> float:
    con = build(tmp_path, [UTC_P], minutes("p1", "2024-01-01T10:00:00", pattern), date(2024, 1, 3))
    return one(con, "select bout_minutes from daily_activity where local_date = date '2024-01-01'")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("W" * 10, 10),  # exactly 10 minutes: a bout
        ("W" * 9, 0),  # 9: too short
        ("W" * 5 + ".." + "W" * 5, 10),  # gap of 2 joins; span 12, 10/12 walking
        ("W" * 5 + "..." + "W" * 5, 0),  # gap of 3 splits into two 5-minute runs
        ("WWWW..WWWW..WWWW", 0),  # span 16, 12 walking = 75% < 80%
        ("WWWWWWWW..WWWWWWWW", 16),  # span 18, 16 walking = 89%
    ],
)
def test_walking_bouts(tmp_path, pattern, expected):
    assert bout_minutes(tmp_path, pattern) == expected


def test_walking_segments_table_lists_every_run(tmp_path):
    # runs: W (1 min) | WW.WW (joined over a gap of 1) | W..W (joined over 2) | WWWW (after a gap of 3)
    con = build(tmp_path, [UTC_P], minutes("p1", "2024-01-01T10:00:00", "W...WW.WW...W..W...WWWW"), date(2024, 1, 3))
    rows = con.sql("select segment_number, extract(minute from first_minute_utc), extract(minute from last_minute_utc), "
                   "walking_minutes, span_minutes, is_bout from walking_segments order by first_minute_utc").fetchall()
    assert rows == [(1, 0, 0, 1, 1, False), (2, 4, 8, 4, 5, False), (3, 12, 15, 2, 4, False),
                    (4, 19, 22, 4, 4, False)]


def test_bout_belongs_to_the_local_day_it_starts(tmp_path):
    sydney = Participant("p1", "c1", "Australia/Sydney", date(2024, 1, 1))
    # 23:55 to 00:10 local time on 1-2 Jan 2024 (Sydney is UTC+11 in January)
    rows = minutes("p1", "2024-01-01T12:55:00", "W" * 15)
    con = build(tmp_path, [sydney], rows, date(2024, 1, 4))
    days = dict(con.sql("select local_date, bout_minutes from daily_activity where bout_minutes is not null").fetchall())
    assert days == {date(2024, 1, 1): 15, date(2024, 1, 2): 0}
    walking = dict(con.sql("select local_date, walking_minutes_all from daily_activity where steps is not null").fetchall())
    assert walking == {date(2024, 1, 1): 5, date(2024, 1, 2): 10}


def test_spreading_in_proportion_to_overlap(tmp_path):
    rows = [interval("p1", "2024-01-01T10:00:30+00:00", "2024-01-01T10:01:30+00:00", 100)]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    assert con.sql("select extract(minute from minute_utc), steps from minute_steps order by 1").fetchall() == [
        (0, 50.0), (1, 50.0)]


def test_intervals_of_one_device_within_a_minute_are_added(tmp_path):
    rows = [
        interval("p1", "2024-01-01T10:00:00+00:00", "2024-01-01T10:00:20+00:00", 30),  # activity records:
        interval("p1", "2024-01-01T10:00:20+00:00", "2024-01-01T10:00:50+00:00", 25),  # three in one minute
        interval("p1", "2024-01-01T10:00:50+00:00", "2024-01-01T10:01:00+00:00", 5),
        interval("p1", "2024-01-01T10:01:00+00:00", "2024-01-01T10:02:00+00:00", 40),  # a whole minute alone
        interval("p1", "2024-01-01T10:02:00+00:00", "2024-01-01T10:03:30+00:00", 90),  # shares 10:03 with
        interval("p1", "2024-01-01T10:03:30+00:00", "2024-01-01T10:04:00+00:00", 10),  # this one
    ]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    assert con.sql("select extract(minute from minute_utc), steps from minute_steps order by 1").fetchall() == [
        (0, 60.0), (1, 40.0), (2, 60.0), (3, 40.0)]


def test_an_interval_across_a_utc_offset_change_at_midnight_puts_each_minute_on_its_local_date(tmp_path):
    santiago = Participant("p1", "c1", "America/Santiago", date(2024, 4, 1))
    # Santiago's clocks went back from 00:00 (UTC-3) to 23:00 (UTC-4) on 7 April 2024, at 03:00Z: the
    # minutes 02:55Z-03:09Z are 23:55-23:59 and 23:00-23:09 on 6 April, local time
    rows = [interval("p1", "2024-04-07T02:55:00+00:00", "2024-04-07T03:10:00+00:00", 15, tz="America/Santiago")]
    con = build(tmp_path, [santiago], rows, date(2024, 4, 9))
    assert con.sql("select local_date, count(*), sum(steps) from minute_steps group by 1").fetchall() == [
        (date(2024, 4, 6), 15, 15.0)]


def test_coarse_interval_counts_to_day_steps_only(tmp_path):
    rows = [interval("p1", "2024-01-01T10:00:00+00:00", "2024-01-01T12:00:00+00:00", 1500)]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    assert one(con, "select count(*) from minute_steps") == 0
    day = one(con, "select steps, minute_resolution, low_confidence, valid_day, peak30_cadence from daily_activity "
                   "where local_date = date '2024-01-01'")
    assert day == (1500, False, True, True, None)


def test_one_source_per_minute_by_priority(tmp_path):
    rows = [
        interval("p1", "2024-01-01T10:00:00+00:00", "2024-01-01T10:01:00+00:00", 50, source="fit_monitoring"),
        interval("p1", "2024-01-01T10:00:00+00:00", "2024-01-01T10:01:00+00:00", 80, source="fitbit"),
        interval("p1", "2024-01-01T10:01:00+00:00", "2024-01-01T10:02:00+00:00", 70, source="fitbit"),
    ]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    assert con.sql("select steps, source from minute_steps order by minute_utc").fetchall() == [
        (50.0, "fit_monitoring"), (70.0, "fitbit")]
    assert one(con, "select steps from daily_activity where local_date = date '2024-01-01'") == 120


def test_phone_daily_total_never_adds_to_watch_minutes(tmp_path):
    rows = worn_day("p1", date(2024, 1, 1), "UTC", source="fit_monitoring") + [
        interval("p1", "2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00", 9000, source="samsung_health")]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    assert one(con, "select steps from daily_activity where local_date = date '2024-01-01'") == 60


def test_no_data_is_null_and_zero_steps_is_zero(tmp_path):
    rows = [interval("p1", "2024-01-01T10:00:00+00:00", "2024-01-01T10:01:00+00:00", 0)]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    days = con.sql("select local_date, steps, bout_minutes, worn_hours, valid_day from daily_activity order by 1").fetchall()
    assert days == [(date(2024, 1, 1), 0, 0, 0, False), (date(2024, 1, 2), None, None, None, False),
                    (date(2024, 1, 3), None, None, None, False)]


def test_dst_autumn_day_has_25_hours_and_the_repeated_hour_is_one_clock_hour(tmp_path):
    ny = Participant("p1", "c1", "America/New_York", date(2024, 10, 28))
    # one 5-step minute at :30 of every UTC hour of the local day 2024-11-03 (04:00Z .. 05:00Z next day)
    first = datetime.fromisoformat("2024-11-03T04:30:00+00:00")
    rows = [interval("p1", first + timedelta(hours=h), first + timedelta(hours=h, minutes=1), 5, tz="America/New_York")
            for h in range(25)]
    con = build(tmp_path, [ny], rows, date(2024, 11, 5))
    assert one(con, "select steps, worn_hours from daily_activity where local_date = date '2024-11-03'") == (125, 24)


def test_dst_spring_day_has_23_hours(tmp_path):
    ny = Participant("p1", "c1", "America/New_York", date(2024, 3, 4))
    first = datetime.fromisoformat("2024-03-10T05:30:00+00:00")  # 00:30 EST
    rows = [interval("p1", first + timedelta(hours=h), first + timedelta(hours=h, minutes=1), 5, tz="America/New_York")
            for h in range(24)]
    con = build(tmp_path, [ny], rows, date(2024, 3, 12))
    assert con.sql("select local_date, steps from daily_activity where steps is not null order by 1").fetchall() == [
        (date(2024, 3, 10), 115), (date(2024, 3, 11), 5)]


def test_fit_counters_are_rederived_across_sync_files(tmp_path):
    common = {"source": "fit_monitoring", "activity_type": "walking", "device": "garmin:1:9"}
    rows = [
        interval("p1", "2024-01-01T00:00:00+00:00", "2024-01-01T10:01:00+00:00", 100, cumulative=100, file_sha256="a" * 64, **common),
        interval("p1", "2024-01-01T10:01:00+00:00", "2024-01-01T10:02:00+00:00", 100, cumulative=200, file_sha256="a" * 64, **common),
        # the next sync file starts its first interval at local midnight; the counter carries on
        interval("p1", "2024-01-01T00:00:00+00:00", "2024-01-01T10:03:00+00:00", 250, cumulative=250, file_sha256="b" * 64, **common),
    ]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    got = con.sql("select strftime(start_utc, '%H:%M'), strftime(end_utc, '%H:%M'), steps from step_intervals order by end_utc").fetchall()
    assert got == [("00:00", "10:01", 100.0), ("10:01", "10:02", 100.0), ("10:02", "10:03", 50.0)]


def test_fit_counters_of_two_activity_types_at_one_instant_both_start_at_the_previous_message(tmp_path):
    # A monitoring message per activity type at the same instant: each starts at the device's
    # previous message (10:01), not at its twin's end (a zero-length interval would put all its
    # steps in one minute instead of spreading them).
    common = {"source": "fit_monitoring", "device": "garmin:1:9", "file_sha256": "a" * 64}
    rows = [
        interval("p1", "2024-01-01T00:00:00+00:00", "2024-01-01T10:01:00+00:00", 10, cumulative=10,
                 activity_type="walking", **common),
        interval("p1", "2024-01-01T00:00:00+00:00", "2024-01-01T10:03:00+00:00", 30, cumulative=30,
                 activity_type="walking", **common),
        interval("p1", "2024-01-01T00:00:00+00:00", "2024-01-01T10:03:00+00:00", 40, cumulative=40,
                 activity_type="running", **common),
    ]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    got = con.sql("select activity_type, strftime(start_utc, '%H:%M'), strftime(end_utc, '%H:%M'), steps "
                  "from step_intervals where end_utc > '2024-01-01 10:01:00+00' order by 1").fetchall()
    assert got == [("running", "10:01", "10:03", 40.0), ("walking", "10:01", "10:03", 20.0)]


def test_same_record_in_two_exports_counts_once_newest_wins(tmp_path):
    from tests.warehouse_helpers import INGESTED_AT

    rows = [
        interval("p1", "2024-01-01T10:00:00+00:00", "2024-01-01T10:01:00+00:00", 40, file_sha256="a" * 64),
        interval("p1", "2024-01-01T10:00:00+00:00", "2024-01-01T10:01:00+00:00", 42, file_sha256="b" * 64,
                 ingested_at=INGESTED_AT + timedelta(days=1)),
    ]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    assert one(con, "select steps from minute_steps") == 42


def _week(pid: str, start: date, tz: str, walks_per_day: list[float], worn: list[bool]) -> list[dict]:
    rows = []
    for offset, (walk, is_worn) in enumerate(zip(walks_per_day, worn)):
        if is_worn:
            rows += worn_day(pid, start + timedelta(days=offset), tz, walk=[(10, 0, walk)] if walk else [])
    return rows


def _status(tmp_path, weeks: list[tuple[list[float], list[bool]]], as_of: date, plan=()):
    p = Participant("p1", "c1", "Europe/London", date(2024, 1, 1))
    rows = []
    for index, (walks, worn) in enumerate(weeks):
        rows += _week("p1", date(2024, 1, 1) + timedelta(days=7 * index), "Europe/London", walks, worn)
    con = build(tmp_path, [p], rows, as_of, plan)
    return con.sql("select programme_week, walk_minutes, walking_days, valid_days, prescribed_minutes, prescribed_days, "
                   "adherence_pct, status, flags from weekly_adherence order by 1").fetchall()


ALL = [True] * 7


def test_status_met_with_exact_prescription(tmp_path):
    weeks = _status(tmp_path, [([27, 27, 26, 0, 0, 0, 0], ALL)], date(2024, 1, 8))
    assert weeks[0][1:] == (80, 3, 7, 80, 3, 100.0, "met", [])


def test_status_no_data_and_in_progress(tmp_path):
    weeks = _status(tmp_path, [([0] * 7, [False] * 7)], date(2024, 1, 10))
    assert weeks[0][7] == "no_data" and weeks[0][1] is None and weeks[0][6] is None
    assert weeks[1][7] == "in_progress" and weeks[1][8] == []


def test_status_insufficient_partial_not_met(tmp_path):
    weeks = _status(
        tmp_path,
        [
            ([20, 20, 0, 0, 0, 0, 0], [True, True] + [False] * 5),  # 2 valid days, not met
            ([15, 15, 15, 0, 0, 0, 0], ALL),  # 45 of 85 = 53%: partial
            ([20, 0, 0, 0, 0, 0, 0], ALL),  # 20 of 90 = 22%: not met
        ],
        date(2024, 1, 22),
    )
    assert [w[7] for w in weeks] == ["insufficient_data", "partial", "not_met", "in_progress"]


def test_falling_behind_needs_two_weeks_below_half_with_four_valid_days(tmp_path):
    weeks = _status(tmp_path, [([20] + [0] * 6, ALL), ([20] + [0] * 6, ALL)], date(2024, 1, 15))
    assert weeks[0][8] == [] and weeks[1][8] == ["falling_behind"]


def test_overload_over_one_and_a_half_times(tmp_path):
    weeks = _status(tmp_path, [([45, 45, 45, 0, 0, 0, 0], ALL)], date(2024, 1, 8))
    assert weeks[0][7] == "met" and weeks[0][8] == ["overload"]  # 135 > 1.5 * 80


def test_no_recent_data_on_the_latest_completed_week(tmp_path):
    weeks = _status(tmp_path, [([27, 27, 26, 0, 0, 0, 0], [True] * 2 + [False] * 5), ([0] * 7, [False] * 7)],
                    date(2024, 1, 15))
    assert "no_recent_data" not in weeks[0][8] and "no_recent_data" in weeks[1][8]


def test_low_confidence_week_rests_on_coarse_days(tmp_path):
    p = Participant("p1", "c1", "UTC", date(2024, 1, 1))
    rows = [interval("p1", f"2024-01-0{d}T00:00:00+00:00", f"2024-01-0{d + 1}T00:00:00+00:00", 5000,
                     source="google_fit") for d in range(1, 6)]
    con = build(tmp_path, [p], rows, date(2024, 1, 8))
    assert one(con, "select valid_days, flags, status from weekly_adherence where programme_week = 1") == (
        5, ["low_confidence"], "not_met")


def test_plan_rows_set_the_prescription(tmp_path):
    plan = [PlanRow("p1", 1, 60, 2, 0)]
    weeks = _status(tmp_path, [([30, 30, 0, 0, 0, 0, 0], ALL)], date(2024, 1, 8), plan)
    assert weeks[0][4:6] == (60, 2) and weeks[0][7] == "met"


def test_implausible_day_is_flagged_and_kept(tmp_path):
    rows = [interval("p1", "2024-01-01T10:00:00+00:00", "2024-01-01T10:01:00+00:00", 60000)]
    con = build(tmp_path, [UTC_P], rows, date(2024, 1, 3))
    assert one(con, "select steps, implausible from daily_activity where local_date = date '2024-01-01'") == (60000, True)
