"""Samsung Health step_daily_trend and pedometer_step_count CSVs: the real sample (figures checked
by hand with awk), the traps (BOM, metadata line, trailing comma, merged vs device rows, re-synced
duplicates, empty cells) and property tests on generated files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile, InputFileError
from pipeline.sources.base import ReadContext
from pipeline.sources.samsung_health import SamsungHealthReader

READER = SamsungHealthReader()
NEW_YORK = ReadContext("p1", "America/New_York")
BOM = "\ufeff"
TREND_META = "com.samsung.shealth.step_daily_trend,6307003,6"
TREND_HEADER = "binning_data,update_time,create_time,source_pkg_name,source_type,count,speed,distance,calorie,deviceuuid,pkg_name,datauuid,day_time"
PEDOMETER_META = "com.samsung.shealth.tracker.pedometer_step_count,6315005,17"
PEDOMETER_HEADER = (
    "source,tag_id,run_step,walk_step,com.samsung.health.step_count.start_time,"
    "com.samsung.health.step_count.end_time,com.samsung.health.step_count.time_offset,"
    "com.samsung.health.step_count.count,com.samsung.health.step_count.distance,"
    "com.samsung.health.step_count.deviceuuid,com.samsung.health.step_count.datauuid,binning_data"
)


# -- helpers -----------------------------------------------------------------------------------


def day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def trend_row(day: date, source_type: int, count: str, distance: str = "", updated: str = "2024-01-01 05:00:00.000") -> str:
    return f"x.binning_data.json,{updated},{updated},com.sec.android.app.shealth,{source_type},{count},1.2,{distance},5.0,dev,com.sec.android.app.shealth,uuid,{day_ms(day)},"


def trend_file(rows: list[str]) -> str:
    return BOM + TREND_META + "\n" + TREND_HEADER + "\n" + "".join(row + "\n" for row in rows)


def pedometer_row(start: str, end: str, count: str, distance: str = "", device: str = "VfS0qUERdZ", offset: str = "UTC+0900") -> str:
    return f"0,360003,0,{count},{start},{end},{offset},{count},{distance},{device},u-{start},,"


def pedometer_file(rows: list[str]) -> str:
    return BOM + PEDOMETER_META + "\n" + PEDOMETER_HEADER + "\n" + "".join(row + "\n" for row in rows)


def write(tmp_path, text: str | bytes, name: str = "upload.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read(path, context: ReadContext = NEW_YORK):
    assert READER.detect(path, path.read_bytes()[:4096])
    return READER.read(path, context)


def on_day(frame: pl.DataFrame, day: date, zone: str = "America/New_York") -> pl.DataFrame:
    return frame.filter(pl.col("start_utc").dt.convert_time_zone(zone).dt.date() == day)


# -- the real sample ---------------------------------------------------------------------------

REAL = "csv/samsung_health/com.samsung.shealth.step_daily_trend.csv"


@pytest.mark.realdata
def test_real_daily_trend_merged_rows_only(realdata):
    result = read(realdata / REAL)
    frame = result.intervals
    # awk -F, 'NR>2 && $5==-2': 1,968 rows, 10,130,075 steps, 7,580,661.772 m
    assert frame.height == 1968 and frame["steps"].sum() == 10130075
    assert frame["distance_m"].sum() == pytest.approx(7580661.772, abs=0.01)
    assert frame["device"].unique().to_list() == ["merged"] and frame["source"].unique().to_list() == ["samsung_health"]
    # 2019-06-12 (day_time 1560297600000, line 1236): 1,543 steps, midnight to midnight in New York
    first = on_day(frame, date(2019, 6, 12)).row(0, named=True)
    assert first["steps"] == 1543 and first["distance_m"] == pytest.approx(439.50006)
    assert first["start_utc"] == datetime(2019, 6, 12, 4, tzinfo=UTC)
    assert first["end_utc"] == datetime(2019, 6, 13, 4, tzinfo=UTC)
    # 2024-11-03, the autumn DST day (25 hours): merged 5,674
    autumn = on_day(frame, date(2024, 11, 3)).row(0, named=True)
    assert autumn["steps"] == 5674 and autumn["end_utc"] - autumn["start_utc"] == timedelta(hours=25)


@pytest.mark.realdata
def test_real_device_rows_are_for_cross_checking_only(realdata):
    result = read(realdata / REAL)
    totals = result.device_daily_totals
    by_device = {row["device"]: row for row in totals.group_by("device").agg(pl.len(), pl.col("steps").sum()).iter_rows(named=True)}
    # awk: source_type 0 -> 1,967 rows / 9,242,592 steps; 108 -> 153 rows / 1,431,257 steps
    assert by_device["phone"]["len"] == 1967 and by_device["phone"]["steps"] == 9242592
    assert by_device["watch"]["len"] == 153 and by_device["watch"]["steps"] == 1431257
    # 2025-02-21: merged 14,286; phone 7,475 + watch 13,576 = 21,051 would double count
    day = date(2025, 2, 21)
    assert on_day(result.intervals, day)["steps"].to_list() == [14286]
    day_totals = totals.filter(pl.col("local_date") == day).sort("device")
    assert day_totals.select("device", "steps").rows() == [("phone", 7475.0), ("watch", 13576.0)]


@pytest.mark.realdata
def test_real_day_time_is_a_local_date_in_any_zone(realdata):
    # west and east of UTC: the date stays 2019-06-12, never moved back a day
    for zone, start in [("America/Los_Angeles", datetime(2019, 6, 12, 7, tzinfo=UTC)), ("Pacific/Auckland", datetime(2019, 6, 11, 12, tzinfo=UTC))]:
        frame = read(realdata / REAL, ReadContext("p1", zone)).intervals
        row = on_day(frame, date(2019, 6, 12), zone).row(0, named=True)
        assert row["steps"] == 1543 and row["start_utc"] == start


# -- traps -------------------------------------------------------------------------------------


def test_bom_metadata_line_and_trailing_comma(tmp_path):
    path = write(tmp_path, trend_file([trend_row(date(2024, 3, 1), -2, "4321", "3000.5")]), name="notes.txt")
    frame = read(path).intervals
    assert frame["steps"].to_list() == [4321] and frame["distance_m"].to_list() == [3000.5]


def test_file_without_trailing_commas_is_read_too(tmp_path):
    path = write(tmp_path, trend_file([trend_row(date(2024, 3, 1), -2, "4321").rstrip(",")]))
    assert read(path).intervals["steps"].to_list() == [4321]


def test_merged_and_device_rows_are_never_summed(tmp_path):
    day = date(2024, 3, 1)
    path = write(tmp_path, trend_file([trend_row(day, 0, "60"), trend_row(day, -2, "100"), trend_row(day, 108, "70"), trend_row(day, 5, "9")]))
    result = read(path)
    assert result.intervals["steps"].to_list() == [100]
    assert sorted(result.device_daily_totals.select("device", "steps").rows()) == [("phone", 60.0), ("source_type 5", 9.0), ("watch", 70.0)]
    assert result.device_daily_totals["local_date"].unique().to_list() == [day]


def test_resynced_duplicates_keep_the_latest_update(tmp_path):
    day = date(2024, 3, 1)
    rows = [
        trend_row(day, -2, "900", updated="2024-03-02 05:00:00.000"),
        trend_row(day, -2, "1200", updated="2024-03-03 05:00:00.000"),
        trend_row(day, -2, "1000", updated="2024-03-02 18:00:00.000"),
        trend_row(day, -2, "1200", updated="2024-03-03 05:00:00.000"),
    ]
    assert read(write(tmp_path, trend_file(rows))).intervals["steps"].to_list() == [1200]


def test_empty_count_is_missing_not_zero(tmp_path):
    rows = [trend_row(date(2024, 3, 1), -2, ""), trend_row(date(2024, 3, 2), -2, "0")]
    frame = read(write(tmp_path, trend_file(rows))).intervals
    assert frame.height == 1 and frame["steps"].to_list() == [0]
    assert frame["start_utc"][0] == datetime(2024, 3, 2, 5, tzinfo=UTC)


def test_spring_day_with_midnight_gap(tmp_path):
    # Santiago skips 00:00-01:00 on 2022-09-11: the day starts at 01:00 local, flagged
    frame = read(write(tmp_path, trend_file([trend_row(date(2022, 9, 11), -2, "5000")])), ReadContext("p1", "America/Santiago")).intervals
    row = frame.row(0, named=True)
    assert row["start_utc"] == datetime(2022, 9, 11, 4, tzinfo=UTC) and row["clock_adjusted"]
    assert row["end_utc"] - row["start_utc"] == timedelta(hours=23)


def test_errors_count_the_metadata_line(tmp_path):
    rows = [trend_row(date(2024, 3, 1), -2, "100"), trend_row(date(2024, 3, 2), -2, "1o0")]
    with pytest.raises(CorruptFile) as caught:
        READER.read(write(tmp_path, trend_file(rows)), NEW_YORK)
    assert caught.value.line == 4 and "'1o0'" in caught.value.problem


def test_day_time_off_midnight_is_corrupt(tmp_path):
    row = trend_row(date(2024, 3, 1), -2, "100").replace(str(day_ms(date(2024, 3, 1))), str(day_ms(date(2024, 3, 1)) + 3_600_000))
    with pytest.raises(CorruptFile) as caught:
        READER.read(write(tmp_path, trend_file([row])), NEW_YORK)
    assert caught.value.line == 3 and "00:00 UTC" in caught.value.problem


def test_detect_by_content(tmp_path):
    assert READER.detect(tmp_path / "x", (BOM + TREND_META + "\n" + TREND_HEADER + "\n").encode())
    assert READER.detect(tmp_path / "x", (BOM + PEDOMETER_META + "\n" + PEDOMETER_HEADER + "\n").encode())
    assert not READER.detect(tmp_path / "x", b"com.samsung.shealth.sleep,6307003,6\nstart_time,end_time\n")
    assert not READER.detect(tmp_path / "x", b"Date,Step count\n2024-01-01,5\n")
    assert not READER.detect(tmp_path / "x", b"\x00\x01\x02binary")


def test_detection_splits_lines_as_the_reader_does(tmp_path):
    # a form feed or vertical tab is no line break for the reader (the csv module); nor for detection
    rows = [trend_row(date(2024, 3, 1), -2, "4321")]
    for odd in ("\x0c", "\x0b", "\x1c", "\u2028"):
        text = trend_file(rows).replace("\n" + TREND_HEADER, "\n" + odd + TREND_HEADER.replace(",count,", f",{odd}count,"))
        path = write(tmp_path, text, f"odd-{ord(odd)}.csv")
        frame = read(path).intervals  # read() asserts detection first
        assert frame["steps"].sum() == 4321


def test_pedometer_intervals_are_utc(tmp_path):
    rows = [
        pedometer_row("2024-03-01 00:10:00.000", "2024-03-01 00:11:00.000", "95", "70.5", device="watch1"),
        pedometer_row("2024-03-01 00:10:00.000", "2024-03-01 00:11:00.000", "90", "", device="phone1"),
        pedometer_row("2024-03-01 00:10:00.000", "2024-03-01 00:11:00.000", "95", "70.5", device="watch1"),  # repeat
        pedometer_row("2024-03-01 00:12:00.000", "2024-03-01 00:13:00.000", "", ""),  # no count: missing
    ]
    result = read(write(tmp_path, pedometer_file(rows)))
    frame = result.intervals.sort("device")
    assert result.device_daily_totals is None
    assert frame.select("device", "start_utc", "end_utc", "steps", "distance_m").rows() == [
        ("phone1", datetime(2024, 3, 1, 0, 10, tzinfo=UTC), datetime(2024, 3, 1, 0, 11, tzinfo=UTC), 90.0, None),
        ("watch1", datetime(2024, 3, 1, 0, 10, tzinfo=UTC), datetime(2024, 3, 1, 0, 11, tzinfo=UTC), 95.0, 70.5),
    ]


def test_pedometer_bad_time_offset_is_corrupt(tmp_path):
    rows = [pedometer_row("2024-03-01 00:10:00.000", "2024-03-01 00:11:00.000", "95", offset="+9")]
    with pytest.raises(CorruptFile) as caught:
        READER.read(write(tmp_path, pedometer_file(rows)), NEW_YORK)
    assert caught.value.line == 3 and "time_offset" in caught.value.problem


# -- property tests ----------------------------------------------------------------------------

days_strategy = st.dictionaries(
    st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)),
    st.tuples(
        st.one_of(st.none(), st.integers(0, 60_000)),  # merged count (None = empty cell)
        st.one_of(st.none(), st.integers(0, 60_000)),  # phone row
        st.one_of(st.none(), st.integers(0, 60_000)),  # watch row
    ),
    max_size=25,
)
ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "UTC"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=days_strategy, zone=st.sampled_from(ZONES), shuffle=st.randoms())
def test_generated_daily_trends_round_trip(tmp_path, days, zone, shuffle):
    rows = []
    for day, (merged, phone, watch) in days.items():
        rows.append(trend_row(day, -2, "" if merged is None else str(merged), str((merged or 0) * 0.7)))
        if phone is not None:
            rows.append(trend_row(day, 0, str(phone)))
        if watch is not None:
            rows.append(trend_row(day, 108, str(watch)))
    shuffle.shuffle(rows)
    result = read(write(tmp_path, trend_file(rows)), ReadContext("p1", zone))
    got = {
        row["start_utc"].astimezone(ZoneInfo(zone)).date(): row["steps"]
        for row in result.intervals.iter_rows(named=True)
    }
    assert got == {day: merged for day, (merged, _, _) in days.items() if merged is not None}
    assert result.intervals["end_utc"].gt(result.intervals["start_utc"]).all()
    expected_totals = sorted(
        [(day, "phone", float(phone)) for day, (_, phone, _) in days.items() if phone is not None]
        + [(day, "watch", float(watch)) for day, (_, _, watch) in days.items() if watch is not None]
    )
    assert sorted(result.device_daily_totals.select("local_date", "device", "steps").rows()) == expected_totals


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    samples=st.lists(
        st.tuples(
            st.sampled_from(["phone-uuid", "watch-uuid"]),
            st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2030, 12, 31)).map(lambda d: d.replace(microsecond=0)),
            st.integers(1, 600),  # seconds
            st.integers(0, 2000),  # steps
            st.sampled_from(["UTC+0900", "UTC-0500", "UTC+0000", "UTC+0530"]),
        ),
        max_size=30,
        unique_by=lambda sample: (sample[0], sample[1]),
    )
)
def test_generated_pedometer_files_round_trip(tmp_path, samples):
    rows = [
        pedometer_row(f"{start:%Y-%m-%d %H:%M:%S}.000", f"{start + timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S}.000", str(steps), device=device, offset=offset)
        for device, start, seconds, steps, offset in samples
    ]
    frame = read(write(tmp_path, pedometer_file(rows))).intervals
    expected = sorted(
        (device, start.replace(tzinfo=UTC), start.replace(tzinfo=UTC) + timedelta(seconds=seconds), float(steps))
        for device, start, seconds, steps, _ in samples
    )
    assert sorted(frame.select("device", "start_utc", "end_utc", "steps").rows()) == expected


def _valid_trend(count: int) -> bytes:
    return trend_file([trend_row(date(2024, 1, 1) + timedelta(days=i), -2, str(100 + i), "55.5") for i in range(count)]).encode()


def _damage(kind: str, data: bytes, where: int, junk: bytes) -> bytes:
    lines = data.split(b"\n")
    row = 2 + where % max(1, len(lines) - 3)
    if kind == "truncated":
        return data[: where % len(data)]
    if kind == "bad number":
        lines[row] = lines[row].replace(b",55.5,", b",5x5,")
        return b"\n".join(lines)
    if kind == "missing column":
        header = lines[1].split(b",")
        column = where % len(header)
        lines = [
            b",".join(field for index, field in enumerate(line.split(b",")) if index != column) if number >= 1 else line
            for number, line in enumerate(lines)
        ]
        return b"\n".join(lines)
    if kind == "not utf-8":
        return data[:row * 5] + b"\xff\xfe\xfd" + data[row * 5:]
    if kind == "ragged row":
        lines[row] = lines[row] + b",extra,fields"
        return b"\n".join(lines)
    return junk


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["truncated", "bad number", "missing column", "not utf-8", "ragged row", "junk"]),
    count=st.integers(1, 10),
    where=st.integers(0, 10_000),
    junk=st.binary(max_size=400),
)
def test_damaged_files_raise_a_typed_error_with_a_place(tmp_path, kind, count, where, junk):
    path = write(tmp_path, _damage(kind, _valid_trend(count), where, junk))
    try:
        result = READER.read(path, NEW_YORK)
    except InputFileError as error:
        assert error.path == str(path) and error.reader == "samsung_health"
        assert error.line is not None or error.offset is not None
        return
    # only a cut that happens to fall between whole fields, or a dropped column that is optional,
    # can still be read; everything else must raise
    assert kind in {"truncated", "missing column"}, f"{kind} was read without error"
    assert result.intervals["steps"].is_not_null().all()
