"""The sample cohort: nine participants, two clinics, files written by our own code, known truth.

`write_cohort(root)` writes a data folder (participants.csv, prescriptions.csv, inbox/) and its
truth (truth/expected_daily.csv, truth/expected_weekly.csv, truth/cohort.json). Each participant is
designed in clinic words (a walk is a start time, a length and a cadence); the designed walks
become the files of each source *and* the step intervals a reader following the agreed
semantics gets from those files; truth.py turns the intervals into the expected rows.

Everything is deterministic (fixed seed, no clock reads): writing twice gives the same bytes.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.samples import fit_writer
from pipeline.samples.fit_writer import (
    ACTIVITY_TYPE_RUNNING,
    ACTIVITY_TYPE_SEDENTARY,
    ACTIVITY_TYPE_WALKING,
    Device,
    MonitoringMessage,
    RecordedWalk,
)
from pipeline.samples.truth import Participant, PlanRow, StepInterval, expected_rows, prescription

AS_OF = date(2024, 11, 27)  # the report date: a Wednesday
SEED = 20241127
WORN_HOURS = tuple(range(7, 22))  # a light minute (5-20 steps) in each: 15 worn hours
FITBIT_HOURS = tuple(range(8, 21))  # 13 worn hours
AUTUMN_CHANGE = {"Europe/London": date(2024, 10, 27), "America/New_York": date(2024, 11, 3)}
FILLER_MINUTES = 15  # a monitoring message at least every 15 minutes keeps every interval fine
FITABASE_TIME = "{d.month}/{d.day}/{d.year} {hour12}:{d.minute:02d}:{d.second:02d} {ampm}"


# ---------------------------------------------------------------- the design vocabulary


@dataclass(frozen=True)
class Walk:
    """`minutes` consecutive minutes from the local clock time `start`, at `steps_per_minute`."""

    start: time
    minutes: int
    steps_per_minute: int
    activity_type: int = ACTIVITY_TYPE_WALKING  # FIT counter it adds to (walking or running)


@dataclass(frozen=True)
class DayDesign:
    """What each source recorded on one local day. None: that source has no file for the day."""

    local_date: date
    watch: tuple[Walk, ...] | None = None  # FIT monitoring
    watch_hours: tuple[int, ...] = WORN_HOURS
    watch_until: time | None = None  # the watch file ends here (battery); None: next midnight
    fitbit: tuple[Walk, ...] | None = None  # Fitbit minute export
    fitbit_hours: tuple[int, ...] = FITBIT_HOURS
    fitbit_hourly_total: int | None = None  # Fitbit hourly export only (coarse)
    recorded_walk: Walk | None = None  # FIT activity file
    repeated_hour: bool = False  # light minutes in both occurrences of 01:30 (autumn change)


@dataclass(frozen=True)
class ParticipantDesign:
    participant: Participant
    display_name: str
    design: str  # in words, for truth/cohort.json
    days: tuple[DayDesign, ...]
    plan: tuple[PlanRow, ...] = ()
    fitbit_export_days: int = 14
    fitbit_export_overlap_days: int = 0  # each export repeats this many days of the previous one


@dataclass(frozen=True)
class CohortInfo:
    root: Path
    as_of: date
    participants: tuple[Participant, ...]
    intervals: dict[str, tuple[StepInterval, ...]]  # what the readers should produce, per participant
    daily: list[dict]
    weekly: list[dict]
    attention: dict[str, list[str]]  # participant -> reasons, from the latest completed week
    files: tuple[Path, ...] = field(default=())


def later(clock: time, minutes: int) -> time:
    return (datetime.combine(date(2000, 1, 1), clock) + timedelta(minutes=minutes)).time()


def bout_with_pause(start: time, minutes: int, steps_per_minute: int) -> tuple[Walk, ...]:
    """A bout of `minutes` walking minutes with a 2-minute pause (30 steps/min) in the middle."""
    first = minutes // 2
    return (
        Walk(start, first, steps_per_minute),
        Walk(later(start, first), 2, 30),
        Walk(later(start, first + 2), minutes - first, steps_per_minute),
    )


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


WALKING_DAYS = {2: (1, 4), 3: (0, 2, 4), 4: (0, 2, 4, 6)}  # day index within the programme week


def programme_days(participant: Participant, week: int) -> list[date]:
    first = participant.programme_start + timedelta(days=7 * (week - 1))
    return [first + timedelta(days=i) for i in range(7) if first + timedelta(days=i) < AS_OF]


def current_week(participant: Participant) -> int:
    return (AS_OF - participant.programme_start).days // 7 + 1


def walking_week(participant: Participant, week: int, minutes: int, days: int, walk,
                 pattern: tuple[int, ...] | None = None) -> list[DayDesign]:
    """A week with `minutes` bout minutes on `days` walking days (day indices `pattern`, by
    default WALKING_DAYS[days]); walk(day, bout minutes or 0) -> DayDesign."""
    parts = iter(split_evenly(minutes, days))
    walking_days = pattern or WALKING_DAYS[days]
    return [
        walk(day, next(parts) if index in walking_days else 0)
        for index, day in enumerate(programme_days(participant, week))
    ]


def is_autumn_change(participant: Participant, day: date) -> bool:
    return AUTUMN_CHANGE.get(participant.time_zone) == day


# ---------------------------------------------------------------- the nine participants


def exact_prescription_walker() -> ParticipantDesign:
    person = Participant("P001", "riverside", "Europe/London", date(2024, 9, 30))

    def day(local_date: date, bout: int) -> DayDesign:
        walks = bout_with_pause(time(9, 5), bout, 110) if bout else (Walk(time(15, 10), 6, 75),)
        return DayDesign(local_date, watch=walks, repeated_hour=is_autumn_change(person, local_date))

    days = []
    for week in range(1, current_week(person) + 1):
        minutes, walking_days = prescription(person, [], week)
        days += walking_week(person, week, minutes, walking_days, day)
    return ParticipantDesign(
        person, "Alex Moor",
        "Watch only. Walks exactly the default prescription every week (bout minutes == prescribed "
        "minutes on exactly the prescribed days, 110 steps/min, each bout with a 2-minute pause); "
        "a 6-minute stroll at 75 steps/min on other days (walking minutes, no bout). Crosses the "
        "London clock change on 2024-10-27 with steps in both 01:30s. Expect met, 100% every week.",
        tuple(days),
    )


def falling_behind_walker() -> ParticipantDesign:
    person = Participant("P002", "riverside", "America/New_York", date(2024, 10, 3))
    share = {1: 1.0, 2: 1.1, 3: 0.6}  # of the prescription; 0.3 from week 4, 0.2 in week 8

    def day(local_date: date, bout: int) -> DayDesign:
        walks = (Walk(time(10, 5), bout, 75),) if bout else ()
        return DayDesign(local_date, fitbit=walks, repeated_hour=is_autumn_change(person, local_date))

    days = []
    for week in range(1, current_week(person) + 1):
        minutes, walking_days = prescription(person, [], week)
        fraction = share.get(week, 0.2 if week == 8 else 0.3)
        days += walking_week(person, week, round(minutes * fraction), walking_days if week <= 3 else 2, day)
    return ParticipantDesign(
        person, "Bea Hart",
        "Fitbit minute exports only (14-day exports, each repeating the last day of the previous "
        "one). Weeks 1-2 met, week 3 at 60% (partial), from week 4 about 30% on 2 walking days "
        "with 7 valid days: week 4 not_met, weeks 5-7 not_met + falling_behind. Crosses the New York "
        "clock change on 2024-11-03 with the repeated 01:30 listed twice in the export.",
        tuple(days), fitbit_export_overlap_days=1,
    )


def overdoing_walker() -> ParticipantDesign:
    person = Participant("P003", "harbour", "Australia/Sydney", date(2024, 9, 30))
    night_walk_day = date(2024, 10, 16)

    def day(local_date: date, bout: int) -> DayDesign:
        brisk = Walk(time(7, 30), bout - 5, 125)
        run = Walk(later(time(7, 30), bout - 5), 5, 150, ACTIVITY_TYPE_RUNNING)
        walks = (brisk, run) if bout else ()
        if local_date == night_walk_day:
            walks += (Walk(time(23, 52), 16, 125),)  # crosses local midnight
        return DayDesign(local_date, watch=walks)

    days = []
    for week in range(1, current_week(person) + 1):
        minutes, _ = prescription(person, [], week)
        days += walking_week(person, week, -(-minutes * 17 // 10), 4, day)
    return ParticipantDesign(
        person, "Cai Reed",
        "Watch only, with running. About 1.7x the prescription every week on 4 days: brisk walking "
        "at 125 steps/min ending in 5 minutes of running at 150 (the FIT running counter). A night "
        "walk from 23:52 on 2024-10-16 crosses local midnight (16 bout minutes on the 16th). "
        "Crosses the Sydney spring change (2024-10-06, a 23-hour day). Expect met + overload.",
        tuple(days),
    )


def gap_walker() -> ParticipantDesign:
    person = Participant("P004", "harbour", "Europe/London", date(2024, 9, 30))

    def day(local_date: date, bout: int) -> DayDesign:
        return DayDesign(local_date, watch=(Walk(time(11, 0), bout, 105),) if bout else ())

    days = []
    for week in (1, 2, 4, 5, 6, 7):  # week 3: no file at all
        minutes, walking_days = prescription(person, [], week)
        days += walking_week(person, week, minutes, walking_days, day)
    days.append(DayDesign(date(2024, 11, 18), watch=(), watch_hours=()))  # on the charger: all zeros
    days += [day(date(2024, 11, d), 20) for d in (19, 20, 21)]  # then nothing from 2024-11-22
    return ParticipantDesign(
        person, "Dev Shah",
        "Watch only. Walks the prescription in weeks 1, 2 and 4-7; no file at all in week 3 "
        "(no_data). Week 8: a zero-step day on the charger, 3 valid days, then no data from "
        "2024-11-22 (insufficient_data + no_recent_data); week 9 in progress with no data.",
        tuple(days),
    )


def two_device_walker() -> ParticipantDesign:
    person = Participant("P005", "riverside", "America/New_York", date(2024, 10, 7))
    battery_day, watch_left_home = date(2024, 10, 16), date(2024, 10, 28)
    shopping = Walk(time(17, 0), 15, 70)  # the Fitbit counts it as walking; the watch says 0

    def day(local_date: date, bout: int) -> DayDesign:
        if local_date == battery_day:
            return DayDesign(local_date, watch=(Walk(time(9, 0), 10, 112),), watch_until=time(13, 0),
                             fitbit=(Walk(time(9, 0), 10, 90), Walk(time(16, 0), bout - 10, 95)))
        if local_date == watch_left_home:
            return DayDesign(local_date, fitbit=(Walk(time(9, 0), bout, 95),))
        morning = (Walk(time(9, 0), bout, 112),) if bout else ()
        fitbit_morning = (Walk(time(9, 0), bout, 90),) if bout else ()
        return DayDesign(local_date, watch=morning, fitbit=fitbit_morning + (shopping,))

    days = []
    for week in range(1, current_week(person) + 1):
        minutes, walking_days = prescription(person, [], week)
        days += walking_week(person, week, 80 if week == 5 else minutes, walking_days, day)
    return ParticipantDesign(
        person, "Eli Ford",
        "Watch and Fitbit on the same days with different counts: the watch records the morning "
        "walk at 112 steps/min, the Fitbit the same minutes at 90, and the Fitbit also counts a "
        "15-minute 'shopping' stretch at 70 when the watch says 0. The watch wins every minute it "
        "covers (never a sum: no vigorous minute). 2024-10-16 the watch battery dies at 13:00 and "
        "the Fitbit's afternoon walk counts; 2024-10-28 the watch stays home (Fitbit only). "
        "Week 5 is partial (80 of 100 minutes; adding the Fitbit's shopping would make it met).",
        tuple(days),
    )


def physiotherapist_plan_walker() -> ParticipantDesign:
    person = Participant("P006", "harbour", "Europe/London", date(2024, 9, 30))
    plan = (PlanRow(3, 120, 4), PlanRow(5, 70, 3), PlanRow(5, 60, 3))  # tie at week 5: the later row wins

    def day(local_date: date, bout: int) -> DayDesign:
        return DayDesign(local_date, watch=(Walk(time(14, 0), bout, 104),) if bout else ())

    days = [day(date(2024, 9, 29), 40)]  # the watch was handed out a day early: not in week 1
    for week in range(1, current_week(person) + 1):
        minutes, walking_days = {1: (80, 3), 2: (85, 3), 3: (100, 4), 4: (100, 4)}.get(week, (65, 3))
        days += walking_week(person, week, minutes, walking_days, day)
    return ParticipantDesign(
        person, "Fay Quinn",
        "Watch only, with a physiotherapist's plan: 120 min on 4 days from week 3, then 60 min on 3 "
        "days from week 5 (two rows for week 5: 70 then 60; the later wins). Walks 80/85 in weeks "
        "1-2 (met, default plan), 100 on 4 days in weeks 3-4 (partial under the plan, met under the "
        "default), 65 on 3 days from week 5 (met). Data on 2024-09-29, the day before the programme "
        "starts, count in no week.",
        tuple(days), plan=plan,
    )


def own_progression_walker() -> ParticipantDesign:
    person = Participant("P007", "harbour", "Australia/Sydney", date(2024, 10, 1),
                         start_minutes=60, week12_minutes=100, final_minutes=120)

    def day(local_date: date, bout: int) -> DayDesign:
        return DayDesign(local_date, watch=(Walk(time(16, 0), bout, 105),) if bout else ())

    days = []
    for week in range(1, current_week(person) + 1):
        minutes, walking_days = prescription(person, [], week)
        days += walking_week(person, week, minutes, walking_days, day)
    return ParticipantDesign(
        person, "Gus Lane",
        "Watch only. Own progression (start 60, week 12 100, final 120 minutes) and walks exactly "
        "it: met, 100% every week (partial under the default 80 -> 130). Programme starts on a "
        "Tuesday; the Sydney spring change (2024-10-06) falls in week 1.",
        tuple(days),
    )


def leading_zero_walker() -> ParticipantDesign:
    person = Participant("0042", "riverside", "Europe/London", date(2024, 10, 2))
    recorded_day = date(2024, 10, 24)
    weeks = {1: (80, 3), 2: (60, 3), 3: (45, 3), 4: (95, 3), 5: (30, 2), 6: (32, 2), 7: (105, 4), 8: (110, 4)}
    short_wear_days = {date(2024, 10, d) for d in (17, 19, 21, 22)}  # week 3: worn 6 hours only

    def day(local_date: date, bout: int) -> DayDesign:
        hours = tuple(range(16, 22)) if local_date in short_wear_days else WORN_HOURS
        recorded = Walk(time(10, 0), bout, 110) if local_date == recorded_day else None
        return DayDesign(local_date, watch=(Walk(time(10, 0), bout, 96),) if bout else (), watch_hours=hours,
                         recorded_walk=recorded, repeated_hour=is_autumn_change(person, local_date))

    days = []
    for week, (minutes, walking_days) in weeks.items():
        pattern = (1, 3, 5) if week == 4 else None  # Thu 24th (the recorded walk), Sat, Mon
        days += walking_week(person, week, minutes, walking_days, day, pattern)
    return ParticipantDesign(
        person, "Hal Ives",
        "Id '0042' (a string with a leading zero). Watch all day, plus one recorded walk (FIT "
        "activity, 55 strides/min = 110 steps/min) on 2024-10-24 whose minutes the monitoring file "
        "counts at 96: the activity wins (moderate minutes). Week 1 met, 2 partial, 3 "
        "insufficient_data (worn 6 hours on 4 days), 4 met, 5 not_met, 6 not_met + falling_behind, "
        "7-8 met; week 9 starts on the report date (in progress, no data).",
        tuple(days),
    )


def hourly_fitbit_walker() -> ParticipantDesign:
    person = Participant("P008", "riverside", "America/New_York", date(2024, 9, 30))
    totals = (6200, 5400, 7100, 700, 6600, 8000, 5900, 5000, 6000)  # 2024-10-21 .. 2024-10-29
    hourly_totals = {date(2024, 10, 21) + timedelta(days=k): total for k, total in enumerate(totals)}

    def day(local_date: date, bout: int) -> DayDesign:
        if local_date in hourly_totals:
            return DayDesign(local_date, fitbit_hourly_total=hourly_totals[local_date])
        return DayDesign(local_date, fitbit=(Walk(time(12, 30), bout, 104),) if bout else ())

    days = []
    for week in range(1, current_week(person) + 1):
        minutes, walking_days = prescription(person, [], week)
        if week == 5:  # two hourly days, the walking on the 5 minute days
            days += [day(d, b) for d, b in zip(programme_days(person, 5), (0, 0, 25, 0, 25, 25, 25))]
        else:
            days += walking_week(person, week, minutes, walking_days, day)
    return ParticipantDesign(
        person, "Ida Voss",
        "Fitbit only. Minute exports, except hourly totals only (coarse) for 2024-10-21..29: week 4 "
        "has only low-confidence days (one below 1,000 steps, not valid): not_met + low_confidence; "
        "week 5 mixes 2 hourly days with 5 minute days and is met without the flag. Other weeks met.",
        tuple(days),
    )


def cohort_design() -> tuple[ParticipantDesign, ...]:
    return (
        exact_prescription_walker(), falling_behind_walker(), overdoing_walker(), gap_walker(),
        two_device_walker(), physiotherapist_plan_walker(), own_progression_walker(),
        leading_zero_walker(), hourly_fitbit_walker(),
    )


# ---------------------------------------------------------------- the minutes each source saw

Minutes = dict[int, tuple[int, int]]  # UTC minute (Unix epoch minutes) -> (steps, FIT activity type)


def utc_minute(local_date: date, clock: time, zone: ZoneInfo, fold: int = 0) -> int:
    return int(datetime.combine(local_date, clock, tzinfo=zone).replace(fold=fold).timestamp()) // 60


def at_minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=timezone.utc)


def walk_minutes(local_date: date, walks: tuple[Walk, ...], zone: ZoneInfo) -> Minutes:
    minutes = {}
    for walk in walks:
        first = utc_minute(local_date, walk.start, zone)
        for offset in range(walk.minutes):
            minutes[first + offset] = (walk.steps_per_minute, walk.activity_type)
    return minutes


def light_minutes(local_date: date, hours: tuple[int, ...], zone: ZoneInfo, rng: random.Random,
                  earliest_minute: int, taken: Minutes) -> Minutes:
    """One minute of 5-20 steps in each worn hour (skipped where a walk already has the minute)."""
    minutes = {}
    for hour in hours:
        minute = utc_minute(local_date, time(hour, rng.randint(earliest_minute, earliest_minute + 15)), zone)
        steps = rng.randint(5, 20)
        if minute not in taken:
            minutes[minute] = (steps, ACTIVITY_TYPE_WALKING)
    return minutes


def repeated_hour_minutes(local_date: date, zone: ZoneInfo, rng: random.Random) -> Minutes:
    """Steps at 01:30 in both occurrences of the repeated autumn hour (one worn clock hour)."""
    return {
        utc_minute(local_date, time(1, 30), zone, fold): (rng.randint(5, 20), ACTIVITY_TYPE_WALKING)
        for fold in (0, 1)
    }


def source_minutes(design: ParticipantDesign, source: str, rng: random.Random) -> Minutes:
    """Every minute with steps that `source` ("watch" or "fitbit") saw, over all days."""
    zone = design.participant.zone
    minutes: Minutes = {}
    for day in design.days:
        walks = getattr(day, source)
        if walks is None:
            continue
        day_minutes = walk_minutes(day.local_date, walks, zone)
        hours, earliest = (day.watch_hours, 40) if source == "watch" else (day.fitbit_hours, 20)
        day_minutes.update(light_minutes(day.local_date, hours, zone, rng, earliest, day_minutes))
        if day.repeated_hour:
            day_minutes.update(repeated_hour_minutes(day.local_date, zone, rng))
        minutes.update(day_minutes)
    return minutes


# ---------------------------------------------------------------- FIT monitoring (the watch)


def monitoring_messages(start: int, end: int, stepped: Minutes) -> list[MonitoringMessage]:
    """A day file's messages, Garmin-like: a sedentary message at local midnight (`start`), a
    walking message with the unchanged count at least every 15 minutes and at the start of every
    minute with steps, and at the end of such a minute a message of its activity type carrying
    that type's updated count since local midnight. The last message (at `end`) carries the
    final count."""
    times = set(range(start + FILLER_MINUTES, end, FILLER_MINUTES)) | {end}
    for minute in stepped:
        times |= {minute, minute + 1}
    counts = {ACTIVITY_TYPE_WALKING: 0, ACTIVITY_TYPE_RUNNING: 0}
    messages = [MonitoringMessage(at_minute(start), ACTIVITY_TYPE_SEDENTARY, None)]
    for minute in sorted(times - {start}):
        steps, activity_type = stepped.get(minute - 1, (0, ACTIVITY_TYPE_WALKING))
        counts[activity_type] += steps
        messages.append(MonitoringMessage(at_minute(minute), activity_type, counts[activity_type]))
    return messages


def monitoring_intervals(messages: list[MonitoringMessage]) -> list[StepInterval]:
    """What the FIT reader makes of one day file: message i -> (time of message i-1, time of i]
    with the increase of its type's counter. The first message's interval (from local midnight,
    which is its own time) is empty, so it gives none."""
    intervals, counts = [], {}
    for previous, message in zip(messages, messages[1:]):
        if message.cumulative_steps is None:
            continue
        steps = message.cumulative_steps - counts.get(message.activity_type, 0)
        counts[message.activity_type] = message.cumulative_steps
        intervals.append(StepInterval("fit_monitoring", previous.time_utc, message.time_utc, steps))
    return intervals


@dataclass(frozen=True)
class SourceFile:
    path: Path  # relative to the participant's inbox folder
    content: bytes
    intervals: tuple[StepInterval, ...]


def watch_files(design: ParticipantDesign, minutes: Minutes, device: Device) -> list[SourceFile]:
    zone = design.participant.zone
    files = []
    for day in design.days:
        if day.watch is None:
            continue
        start = utc_minute(day.local_date, time(0), zone)
        end = (utc_minute(day.local_date, day.watch_until, zone) if day.watch_until
               else utc_minute(day.local_date + timedelta(days=1), time(0), zone))
        messages = monitoring_messages(start, end, {m: v for m, v in minutes.items() if start <= m < end})
        offset = at_minute(start).astimezone(zone).utcoffset()
        content = fit_writer.monitoring_file(device, at_minute(start), offset, messages)
        name = f"{device.serial_number}-{day.local_date:%Y%m%d}.FIT"
        path = Path("GARMIN", "Monitor", f"{day.local_date:%Y-%m}", name)
        files.append(SourceFile(path, content, tuple(monitoring_intervals(messages))))
    return files


# ---------------------------------------------------------------- FIT activity (a recorded walk)


def recorded_walk_files(design: ParticipantDesign, device: Device) -> list[SourceFile]:
    """One activity file per recorded walk; the reader gives record i the interval since record
    i-1 with 2 x cadence steps per minute (records every second, so every minute gets exactly
    its steps up to float error)."""
    zone = design.participant.zone
    files = []
    for day in design.days:
        if day.recorded_walk is None:
            continue
        walk = day.recorded_walk
        start = at_minute(utc_minute(day.local_date, walk.start, zone))
        recorded = RecordedWalk(start, walk.minutes * 60, walk.steps_per_minute // 2)
        content = fit_writer.activity_file(device, recorded, start.astimezone(zone).utcoffset())
        per_second = 2 * recorded.strides_per_minute / 60
        intervals = tuple(
            StepInterval("fit_activity", start + timedelta(seconds=s - 1), start + timedelta(seconds=s),
                         per_second)
            for s in range(1, recorded.seconds + 1)
        )
        path = Path("GARMIN", "Activity", f"{device.serial_number}-{day.local_date:%Y%m%d}-{walk.start:%H%M}.FIT")
        files.append(SourceFile(path, content, intervals))
    return files


# ---------------------------------------------------------------- Fitbit (Fitabase CSV)


def local_wall_clock(minute: int, zone: ZoneInfo) -> datetime:
    return at_minute(minute).astimezone(zone).replace(tzinfo=None)


def fitabase_time(local: datetime) -> str:
    hour12 = local.hour % 12 or 12
    return FITABASE_TIME.format(d=local, hour12=hour12, ampm="AM" if local.hour < 12 else "PM")


def export_windows(dates: list[date], days_per_export: int, overlap_days: int) -> list[list[date]]:
    """Consecutive exports of `days_per_export` days; each repeats `overlap_days` of the previous."""
    if not dates:
        return []
    first = dates[0]
    windows: dict[int, list[date]] = {}
    for day in dates:
        windows.setdefault((day - first).days // days_per_export, []).append(day)
    exports = []
    for index in sorted(windows):
        window_start = first + timedelta(days=index * days_per_export)
        repeated = [d for d in dates if 0 < (window_start - d).days <= overlap_days]
        exports.append(repeated + windows[index])
    return exports


def fitbit_minute_files(design: ParticipantDesign, minutes: Minutes) -> list[SourceFile]:
    """Fitabase minuteStepsNarrow exports (minutes with steps only), local wall-clock times."""
    zone, pid = design.participant.zone, design.participant.participant_id
    by_date: dict[date, list[int]] = {}
    for minute in sorted(minutes):
        by_date.setdefault(at_minute(minute).astimezone(zone).date(), []).append(minute)
    dates = sorted(d.local_date for d in design.days if d.fitbit is not None)
    files = []
    for window in export_windows(dates, design.fitbit_export_days, design.fitbit_export_overlap_days):
        rows = [m for d in window for m in by_date.get(d, [])]
        lines = ["Id,ActivityMinute,Steps"] + [
            f"{pid},{fitabase_time(local_wall_clock(m, zone))},{minutes[m][0]}" for m in rows
        ]
        intervals = tuple(StepInterval("fitbit", at_minute(m), at_minute(m + 1), minutes[m][0]) for m in rows)
        path = Path("fitbit", f"minuteStepsNarrow_merged_{window[0]:%Y%m%d}_{window[-1]:%Y%m%d}.csv")
        files.append(SourceFile(path, ("\r\n".join(lines) + "\r\n").encode(), intervals))
    return files


def hourly_totals(total: int) -> dict[int, int]:
    """A day's total spread over the Fitbit worn hours; 0 in the other hours of the day."""
    parts = dict(zip(FITBIT_HOURS, split_evenly(total, len(FITBIT_HOURS))))
    return {hour: parts.get(hour, 0) for hour in range(24)}


def fitbit_hourly_files(design: ParticipantDesign) -> list[SourceFile]:
    zone, pid = design.participant.zone, design.participant.participant_id
    days = [d for d in design.days if d.fitbit_hourly_total is not None]
    if not days:
        return []
    lines, intervals = ["Id,ActivityHour,StepTotal"], []
    for day in days:
        for hour, steps in sorted(hourly_totals(day.fitbit_hourly_total).items()):
            start = datetime.combine(day.local_date, time(hour), tzinfo=zone)
            lines.append(f"{pid},{fitabase_time(start.replace(tzinfo=None))},{steps}")
            utc = start.astimezone(timezone.utc)
            intervals.append(StepInterval("fitbit", utc, utc + timedelta(hours=1), steps))
    path = Path("fitbit", f"hourlySteps_merged_{days[0].local_date:%Y%m%d}_{days[-1].local_date:%Y%m%d}.csv")
    return [SourceFile(path, ("\r\n".join(lines) + "\r\n").encode(), tuple(intervals))]


def participant_files(design: ParticipantDesign, number: int) -> list[SourceFile]:
    """Every inbox file of one participant (with the intervals each should give)."""
    rng = random.Random(SEED + number)
    device = Device(serial_number=3_941_000_000 + number)
    return (
        watch_files(design, source_minutes(design, "watch", rng), device)
        + recorded_walk_files(design, device)
        + fitbit_minute_files(design, source_minutes(design, "fitbit", rng))
        + fitbit_hourly_files(design)
    )


def unique_intervals(files: list[SourceFile]) -> tuple[StepInterval, ...]:
    """A record repeated in several exports counts once."""
    return tuple(dict.fromkeys(interval for f in files for interval in f.intervals))


# ---------------------------------------------------------------- the data folder and its truth

PARTICIPANT_COLUMNS = ["participant_id", "clinic_id", "time_zone", "programme_start", "display_name",
                       "start_minutes", "week12_minutes", "final_minutes"]
PRESCRIPTION_COLUMNS = ["participant_id", "from_week", "minutes_per_week", "days_per_week"]
DAILY_COLUMNS = ["participant_id", "local_date", "programme_week", "steps", "walking_minutes_all", "bout_minutes",
                 "moderate_minutes", "vigorous_minutes", "worn_hours", "valid_day", "low_confidence",
                 "implausible", "minute_resolution", "peak30_cadence"]
WEEKLY_COLUMNS = ["participant_id", "clinic_id", "programme_week", "week_start", "week_end", "walk_minutes",
                  "walking_minutes_all", "moderate_minutes", "vigorous_minutes", "steps", "mean_daily_steps",
                  "walking_days", "valid_days", "peak30_cadence", "prescribed_minutes", "prescribed_days",
                  "adherence_pct", "status", "flags"]
WHOLE_STEPS = {"steps"}  # reported rounded to whole steps


def csv_value(name: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "|".join(value)
    if isinstance(value, float):
        if name in WHOLE_STEPS:
            return str(int(value + 0.5))
        value = round(value, 4)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[csv_value(name, row.get(name)) for name in columns] for row in rows])
    return path


def participant_row(design: ParticipantDesign) -> dict:
    person = design.participant
    return {
        "participant_id": person.participant_id, "clinic_id": person.clinic_id, "time_zone": person.time_zone,
        "programme_start": person.programme_start.isoformat(), "display_name": design.display_name,
        "start_minutes": person.start_minutes, "week12_minutes": person.week12_minutes,
        "final_minutes": person.final_minutes,
    }


def attention_reasons(weekly: list[dict]) -> list[str]:
    """Why a clinic should look at a participant: the latest completed week's status and flags."""
    completed = [w for w in weekly if w["status"] != "in_progress"]
    if not completed:
        return []
    latest = completed[-1]
    reasons = [latest["status"]] if latest["status"] in ("not_met", "insufficient_data", "no_data") else []
    return [f"week {latest['programme_week']}: {reason}" for reason in reasons + latest["flags"]]


def cohort_summary(designs: tuple[ParticipantDesign, ...], sources: dict[str, list[str]],
                   weekly: dict[str, list[dict]]) -> dict:
    return {
        "as_of": AS_OF.isoformat(),
        "definitions_version": "1",
        "seed": SEED,
        "source_priority": ["fit_activity", "fit_monitoring", "fitbit"],
        "attention": {pid: reasons for pid in sorted(weekly) if (reasons := attention_reasons(weekly[pid]))},
        "participants": [
            {
                **{k: v for k, v in participant_row(d).items() if v is not None},
                "sources": sources[d.participant.participant_id],
                "design": d.design,
                "weeks": [
                    {"programme_week": w["programme_week"], "status": w["status"], "flags": w["flags"]}
                    for w in weekly[d.participant.participant_id]
                ],
            }
            for d in designs
        ],
    }


def write_inbox(root: Path, design: ParticipantDesign, number: int) -> tuple[list[Path], list[SourceFile]]:
    """Write one participant's files into root/inbox/<participant_id>/."""
    files = participant_files(design, number)
    folder = root / "inbox" / design.participant.participant_id
    written = []
    for source_file in files:
        path = folder / source_file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(source_file.content)
        written.append(path)
    return written, files


def write_registry(root: Path, designs: tuple[ParticipantDesign, ...]) -> list[Path]:
    plan_rows = [{"participant_id": d.participant.participant_id, **vars(row)} for d in designs for row in d.plan]
    return [
        write_csv(root / "participants.csv", PARTICIPANT_COLUMNS, [participant_row(d) for d in designs]),
        write_csv(root / "prescriptions.csv", PRESCRIPTION_COLUMNS, plan_rows),
    ]


def write_truth(root: Path, daily: list[dict], weekly: list[dict], summary: dict) -> list[Path]:
    summary_path = root / "truth" / "cohort.json"
    written = [
        write_csv(root / "truth" / "expected_daily.csv", DAILY_COLUMNS, daily),
        write_csv(root / "truth" / "expected_weekly.csv", WEEKLY_COLUMNS, weekly),
    ]
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return written + [summary_path]


def write_cohort(root: Path) -> CohortInfo:
    """Write the sample cohort into `root` (which must be empty or absent) and return its truth."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty: write the sample cohort into a new or empty folder")
    designs = cohort_design()
    paths, intervals, sources, daily, weekly = [], {}, {}, {}, {}
    for number, design in enumerate(designs, start=1):
        person = design.participant
        written, files = write_inbox(root, design, number)
        paths += written
        intervals[person.participant_id] = unique_intervals(files)
        sources[person.participant_id] = sorted({i.source for f in files for i in f.intervals})
        daily[person.participant_id], weekly[person.participant_id] = expected_rows(
            person, list(design.plan), list(intervals[person.participant_id]), AS_OF)
    all_daily = [row for pid in sorted(daily) for row in daily[pid]]
    all_weekly = [row for pid in sorted(weekly) for row in weekly[pid]]
    summary = cohort_summary(designs, sources, weekly)
    paths += write_registry(root, designs) + write_truth(root, all_daily, all_weekly, summary)
    return CohortInfo(
        root=root, as_of=AS_OF, participants=tuple(d.participant for d in designs), intervals=intervals,
        daily=all_daily, weekly=all_weekly, attention=summary["attention"], files=tuple(paths),
    )
