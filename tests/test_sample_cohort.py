"""The sample cohort (pipeline/samples): its files decode to what was written, its truth gives the
designed statuses, and truth.py follows definitions v1 on tiny hand-made series."""

from __future__ import annotations

import calendar
import csv
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import fitparse
import pytest
from fitparse.profile import MESSAGE_TYPES

from pipeline.config import Definitions
from pipeline.samples import fit_writer, truth
from pipeline.samples.cohort import AS_OF, write_cohort
from pipeline.samples.truth import Participant, PlanRow, StepInterval
from pipeline.sources.base import ReadContext
from pipeline.sources.fitbit import FitabaseReader

REPO = Path(__file__).resolve().parent.parent
COMMITTED_SAMPLE = REPO / "sample_data"
UTC = timezone.utc
FIT_EPOCH_UNIX = 631065600  # 1989-12-31 00:00 UTC

# the design, week by week: (status, flags) of every reported week
DESIGNED_WEEKS = {
    "P001": [("met", [])] * 8 + [("in_progress", [])],
    "P002": [("met", []), ("met", []), ("partial", []), ("not_met", [])]
    + [("not_met", ["falling_behind"])] * 3 + [("in_progress", [])],
    "P003": [("met", ["overload"])] * 8 + [("in_progress", [])],
    "P004": [("met", []), ("met", []), ("no_data", [])] + [("met", [])] * 4
    + [("insufficient_data", ["no_recent_data"]), ("in_progress", [])],
    "P005": [("met", [])] * 4 + [("partial", []), ("met", []), ("met", []), ("in_progress", [])],
    "P006": [("met", []), ("met", []), ("partial", []), ("partial", [])] + [("met", [])] * 4 + [("in_progress", [])],
    "P007": [("met", [])] * 8 + [("in_progress", [])],
    "0042": [("met", []), ("partial", []), ("insufficient_data", []), ("met", []), ("not_met", []),
             ("not_met", ["falling_behind"]), ("met", []), ("met", []), ("in_progress", [])],
    "P008": [("met", [])] * 3 + [("not_met", ["low_confidence"])] + [("met", [])] * 4 + [("in_progress", [])],
}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_cohort(tmp_path_factory.mktemp("cohort") / "data")


def weeks_of(cohort, participant_id: str) -> list[dict]:
    return [w for w in cohort.weekly if w["participant_id"] == participant_id]


def days_of(cohort, participant_id: str) -> dict[date, dict]:
    return {d["local_date"]: d for d in cohort.daily if d["participant_id"] == participant_id}


# ---------------------------------------------------------------- the folder


def test_folder_is_small_and_complete(cohort):
    files = [p for p in cohort.root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    for name in ("participants.csv", "prescriptions.csv", "truth/expected_daily.csv",
                 "truth/expected_weekly.csv", "truth/cohort.json"):
        assert (cohort.root / name).is_file()
    assert {p.name for p in (cohort.root / "inbox").iterdir()} == set(DESIGNED_WEEKS)


def test_cohort_is_deterministic(cohort, tmp_path):
    again = write_cohort(tmp_path / "again")
    first = {p.relative_to(cohort.root): p.read_bytes() for p in cohort.root.rglob("*") if p.is_file()}
    second = {p.relative_to(again.root): p.read_bytes() for p in again.root.rglob("*") if p.is_file()}
    assert first == second


def test_committed_sample_data_is_what_the_generator_writes(cohort):
    if not (COMMITTED_SAMPLE / "truth" / "cohort.json").exists():
        pytest.skip("sample_data/ not generated yet")
    fresh = {p.relative_to(cohort.root) for p in cohort.root.rglob("*") if p.is_file()}
    for relative in fresh:
        assert (COMMITTED_SAMPLE / relative).read_bytes() == (cohort.root / relative).read_bytes(), relative


def test_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "something").write_text("x")
    with pytest.raises(FileExistsError):
        write_cohort(tmp_path)


def test_leading_zero_id_stays_a_string(cohort):
    with open(cohort.root / "participants.csv", newline="") as handle:
        ids = [row["participant_id"] for row in csv.DictReader(handle)]
    assert "0042" in ids
    weekly_text = (cohort.root / "truth" / "expected_weekly.csv").read_text()
    assert "\n0042,riverside,1," in weekly_text
    assert (cohort.root / "inbox" / "0042").is_dir()


def test_registry_files_follow_the_design(cohort):
    with open(cohort.root / "participants.csv", newline="") as handle:
        rows = {row["participant_id"]: row for row in csv.DictReader(handle)}
    assert {r["time_zone"] for r in rows.values()} == {"Europe/London", "America/New_York", "Australia/Sydney"}
    assert {r["clinic_id"] for r in rows.values()} == {"riverside", "harbour"}
    assert (rows["P007"]["start_minutes"], rows["P007"]["week12_minutes"], rows["P007"]["final_minutes"]) == ("60", "100", "120")
    assert rows["P001"]["start_minutes"] == ""
    plan = (cohort.root / "prescriptions.csv").read_text().splitlines()
    assert plan == ["participant_id,from_week,minutes_per_week,days_per_week", "P006,3,120,4", "P006,5,70,3", "P006,5,60,3"]


# ---------------------------------------------------------------- the FIT files decode to what was written


def fit_files(cohort, kind: str) -> list[Path]:
    return sorted(p for p in (cohort.root / "inbox").rglob("*.FIT") if kind in p.parts)


def utc_seconds(naive_utc: datetime) -> int:
    return calendar.timegm(naive_utc.timetuple())


@pytest.fixture(scope="module")
def decoded(cohort) -> dict[Path, list[tuple[str, dict]]]:
    """Every FIT file of the cohort decoded once by fitparse, CRC checked: (message name, values)."""
    return {
        path: [(m.name, m.get_values()) for m in fitparse.FitFile(str(path), check_crc=True).get_messages()]
        for path in sorted((cohort.root / "inbox").rglob("*.FIT"))
    }


def monitoring_intervals(messages: list[tuple[str, dict]]) -> list[tuple[int, int, float]]:
    """A minimal reader of the agreed semantics, on fitparse's decoding: full time from
    timestamp_16 (nearest signed 16-bit difference), message i -> (time of i-1, time of i] with
    the increase of its activity type's counter."""
    intervals, counts, previous, last_full = [], {}, None, None
    for name, values in messages:
        if name != "monitoring":
            continue
        if "timestamp" in values:
            seconds = last_full = utc_seconds(values["timestamp"])
        else:  # timestamp_16 holds the low 16 bits of the FIT (not Unix) seconds
            delta = (values["timestamp_16"] - (last_full - FIT_EPOCH_UNIX)) & 0xFFFF
            seconds = last_full + (delta - 0x10000 if delta >= 0x8000 else delta)
        if values.get("steps") is not None and previous is not None:
            kind = values["activity_type"]
            intervals.append((previous, seconds, values["steps"] - counts.get(kind, 0)))
            counts[kind] = values["steps"]
        previous = seconds
    return intervals


def as_tuples(intervals, source: str) -> set[tuple]:
    return {(i.start_second, i.end_second, i.steps) for i in intervals if i.source == source}


def test_every_fit_file_decodes_with_its_crc(decoded):
    assert len(decoded) > 300
    for path, messages in decoded.items():
        assert messages[0][0] == "file_id", path
        assert messages[0][1]["type"] in ("monitoring_b", "activity"), path


@pytest.mark.parametrize("participant_id", ["P001", "P003", "P004", "P005", "P006", "P007", "0042"])
def test_monitoring_files_decode_to_the_written_counts(cohort, decoded, participant_id):
    read = set()
    for path in fit_files(cohort, "Monitor"):
        if path.parts[-5] == participant_id:
            read |= set(monitoring_intervals(decoded[path]))
    assert read == as_tuples(cohort.intervals[participant_id], "fit_monitoring")


def test_monitoring_day_file_layout(cohort, decoded):
    path = next(p for p in fit_files(cohort, "Monitor") if p.name.endswith("-20241027.FIT") and "P001" in p.parts)
    messages = decoded[path]
    file_id = messages[0][1]
    assert (file_id["type"], file_id["manufacturer"]) == ("monitoring_b", "garmin")
    info = next(values for name, values in messages if name == "monitoring_info")
    # London on 2024-10-27 starts at 00:00 BST (UTC+1); the day lasts 25 hours
    assert info["timestamp"] == datetime(2024, 10, 26, 23, 0)
    assert info["local_timestamp"] == datetime(2024, 10, 27, 0, 0)
    monitoring = [values for name, values in messages if name == "monitoring"]
    assert monitoring[0] == {"timestamp": datetime(2024, 10, 26, 23, 0), "activity_type": "sedentary"}
    assert any("timestamp_16" in m for m in monitoring)
    intervals = monitoring_intervals(messages)
    assert intervals[-1][1] - utc_seconds(datetime(2024, 10, 26, 23, 0)) == 25 * 3600
    assert max(end - start for start, end, _ in intervals) <= 15 * 60
    assert monitoring[-1]["steps"] == sum(steps for *_, steps in intervals)  # the day's final walking count


def test_running_counter_is_separate(cohort, decoded):
    path = next(p for p in fit_files(cohort, "Monitor") if "P003" in p.parts and p.name.endswith("-20240930.FIT"))
    running = [v["steps"] for name, v in decoded[path] if name == "monitoring" and v["activity_type"] == "running"]
    assert running == [150, 300, 450, 600, 750]


def test_recorded_walk_decodes(cohort, decoded):
    [path] = fit_files(cohort, "Activity")
    messages = decoded[path]
    assert messages[0][1]["type"] == "activity"
    records = [values for name, values in messages if name == "record"]
    assert len(records) == 32 * 60 + 1
    assert {(r["cadence"], r["fractional_cadence"]) for r in records} == {(55, 0.0)}
    session = next(values for name, values in messages if name == "session")
    assert session["sport"] == "walking"
    assert session["total_strides"] == 55 * 32
    assert session["start_time"] == datetime(2024, 10, 24, 9, 0)  # 10:00 BST
    assert session["total_elapsed_time"] == session["total_timer_time"] == 32 * 60
    activity = next(values for name, values in messages if name == "activity")
    assert activity["local_timestamp"] - activity["timestamp"] == timedelta(hours=1)
    steps = sum(i.steps for i in cohort.intervals["0042"] if i.source == "fit_activity")
    assert steps == pytest.approx(32 * 110)


def test_encoder_profile_table_matches_the_fit_profile():
    for name, message in fit_writer.PROFILE.items():
        profile = MESSAGE_TYPES[message.global_number]
        assert profile.name == name
        for field_name, spec in message.fields.items():
            known = profile.fields[spec.number]
            assert field_name in (known.name, *(s.name for s in known.subfields or [])), (name, field_name)
            assert spec.base_type.code == getattr(known.type, "base_type", known.type).identifier, (name, field_name)
            if field_name != "cycles":  # written through its steps sub-field (scale 1)
                assert spec.scale == (known.scale or 1), (name, field_name)


def test_fit_crc_is_crc16_arc():
    assert fit_writer.fit_crc(b"123456789") == 0xBB3D


# ---------------------------------------------------------------- the Fitbit exports


def test_fitbit_exports_read_back_with_the_pipeline_reader(cohort):
    for participant in cohort.participants:
        folder = cohort.root / "inbox" / participant.participant_id / "fitbit"
        if not folder.exists():
            continue
        context = ReadContext(participant.participant_id, participant.time_zone)
        read = set()
        for path in sorted(folder.glob("*.csv")):
            frame = FitabaseReader().read(path, context).intervals
            read |= {(s.timestamp(), e.timestamp(), steps) for s, e, steps in frame.select("start_utc", "end_utc", "steps").iter_rows()}
        assert read == as_tuples(cohort.intervals[participant.participant_id], "fitbit"), participant.participant_id


def test_repeated_autumn_hour_is_listed_twice(cohort):
    text = "".join(p.read_text() for p in (cohort.root / "inbox" / "P002" / "fitbit").glob("*.csv"))
    assert text.count("P002,11/3/2024 1:30:00 AM,") == 2


def test_exports_repeat_a_day(cohort):
    text = [p.read_text() for p in sorted((cohort.root / "inbox" / "P002" / "fitbit").glob("*.csv"))]
    assert "10/16/2024" in text[0] and "10/16/2024" in text[1]


# ---------------------------------------------------------------- the truth gives the designed statuses


def test_truth_gives_the_designed_statuses_and_flags(cohort):
    for participant_id, designed in DESIGNED_WEEKS.items():
        got = [(w["status"], w["flags"]) for w in weeks_of(cohort, participant_id)]
        assert got == designed, participant_id


def test_exact_walker_meets_the_prescription_exactly(cohort):
    for week in weeks_of(cohort, "P001")[:-1]:
        assert week["walk_minutes"] == week["prescribed_minutes"]
        assert week["walking_days"] == week["prescribed_days"]
        assert week["adherence_pct"] == 100
        assert week["valid_days"] == 7
        assert week["walking_minutes_all"] > week["walk_minutes"]  # strolls are walking minutes, not bouts
    assert [w["prescribed_minutes"] for w in weeks_of(cohort, "P001")] == [80, 85, 90, 95, 100, 105, 105, 110, 115]


def test_watch_wins_every_minute_it_covers(cohort):
    weeks = weeks_of(cohort, "P005")
    assert all(w["vigorous_minutes"] == 0 for w in weeks)  # 112 + 90 would be vigorous if summed
    assert weeks[4]["walk_minutes"] == 80  # the Fitbit's 70-step 'shopping' minutes are the watch's zeros
    days = days_of(cohort, "P005")
    assert days[date(2024, 10, 16)]["bout_minutes"] == 28  # 10 watch minutes + 18 Fitbit after the battery died
    assert days[date(2024, 10, 16)]["moderate_minutes"] == 10
    assert days[date(2024, 10, 28)]["moderate_minutes"] == 0  # Fitbit only (95 steps/min)


def test_recorded_walk_wins_over_monitoring(cohort):
    day = days_of(cohort, "0042")[date(2024, 10, 24)]
    assert day["moderate_minutes"] == 32  # 110 from the activity, not 96 from monitoring
    assert day["peak30_cadence"] == pytest.approx(110)


def test_plans_and_own_progression(cohort):
    assert [w["prescribed_minutes"] for w in weeks_of(cohort, "P006")] == [80, 85, 120, 120, 60, 60, 60, 60, 60]
    assert [w["prescribed_days"] for w in weeks_of(cohort, "P006")] == [3, 3, 4, 4, 3, 3, 3, 3, 3]
    assert [w["prescribed_minutes"] for w in weeks_of(cohort, "P007")] == [60, 65, 65, 70, 75, 80, 80, 85, 90]
    assert date(2024, 9, 29) not in days_of(cohort, "P006")


def test_gap_week_has_null_sums_and_zero_counts(cohort):
    week3 = weeks_of(cohort, "P004")[2]
    for name in ("walk_minutes", "walking_minutes_all", "moderate_minutes", "vigorous_minutes", "steps",
                 "mean_daily_steps", "peak30_cadence", "adherence_pct"):
        assert week3[name] is None, name
    assert (week3["valid_days"], week3["walking_days"]) == (0, 0)
    on_charger = days_of(cohort, "P004")[date(2024, 11, 18)]
    assert (on_charger["steps"], on_charger["valid_day"]) == (0, False)  # worn-nothing is 0, not null
    assert days_of(cohort, "P004")[date(2024, 11, 22)]["steps"] is None


def test_dst_days(cohort):
    assert days_of(cohort, "P001")[date(2024, 10, 27)]["worn_hours"] == 16  # 07-21 and 01 (twice, once)
    assert days_of(cohort, "P002")[date(2024, 11, 3)]["worn_hours"] == 14
    assert days_of(cohort, "P003")[date(2024, 10, 6)]["valid_day"] is True  # 23-hour day


def test_night_walk_counts_on_its_start_day(cohort):
    days = days_of(cohort, "P003")
    assert days[date(2024, 10, 17)]["walking_minutes_all"] == 8
    assert days[date(2024, 10, 17)]["bout_minutes"] == 0
    assert days[date(2024, 10, 16)]["bout_minutes"] == days[date(2024, 10, 16)]["walking_minutes_all"] + 8


def test_hourly_days_are_low_confidence(cohort):
    days = days_of(cohort, "P008")
    day = days[date(2024, 10, 21)]
    assert (day["low_confidence"], day["minute_resolution"], day["valid_day"], day["steps"]) == (True, False, True, 6200)
    assert day["peak30_cadence"] is None
    assert days[date(2024, 10, 24)]["valid_day"] is False  # 700 steps
    week5 = weeks_of(cohort, "P008")[4]
    assert week5["valid_days"] == 7 and week5["flags"] == []


def test_attention_list(cohort):
    summary = json.loads((cohort.root / "truth" / "cohort.json").read_text())
    assert summary["as_of"] == AS_OF.isoformat() == "2024-11-27"
    assert summary["attention"] == {
        "P002": ["week 7: not_met", "week 7: falling_behind"],
        "P003": ["week 8: overload"],
        "P004": ["week 8: insufficient_data", "week 8: no_recent_data"],
    }
    assert [p["participant_id"] for p in summary["participants"]] == list(DESIGNED_WEEKS)


def test_expected_csvs(cohort):
    with open(cohort.root / "truth" / "expected_weekly.csv", newline="") as handle:
        weekly = list(csv.DictReader(handle))
    assert len(weekly) == len(cohort.weekly)
    falling = [w for w in weekly if w["participant_id"] == "P002" and w["programme_week"] == "5"][0]
    assert falling["flags"] == "falling_behind" and falling["status"] == "not_met"
    with open(cohort.root / "truth" / "expected_daily.csv", newline="") as handle:
        daily = list(csv.DictReader(handle))
    assert len(daily) == sum(7 * len(weeks) for weeks in DESIGNED_WEEKS.values())
    assert all(d["steps"] == "" or d["steps"].isdigit() for d in daily)


# ---------------------------------------------------------------- truth.py on tiny series

ZONE = "Europe/London"
PERSON = Participant("T1", "clinic", ZONE, date(2024, 10, 21))  # Monday; London falls back 2024-10-27


def at(text: str, zone: str = ZONE) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def minutes(start: str, steps_per_minute: list[float], source: str = "fitbit", zone: str = ZONE) -> list[StepInterval]:
    first = at(start, zone)
    return [StepInterval(source, first + timedelta(minutes=i), first + timedelta(minutes=i + 1), s)
            for i, s in enumerate(steps_per_minute)]


def worn_day(day: str, hours=range(7, 17), zone: str = ZONE, source: str = "fitbit") -> list[StepInterval]:
    """A light minute (10 steps) at :50 in each hour: `hours` worn hours."""
    return [i for h in hours for i in minutes(f"{day}T{h:02d}:50", [10], source, zone)]


def one_day(intervals, day: date, person: Participant = PERSON) -> dict:
    rows = truth.daily_rows(person, intervals, day)
    return next(r for r in rows if r["local_date"] == day)


def test_constants_are_definitions_v1():
    d = Definitions()
    assert (truth.SPREAD_MAX_MINUTES, truth.WALKING_CADENCE, truth.MODERATE_CADENCE, truth.VIGOROUS_CADENCE) == (
        d.spread_max_minutes, d.walking_cadence_steps_min, d.moderate_cadence_steps_min, d.vigorous_cadence_steps_min)
    assert (truth.BOUT_MAX_GAP_MINUTES, truth.BOUT_MIN_SPAN_MINUTES, truth.BOUT_MIN_WALKING_FRACTION) == (
        d.bout_max_gap_minutes, d.bout_min_span_minutes, d.bout_min_walking_fraction)
    assert (truth.PEAK_MINUTES, truth.VALID_DAY_MIN_WORN_HOURS, truth.COARSE_VALID_DAY_MIN_STEPS,
            truth.IMPLAUSIBLE_DAY_STEPS, truth.WALKING_DAY_MIN_BOUT_MINUTES) == (
        d.peak_cadence_minutes, d.valid_day_min_worn_hours, d.coarse_valid_day_min_steps,
        d.implausible_day_steps, d.walking_day_min_bout_minutes)
    assert (truth.STATUS_MIN_VALID_DAYS, truth.PARTIAL_MIN_ADHERENCE_PCT, truth.OVERLOAD_RATIO,
            truth.FALLING_BEHIND_PCT, truth.FALLING_BEHIND_MIN_VALID_DAYS, truth.NO_RECENT_DATA_DAYS) == (
        d.status_min_valid_days, d.partial_min_adherence_pct, d.overload_ratio,
        d.falling_behind_pct, d.falling_behind_min_valid_days, d.no_recent_data_days)
    assert (truth.DEFAULT_START_MINUTES, truth.DEFAULT_WEEK12_MINUTES, truth.DEFAULT_FINAL_MINUTES,
            truth.FINAL_WEEK, truth.ROUND_TO_MINUTES) == (
        d.start_minutes, d.week12_minutes, d.final_minutes, d.final_week, d.round_to_minutes)


def test_spreading_by_seconds_of_overlap():
    interval = StepInterval("fitbit", at("2024-10-22T10:00:30"), at("2024-10-22T10:02:30"), 120)
    spread = truth.spread_over_minutes(interval)
    first = int(at("2024-10-22T10:00").timestamp()) // 60
    assert spread == {first: 30, first + 1: 60, first + 2: 30}


def test_fifteen_minutes_is_spread_longer_is_coarse():
    fifteen = StepInterval("fitbit", at("2024-10-22T10:00"), at("2024-10-22T10:15"), 1500)
    sixteen = StepInterval("fitbit", at("2024-10-22T11:00"), at("2024-10-22T11:16"), 1600)
    assert not fifteen.is_coarse and sixteen.is_coarse
    series = truth.minute_steps([fifteen, sixteen])
    assert len(series) == 15 and set(series.values()) == {100}
    day = one_day([fifteen, sixteen], date(2024, 10, 22))
    assert day["steps"] == 3100 and day["minute_resolution"] is False and day["walking_minutes_all"] == 15


def test_priority_takes_one_source_per_minute_never_a_sum():
    watch = minutes("2024-10-22T10:00", [0, 112, 112], "fit_monitoring")
    fitbit = minutes("2024-10-22T10:00", [70, 90, 90, 80], "fitbit")
    activity = [StepInterval("fit_activity", at("2024-10-22T10:02") + timedelta(seconds=s),
                             at("2024-10-22T10:02") + timedelta(seconds=s + 1), 110 / 60) for s in range(60)]
    series = truth.minute_steps(watch + fitbit + activity)
    first = int(at("2024-10-22T10:00").timestamp()) // 60
    assert series[first] == 0  # the watch's zero wins over the Fitbit's 70
    assert series[first + 1] == 112
    assert series[first + 2] == pytest.approx(110)  # the recorded walk wins over monitoring
    assert series[first + 3] == 80  # only the Fitbit covers it


def bout_minutes_of(pattern: str) -> list[truth.Bout]:
    """'W' = a walking minute (80 steps), '.' = a non-walking minute (10 steps)."""
    return truth.walking_bouts({i: 80 if c == "W" else 10 for i, c in enumerate(pattern)})


def test_bout_gap_of_two_joins_gap_of_three_splits():
    assert [b.walking_minutes for b in bout_minutes_of("WWWWWW..WWWWWW")] == [12]
    assert bout_minutes_of("WWWWWW...WWWWWW") == []
    assert [b.walking_minutes for b in bout_minutes_of("WWWWWWWWWW...WWWWWWWWWW")] == [10, 10]


def test_bout_needs_ten_minute_span_and_eighty_percent():
    assert bout_minutes_of("WWWWWWWWW") == []  # 9 minutes
    assert [b.walking_minutes for b in bout_minutes_of("WWWW..WWWW")] == [8]  # 8/10 = 80%
    assert bout_minutes_of("WWW..WWW..WWW..WWW") == []  # 12/18 < 80%
    assert truth.walking_bouts({0: 60, 1: 60, 2: 60, 3: 60, 4: 60, 5: 60, 6: 60, 7: 60, 8: 60, 9: 59.99}) == []


def test_minutes_without_data_are_non_walking_minutes():
    series = {i: 80 for i in range(6)} | {i: 80 for i in range(8, 14)}  # minutes 6-7 have no data
    assert [b.walking_minutes for b in truth.walking_bouts(series)] == [12]


def test_bout_starting_before_midnight_counts_on_its_start_day():
    walk = minutes("2024-10-22T23:55", [80] * 15)
    days = truth.daily_rows(PERSON, walk + worn_day("2024-10-22") + worn_day("2024-10-23"), date(2024, 10, 23))
    tuesday, wednesday = days[1], days[2]
    assert (tuesday["bout_minutes"], tuesday["walking_minutes_all"]) == (15, 5)
    assert (wednesday["bout_minutes"], wednesday["walking_minutes_all"]) == (0, 10)


def test_autumn_day_has_25_hours_and_the_repeated_hour_counts_once():
    day = date(2024, 10, 27)
    start = at("2024-10-27T00:30")  # 23:30 UTC the day before
    hourly = [StepInterval("fitbit", start + timedelta(hours=h), start + timedelta(hours=h, minutes=1), 10) for h in range(25)]
    row = one_day(hourly, day)
    assert row["worn_hours"] == 24 and row["steps"] == 250
    assert truth.local_midnight_minute(day + timedelta(days=1), ZoneInfo(ZONE)) - truth.local_midnight_minute(day, ZoneInfo(ZONE)) == 25 * 60


def test_spring_day_has_23_hours():
    sydney = Participant("T2", "clinic", "Australia/Sydney", date(2024, 10, 6))
    start = at("2024-10-06T00:30", "Australia/Sydney")
    hourly = [StepInterval("fitbit", start + timedelta(hours=h), start + timedelta(hours=h, minutes=1), 10) for h in range(24)]
    row = one_day(hourly, date(2024, 10, 6), sydney)
    assert row["worn_hours"] == 23 and row["steps"] == 230  # the 24th minute is on the 7th


def test_no_data_is_null_but_worn_nothing_is_zero():
    zero_day = minutes("2024-10-22T10:00", [0] * 15, "fit_monitoring")
    rows = truth.daily_rows(PERSON, zero_day, date(2024, 10, 23))
    assert rows[1]["steps"] == 0 and rows[1]["valid_day"] is False and rows[1]["worn_hours"] == 0
    assert rows[1]["peak30_cadence"] is None
    assert rows[2] == truth.no_data_day("T1", date(2024, 10, 23), 1)
    assert rows[2]["steps"] is None and rows[2]["valid_day"] is False


def test_valid_day_needs_ten_worn_hours():
    assert one_day(worn_day("2024-10-22", range(7, 17)), date(2024, 10, 22))["valid_day"] is True
    assert one_day(worn_day("2024-10-22", range(7, 16)), date(2024, 10, 22))["valid_day"] is False


def test_peak30_counts_missing_minutes_as_zero():
    day = worn_day("2024-10-22") + minutes("2024-10-22T18:00", [120] * 20)
    row = one_day(day, date(2024, 10, 22))
    assert row["peak30_cadence"] == pytest.approx((20 * 120 + 10 * 10) / 30)


def coarse(day: str, steps: float, source: str = "fitbit") -> StepInterval:
    return StepInterval(source, at(f"{day}T12:00"), at(f"{day}T13:00"), steps)


def test_coarse_only_days():
    assert one_day([coarse("2024-10-22", 999)], date(2024, 10, 22))["valid_day"] is False
    row = one_day([coarse("2024-10-22", 1000)], date(2024, 10, 22))
    assert (row["valid_day"], row["low_confidence"], row["minute_resolution"], row["peak30_cadence"]) == (True, True, False, None)
    assert row["walking_minutes_all"] == 0 and row["worn_hours"] == 0
    assert one_day([coarse("2024-10-22", 50001)], date(2024, 10, 22))["implausible"] is True
    assert one_day([coarse("2024-10-22", 50000)], date(2024, 10, 22))["implausible"] is False


def test_coarse_steps_of_a_lower_priority_source_are_not_added():
    watch = worn_day("2024-10-22", source="fit_monitoring")
    row = one_day(watch + [coarse("2024-10-22", 5000, "fitbit")], date(2024, 10, 22))
    assert row["steps"] == 100 and row["minute_resolution"] is False and row["low_confidence"] is False
    row = one_day(watch + [coarse("2024-10-22", 5000, "fit_monitoring")], date(2024, 10, 22))
    assert row["steps"] == 5100


def test_default_prescription():
    minutes_ = [truth.default_prescribed_minutes(k) for k in (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 19, 26, 27, 52)]
    assert minutes_ == [80, 85, 90, 95, 100, 105, 105, 110, 130, 130, 140, 150, 150, 150]
    assert [truth.default_prescribed_days(k) for k in (1, 4, 5, 12, 13, 40)] == [3, 3, 4, 4, 5, 5]


def test_rounding_to_five_goes_up_on_halves():
    assert truth.default_prescribed_minutes(1, start=82.5) == 85
    assert truth.default_prescribed_minutes(1, start=77.5) == 80
    assert truth.default_prescribed_minutes(1, start=77.4) == 75


def test_plan_rows_latest_from_week_wins_and_ties_take_the_later_row():
    person = Participant("T3", "c", ZONE, date(2024, 10, 1), start_minutes=60, week12_minutes=100, final_minutes=120)
    plan = [PlanRow(5, 70, 3), PlanRow(3, 120, 4), PlanRow(5, 60, 2)]
    assert truth.prescription(person, plan, 2) == (65, 3)  # own progression before any row
    assert truth.prescription(person, plan, 3) == (120, 4)
    assert truth.prescription(person, plan, 4) == (120, 4)
    assert truth.prescription(person, plan, 9) == (60, 2)


def week(**values) -> dict:
    base = {"walk_minutes": 0, "walking_minutes_all": 0, "valid_days": 7, "walking_days": 0,
            "prescribed_minutes": 100, "prescribed_days": 4, "all_valid_days_low_confidence": False}
    base.update(values)
    base["adherence_pct"] = None if base["walk_minutes"] is None else 100 * base["walk_minutes"] / base["prescribed_minutes"]
    return base


def test_each_status():
    assert truth.week_status(week(walk_minutes=None, walking_minutes_all=None, valid_days=0)) == "no_data"
    assert truth.week_status(week(walk_minutes=0, walking_minutes_all=5, valid_days=0)) == "insufficient_data"
    assert truth.week_status(week(walk_minutes=100, walking_days=4, valid_days=2)) == "met"
    assert truth.week_status(week(walk_minutes=100, walking_days=3)) == "partial"  # too few walking days
    assert truth.week_status(week(walk_minutes=90, walking_days=4, valid_days=3)) == "insufficient_data"
    assert truth.week_status(week(walk_minutes=50, walking_days=2, valid_days=4)) == "partial"
    assert truth.week_status(week(walk_minutes=49, walking_days=2, valid_days=4)) == "not_met"


def test_each_flag():
    assert truth.week_flags(week(walk_minutes=151), None, False) == ["overload"]
    assert truth.week_flags(week(walk_minutes=150), None, False) == []
    behind, behind_few_days = week(walk_minutes=40), week(walk_minutes=40, valid_days=3)
    assert truth.week_flags(behind, behind, False) == ["falling_behind"]
    assert truth.week_flags(behind, behind_few_days, False) == []
    assert truth.week_flags(behind, week(walk_minutes=50), False) == []
    assert truth.week_flags(behind, None, False) == []
    assert truth.week_flags(week(all_valid_days_low_confidence=True), None, True) == ["low_confidence", "no_recent_data"]


def test_weeks_completed_in_progress_and_not_reported():
    person = Participant("T4", "c", ZONE, date(2024, 10, 1))
    intervals = [i for k in range(30) for i in worn_day((date(2024, 10, 1) + timedelta(days=k)).isoformat())]
    days, weeks = truth.expected_rows(person, [], intervals, date(2024, 10, 15))
    assert [w["status"] for w in weeks] == ["not_met", "not_met", "in_progress"]  # week 2 ends on the 14th
    assert weeks[1]["flags"] == ["falling_behind"] and weeks[2]["flags"] == []
    assert days[-1]["local_date"] == date(2024, 10, 21)
    _, weeks = truth.expected_rows(person, [], intervals, date(2024, 10, 14))
    assert [w["status"] for w in weeks] == ["not_met", "in_progress"]


def test_no_recent_data_on_the_latest_completed_week_only():
    person = Participant("T5", "c", ZONE, date(2024, 10, 1))
    intervals = [i for k in range(9) for i in worn_day((date(2024, 10, 1) + timedelta(days=k)).isoformat())]
    _, weeks = truth.expected_rows(person, [], intervals, date(2024, 10, 16))  # nothing on the 11th-15th
    assert [w["flags"] for w in weeks] == [[], ["no_recent_data"], []]
    intervals += minutes("2024-10-13T03:00", [0], "fit_monitoring")  # one zero-step interval is data
    _, weeks = truth.expected_rows(person, [], intervals, date(2024, 10, 16))
    assert weeks[1]["flags"] == []


def test_low_confidence_week_needs_every_valid_day_low_confidence():
    person = Participant("T6", "c", ZONE, date(2024, 10, 1))
    coarse_week = [coarse((date(2024, 10, 1) + timedelta(days=k)).isoformat(), 3000) for k in range(7)]
    _, weeks = truth.expected_rows(person, [], coarse_week, date(2024, 10, 9))
    assert weeks[0]["flags"] == ["low_confidence"] and weeks[0]["valid_days"] == 7
    mixed = coarse_week[:6] + worn_day("2024-10-07")
    _, weeks = truth.expected_rows(person, [], mixed, date(2024, 10, 9))
    assert weeks[0]["flags"] == []
