"""Who needs attention first: plain-language reasons built from a patient's weekly rows.

Pure functions of `WeekRow`s (weekly_adherence). The flags and statuses are the warehouse's; this
module only picks the rows to read, words them in the clinic's language and orders patients by
urgency:

1. `overload`        walked more than 1.5 times the plan: a flare-up risk worth a call;
2. `falling_behind`  two or more weeks in a row below half the plan;
3. `no_recent_data`  nothing from the device for the last days: we cannot tell how they are doing;
4. `not_met`         the last completed week below half the plan.

Within a kind, the larger overload, the longer run below half, the older the last data and the
lower adherence come first; then the participant id, so the order never depends on input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pipeline.config import Definitions
from pipeline.reports.data import WeekRow

URGENCY: tuple[str, ...] = ("overload", "falling_behind", "no_recent_data", "not_met")

# How a source is named to a physiotherapist ("no data from the watch since ...").
DEVICE_WORDS: dict[str, str] = {
    "fit_activity": "the watch",
    "fit_monitoring": "the watch",
    "fitbit": "the Fitbit",
    "withings": "the Withings tracker",
    "garmin_connect": "the Garmin",
    "actigraph": "the ActiGraph",
    "apple_health": "the phone",
    "samsung_health": "the phone",
    "google_fit": "the phone",
    "mapped_csv": "the tracker",
}


@dataclass(frozen=True)
class Reason:
    kind: str  # one of URGENCY
    text: str


@dataclass(frozen=True)
class Attention:
    participant_id: str
    reasons: tuple[Reason, ...]  # most urgent first
    sort_key: tuple

    @property
    def kind(self) -> str:
        return self.reasons[0].kind

    @property
    def text(self) -> str:
        return "; ".join(reason.text for reason in self.reasons)


def reported_week(weeks: Sequence[WeekRow]) -> WeekRow | None:
    """The completed week being reported: the latest week that is not in progress."""
    completed = [week for week in weeks if not week.in_progress]
    return max(completed, key=lambda week: week.programme_week, default=None)


def in_progress_week(weeks: Sequence[WeekRow]) -> WeekRow | None:
    current = [week for week in weeks if week.in_progress]
    return max(current, key=lambda week: week.programme_week, default=None)


def last_data_utc(weeks: Sequence[WeekRow]) -> datetime | None:
    """The latest step interval end seen for the participant (the same on every row)."""
    return next((week.last_data_utc for week in weeks if week.last_data_utc is not None), None)


def weeks_below_half(weeks: Sequence[WeekRow], until: WeekRow, definitions: Definitions) -> int:
    """Completed weeks in a row, ending with `until`, below the falling-behind threshold with
    enough valid days to judge (the weeks that make up `falling_behind`)."""
    by_number = {week.programme_week: week for week in weeks}
    count = 0
    number = until.programme_week
    while (week := by_number.get(number)) is not None and _below_half(week, definitions):
        count += 1
        number -= 1
    return count


def _below_half(week: WeekRow, definitions: Definitions) -> bool:
    return (
        not week.in_progress
        and week.adherence_pct is not None
        and week.adherence_pct < definitions.falling_behind_pct
        and (week.valid_days or 0) >= definitions.falling_behind_min_valid_days
    )


def ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def day_label(day: date, report_date: date) -> str:
    """'Tue 12 Mar', with the year when it is not the report's year."""
    label = f"{day:%a} {day.day} {day:%b}"
    return label if day.year == report_date.year else f"{label} {day.year}"


def whole(value: float | None) -> str:
    """A count shown as a whole number ('-' when there is no data)."""
    return "-" if value is None else f"{value:,.0f}"


def device_words(weeks: Sequence[WeekRow]) -> str:
    """What the patient's data came from lately, in words: 'the watch', 'the watch or the phone'."""
    for week in sorted(weeks, key=lambda w: w.programme_week, reverse=True):
        if week.sources:
            words = sorted({DEVICE_WORDS.get(source, "the tracker") for source in week.sources})
            return " or ".join(words)
    return "any device"


def _walked(week: WeekRow) -> str:
    return f"walked {whole(week.walk_minutes)} of {whole(week.prescribed_minutes)} prescribed minutes"


def attention_reasons(
    weeks: Sequence[WeekRow],
    time_zone: str,
    report_date: date,
    definitions: Definitions = Definitions(),
) -> tuple[Reason, ...]:
    """The reasons this patient needs attention, most urgent first; empty when none."""
    reported = reported_week(weeks)
    current = in_progress_week(weeks)
    reasons: list[Reason] = []

    if reported is not None and "overload" in reported.flags:
        reasons.append(
            Reason(
                "overload",
                f"{_walked(reported)} ({whole(reported.adherence_pct)}%) in week {reported.programme_week}, "
                f"more than {definitions.overload_ratio:g} times the plan: ask about pain flare-ups",
            )
        )
    elif current is not None and "overload" in current.flags:
        reasons.append(
            Reason(
                "overload",
                f"already {_walked(current)} in week {current.programme_week} (in progress), "
                f"more than {definitions.overload_ratio:g} times the plan: ask about pain flare-ups",
            )
        )

    if reported is not None and "falling_behind" in reported.flags:
        run = max(weeks_below_half(weeks, reported, definitions), 2)
        reasons.append(Reason("falling_behind", f"{_walked(reported)}, {ordinal(run)} week below half"))

    if any(week is not None and "no_recent_data" in week.flags for week in (reported, current)):
        seen = last_data_utc(weeks)
        if seen is None:
            text = f"no data from {device_words(weeks)} yet"
        else:
            local_day = seen.astimezone(ZoneInfo(time_zone)).date()
            text = f"no data from {device_words(weeks)} since {day_label(local_day, report_date)}"
        reasons.append(Reason("no_recent_data", text))

    falling_behind = any(reason.kind == "falling_behind" for reason in reasons)
    if reported is not None and reported.status == "not_met" and not falling_behind:
        reasons.append(
            Reason(
                "not_met",
                f"{_walked(reported)} ({whole(reported.adherence_pct)}%) in week {reported.programme_week}, "
                f"on {whole(reported.walking_days)} of {whole(reported.prescribed_days)} prescribed days",
            )
        )
    return tuple(sorted(reasons, key=lambda reason: URGENCY.index(reason.kind)))


def urgency_key(
    participant_id: str, reasons: Sequence[Reason], weeks: Sequence[WeekRow], definitions: Definitions
) -> tuple:
    """Sort key: the most urgent kind, then how severe within that kind, then the id."""
    kind = reasons[0].kind
    reported = reported_week(weeks)
    current = in_progress_week(weeks)
    severity: tuple
    if kind == "overload":
        week = reported if reported is not None and "overload" in reported.flags else current
        severity = (-(week.adherence_pct or 0.0),)
    elif kind == "falling_behind":
        severity = (-weeks_below_half(weeks, reported, definitions), reported.adherence_pct or 0.0)
    elif kind == "no_recent_data":
        seen = last_data_utc(weeks)
        severity = (float("-inf") if seen is None else seen.timestamp(),)
    else:
        severity = (reported.adherence_pct or 0.0,)
    return (URGENCY.index(kind), severity, participant_id)


def attention_list(
    patients: Sequence[tuple[str, str, Sequence[WeekRow]]],
    report_date: date,
    definitions: Definitions = Definitions(),
) -> list[Attention]:
    """Patients who need attention, most urgent first. `patients`: (participant_id, time_zone, weeks)."""
    items = []
    for participant_id, time_zone, weeks in patients:
        reasons = attention_reasons(weeks, time_zone, report_date, definitions)
        if reasons:
            key = urgency_key(participant_id, reasons, weeks, definitions)
            items.append(Attention(participant_id, reasons, key))
    return sorted(items, key=lambda item: item.sort_key)
