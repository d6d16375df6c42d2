"""Definitions v1 in plain Python: the second implementation the end-to-end test compares with.

It starts from step intervals (what the readers are meant to produce from the sample files) and
knows nothing of the pipeline's SQL. Minutes are whole UTC minutes numbered from the Unix epoch
(minute m covers [60m, 60m + 60) seconds). Interpretations agreed with the SQL side:

- intervals of at most 15 minutes are spread over the UTC minutes they overlap, in proportion to
  seconds of overlap; longer ones are coarse (day steps only, on the local day they start in, and
  only when their source is the day's highest-priority source); a zero-length interval is no data;
- a minute takes the steps of the single highest-priority source with an interval overlapping it
  (a zero-step interval still claims the minute); coarse intervals claim no minute;
- the day's highest-priority source is the best source with an interval overlapping the day;
- worn hours: distinct local clock hours (naive, so the repeated autumn hour counts once) with a
  minute of steps > 0; a day whose data are only coarse is low_confidence and valid with >= 1000
  steps; a day with minute data (coarse or not) is valid with >= 10 worn hours;
- a day with no step interval has NULL metrics (valid_day false, every other field NULL);
- weeks: sums are NULL when no day of the week has data; the day counts are then 0.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from datetime import date, datetime, time, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

# definitions v1 (the same numbers as pipeline.config.Definitions; a test keeps them in step)
SPREAD_MAX_MINUTES = 15
WALKING_CADENCE = 60
MODERATE_CADENCE = 100
VIGOROUS_CADENCE = 130
BOUT_MAX_GAP_MINUTES = 2
BOUT_MIN_SPAN_MINUTES = 10
BOUT_MIN_WALKING_FRACTION = 0.8
PEAK_MINUTES = 30
VALID_DAY_MIN_WORN_HOURS = 10
COARSE_VALID_DAY_MIN_STEPS = 1000
IMPLAUSIBLE_DAY_STEPS = 50000
WALKING_DAY_MIN_BOUT_MINUTES = 10
STATUS_MIN_VALID_DAYS = 4
PARTIAL_MIN_ADHERENCE_PCT = 50
OVERLOAD_RATIO = 1.5
FALLING_BEHIND_PCT = 50
FALLING_BEHIND_MIN_VALID_DAYS = 4
NO_RECENT_DATA_DAYS = 5
DEFAULT_START_MINUTES = 80
DEFAULT_WEEK12_MINUTES = 130
DEFAULT_FINAL_MINUTES = 150
FINAL_WEEK = 26
ROUND_TO_MINUTES = 5

SOURCE_PRIORITY = ("fit_activity", "fit_monitoring", "fitbit")  # highest first


@dataclass(frozen=True)
class StepInterval:
    source: str
    start_utc: datetime
    end_utc: datetime  # exclusive
    steps: float

    @cached_property
    def start_second(self) -> float:
        return self.start_utc.timestamp()

    @cached_property
    def end_second(self) -> float:
        return self.end_utc.timestamp()

    @property
    def is_coarse(self) -> bool:
        return self.end_second - self.start_second > SPREAD_MAX_MINUTES * 60


@dataclass(frozen=True)
class Participant:
    participant_id: str
    clinic_id: str
    time_zone: str
    programme_start: date
    start_minutes: float | None = None
    week12_minutes: float | None = None
    final_minutes: float | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class PlanRow:
    """A physiotherapist's plan from `from_week` on (a row of prescriptions.csv)."""

    from_week: int
    minutes_per_week: float
    days_per_week: int


@dataclass(frozen=True)
class Bout:
    first_minute: int
    last_minute: int
    walking_minutes: int


# ---------------------------------------------------------------- minutes


def spread_over_minutes(interval: StepInterval) -> dict[int, float]:
    """A fine interval's steps over the UTC minutes it overlaps, by seconds of overlap."""
    start, end = interval.start_second, interval.end_second
    if end <= start:
        return {}
    spread = {}
    for minute in range(math.floor(start / 60), math.ceil(end / 60)):
        overlap = min(end, 60 * minute + 60) - max(start, 60 * minute)
        if overlap > 0:
            spread[minute] = interval.steps * overlap / (end - start)
    return spread


def minute_steps(intervals: list[StepInterval], priority: tuple[str, ...] = SOURCE_PRIORITY) -> dict[int, float]:
    """The minute series after source priority: each minute from its best covering source."""
    by_source: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for interval in intervals:
        if interval.source not in priority:
            raise ValueError(f"source {interval.source!r} has no priority")
        if not interval.is_coarse:
            for minute, steps in spread_over_minutes(interval).items():
                by_source[interval.source][minute] += steps
    series: dict[int, float] = {}
    for source in reversed(priority):  # better sources overwrite worse ones
        series.update(by_source.get(source, {}))
    return series


def walking_bouts(series: dict[int, float]) -> list[Bout]:
    """Walking-minute runs joined across gaps of <= 2 non-walking minutes, kept when they span
    >= 10 minutes and >= 80% of the span is walking minutes."""
    segments: list[list[int]] = []  # [first, last, walking minutes]
    for minute in sorted(m for m, steps in series.items() if steps >= WALKING_CADENCE):
        if segments and minute - segments[-1][1] - 1 <= BOUT_MAX_GAP_MINUTES:
            segments[-1][1] = minute
            segments[-1][2] += 1
        else:
            segments.append([minute, minute, 1])
    bouts = []
    for first, last, walking in segments:
        span = last - first + 1
        if span >= BOUT_MIN_SPAN_MINUTES and walking / span >= BOUT_MIN_WALKING_FRACTION:
            bouts.append(Bout(first, last, walking))
    return bouts


# ---------------------------------------------------------------- days


def local_midnight_minute(local_date: date, zone: ZoneInfo) -> int:
    """The UTC minute at which the local day starts."""
    return int(datetime.combine(local_date, time(0), tzinfo=zone).timestamp()) // 60


def local_date_of_minute(minute: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(minute * 60, tz=timezone.utc).astimezone(zone).date()


def local_hour_of_minute(minute: int, zone: ZoneInfo) -> int:
    return datetime.fromtimestamp(minute * 60, tz=timezone.utc).astimezone(zone).hour


def peak30_cadence(day_minutes: list[float]) -> float:
    """Mean of the day's 30 highest minutes (minutes without data count as 0)."""
    return sum(sorted(day_minutes, reverse=True)[:PEAK_MINUTES]) / PEAK_MINUTES


def no_data_day(participant_id: str, local_date: date, programme_week: int) -> dict:
    row = day_row_template(participant_id, local_date, programme_week)
    row["valid_day"] = False
    return row


def day_row_template(participant_id: str, local_date: date, programme_week: int) -> dict:
    return {
        "participant_id": participant_id, "local_date": local_date, "programme_week": programme_week,
        "steps": None, "walking_minutes_all": None, "bout_minutes": None, "moderate_minutes": None,
        "vigorous_minutes": None, "worn_hours": None, "valid_day": None, "low_confidence": None,
        "implausible": None, "minute_resolution": None, "peak30_cadence": None,
    }


def intervals_by_day(intervals: list[StepInterval], day_starts: list[int]) -> list[list[StepInterval]]:
    """For each day [day_starts[k], day_starts[k+1]) (seconds), the intervals overlapping it."""
    by_day: list[list[StepInterval]] = [[] for _ in day_starts[:-1]]
    for interval in intervals:
        first = max(bisect.bisect_right(day_starts, interval.start_second) - 1, 0)
        last = min(bisect.bisect_left(day_starts, interval.end_second) - 1, len(by_day) - 1)
        for k in range(first, last + 1):
            by_day[k].append(interval)
    return by_day


def daily_rows(participant: Participant, intervals: list[StepInterval], last_day: date) -> list[dict]:
    """One row per local day from programme_start to last_day (both included)."""
    zone = participant.zone
    intervals = [i for i in intervals if i.end_second > i.start_second]  # zero-length: no data
    series = minute_steps(intervals)
    minutes = sorted(series)
    bout_minutes_by_day: dict[date, int] = defaultdict(int)
    for bout in walking_bouts(series):
        bout_minutes_by_day[local_date_of_minute(bout.first_minute, zone)] += bout.walking_minutes
    days = [participant.programme_start + timedelta(days=k)
            for k in range((last_day - participant.programme_start).days + 1)]
    day_starts = [local_midnight_minute(d, zone) for d in days + [last_day + timedelta(days=1)]]
    touching_by_day = intervals_by_day(intervals, [m * 60 for m in day_starts])
    rows = []
    for k, day in enumerate(days):
        start, end = day_starts[k], day_starts[k + 1]
        week = k // 7 + 1
        touching = touching_by_day[k]
        if not touching:
            rows.append(no_data_day(participant.participant_id, day, week))
            continue
        in_day = minutes[bisect.bisect_left(minutes, start):bisect.bisect_left(minutes, end)]
        day_series = [(m, series[m]) for m in in_day]
        coarse_started = [i for i in touching if i.is_coarse and start * 60 <= i.start_second]
        rows.append(day_with_data(participant, day, week, day_series, touching, coarse_started,
                                  bout_minutes_by_day[day], end - start))
    return rows


def day_with_data(
    participant: Participant, day: date, week: int, day_series: list[tuple[int, float]],
    touching: list[StepInterval], coarse_started: list[StepInterval], bout_minutes: int, day_length: int,
) -> dict:
    best_source = min((i.source for i in touching), key=SOURCE_PRIORITY.index)
    coarse_steps = sum(i.steps for i in coarse_started if i.source == best_source)
    steps = sum(s for _, s in day_series) + coarse_steps
    minute_resolution = not any(i.is_coarse for i in touching)
    low_confidence = not day_series
    worn_hours = len({local_hour_of_minute(m, participant.zone) for m, s in day_series if s > 0})
    valid = steps >= COARSE_VALID_DAY_MIN_STEPS if low_confidence else worn_hours >= VALID_DAY_MIN_WORN_HOURS
    values = [s for _, s in day_series]
    row = day_row_template(participant.participant_id, day, week)
    row.update({
        "steps": steps,
        "walking_minutes_all": sum(1 for s in values if s >= WALKING_CADENCE),
        "bout_minutes": bout_minutes,
        "moderate_minutes": sum(1 for s in values if s >= MODERATE_CADENCE),
        "vigorous_minutes": sum(1 for s in values if s >= VIGOROUS_CADENCE),
        "worn_hours": worn_hours,
        "valid_day": valid,
        "low_confidence": low_confidence,
        "implausible": steps > IMPLAUSIBLE_DAY_STEPS,
        "minute_resolution": minute_resolution,
        "peak30_cadence": peak30_cadence(values + [0.0] * (day_length - len(values)))
        if valid and minute_resolution else None,
    })
    return row


# ---------------------------------------------------------------- prescription


def round_to_5_half_up(minutes: Fraction) -> int:
    return math.floor(minutes / ROUND_TO_MINUTES + Fraction(1, 2)) * ROUND_TO_MINUTES


def default_prescribed_minutes(
    week: int,
    start: float = DEFAULT_START_MINUTES,
    week12: float = DEFAULT_WEEK12_MINUTES,
    final: float = DEFAULT_FINAL_MINUTES,
) -> int:
    """80 in week 1 -> 130 in week 12 -> 150 in week 26 (or the participant's own three),
    linear in between, rounded to 5 with halves up; exact arithmetic (no float halves)."""
    start, week12, final = Fraction(start), Fraction(week12), Fraction(final)
    if week <= 12:
        minutes = start + (week12 - start) * (week - 1) / 11
    elif week <= FINAL_WEEK:
        minutes = week12 + (final - week12) * (week - 12) / (FINAL_WEEK - 12)
    else:
        minutes = final
    return round_to_5_half_up(minutes)


def default_prescribed_days(week: int) -> int:
    return 3 if week <= 4 else 4 if week <= 12 else 5


def prescription(participant: Participant, plan: list[PlanRow], week: int) -> tuple[float, int]:
    """(prescribed_minutes, prescribed_days) of a programme week."""
    rows = [row for row in plan if row.from_week <= week]
    if rows:
        latest = max(row.from_week for row in rows)
        row = [row for row in rows if row.from_week == latest][-1]  # ties: the later row
        return row.minutes_per_week, row.days_per_week
    minutes = default_prescribed_minutes(
        week,
        participant.start_minutes if participant.start_minutes is not None else DEFAULT_START_MINUTES,
        participant.week12_minutes if participant.week12_minutes is not None else DEFAULT_WEEK12_MINUTES,
        participant.final_minutes if participant.final_minutes is not None else DEFAULT_FINAL_MINUTES,
    )
    return minutes, default_prescribed_days(week)


# ---------------------------------------------------------------- weeks


def week_containing(participant: Participant, day: date) -> int:
    return (day - participant.programme_start).days // 7 + 1


def sum_or_none(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def mean_or_none(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def week_metrics(days: list[dict]) -> dict:
    valid = [d for d in days if d["valid_day"]]
    return {
        "walk_minutes": sum_or_none([d["bout_minutes"] for d in days]),
        "walking_minutes_all": sum_or_none([d["walking_minutes_all"] for d in days]),
        "moderate_minutes": sum_or_none([d["moderate_minutes"] for d in days]),
        "vigorous_minutes": sum_or_none([d["vigorous_minutes"] for d in days]),
        "steps": sum_or_none([d["steps"] for d in days]),
        "mean_daily_steps": mean_or_none([d["steps"] for d in valid]),
        "walking_days": sum(1 for d in days if (d["bout_minutes"] or 0) >= WALKING_DAY_MIN_BOUT_MINUTES),
        "valid_days": len(valid),
        "peak30_cadence": mean_or_none([d["peak30_cadence"] for d in valid]),
        "all_valid_days_low_confidence": bool(valid) and all(d["low_confidence"] for d in valid),
    }


def week_status(week: dict) -> str:
    if week["valid_days"] == 0 and not week["walking_minutes_all"]:
        return "no_data"
    enough_minutes = (week["walk_minutes"] or 0) >= week["prescribed_minutes"]
    if enough_minutes and week["walking_days"] >= week["prescribed_days"]:
        return "met"
    if week["valid_days"] < STATUS_MIN_VALID_DAYS:
        return "insufficient_data"
    if week["adherence_pct"] is not None and week["adherence_pct"] >= PARTIAL_MIN_ADHERENCE_PCT:
        return "partial"
    return "not_met"


def is_behind(week: dict | None) -> bool:
    return (
        week is not None
        and week["adherence_pct"] is not None
        and week["adherence_pct"] < FALLING_BEHIND_PCT
        and week["valid_days"] >= FALLING_BEHIND_MIN_VALID_DAYS
    )


def week_flags(week: dict, previous: dict | None, no_recent_data: bool) -> list[str]:
    flags = []
    if week["walk_minutes"] is not None and week["walk_minutes"] > OVERLOAD_RATIO * week["prescribed_minutes"]:
        flags.append("overload")
    if is_behind(week) and is_behind(previous):
        flags.append("falling_behind")
    if no_recent_data:
        flags.append("no_recent_data")
    if week["all_valid_days_low_confidence"]:
        flags.append("low_confidence")
    return sorted(flags)


def has_recent_data(participant: Participant, intervals: list[StepInterval], as_of: date) -> bool:
    """Any step interval (even of zero steps) in the 5 local days before as_of."""
    start = local_midnight_minute(as_of - timedelta(days=NO_RECENT_DATA_DAYS), participant.zone) * 60
    end = local_midnight_minute(as_of, participant.zone) * 60
    return any(i.start_second < end and i.end_second > start and i.end_second > i.start_second for i in intervals)


def weekly_rows(participant: Participant, plan: list[PlanRow], days: list[dict], as_of: date,
                recent_data: bool) -> list[dict]:
    """Weeks 1 .. the week containing as_of; completed weeks get a status and flags
    (no_recent_data only on the latest completed week)."""
    current_week = week_containing(participant, as_of)
    latest_completed = current_week - 1
    rows, previous = [], None
    for week in range(1, current_week + 1):
        week_start = participant.programme_start + timedelta(days=7 * (week - 1))
        row = {"participant_id": participant.participant_id, "clinic_id": participant.clinic_id,
               "programme_week": week, "week_start": week_start, "week_end": week_start + timedelta(days=6)}
        row.update(week_metrics([d for d in days if d["programme_week"] == week]))
        row["prescribed_minutes"], row["prescribed_days"] = prescription(participant, plan, week)
        row["adherence_pct"] = (100 * row["walk_minutes"] / row["prescribed_minutes"]
                                if row["walk_minutes"] is not None else None)
        if row["week_end"] < as_of:
            row["status"] = week_status(row)
            row["flags"] = week_flags(row, previous, not recent_data and week == latest_completed)
        else:
            row["status"], row["flags"] = "in_progress", []
        del row["all_valid_days_low_confidence"]
        rows.append(row)
        previous = row
    return rows


def expected_rows(participant: Participant, plan: list[PlanRow], intervals: list[StepInterval],
                  as_of: date) -> tuple[list[dict], list[dict]]:
    """(daily rows, weekly rows) of one participant: every day of weeks 1 .. the current week."""
    current_week = week_containing(participant, as_of)
    last_day = participant.programme_start + timedelta(days=7 * current_week - 1)
    days = daily_rows(participant, intervals, last_day)
    return days, weekly_rows(participant, plan, days, as_of, has_recent_data(participant, intervals, as_of))
