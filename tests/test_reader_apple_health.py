"""Apple Health export.xml / export.zip: the real sample (figures checked by hand with grep/awk),
the traps (DST offsets, duplicates, Garmin Connect, distance), hostile XML and ZIP files, and
property tests on generated exports."""

from __future__ import annotations

import sys
import zipfile
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CorruptFile, InputFileError, UnrecognisedFormat
from pipeline.sources import apple_health
from pipeline.sources.apple_health import AppleHealthReader
from pipeline.sources.base import ReadContext

READER = AppleHealthReader()
NEW_YORK = ReadContext("p1", "America/New_York")
STEP = "HKQuantityTypeIdentifierStepCount"
DISTANCE = "HKQuantityTypeIdentifierDistanceWalkingRunning"
IPHONE = ("Pat's iPhone", "&lt;&lt;HKDevice: 0x282e3a260&gt;, name:iPhone, manufacturer:Apple Inc., model:iPhone, hardware:iPhone10,4, software:12.3&gt;")
WATCH = ("Pat's Apple Watch", "&lt;&lt;HKDevice: 0x283f00000&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch3,4, software:5.2&gt;")
GARMIN = ("Connect", "&lt;&lt;HKDevice: 0x284000000&gt;, name:Forerunner 245, manufacturer:Garmin, model:Forerunner 245, software:4.70&gt;")
DEVICE_LABELS = {IPHONE: "Pat's iPhone (iPhone)", WATCH: "Pat's Apple Watch (Watch)", GARMIN: "Connect (Forerunner 245)"}


# -- helpers -----------------------------------------------------------------------------------


def record(kind: str, writer: tuple[str, str] | None, start: str, end: str, value: str, unit: str = "count") -> str:
    source, device = writer or ("Health", None)
    device_attr = f' device="{device}"' if device else ""
    return (
        f' <Record type="{kind}" sourceName="{source}" sourceVersion="12.3"{device_attr} unit="{unit}" '
        f'creationDate="{end}" startDate="{start}" endDate="{end}" value="{value}"/>\n'
    )


def export_xml(records: str, doctype: str = '<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n]>\n') -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + doctype + '<HealthData locale="en_US">\n'
        ' <ExportDate value="2024-01-01 00:00:00 -0500"/>\n' + records + "</HealthData>\n"
    )


def read(path: Path, context: ReadContext = NEW_YORK) -> pl.DataFrame:
    assert READER.detect(path, path.read_bytes()[:4096])
    return READER.read(path, context).intervals


def write(tmp_path: Path, text: str | bytes, name: str = "export.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def local_day(frame: pl.DataFrame, day: date, zone: str = "America/New_York") -> pl.DataFrame:
    return frame.filter(pl.col("start_utc").dt.convert_time_zone(zone).dt.date() == day)


class FileAccess:
    """Audit hook: records every file opened and every socket used while `watching`."""

    events: list[tuple] = []
    watching = False

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if cls.watching and (event == "open" or event.startswith("socket.") or event.startswith("urllib")):
            cls.events.append((event, args[0] if args else None))

    @classmethod
    @contextmanager
    def watch(cls):
        cls.events = []
        cls.watching = True
        try:
            yield cls.events
        finally:
            cls.watching = False


sys.addaudithook(FileAccess.hook)


# -- the real sample ---------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_export_xml(realdata):
    frame = read(realdata / "csv/apple_health/export.xml")
    # grep -c StepCount: 1,588 records; awk sum of their values: 359,942
    assert frame.height == 1588 and frame["steps"].sum() == 359942
    assert frame["device"].unique().to_list() == ["Ryan Phone (iPhone)"]
    assert frame["source"].unique().to_list() == ["apple_health"]
    assert frame["activity_type"].null_count() == frame.height
    # per local day (all offsets are -0400): awk over startDate prefixes
    assert local_day(frame, date(2019, 5, 14))["steps"].sum() == 1970 and local_day(frame, date(2019, 5, 14)).height == 10
    assert local_day(frame, date(2019, 5, 15))["steps"].sum() == 7453 and local_day(frame, date(2019, 5, 15)).height == 40
    assert local_day(frame, date(2019, 5, 23))["steps"].sum() == 13371 and local_day(frame, date(2019, 5, 23)).height == 59
    # the first record: 47 steps, 2019-05-14 18:52:09 -0400 .. 19:01:40 -0400, distance 0.0202748 mi
    first = frame.row(0, named=True)
    assert first["start_utc"] == datetime(2019, 5, 14, 22, 52, 9, tzinfo=UTC)
    assert first["end_utc"] == datetime(2019, 5, 14, 23, 1, 40, tzinfo=UTC)
    assert first["steps"] == 47
    # distance: 1,524 of the 1,587 distance records share start and end with a step record
    # (awk join on startDate|endDate); in miles x 1609.344 they add to 200,979.103 m
    assert frame["distance_m"].is_not_null().sum() == 1524
    assert frame["distance_m"].sum() == pytest.approx(200979.103, abs=0.01)
    assert local_day(frame, date(2019, 5, 15))["distance_m"].sum() == pytest.approx(4558.020, abs=0.01)


@pytest.mark.realdata
def test_real_future_record_is_kept(realdata):
    frame = read(realdata / "csv/apple_health/export.xml")
    future = local_day(frame, date(2030, 1, 6))
    assert future.height == 1 and future["steps"][0] == 10  # the warehouse flags it; the reader keeps it


@pytest.mark.realdata
def test_real_export_inside_zip_named_anything(realdata, tmp_path):
    archive = tmp_path / "upload.bin"  # recognised by content, not by name
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.write(realdata / "csv/apple_health/export.xml", "apple_health_export/export.xml")
        out.writestr("apple_health_export/export_cda.xml", "<ClinicalDocument/>")
    frame = read(archive)
    assert frame.height == 1588 and frame["steps"].sum() == 359942


# -- detection ---------------------------------------------------------------------------------


def test_detect_by_content_only(tmp_path):
    xml = write(tmp_path, export_xml(""), name="steps.csv")
    assert READER.detect(xml, xml.read_bytes()[:4096])
    other = write(tmp_path, "<gpx><trk/></gpx>", name="export.xml")
    assert not READER.detect(other, other.read_bytes()[:4096])
    text = write(tmp_path, "Notes about my HealthKit Export\n", name="notes.txt")
    assert not READER.detect(text, text.read_bytes()[:4096])
    other_zip = tmp_path / "export.zip"
    with zipfile.ZipFile(other_zip, "w") as out:
        out.writestr("something/else.xml", "<x/>")
    assert not READER.detect(other_zip, other_zip.read_bytes()[:4096])


def test_zip_without_export_member_is_unrecognised(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("apple_health_export/electrocardiograms/ecg.csv", "x")
    with pytest.raises(UnrecognisedFormat):
        READER.read(archive, NEW_YORK)


def test_zip_with_localised_member_name_found_by_content(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("apple_health_export/exporteren.xml", export_xml(record(STEP, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "300")))
    assert read(archive)["steps"].to_list() == [300]


# -- traps ---------------------------------------------------------------------------------------


def test_offsets_across_the_autumn_dst_change(tmp_path):
    # New York, 2023-11-05: 01:00-02:00 happens twice (-0400, then -0500)
    records = (
        record(STEP, IPHONE, "2023-11-05 01:50:00 -0400", "2023-11-05 01:10:00 -0500", "900")
        + record(STEP, IPHONE, "2023-11-05 01:30:00 -0500", "2023-11-05 01:35:00 -0500", "200")
        + record(STEP, IPHONE, "2023-11-05 01:30:00 -0400", "2023-11-05 01:35:00 -0400", "100")
    )
    frame = read(write(tmp_path, export_xml(records))).sort("start_utc")
    assert frame["start_utc"].to_list() == [
        datetime(2023, 11, 5, 5, 30, tzinfo=UTC),
        datetime(2023, 11, 5, 5, 50, tzinfo=UTC),
        datetime(2023, 11, 5, 6, 30, tzinfo=UTC),
    ]
    assert frame["end_utc"][1] - frame["start_utc"][1] == timedelta(minutes=20)
    assert frame["steps"].to_list() == [100, 900, 200]
    assert not frame["clock_adjusted"].any()


def test_duplicate_records_are_kept_once(tmp_path):
    once = record(STEP, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "300")
    distance = record(DISTANCE, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "0.2", unit="km")
    frame = read(write(tmp_path, export_xml(once + distance + once + distance)))
    assert frame.height == 1 and frame["steps"][0] == 300 and frame["distance_m"][0] == pytest.approx(200)


def test_iphone_watch_and_garmin_connect_are_distinct_devices(tmp_path):
    window = ("2024-01-02 10:00:00 -0500", "2024-01-02 10:10:00 -0500")
    records = (
        record(STEP, IPHONE, *window, "800")
        + record(STEP, WATCH, *window, "850")
        + record(STEP, GARMIN, *window, "870")  # Garmin Connect writing the same walk into Apple Health
        + record(STEP, ("Connect", None), *window, "870")  # an older Connect without device details
    )
    frame = read(write(tmp_path, export_xml(records)))
    assert sorted(frame["device"].to_list()) == [
        "Connect",
        "Connect (Forerunner 245)",
        "Pat's Apple Watch (Watch)",
        "Pat's iPhone (iPhone)",
    ]
    # never added up here: one row per writer, the warehouse picks one
    assert sorted(frame["steps"].to_list()) == [800, 850, 870, 870]


def test_distance_units_and_matching(tmp_path):
    a = ("2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500")
    b = ("2024-01-02 11:00:00 -0500", "2024-01-02 11:05:00 -0500")
    c = ("2024-01-02 12:00:00 -0500", "2024-01-02 12:05:00 -0500")
    records = (
        record(STEP, IPHONE, *a, "100") + record(DISTANCE, IPHONE, *a, "0.5", unit="mi")
        + record(STEP, IPHONE, *b, "200") + record(DISTANCE, IPHONE, *b, "150", unit="m")
        + record(STEP, IPHONE, *c, "300")
        + record(DISTANCE, WATCH, *c, "0.3", unit="km")  # other device: no step interval of its own
        + record(DISTANCE, IPHONE, "2024-01-02 13:00:00 -0500", "2024-01-02 13:05:00 -0500", "1", unit="km")
    )
    frame = read(write(tmp_path, export_xml(records))).sort("start_utc")
    assert frame.height == 3  # distance never creates a row, let alone steps
    assert frame["distance_m"].to_list()[:2] == pytest.approx([804.672, 150.0])
    assert frame["distance_m"][2] is None
    assert frame["steps"].sum() == 600


def test_other_types_and_correlation_children_are_ignored(tmp_path):
    window = ("2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500")
    records = (
        record("HKQuantityTypeIdentifierHeartRate", WATCH, *window, "70", unit="count/min")
        + record("HKQuantityTypeIdentifierFlightsClimbed", IPHONE, *window, "3")
        + f' <Correlation type="HKCorrelationTypeIdentifierFood" sourceName="Pat\'s iPhone" startDate="{window[0]}" endDate="{window[1]}">\n'
        + record(STEP, IPHONE, *window, "999")
        + " </Correlation>\n"
        + record(STEP, IPHONE, "2024-01-02 11:00:00 -0500", "2024-01-02 11:05:00 -0500", "42")
    )
    frame = read(write(tmp_path, export_xml(records)))
    assert frame["steps"].to_list() == [42]


def test_export_without_steps_gives_an_empty_frame(tmp_path):
    frame = read(write(tmp_path, export_xml(record("HKQuantityTypeIdentifierHeartRate", WATCH, "2024-01-02 10:00:00 -0500", "2024-01-02 10:00:00 -0500", "70", unit="count/min"))))
    assert frame.height == 0 and frame.columns[:4] == ["source", "device", "start_utc", "end_utc"]


@pytest.mark.parametrize(
    ("bad_record", "problem"),
    [
        (record(STEP, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "12x"), "not a number"),
        (record(STEP, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "-5"), "negative"),
        (record(STEP, IPHONE, "02/01/2024 10:00", "2024-01-02 10:05:00 -0500", "5"), "startDate"),
        (record(STEP, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 09:05:00 -0500", "5"), "before its startDate"),
        (record(STEP, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "5", unit="km"), "unit"),
        (record(DISTANCE, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "5", unit="furlong"), "distance unit"),
    ],
)
def test_bad_values_name_their_line(tmp_path, bad_record, problem):
    good = record(STEP, IPHONE, "2024-01-02 09:00:00 -0500", "2024-01-02 09:05:00 -0500", "5")
    path = write(tmp_path, export_xml(good + bad_record))
    with pytest.raises(CorruptFile) as caught:
        READER.read(path, NEW_YORK)
    assert problem in caught.value.problem
    assert caught.value.line == 8  # prolog 1, DTD 2-4, <HealthData> 5, ExportDate 6, good record 7
    assert caught.value.path == str(path) and caught.value.reader == "apple_health"


# -- hostile XML and ZIP -----------------------------------------------------------------------


def _refused(path: Path) -> CorruptFile:
    with FileAccess.watch() as events:
        with pytest.raises(CorruptFile) as caught:
            READER.read(path, NEW_YORK)
    python_files = (sys.prefix, sys.base_prefix, str(Path(apple_health.__file__).parents[2]))
    opened = [str(target) for event, target in events if event == "open" and isinstance(target, (str, Path))]
    assert str(path) in opened  # the hook sees opens
    others = [target for target in opened if target != str(path) and not target.startswith(python_files)]
    assert not others, f"read other files: {others}"
    assert not [event for event, _ in events if event != "open"], f"used the network: {events}"
    return caught.value


def test_external_entity_is_refused_not_read(tmp_path):
    secret = write(tmp_path, "TOP-SECRET", name="secret.txt")
    path = write(
        tmp_path,
        '<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n<!ENTITY xxe SYSTEM "file://' + str(secret) + '">\n]>\n'
        '<HealthData locale="en_US">\n'
        + record(STEP, ("&xxe;", None), "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "5")
        + "</HealthData>\n",
    )
    error = _refused(path)
    assert "entity" in error.problem and error.line == 3 and "TOP-SECRET" not in str(error)


def test_etc_passwd_entity_is_refused(tmp_path):
    path = write(
        tmp_path,
        '<?xml version="1.0"?>\n<!DOCTYPE HealthData [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<HealthData locale="en_US"><Record type="' + STEP + '" sourceName="&xxe;" startDate="2024-01-02 10:00:00 -0500" endDate="2024-01-02 10:05:00 -0500" value="5"/></HealthData>\n',
    )
    error = _refused(path)
    assert "entity" in error.problem and "root:" not in str(error)


def test_billion_laughs_is_refused(tmp_path):
    entities = '<!ENTITY lol "lol">\n' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    path = write(
        tmp_path,
        '<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n' + entities + ']>\n<HealthData locale="&lol9;"/>\n',
    )
    error = _refused(path)
    assert "entity" in error.problem and error.line == 3


def test_external_dtd_is_not_fetched(tmp_path):
    path = write(
        tmp_path,
        '<?xml version="1.0"?>\n<!DOCTYPE HealthData SYSTEM "http://127.0.0.1:9/healthdata.dtd">\n<HealthData locale="en_US"/>\n',
    )
    error = _refused(path)
    assert "external DTD" in error.problem


def test_parameter_entity_is_refused(tmp_path):
    path = write(
        tmp_path,
        '<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd">\n%remote;\n]>\n<HealthData/>\n',
    )
    assert "entity" in _refused(path).problem


def test_undeclared_entity_reference_is_corrupt(tmp_path):
    path = write(tmp_path, export_xml(record(STEP, ("&nope;", None), "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "5")))
    assert _refused(path).line == 7


@pytest.mark.parametrize("evil_name", ["../../evil.xml", "/etc/cron.d/evil", "apple_health_export/../../x.xml", "C:/evil.xml"])
def test_zip_slip_member_is_refused(tmp_path, evil_name):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("apple_health_export/export.xml", export_xml(""))
        out.writestr(evil_name, "x")
    error = _refused(archive)
    assert "unsafe path" in error.problem and error.offset is not None
    assert not (tmp_path.parent / "evil.xml").exists()


def test_zip_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("apple_health_export/export.xml", export_xml(" " * 20_000_000))  # ratio ~1,000
    assert archive.stat().st_size < 100_000

    def no_decompression(*args, **kwargs):
        raise AssertionError("the member was decompressed")

    monkeypatch.setattr(zipfile.ZipExtFile, "read", no_decompression)
    error = _refused(archive)
    assert "zip bomb" in error.problem and error.offset == 0


def test_zip_member_too_large_is_refused(tmp_path, monkeypatch):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("apple_health_export/export.xml", export_xml(record(STEP, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "5")))
    monkeypatch.setattr(apple_health, "MAX_MEMBER_BYTES", 100)
    assert "zip bomb" in _refused(archive).problem


def test_damaged_zip_is_corrupt(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("apple_health_export/export.xml", export_xml(record(STEP, IPHONE, "2024-01-02 10:00:00 -0500", "2024-01-02 10:05:00 -0500", "5") * 200))
    data = bytearray(archive.read_bytes())
    data[200:260] = b"\x00" * 60  # inside the compressed member
    archive.write_bytes(bytes(data))
    with pytest.raises(CorruptFile) as caught:
        READER.read(archive, NEW_YORK)
    assert caught.value.line is not None or caught.value.offset is not None
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(CorruptFile) as caught:
        READER.read(truncated, NEW_YORK)
    assert caught.value.offset == 0


# -- property tests ----------------------------------------------------------------------------

OFFSETS = [timezone(timedelta(hours=h, minutes=m)) for h, m in [(-5, 0), (-4, 0), (0, 0), (5, 30), (10, 0), (-3, -30)]]
UNITS = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048}


def _apple_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %z")


samples = st.lists(
    st.tuples(
        st.sampled_from([IPHONE, WATCH, GARMIN]),
        st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2031, 1, 1)).map(lambda d: d.replace(microsecond=0)),
        st.sampled_from(OFFSETS),
        st.integers(0, 900),  # seconds
        st.integers(1, 20_000),  # steps
        st.one_of(st.none(), st.tuples(st.sampled_from(sorted(UNITS)), st.integers(1, 5000))),
    ),
    max_size=40,
    unique_by=lambda sample: (sample[0], sample[1] - sample[2].utcoffset(None)),  # writer, UTC start
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=samples)
def test_generated_exports_round_trip(tmp_path, samples):
    records = []
    expected = []
    for writer, local_start, offset, seconds, steps, distance in samples:
        start = local_start.replace(tzinfo=offset)
        end = start + timedelta(seconds=seconds)
        records.append(record(STEP, writer, _apple_time(start), _apple_time(end), str(steps)))
        metres = None
        if distance:
            unit, amount = distance
            records.append(record(DISTANCE, writer, _apple_time(start), _apple_time(end), f"{amount / 100}", unit=unit))
            metres = amount / 100 * UNITS[unit]
        expected.append((DEVICE_LABELS[writer], start.astimezone(UTC), end.astimezone(UTC), float(steps), metres))
    path = write(tmp_path, export_xml("".join(records)))
    frame = read(path)
    got = sorted(frame.select("device", "start_utc", "end_utc", "steps", "distance_m").rows(), key=str)
    expected = sorted(expected, key=str)
    assert [row[:4] for row in got] == [row[:4] for row in expected]
    assert [row[4] for row in got] == pytest.approx([row[4] for row in expected])


def _valid_export(count: int) -> bytes:
    return export_xml(
        "".join(
            record(STEP, IPHONE, f"2024-01-02 10:{minute:02d}:00 -0500", f"2024-01-02 10:{minute:02d}:30 -0500", str(10 + minute))
            for minute in range(count)
        )
    ).encode()


def _damage(kind: str, data: bytes, where: int, junk: bytes) -> bytes:
    if kind == "truncated":
        return data[: where % (data.rindex(b"</HealthData>") + 5)]
    if kind == "bad number":
        at = data.index(b'value="', data.index(b"<Record")) + 7
        return data[:at] + b"1O" + data[at:]
    if kind == "missing attribute":
        at = data.index(b' value="', data.index(b"<Record"))
        return data[:at] + b" valeur" + data[at + 6 :]
    if kind == "not utf-8":
        at = data.index(b"sourceName=", data.index(b"<Record")) + 13
        return data[:at] + b"\xff\xfe" + data[at:]
    return junk  # binary junk


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["truncated", "bad number", "missing attribute", "not utf-8", "junk"]),
    count=st.integers(1, 12),
    where=st.integers(0, 10_000),
    junk=st.binary(max_size=600),
    zipped=st.booleans(),
)
def test_damaged_exports_raise_a_typed_error_with_a_place(tmp_path, kind, count, where, junk, zipped):
    data = _damage(kind, _valid_export(count), where, junk)
    path = tmp_path / "damaged.xml"
    if zipped:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as out:
            out.writestr("apple_health_export/export.xml", data)
    else:
        path.write_bytes(data)
    with pytest.raises(InputFileError) as caught:
        READER.read(path, NEW_YORK)
    error = caught.value
    assert error.path == str(path) and error.reader == "apple_health"
    assert error.line is not None or error.offset is not None


def test_small_batches_and_slices_give_the_same_intervals(tmp_path, monkeypatch):
    records = "".join(
        record(STEP, writer, f"2024-01-02 10:{minute:02d}:00 -0500", f"2024-01-02 10:{minute:02d}:40 -0500", str(minute + 1))
        + record(DISTANCE, writer, f"2024-01-02 10:{minute:02d}:00 -0500", f"2024-01-02 10:{minute:02d}:40 -0500", f"{minute + 1}", unit="m")
        for minute in range(30)
        for writer in (IPHONE, WATCH, GARMIN)
    )
    path = write(tmp_path, export_xml(records + records))  # every record twice, in other batches
    whole = read(path).sort("device", "start_utc")
    monkeypatch.setattr(apple_health, "BATCH_ROWS", 7)
    monkeypatch.setattr(apple_health, "ASSEMBLY_ROWS", 5)  # 6 rows share each start: slices must not split them
    batched = read(path).sort("device", "start_utc")
    assert batched.height == 90 and batched.equals(whole)
    assert (batched["steps"] == batched["distance_m"]).all()


def test_unknown_xml_encoding_is_corrupt_not_a_lookup_error(tmp_path):
    """Found by fuzzing: expat raises LookupError (not ExpatError) for an encoding with no codec."""
    path = write(tmp_path, b'<?xml version="1.0" encoding="QTF-8"?>\n<HealthData locale="en_US">\n</HealthData>\n')
    with pytest.raises(CorruptFile) as caught:
        READER.read(path, NEW_YORK)
    assert "encoding" in caught.value.problem and caught.value.line == 1
    assert caught.value.path == str(path) and caught.value.reader == "apple_health"
