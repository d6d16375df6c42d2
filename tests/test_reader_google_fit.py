"""Google Fit Takeout CSVs: the daily file and the per-day 15-minute files. Real samples (figures
checked by hand with awk), the traps (columns by name, empty = missing, the date only in the file
name, DST days) and property tests on generated files."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile, InputFileError
from pipeline.sources.base import ReadContext
from pipeline.sources.google_fit import GoogleFitReader

READER = GoogleFitReader()
HELSINKI = ReadContext("p1", "Europe/Helsinki")
PER_DAY_HEADER = "Start time,End time,Move Minutes count,Calories (kcal),Distance (m),Heart Points,Step count,Walking duration (ms)"


def write(tmp_path, text: str | bytes, name: str = "Daily activity metrics.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read(path, context: ReadContext = HELSINKI) -> pl.DataFrame:
    assert READER.detect(path, path.read_bytes()[:4096])
    result = READER.read(path, context)
    assert result.device_daily_totals is None
    return result.intervals


def interval_on(frame: pl.DataFrame, day: date, zone: str = "Europe/Helsinki") -> dict:
    rows = frame.filter(pl.col("start_utc").dt.convert_time_zone(zone).dt.date() == day)
    assert rows.height == 1
    return rows.row(0, named=True)


def slot_row(start: str, end: str, steps: str, distance: str = "") -> str:
    return f"{start},{end},,18.25,{distance},,{steps},"


# -- real samples ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_daily_activity_metrics(realdata):
    frame = read(realdata / "csv/google_fit/Daily_activity_metrics_2018-2021.csv")
    # awk -F, 'NR>1 && $15!=""': 1,029 dates with a step count (24 without: no interval),
    # 3,479,908 steps, 1,850,164.115 m over the 992 rows that have a distance
    assert frame.height == 1029 and frame["steps"].sum() == 3479908
    assert frame["distance_m"].sum() == pytest.approx(1850164.115, abs=0.01)
    assert frame["distance_m"].null_count() == 37
    assert frame["device"].unique().to_list() == ["google_fit"]
    first = interval_on(frame, date(2018, 4, 3))
    assert first["steps"] == 1627 and first["distance_m"] == pytest.approx(852.189078)
    assert first["start_utc"] == datetime(2018, 4, 2, 21, tzinfo=UTC)  # local midnight, EEST
    last = interval_on(frame, date(2021, 2, 17))
    assert last["steps"] == 18 and last["distance_m"] is None  # empty distance stays missing
    # DST days in Helsinki: 23 and 25 hours
    spring = interval_on(frame, date(2019, 3, 31))
    assert spring["steps"] == 1311 and spring["end_utc"] - spring["start_utc"] == timedelta(hours=23)
    autumn = interval_on(frame, date(2019, 10, 27))
    assert autumn["steps"] == 2720 and autumn["end_utc"] - autumn["start_utc"] == timedelta(hours=25)
    assert interval_on(frame, date(2020, 6, 15))["steps"] == 4519


@pytest.mark.realdata
def test_real_per_day_file(realdata):
    frame = read(realdata / "csv/google_fit/per_day_15min_2023-11-20.csv").sort("start_utc")
    # awk -F, 'NR>1 && $15!=""': 19 slots with steps (of 96), 5,627 steps
    assert frame.height == 19 and frame["steps"].sum() == 5627
    assert ((frame["end_utc"] - frame["start_utc"]) == timedelta(minutes=15)).all()
    first = frame.row(0, named=True)  # 14:15:00.000+02:00 -> 14:30, 737 steps, 517.64 m
    assert first["start_utc"] == datetime(2023, 11, 20, 12, 15, tzinfo=UTC)
    assert first["steps"] == 737 and first["distance_m"] == pytest.approx(517.6409714)
    last = frame.row(-1, named=True)  # 22:15+02:00, 2 steps, no distance
    assert last["start_utc"] == datetime(2023, 11, 20, 20, 15, tzinfo=UTC)
    assert last["steps"] == 2 and last["distance_m"] is None
    assert frame["distance_m"].null_count() == 3


@pytest.mark.realdata
def test_real_per_day_file_without_a_date_in_its_name(realdata, tmp_path):
    path = tmp_path / "activity.csv"
    shutil.copy(realdata / "csv/google_fit/per_day_15min_2023-11-20.csv", path)
    assert READER.detect(path, path.read_bytes()[:4096])  # still recognised by content
    with pytest.raises(CorruptFile) as caught:
        READER.read(path, HELSINKI)
    assert "only in its name" in caught.value.problem and "activity.csv" in caught.value.problem
    assert caught.value.offset == 0


# -- traps -------------------------------------------------------------------------------------


def test_columns_are_found_by_name_in_any_order(tmp_path):
    text = "Heart Points,Step count,Date,Distance (m),Move Minutes count\n3,1200,2024-05-01,900.5,10\n,,2024-05-02,,\n,0,2024-05-03,,\n"
    frame = read(write(tmp_path, text, name="Daily Summaries.csv"), ReadContext("p1", "UTC")).sort("start_utc")
    assert frame.select("start_utc", "end_utc", "steps", "distance_m").rows() == [
        (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC), 1200.0, 900.5),
        (datetime(2024, 5, 3, tzinfo=UTC), datetime(2024, 5, 4, tzinfo=UTC), 0.0, None),  # 0 is 0; empty is missing
    ]


def test_daily_file_without_step_column_has_no_intervals(tmp_path):
    frame = read(write(tmp_path, "Date,Calories (kcal),Move Minutes count\n2024-05-01,2100,12\n"))
    assert frame.height == 0


def test_repeated_date_is_corrupt(tmp_path):
    text = "Date,Step count,Distance (m)\n2024-05-01,10,1\n2024-05-02,20,2\n2024-05-01,30,3\n"
    with pytest.raises(CorruptFile) as caught:
        READER.read(write(tmp_path, text), HELSINKI)
    assert caught.value.line == 4


def test_per_day_last_slot_ends_next_day_and_blank_steps_are_missing(tmp_path):
    rows = [
        slot_row("23:15:00.000+02:00", "23:30:00.000+02:00", ""),
        slot_row("23:30:00.000+02:00", "23:45:00.000+02:00", "0"),
        slot_row("23:45:00.000+02:00", "00:00:00.000+02:00", "40", "30.0"),
    ]
    frame = read(write(tmp_path, PER_DAY_HEADER + "\n" + "\n".join(rows), name="2024-01-31.csv")).sort("start_utc")
    assert frame.select("start_utc", "end_utc", "steps").rows() == [
        (datetime(2024, 1, 31, 21, 30, tzinfo=UTC), datetime(2024, 1, 31, 21, 45, tzinfo=UTC), 0.0),
        (datetime(2024, 1, 31, 21, 45, tzinfo=UTC), datetime(2024, 1, 31, 22, 0, tzinfo=UTC), 40.0),
    ]


def test_per_day_file_on_the_autumn_dst_day(tmp_path):
    # Helsinki 2023-10-29: 03:00 EEST -> 03:00 EET; 100 slots, the 03:xx hour twice
    helsinki = ZoneInfo("Europe/Helsinki")
    first = datetime(2023, 10, 28, 21, tzinfo=UTC)  # local midnight, EEST

    def clock(moment: datetime) -> str:
        local = moment.astimezone(helsinki)
        return local.strftime("%H:%M:%S.000") + f"+0{int(local.utcoffset().total_seconds() // 3600)}:00"

    rows = [
        slot_row(clock(first + timedelta(minutes=15 * index)), clock(first + timedelta(minutes=15 * (index + 1))), str(index))
        for index in range(100)
    ]
    assert rows[12].startswith("03:00:00.000+03:00") and rows[16].startswith("03:00:00.000+02:00")
    frame = read(write(tmp_path, PER_DAY_HEADER + "\n" + "\n".join(rows) + "\n", name="2023-10-29.csv"))
    assert frame.height == 100 and frame["start_utc"].n_unique() == 100
    assert ((frame["end_utc"] - frame["start_utc"]) == timedelta(minutes=15)).all()
    assert frame["start_utc"].min() == datetime(2023, 10, 28, 21, tzinfo=UTC)
    assert frame["end_utc"].max() == datetime(2023, 10, 29, 22, tzinfo=UTC)


def test_per_day_bad_time_names_its_line(tmp_path):
    rows = [slot_row("09:30:00.000+02:00", "09:45:00.000+02:00", "5"), slot_row("9.45", "10:00:00.000+02:00", "5")]
    with pytest.raises(CorruptFile) as caught:
        READER.read(write(tmp_path, PER_DAY_HEADER + "\n" + "\n".join(rows) + "\n", name="2024-01-31.csv"), HELSINKI)
    assert caught.value.line == 3 and "'9.45'" in caught.value.problem


def test_detect_by_content(tmp_path):
    path = tmp_path / "whatever"
    assert READER.detect(path, b"Date,Step count,Distance (m)\n2024-01-01,5,3\n")
    assert READER.detect(path, (PER_DAY_HEADER + "\n" + slot_row("00:00:00.000+02:00", "00:15:00.000+02:00", "") + "\n").encode())
    assert not READER.detect(path, b"Date,Steps\n2024-01-01,5\n")
    assert not READER.detect(path, b"Start time,End time,Step count\n2024-01-01 10:00,2024-01-01 10:15,5\n")
    assert not READER.detect(path, b"Id,ActivityMinute,Steps\n1,4/12/2016 12:00:00 AM,0\n")


# -- property tests ----------------------------------------------------------------------------

OPTIONAL_COLUMNS = ["Calories (kcal)", "Move Minutes count", "Heart Points", "Walking duration (ms)"]
ZONES = ["Europe/Helsinki", "America/Chicago", "Australia/Sydney", "UTC"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    days=st.dictionaries(
        st.dates(min_value=date(2014, 1, 1), max_value=date(2030, 12, 31)),
        st.tuples(st.one_of(st.none(), st.integers(0, 80_000)), st.one_of(st.none(), st.integers(0, 90_000))),
        max_size=30,
    ),
    extra=st.lists(st.sampled_from(OPTIONAL_COLUMNS), unique=True, min_size=1),
    order=st.randoms(),
    zone=st.sampled_from(ZONES),
)
def test_generated_daily_files_round_trip(tmp_path, days, extra, order, zone):
    columns = ["Date", "Step count", "Distance (m)", *extra]
    order.shuffle(columns)
    lines = [",".join(columns)]
    for day, (steps, metres) in days.items():
        cells = {"Date": day.isoformat(), "Step count": "" if steps is None else str(steps),
                 "Distance (m)": "" if metres is None else f"{metres / 10}"}
        lines.append(",".join(cells.get(column, "1") for column in columns))
    frame = read(write(tmp_path, "\n".join(lines) + "\n"), ReadContext("p1", zone))
    local = ZoneInfo(zone)
    got = {row["start_utc"].astimezone(local).date(): (row["steps"], row["distance_m"]) for row in frame.iter_rows(named=True)}
    expected = {day: (float(steps), None if metres is None else metres / 10) for day, (steps, metres) in days.items() if steps is not None}
    assert got == expected
    for row in frame.iter_rows(named=True):  # each interval is exactly one local day
        assert row["end_utc"].astimezone(local).date() - row["start_utc"].astimezone(local).date() == timedelta(days=1)
        assert row["start_utc"].astimezone(local).time() in {datetime.min.time(), datetime(1, 1, 1, 1).time()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    day=st.dates(min_value=date(2014, 1, 1), max_value=date(2030, 12, 31)),
    offset_minutes=st.sampled_from([-300, -240, 0, 60, 120, 180, 330, 600]),
    steps=st.lists(st.one_of(st.none(), st.integers(0, 3000)), min_size=96, max_size=96),
)
def test_generated_per_day_files_round_trip(tmp_path, day, offset_minutes, steps):
    sign = "+" if offset_minutes >= 0 else "-"
    offset = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    rows = []
    for slot, count in enumerate(steps):
        begin = datetime(2000, 1, 1) + timedelta(minutes=15 * slot)
        end = begin + timedelta(minutes=15)
        rows.append(slot_row(begin.strftime("%H:%M:%S.000") + offset, end.strftime("%H:%M:%S.000") + offset, "" if count is None else str(count)))
    frame = read(write(tmp_path, PER_DAY_HEADER + "\n" + "\n".join(rows) + "\n", name=f"{day.isoformat()}.csv"))
    midnight_utc = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(minutes=offset_minutes)
    expected = [
        (midnight_utc + timedelta(minutes=15 * slot), midnight_utc + timedelta(minutes=15 * (slot + 1)), float(count))
        for slot, count in enumerate(steps)
        if count is not None
    ]
    assert sorted(frame.select("start_utc", "end_utc", "steps").rows()) == expected


def _valid_daily(count: int) -> bytes:
    lines = ["Date,Calories (kcal),Step count,Distance (m)"]
    lines += [f"{date(2024, 1, 1) + timedelta(days=i)},2000.5,{100 + i},75.25" for i in range(count)]
    return ("\n".join(lines) + "\n").encode()


def _valid_per_day(count: int) -> bytes:
    rows = [slot_row(f"{slot // 4:02d}:{slot % 4 * 15:02d}:00.000+02:00", f"{(slot + 1) // 4:02d}:{(slot + 1) % 4 * 15:02d}:00.000+02:00", str(slot), "75.25") for slot in range(count)]
    return (PER_DAY_HEADER + "\n" + "\n".join(rows) + "\n").encode()


def _damage(kind: str, data: bytes, where: int, junk: bytes) -> bytes:
    lines = data.split(b"\n")
    row = 1 + where % max(1, len(lines) - 2)
    if kind == "truncated":
        return data[: where % len(data)]
    if kind == "bad number":
        lines[row] = lines[row].replace(b",75.25", b",7 5.2.5")
        return b"\n".join(lines)
    if kind == "missing column":
        column = where % len(lines[0].split(b","))
        return b"\n".join(b",".join(f for i, f in enumerate(line.split(b",")) if i != column) if line else line for line in lines)
    if kind == "not utf-8":
        return data[: row * 7] + b"\xc3\x28" + data[row * 7 :]
    if kind == "ragged row":
        lines[row] = lines[row] + b",1"
        return b"\n".join(lines)
    return junk


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    per_day=st.booleans(),
    kind=st.sampled_from(["truncated", "bad number", "missing column", "not utf-8", "ragged row", "junk"]),
    count=st.integers(1, 10),
    where=st.integers(0, 10_000),
    junk=st.binary(max_size=400),
)
def test_damaged_files_raise_a_typed_error_with_a_place(tmp_path, per_day, kind, count, where, junk):
    data = _damage(kind, (_valid_per_day if per_day else _valid_daily)(count), where, junk)
    path = write(tmp_path, data, name="2024-01-01.csv")
    try:
        result = READER.read(path, HELSINKI)
    except InputFileError as error:
        assert error.path == str(path) and error.reader == "google_fit"
        assert error.line is not None or error.offset is not None
        return
    # only a cut between whole fields, or dropping an optional column, can still be read
    assert kind in {"truncated", "missing column"}, f"{kind} was read without error"
    assert result.intervals["steps"].is_not_null().all()
