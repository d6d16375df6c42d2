"""Who needs attention first: reasons in plain words and the urgency order (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from pipeline.config import Definitions
from pipeline.reports.attention import (
    attention_list,
    attention_reasons,
    day_label,
    device_words,
    in_progress_week,
    ordinal,
    reported_week,
    weeks_below_half,
)
from pipeline.reports.data import WeekRow

REPORT_DATE = date(2024, 3, 20)
LAST_SEEN = datetime(2024, 3, 19, 19, 30, tzinfo=timezone.utc)


def week(number: int, walk: float | None, prescribed: float = 110, *, status: str = "partial", flags=(),
         walking_days: int | None = 3, valid_days: int = 7, sources=("fit_monitoring",), last=LAST_SEEN) -> WeekRow:
    start = date(2024, 1, 3) + timedelta(days=7 * (number - 1))
    return WeekRow(
        participant_id="A-01", clinic_id="north", programme_week=number, week_start=start,
        week_end=start + timedelta(days=6), walk_minutes=walk, walking_minutes_all=walk, moderate_minutes=None,
        vigorous_minutes=None, steps=None, mean_daily_steps=None, walking_days=walking_days, valid_days=valid_days,
        low_confidence_days=0, peak30_cadence=None, prescribed_minutes=prescribed, prescribed_days=4,
        adherence_pct=None if walk is None else 100 * walk / prescribed, status=status, flags=tuple(flags),
        sources=tuple(sources), definitions_version="1", last_data_utc=last,
    )


def test_falling_behind_reads_like_the_clinic_says_it():
    weeks = [
        week(1, 100),
        week(2, 40, status="not_met"),
        week(3, 35, status="not_met", flags=["falling_behind"]),
        week(4, 10, status="in_progress"),
    ]
    reasons = attention_reasons(weeks, "Europe/London", REPORT_DATE)
    assert [(r.kind, r.text) for r in reasons] == [
        ("falling_behind", "walked 35 of 110 prescribed minutes, 2nd week below half")
    ]


def test_weeks_below_half_counts_back_from_the_reported_week_and_needs_enough_valid_days():
    weeks = [week(1, 20, valid_days=3), week(2, 30), week(3, 40), week(4, 35)]
    assert weeks_below_half(weeks, weeks[-1], Definitions()) == 3  # week 1 has too few valid days


def test_no_recent_data_names_the_device_and_the_local_day():
    seen = datetime(2024, 3, 12, 13, 0, tzinfo=timezone.utc)  # 00:00 on Wed 13 Mar in Sydney
    weeks = [week(1, 100, status="met", flags=["no_recent_data"], last=seen)]
    (london,) = attention_reasons(weeks, "Europe/London", REPORT_DATE)
    (sydney,) = attention_reasons(weeks, "Australia/Sydney", REPORT_DATE)
    assert london.text == "no data from the watch since Tue 12 Mar"
    assert sydney.text == "no data from the watch since Wed 13 Mar"


def test_no_recent_data_without_any_data_says_so():
    weeks = [week(1, None, status="no_data", flags=["no_recent_data"], sources=(), last=None)]
    (reason,) = attention_reasons(weeks, "Europe/London", REPORT_DATE)
    assert reason.text == "no data from any device yet"


def test_overload_and_not_met_wording():
    overload = attention_reasons([week(1, 190, status="met", flags=["overload"], walking_days=4)], "UTC", REPORT_DATE)
    assert overload[0].text == (
        "walked 190 of 110 prescribed minutes (173%) in week 1, more than 1.5 times the plan: ask about pain flare-ups"
    )
    not_met = attention_reasons([week(1, 40, status="not_met", walking_days=1)], "UTC", REPORT_DATE)
    assert not_met[0].text == "walked 40 of 110 prescribed minutes (36%) in week 1, on 1 of 4 prescribed days"


def test_in_progress_overload_is_reported_but_in_progress_shortfall_is_not():
    weeks = [week(1, 100, status="met"), week(2, 200, status="in_progress", flags=["overload"])]
    (reason,) = attention_reasons(weeks, "UTC", REPORT_DATE)
    assert reason.kind == "overload" and "(in progress)" in reason.text
    assert attention_reasons([week(1, 100, status="met"), week(2, 5, status="in_progress")], "UTC", REPORT_DATE) == ()


@pytest.mark.parametrize("status", ["met", "partial", "insufficient_data", "no_data"])
def test_statuses_other_than_not_met_need_no_attention_on_their_own(status):
    assert attention_reasons([week(1, 60, status=status)], "UTC", REPORT_DATE) == ()


def test_several_reasons_are_listed_most_urgent_first_without_repeating_the_shortfall():
    weeks = [
        week(1, 30, status="not_met"),
        week(2, 20, status="not_met", flags=["falling_behind", "no_recent_data"]),
    ]
    kinds = [r.kind for r in attention_reasons(weeks, "UTC", REPORT_DATE)]
    assert kinds == ["falling_behind", "no_recent_data"]  # not_met is already said by falling_behind


def test_urgency_order_kind_then_severity_then_id():
    def patient(pid, weeks):
        return (pid, "UTC", [replace(w, participant_id=pid) for w in weeks])

    older = LAST_SEEN - timedelta(days=10)
    patients = [
        patient("A-5", [week(1, 50, status="not_met", walking_days=1)]),
        patient("A-4", [week(1, 20, status="not_met", walking_days=1)]),
        patient("A-3", [week(1, 100, status="met", flags=["no_recent_data"])]),
        patient("A-2", [week(1, 100, status="met", flags=["no_recent_data"], last=older)]),
        patient("A-1", [week(1, 40, status="not_met"), week(2, 30, status="not_met", flags=["falling_behind"])]),
        patient("A-0", [week(1, 170, status="met", flags=["overload"])]),
        patient("A-9", [week(1, 250, status="met", flags=["overload"])]),
        patient("A-8", [week(1, 100, status="met")]),
    ]
    order = [item.participant_id for item in attention_list(patients, REPORT_DATE)]
    assert order == ["A-9", "A-0", "A-1", "A-2", "A-3", "A-4", "A-5"]
    assert order == [item.participant_id for item in attention_list(list(reversed(patients)), REPORT_DATE)]


def test_reported_and_in_progress_weeks():
    weeks = [week(1, 100), week(2, 100), week(3, 20, status="in_progress")]
    assert reported_week(weeks).programme_week == 2
    assert in_progress_week(weeks).programme_week == 3
    assert reported_week(weeks[2:]) is None and in_progress_week(weeks[:2]) is None


@pytest.mark.parametrize(
    ("number", "text"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"),
                         (21, "21st"), (22, "22nd"), (111, "111th")]
)
def test_ordinal(number, text):
    assert ordinal(number) == text


def test_day_label_adds_the_year_only_when_it_differs():
    assert day_label(date(2024, 3, 12), REPORT_DATE) == "Tue 12 Mar"
    assert day_label(date(2023, 12, 29), REPORT_DATE) == "Fri 29 Dec 2023"


def test_device_words_use_the_latest_week_with_data():
    weeks = [
        week(1, 10, sources=("fitbit",)),
        week(2, 10, sources=("apple_health", "fit_monitoring")),
        week(3, None, sources=()),
    ]
    assert device_words(weeks) == "the phone or the watch"
    assert device_words([week(1, None, sources=())]) == "any device"
