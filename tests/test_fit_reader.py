"""FitReader on the real FIT files in ../shared/realdata/fit and on small files written with fit-tool.

Expected values for the real files were read by hand off a fitparse dump of each file (the
arithmetic is in the comments)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from fit_tool.fit_file_builder import FitFileBuilder
from fit_tool.profile.messages.file_id_message import FileIdMessage
from fit_tool.profile.messages.monitoring_info_message import MonitoringInfoMessage
from fit_tool.profile.messages.monitoring_message import MonitoringMessage
from fit_tool.profile.messages.record_message import RecordMessage
from fit_tool.profile.messages.session_message import SessionMessage
from fit_tool.profile.profile_type import ActivityType, FileType, Manufacturer, Sport
from fit_tool.utils.crc import crc16
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile, InputFileError, UnrecognisedFormat
from pipeline.schema import READER_COLUMNS
from pipeline.sources.base import HEAD_BYTES, ReadContext, ReadResult
from pipeline.sources.fit import FitReader

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
UTC = timezone.utc
FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)
READER = FitReader()
SYDNEY = ReadContext(participant_id="p001", time_zone="Australia/Sydney")


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def rows(result: ReadResult) -> list[dict]:
    return result.intervals.to_dicts()


# --- real files -------------------------------------------------------------------------------

# Broken real files and what the decoder reports on each (fitparse 1.2.0 rejects the same files,
# see tests/test_fit_decode.py).
BROKEN_REAL_FILES = {
    "activity-filecrc.fit": "checksum",  # file CRC 0xB1D5, data gives 0xA1D5
    "activity-activity-filecrc.fit": "checksum",  # two chained files, the second CRC is wrong
    "activity-settings-corruptheader.fit": "header",  # the chained second header is not .FIT
    "activity-settings-nodata.fit": "truncated",  # header announces data that is not there
    "activity-unexpected-eof.fit": "truncated",
    "nick.fit": "truncated",
    "strava-android-app-201.10-b1218918.fit": "data size its header declares",  # declares 19 bytes more than it holds
    "coros-pace-2-cycling-misaligned-fields.fit": "not a multiple of its type",  # 1-byte uint32 field
}


@pytest.fixture(scope="module")
def real_fit_dir() -> Path:
    folder = REALDATA / "fit"
    if not folder.is_dir():
        pytest.skip(f"real FIT files not found: {folder} is absent (it lives beside the repo in ../shared)")
    return folder


@pytest.fixture(scope="module")
def real_fit_outcomes(real_fit_dir: Path) -> dict[str, object]:
    """Every real FIT file read once: file name -> ReadResult or the exception raised.
    (the tests share one pass over the 7 MB corpus.)"""
    outcomes: dict[str, object] = {}
    for path in sorted(real_fit_dir.rglob("*.fit")):
        try:
            outcomes[path.name] = READER.read(path, SYDNEY)
        except Exception as error:  # noqa: BLE001 - the test says which type escaped, and from where
            outcomes[path.name] = error
    return outcomes


@pytest.mark.realdata
def test_every_real_file_reads_or_raises_a_typed_error(real_fit_dir, real_fit_outcomes):
    assert len(real_fit_outcomes) == len(list(real_fit_dir.rglob("*.fit"))) == 32
    assert BROKEN_REAL_FILES.keys() <= real_fit_outcomes.keys()
    for name, outcome in real_fit_outcomes.items():
        if name in BROKEN_REAL_FILES:
            assert isinstance(outcome, CorruptFile), (name, outcome)
            assert BROKEN_REAL_FILES[name] in outcome.problem, (name, outcome.problem)
            assert outcome.reader == "fit"
            size = next(real_fit_dir.rglob(name)).stat().st_size
            assert outcome.offset is not None and 0 < outcome.offset <= size, (name, outcome.offset)
        else:
            assert isinstance(outcome, ReadResult), (name, outcome)


@pytest.mark.realdata
def test_broken_file_errors_name_the_offset_of_the_damage(real_fit_outcomes):
    # The bad CRC is the last two bytes of the 771-byte file; the chained second header starts
    # at 771 and is refused there; nick.fit is cut off inside the data message starting at 403,437.
    assert real_fit_outcomes["activity-filecrc.fit"].offset == 771 - 2
    assert real_fit_outcomes["activity-settings-corruptheader.fit"].offset == 771
    assert real_fit_outcomes["nick.fit"].offset == 403_437


@pytest.mark.realdata
def test_truncated_sdk_file_is_consistent_and_holds_no_steps(real_fit_outcomes):
    # activity_truncated.fit (FIT SDK) is listed as broken, but its header size (261 data bytes)
    # and its CRC match what is there: 14 records without cadence and no session. fitparse reads
    # it without complaint, so it is read, and gives no intervals.
    outcome = real_fit_outcomes["activity_truncated.fit"]
    assert isinstance(outcome, ReadResult)
    assert outcome.intervals.height == 0
    assert outcome.device_daily_totals is None


@pytest.mark.realdata
def test_every_real_file_is_detected_as_fit(real_fit_dir):
    for path in real_fit_dir.rglob("*.fit"):
        with open(path, "rb") as handle:
            assert READER.detect(path, handle.read(HEAD_BYTES)), path


@pytest.fixture(scope="module")
def monitoring_file(real_fit_dir: Path) -> ReadResult:
    return READER.read(real_fit_dir / "python-fitparse" / "MonitoringFile.fit", SYDNEY)


@pytest.mark.realdata
def test_monitoring_file_rows_and_day_total(monitoring_file):
    # Garmin vivofit, one local day (2014-12-27, UTC-6: monitoring_info.timestamp 06:00 UTC,
    # local_timestamp 00:00). 337 monitoring messages: 78 walking and 1 running with `cycles`,
    # plus the end-of-day pair at local 00:00 with `steps` (walking 3142, running 31).
    frame = monitoring_file.intervals
    assert frame.height == 81
    assert frame["source"].unique().to_list() == ["fit_monitoring"]
    assert frame["device"].unique().to_list() == ["garmin:vivo_fit:3882708276"]
    by_type = dict(frame.group_by("activity_type").agg(pl.col("steps").sum()).iter_rows())
    assert by_type == {"walking": 3142.0, "running": 31.0}  # = the end-of-day steps
    assert frame["end_utc"].is_sorted()
    assert (frame["start_utc"] < frame["end_utc"]).all()
    assert frame["end_utc"].min() >= utc(2014, 12, 27, 6) and frame["end_utc"].max() == utc(2014, 12, 28, 6)
    assert monitoring_file.device_daily_totals.to_dicts() == [
        {"source": "fit_monitoring", "device": "garmin:vivo_fit:3882708276", "local_date": date(2014, 12, 27), "steps": 3173.0}
    ]


@pytest.mark.realdata
def test_monitoring_file_rebuilt_times_and_intervals(monitoring_file):
    # monitoring_info.timestamp 2014-12-27 06:00 UTC = FIT second 788,594,400, whose low 16 bits
    # are 65,248. The first monitoring message has timestamp_16 27,492: nearest difference
    # +27,780 s (it already wrapped) -> 13:43:00 UTC. The first walking message (cycles 50,
    # timestamp_16 29,412) -> 14:15:00, counter 100; the message before it (29,172) -> 14:11:00.
    by_end = {(row["end_utc"], row["activity_type"]): row for row in rows(monitoring_file)}
    first = by_end[(utc(2014, 12, 27, 14, 15), "walking")]
    assert (first["start_utc"], first["steps"], first["cumulative_steps"]) == (utc(2014, 12, 27, 14, 11), 100.0, 100.0)
    # The only running minute: timestamp_16 37,932 -> 16:37, cycles 15.5 -> 31 steps.
    running = by_end[(utc(2014, 12, 27, 16, 37), "running")]
    assert (running["start_utc"], running["steps"], running["cumulative_steps"]) == (utc(2014, 12, 27, 16, 36), 31.0, 31.0)
    # Next walking minute after it: 16:42, 333.5 x 2 = 667 - 437 = 230 steps, starting at the
    # running message (the previous message of any type).
    after_run = by_end[(utc(2014, 12, 27, 16, 42), "walking")]
    assert (after_run["start_utc"], after_run["steps"]) == (utc(2014, 12, 27, 16, 37), 230.0)
    # The second 16-bit wrap inside the file: 65,412 (00:15 UTC) then 416 and 476 -> 00:24 and
    # 00:25 on 2014-12-28 UTC; cycles 1151 -> 1158.5: 15 steps, counter 2317.
    wrapped = by_end[(utc(2014, 12, 28, 0, 25), "walking")]
    assert (wrapped["start_utc"], wrapped["steps"], wrapped["cumulative_steps"]) == (utc(2014, 12, 28, 0, 24), 15.0, 2317.0)
    # The end-of-day messages at local 00:00 close 2014-12-27 with no new steps.
    for activity_type, counter in (("walking", 3142.0), ("running", 31.0)):
        closing = by_end[(utc(2014, 12, 28, 6), activity_type)]
        assert (closing["start_utc"], closing["steps"], closing["cumulative_steps"]) == (utc(2014, 12, 28, 5, 59), 0.0, counter)


@pytest.mark.realdata
def test_fenix_walk_steps_follow_the_cadence(real_fit_dir):
    result = READER.read(real_fit_dir / "python-fitparse" / "garmin-fenix-5-walk.fit", SYDNEY)
    frame = result.intervals
    # 17 records from 14:32:51 to 14:33:37 at 53-68 strides/min; the first gives no interval.
    assert frame.height == 16
    assert frame["activity_type"].unique().to_list() == ["walking"]
    assert frame["source"].unique().to_list() == ["fit_activity"]
    assert frame["device"].unique().to_list() == ["garmin:fenix5:3945849289"]
    assert frame["cumulative_steps"].null_count() == frame.height
    # Session: start 14:32:51, total_elapsed_time 45.379 s (end rounded up to 14:33:37).
    assert frame["start_utc"].min() == utc(2017, 6, 11, 14, 32, 51)
    assert frame["end_utc"].max() == utc(2017, 6, 11, 14, 33, 37)
    assert frame["distance_m"].sum() == pytest.approx(67.85)  # session total_distance
    total = frame["steps"].sum()
    assert total == pytest.approx(93.4, abs=0.05)
    # Tolerance: this walk lasts 45 s and the file disagrees with itself. The session's own
    # avg_cadence (61 + 0.227 strides/min) x 45.379 s = 92.6 steps, while total_strides x 2 = 82:
    # 13% apart. So: within 2% of the device's average cadence, and within 15% of its stride
    # count. On long runs the two agree to ~1% (see the multisport test).
    assert total == pytest.approx(2 * (61 + 0.2265625) * 45.379 / 60, rel=0.02)
    assert total == pytest.approx(41 * 2, rel=0.15)
    assert result.device_daily_totals is None


@pytest.mark.realdata
def test_multisport_file_counts_only_the_run(real_fit_outcomes):
    # triathlon_summary_last.fit: swim, transition, bike, transition, run. Only the run counts;
    # its 1,575 one-second records give 4,236.8 steps against total_strides 2,122 x 2 = 4,244.
    frame = real_fit_outcomes["triathlon_summary_last.fit"].intervals
    assert frame["activity_type"].unique().to_list() == ["running"]
    assert frame["start_utc"].min() >= utc(2023, 9, 2, 13, 56, 34)
    assert frame["steps"].sum() == pytest.approx(4244, rel=0.01)


@pytest.mark.realdata
def test_relative_device_times_are_placed_through_the_activity_message(real_fit_dir):
    # Garmin FR70: every time counts from power-on (session start 17,217,864 s, activity
    # 17,221,751 s) and activity.local_timestamp says 17,221,751 was 2012-02-13 12:21:03 local.
    result = READER.read(real_fit_dir / "python-fitparse" / "compressed-speed-distance.fit", SYDNEY)
    frame = result.intervals
    activity_end = datetime(2012, 2, 13, 12, 21, 3, tzinfo=SYDNEY.zone).astimezone(UTC)
    session_start = activity_end - timedelta(seconds=17_221_751 - 17_217_864)
    assert frame["start_utc"].min() >= session_start
    assert frame["end_utc"].max() <= activity_end
    assert frame["steps"].sum() == pytest.approx(5062 * 2, rel=0.02)  # session total_strides


@pytest.mark.realdata
def test_cycling_cadence_is_not_steps(real_fit_dir, real_fit_outcomes):
    # A Wahoo ELEMNT ride: 118 of 132 records carry a pedalling cadence (up to 82 rpm).
    result = READER.read(real_fit_dir / "python-fitparse" / "elemnt-bolt-no-application-id-inside-developer-data-id.fit", SYDNEY)
    assert result.intervals.height == 0
    assert dict(result.intervals.schema) == READER_COLUMNS
    assert real_fit_outcomes["garmin-edge-500-activity.fit"].intervals.height == 0


# --- generated files --------------------------------------------------------------------------


def fit_seconds(moment: datetime) -> int:
    return round((moment - FIT_EPOCH).total_seconds())


def unix_ms(moment: datetime) -> int:
    """fit-tool's date_time fields take Unix milliseconds."""
    return round(moment.timestamp() * 1000)


def write_fit(path: Path, messages: list) -> Path:
    builder = FitFileBuilder(auto_define=True)
    builder.add_all(messages)
    builder.build().to_file(str(path))
    return path


def file_id(file_type: FileType, created: datetime) -> FileIdMessage:
    message = FileIdMessage()
    message.type = file_type
    message.manufacturer = Manufacturer.GARMIN.value
    message.product = 1837  # vivo_fit
    message.serial_number = 1234
    message.time_created = unix_ms(created)
    return message


def monitoring_info(at: datetime, utc_offset: timedelta | None) -> MonitoringInfoMessage:
    message = MonitoringInfoMessage()
    message.timestamp = unix_ms(at)
    if utc_offset is not None:
        message.local_timestamp = fit_seconds(at + utc_offset)  # local_date_time: raw FIT seconds
    return message


def counter_message(at: datetime, activity_type: ActivityType, counter: int) -> MonitoringMessage:
    """As most Garmin messages are: 16-bit time, type packed in current_activity_type_intensity,
    counter in `cycles` (scale 2, so fitparse reports counter / 2)."""
    message = MonitoringMessage()
    message.timestamp_16 = fit_seconds(at) & 0xFFFF
    message.current_activity_type_intensity = activity_type.value  # intensity 0 in the high bits
    message.cycles = counter / 2
    return message


def day_end_message(at: datetime, activity_type: ActivityType, counter: int) -> MonitoringMessage:
    """Garmin's end-of-day message: full timestamp, explicit activity_type, `steps`."""
    message = MonitoringMessage()
    message.timestamp = unix_ms(at)
    message.activity_type = activity_type  # before steps, or fit-tool stores the value doubled
    message.steps = counter
    return message


def sedentary_message(at: datetime) -> MonitoringMessage:
    message = MonitoringMessage()
    message.timestamp_16 = fit_seconds(at) & 0xFFFF
    message.current_activity_type_intensity = ActivityType.SEDENTARY.value
    return message


def test_timestamp_16_rollover_is_rebuilt_by_the_nearest_difference(tmp_path):
    wrap = FIT_EPOCH + timedelta(seconds=16_411 * 65_536)  # 2024-01-30 01:08:16 UTC, low 16 bits 0
    start = wrap - timedelta(minutes=5)
    path = write_fit(
        tmp_path / "rollover.fit",
        [
            file_id(FileType.MONITORING_B, start),
            monitoring_info(start, utc_offset=None),  # no local time: the participant's zone
            counter_message(wrap - timedelta(seconds=60), ActivityType.WALKING, 100),  # 65,476
            counter_message(wrap + timedelta(seconds=60), ActivityType.WALKING, 250),  # 60
            sedentary_message(wrap - timedelta(seconds=6)),  # 65,530, written late: goes back
            counter_message(wrap + timedelta(seconds=30_000), ActivityType.WALKING, 400),
            counter_message(wrap + timedelta(seconds=60_000), ActivityType.WALKING, 700),
            counter_message(wrap + timedelta(seconds=66_000), ActivityType.WALKING, 1000),  # wraps again
        ],
    )
    result = READER.read(path, ReadContext("p001", "UTC"))
    got = [(row["start_utc"], row["end_utc"], row["steps"], row["cumulative_steps"]) for row in rows(result)]
    midnight = utc(2024, 1, 30)
    assert got == [
        (midnight, wrap - timedelta(seconds=60), 100.0, 100.0),
        (wrap - timedelta(seconds=6), wrap + timedelta(seconds=60), 150.0, 250.0),
        (wrap + timedelta(seconds=60), wrap + timedelta(seconds=30_000), 150.0, 400.0),
        (wrap + timedelta(seconds=30_000), wrap + timedelta(seconds=60_000), 300.0, 700.0),
        (wrap + timedelta(seconds=60_000), wrap + timedelta(seconds=66_000), 300.0, 1000.0),
    ]
    assert result.device_daily_totals["steps"].to_list() == [1000.0]


def test_counter_resets_at_the_devices_local_midnight(tmp_path):
    # The watch is on Sydney summer time (UTC+11); the participant registry says New York, which
    # the file's own offset overrides. Local 2024-01-31 00:00 = 2024-01-30 13:00 UTC.
    local_midnight = utc(2024, 1, 30, 13)

    def at(minutes_from_midnight: int) -> datetime:
        return local_midnight + timedelta(minutes=minutes_from_midnight)

    path = write_fit(
        tmp_path / "midnight.fit",
        [
            file_id(FileType.MONITORING_B, at(-60)),
            monitoring_info(at(-60), utc_offset=timedelta(hours=11)),
            counter_message(at(-30), ActivityType.WALKING, 9000),  # 23:30: first of the file
            counter_message(at(-20), ActivityType.RUNNING, 300),
            counter_message(at(-10), ActivityType.WALKING, 9400),
            day_end_message(at(0), ActivityType.WALKING, 9500),  # 00:00 carries 30 January
            day_end_message(at(0), ActivityType.RUNNING, 300),
            counter_message(at(15), ActivityType.WALKING, 40),  # counted again from midnight
            counter_message(at(30), ActivityType.RUNNING, 20),
            counter_message(at(45), ActivityType.WALKING, 100),
        ],
    )
    result = READER.read(path, ReadContext("p001", "America/New_York"))
    got = [(row["start_utc"], row["end_utc"], row["activity_type"], row["steps"], row["cumulative_steps"]) for row in rows(result)]
    assert got == [
        (at(-24 * 60), at(-30), "walking", 9000.0, 9000.0),  # since local midnight of 30 January
        (at(-30), at(-20), "running", 300.0, 300.0),
        (at(-20), at(-10), "walking", 400.0, 9400.0),
        (at(-10), at(0), "walking", 100.0, 9500.0),
        (at(-10), at(0), "running", 0.0, 300.0),
        (at(0), at(15), "walking", 40.0, 40.0),  # after the reset: the counter itself
        (at(15), at(30), "running", 20.0, 20.0),
        (at(30), at(45), "walking", 60.0, 100.0),
    ]
    assert result.device_daily_totals.select("local_date", "steps").rows() == [
        (date(2024, 1, 30), 9800.0),  # 9500 walking + 300 running
        (date(2024, 1, 31), 120.0),  # 100 walking + 20 running
    ]


def test_walking_and_running_counters_are_kept_apart(tmp_path):
    # Counters per activity type; an interval starts at the previous message of any type.
    start = utc(2024, 3, 5, 9)  # 20:00 in Sydney (UTC+11)
    minute = timedelta(minutes=1)
    path = write_fit(
        tmp_path / "walk_and_run.fit",
        [
            file_id(FileType.MONITORING_A, start),
            monitoring_info(start, utc_offset=timedelta(hours=11)),
            counter_message(start + 1 * minute, ActivityType.WALKING, 1000),
            counter_message(start + 2 * minute, ActivityType.RUNNING, 150),
            sedentary_message(start + 3 * minute),
            counter_message(start + 4 * minute, ActivityType.WALKING, 1080),
            counter_message(start + 5 * minute, ActivityType.RUNNING, 310),
            counter_message(start + 6 * minute, ActivityType.WALKING, 1080),  # worn, no steps
        ],
    )
    result = READER.read(path, SYDNEY)
    got = [(row["start_utc"], row["end_utc"], row["activity_type"], row["steps"]) for row in rows(result)]
    local_midnight = utc(2024, 3, 4, 13)
    assert got == [
        (local_midnight, start + 1 * minute, "walking", 1000.0),
        (start + 1 * minute, start + 2 * minute, "running", 150.0),
        (start + 3 * minute, start + 4 * minute, "walking", 80.0),
        (start + 4 * minute, start + 5 * minute, "running", 160.0),
        (start + 5 * minute, start + 6 * minute, "walking", 0.0),
    ]
    assert result.device_daily_totals.select("local_date", "steps").rows() == [(date(2024, 3, 5), 1390.0)]
    assert result.intervals["device"].unique().to_list() == ["garmin:vivo_fit:1234"]


def test_without_a_device_offset_the_participants_zone_sets_midnight(tmp_path):
    start = utc(2024, 7, 1, 2)  # 12:00 in Sydney (UTC+10 in winter)
    path = write_fit(
        tmp_path / "no_offset.fit",
        [
            file_id(FileType.MONITORING_B, start),
            monitoring_info(start, utc_offset=None),
            counter_message(start + timedelta(hours=1), ActivityType.WALKING, 500),
        ],
    )
    result = READER.read(path, SYDNEY)
    assert [(row["start_utc"], row["steps"]) for row in rows(result)] == [(utc(2024, 6, 30, 14), 500.0)]
    assert result.device_daily_totals["local_date"].to_list() == [date(2024, 7, 1)]


def test_monitoring_without_any_full_timestamp_is_a_corrupt_file(tmp_path):
    start = utc(2024, 7, 1, 2)
    path = write_fit(
        tmp_path / "no_anchor.fit",
        [file_id(FileType.MONITORING_B, start), counter_message(start, ActivityType.WALKING, 500)],
    )
    with pytest.raises(CorruptFile, match="no full timestamp"):
        READER.read(path, SYDNEY)


def session(sport: Sport, start: datetime, elapsed_s: float) -> SessionMessage:
    message = SessionMessage()
    message.timestamp = unix_ms(start + timedelta(seconds=elapsed_s))
    message.start_time = unix_ms(start)
    message.total_elapsed_time = elapsed_s
    message.sport = sport
    return message


def record(at: datetime, cadence: int | None, fractional: float = 0.0, distance_m: float | None = None) -> RecordMessage:
    message = RecordMessage()
    message.timestamp = unix_ms(at)
    if cadence is not None:
        message.cadence = cadence
        message.fractional_cadence = fractional
    if distance_m is not None:
        message.distance = distance_m
    return message


def activity_fixture(path: Path) -> Path:
    walk = utc(2024, 5, 1, 22)
    ride = walk + timedelta(hours=2)

    def at(start: datetime, seconds: int) -> datetime:
        return start + timedelta(seconds=seconds)

    return write_fit(
        path,
        [
            file_id(FileType.ACTIVITY, walk),
            record(at(walk, 0), 50, distance_m=0.0),
            record(at(walk, 10), 50, 0.5, distance_m=10.0),  # 2 x 50.5 = 101 steps/min
            record(at(walk, 20), 55, distance_m=22.0),
            record(at(walk, 150), 60, distance_m=30.0),  # after a 130 s pause: no interval
            record(at(walk, 160), 60, distance_m=45.0),
            record(at(walk, 165), None, distance_m=50.0),  # no cadence: no interval
            session(Sport.WALKING, walk, 200.0),
            record(at(ride, 0), 80),
            record(at(ride, 10), 85),
            session(Sport.CYCLING, ride, 100.0),
        ],
    )


def test_activity_cadence_becomes_step_intervals(tmp_path, capsys):
    result = READER.read(activity_fixture(tmp_path / "walk.fit"), SYDNEY)
    walk = utc(2024, 5, 1, 22)
    got = [(row["start_utc"], row["end_utc"], row["steps"], row["distance_m"]) for row in rows(result)]
    assert got == [
        (walk, walk + timedelta(seconds=10), pytest.approx(101 * 10 / 60), 10.0),
        (walk + timedelta(seconds=10), walk + timedelta(seconds=20), pytest.approx(110 * 10 / 60), 12.0),
        (walk + timedelta(seconds=150), walk + timedelta(seconds=160), pytest.approx(120 * 10 / 60), 15.0),
    ]
    assert result.intervals["activity_type"].unique().to_list() == ["walking"]
    assert result.intervals["source"].unique().to_list() == ["fit_activity"]
    assert result.intervals["cumulative_steps"].null_count() == 3
    assert result.device_daily_totals is None
    assert capsys.readouterr() == ("", "")


def test_a_file_type_without_steps_is_unrecognised(tmp_path):
    path = write_fit(tmp_path / "settings.fit", [file_id(FileType.SETTINGS, utc(2024, 1, 1))])
    with pytest.raises(UnrecognisedFormat, match="FIT file of type settings holds no step data"):
        READER.read(path, SYDNEY)


# --- damaged files ----------------------------------------------------------------------------


def test_garbage_named_fit_is_a_corrupt_file(tmp_path):
    path = tmp_path / "export.fit"
    path.write_bytes(b"Id,ActivityMinute,Steps\n1503960366,4/12/2016 12:00:00 AM,0\n")
    assert not READER.detect(path, path.read_bytes())
    with pytest.raises(CorruptFile, match="header") as raised:
        READER.read(path, SYDNEY)
    assert raised.value.offset == 0


def test_empty_file_is_a_corrupt_file(tmp_path):
    path = tmp_path / "empty.fit"
    path.write_bytes(b"")
    assert not READER.detect(path, b"")
    with pytest.raises(CorruptFile, match="truncated") as raised:
        READER.read(path, SYDNEY)
    assert raised.value.offset == 0


def test_file_cut_short_is_a_corrupt_file(tmp_path):
    whole = activity_fixture(tmp_path / "whole.fit").read_bytes()
    path = tmp_path / "cut.fit"
    path.write_bytes(whole[:100])
    assert READER.detect(path, path.read_bytes())
    with pytest.raises(CorruptFile, match="truncated") as raised:
        READER.read(path, SYDNEY)
    assert raised.value.offset == 98  # the data message that was cut off starts there


def test_missing_file_is_a_typed_error(tmp_path):
    with pytest.raises(InputFileError, match="cannot be opened"):
        READER.read(tmp_path / "gone.fit", SYDNEY)


def with_valid_crc(data: bytes) -> bytes:
    """The file with its trailing CRC recomputed, so the decoder meets the damage itself."""
    return data[:-2] + crc16(data[:-2]).to_bytes(2, "little")


@pytest.mark.parametrize("fixture", ["monitoring", "activity"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_bytes_never_raise_an_untyped_error(tmp_path, fixture, data):
    path = tmp_path / f"{fixture}.fit"
    if fixture == "activity":
        original = activity_fixture(tmp_path / "original.fit").read_bytes()
    else:
        start = utc(2024, 1, 30, 12)
        original = write_fit(
            tmp_path / "original.fit",
            [
                file_id(FileType.MONITORING_B, start),
                monitoring_info(start, timedelta(hours=11)),
                counter_message(start + timedelta(minutes=5), ActivityType.WALKING, 300),
                sedentary_message(start + timedelta(minutes=6)),
                day_end_message(start + timedelta(hours=1), ActivityType.RUNNING, 40),
            ],
        ).read_bytes()
    damaged = bytearray(original)
    header_size = original[0]
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(header_size, len(original) - 3))
        damaged[position] = data.draw(st.integers(0, 255))
    path.write_bytes(with_valid_crc(bytes(damaged)))
    try:
        result = READER.read(path, SYDNEY)
    except InputFileError:
        return
    assert (result.intervals["steps"] >= 0).all()
    assert (result.intervals["start_utc"] <= result.intervals["end_utc"]).all()
