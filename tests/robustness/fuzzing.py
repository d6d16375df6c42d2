"""The fuzz harness shared by tests/robustness/test_fuzz_readers.py and scripts/fuzz.py.

Seeds are valid files of every reader: generated ones (FIT monitoring and activity, Fitabase
narrow/wide/hourly, Apple Health XML and ZIP, a mapped CSV) and, when ../shared/realdata is
there, heads of the real samples (ActiGraph, Garmin Connect, Google Fit, Samsung Health, Withings,
Fitbit daily, small real FIT files). Hypothesis mutates their bytes (bit flips, overwrites,
insertions, deletions, truncation; FIT files optionally with their CRCs recomputed so that decoding
goes deep) or their text (lines dropped, duplicated, swapped; cells replaced by awkward values).

`check(seed, content)` runs the mutated file through detection and through every reader that
claims it, then through ingest's own validation, and returns what happened. Only typed errors
(InputFileError subclasses) may escape; the file on disk is never altered; a reader's output
always has the canonical columns.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import traceback
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from hypothesis import strategies as st

from pipeline.errors import InputFileError
from pipeline.registry import Participant
from pipeline.schema import DAILY_TOTAL_COLUMNS, READER_COLUMNS
from pipeline.sources.base import ReadContext
from pipeline.sources.registry import READERS, detect_reader
from tests.robustness import corpus

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
PID = "p1"
ZONE = "Europe/London"
COUNTS: Counter = Counter()  # outcome -> cases, for the printed campaign counts


@dataclass(frozen=True)
class Seed:
    name: str
    file_name: str  # some formats carry facts in the name (Google Fit's per-day files)
    content: bytes
    participant: str = PID
    time_zone: str = ZONE
    companions: tuple[tuple[str, bytes], ...] = ()  # files beside it (a column mapping)

    @property
    def is_text(self) -> bool:
        return not (self.content[:4] == b"PK\x03\x04" or self.file_name.lower().endswith(".fit"))

    @property
    def is_fit(self) -> bool:
        return self.file_name.lower().endswith(".fit")


MAPPING = b'start = "Start"\nend = "Finish"\nsteps = "Steps (count)"\ntime_format = "%Y-%m-%d %H:%M"\nzone = "participant"\n'


def generated_seeds() -> list[Seed]:
    mapped = "Start,Finish,Steps (count)\n" + "".join(
        f"2024-01-02 10:{m:02d},2024-01-02 10:{m + 5:02d},{100 + m}\n" for m in range(0, 50, 5))
    return [
        Seed("fit-monitoring", "monitor.FIT", corpus.fit_monitoring()),
        Seed("fit-activity", "walk.FIT", corpus.fit_activity()),
        Seed("fitabase-narrow", "minuteStepsNarrow.csv", corpus.good_csv(PID).encode()),
        Seed("fitabase-wide", "minuteStepsWide.csv", corpus.wide_csv(PID).encode()),
        Seed("fitabase-hourly", "hourlySteps.csv", corpus.hourly_csv(PID).encode()),
        Seed("apple-xml", "export.xml", corpus.apple_export(4).encode()),
        Seed("apple-zip", "export.zip", corpus.zip_with({"apple_health_export/export.xml": corpus.apple_export(4).encode()})),
        Seed("mapped-csv", "walks.csv", mapped.encode(), companions=(("walks.mapping.toml", MAPPING),)),
    ]


def _head(path: Path, lines: int, skip: range = range(0)) -> bytes:
    text = path.read_bytes().decode("utf-8-sig").splitlines(keepends=True)
    return "".join(line for number, line in enumerate(text[:lines]) if number not in skip).encode()


def _with_steps(activities: bytes) -> bytes:
    """Garmin Connect's 2021 layout has no Steps column (the reader then invents nothing): add one."""
    rows = list(csv.reader(io.StringIO(activities.decode("utf-8"))))
    rows[0].append("Steps")
    for number, row in enumerate(rows[1:], start=1):
        row.append(f"{2000 + 37 * number:,}")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def _samsung_head(path: Path) -> bytes:
    """The two header lines, then merged (-2), phone (0) and watch (108) rows."""
    lines = path.read_bytes().splitlines(keepends=True)
    picked = {b"-2": [], b"0": [], b"108": []}
    for line in lines[2:]:
        fields = line.split(b",")
        if len(fields) > 4 and fields[4] in picked and len(picked[fields[4]]) < 6:
            picked[fields[4]].append(line)
    return b"".join(lines[:2] + picked[b"-2"] + picked[b"0"] + picked[b"108"])


def realdata_seeds(root: Path = REALDATA) -> list[Seed]:
    if not root.exists():
        return []
    csv_dir, fit_dir = root / "csv", root / "fit" / "python-fitparse"
    seeds = []

    def add(name: str, file_name: str, make, **extra) -> None:
        try:
            seeds.append(Seed(name, file_name, make(), **extra))
        except OSError:
            pass

    add("actigraph", "actigraph.csv", lambda: _head(csv_dir / "actigraph" / "ActiLife_1sec_epoch_example1sec.csv", 80))
    add("garmin-connect", "Activities.csv", lambda: _with_steps(_head(csv_dir / "garmin_connect" / "Activities_2021.csv", 12)))
    daily = csv_dir / "google_fit" / "Daily_activity_metrics_2018-2021.csv"
    add("google-fit-daily", "Daily activity metrics.csv",
        lambda: _head(daily, 1) + b"".join(daily.read_bytes().splitlines(keepends=True)[400:420]))
    add("google-fit-per-day", "2023-11-20.csv", lambda: (csv_dir / "google_fit" / "per_day_15min_2023-11-20.csv").read_bytes())
    samsung = csv_dir / "samsung_health" / "com.samsung.shealth.step_daily_trend.csv"
    add("samsung", "com.samsung.shealth.step_daily_trend.csv", lambda: _samsung_head(samsung))
    add("withings", "raw_tracker_steps.csv", lambda: _head(csv_dir / "withings" / "raw_tracker_steps.csv", 15))
    fitbit_daily = csv_dir / "fitbit_fitabase" / "dailyActivity_merged.csv"
    add("fitbit-daily", "dailyActivity.csv", lambda: _head(fitbit_daily, 12), participant="1503960366")
    for name in ("MonitoringFile.fit", "garmin-fenix-5-walk.fit", "activity-small-fenix2-run.fit"):
        if (fit_dir / name).stat().st_size < 60_000:
            add(f"real-{name}", name, lambda name=name: (fit_dir / name).read_bytes())
    return seeds


# --------------------------------------------------------------------------- running one file


@dataclass
class Outcome:
    kind: str  # unrecognised | rejected | read
    readers: tuple[str, ...] = ()
    rows: int = 0


class UntypedError(AssertionError):
    """A reader (or detection) let an exception other than InputFileError escape."""

    def __init__(self, message: str, where: str, error: BaseException, content: bytes) -> None:
        super().__init__(message)
        self.where = where
        self.error = error
        self.content = content
        frames = [f for f in traceback.extract_tb(error.__traceback__) if "/pipeline/" in f.filename]
        self.frame = f"{frames[-1].filename.split('/pipeline/', 1)[1]}:{frames[-1].lineno}" if frames else "?"

    @property
    def signature(self) -> tuple[str, str, str]:
        return self.where, type(self.error).__name__, "pipeline/" + self.frame


@dataclass(frozen=True)
class KnownBug:
    """An untyped error already reported to the lead (readers are not ours to change). The
    fuzz tests count it instead of failing; test_known_reader_bugs (strict xfail) says when it
    is fixed, so the entry can go."""

    where: str  # "<reader>.read" or "<reader>.detect"
    error: str  # exception type name
    module: str  # pipeline/... file of the innermost frame
    what: str
    seed: str  # a seed name, and the smallest input found
    example: bytes

    def matches(self, found: UntypedError) -> bool:
        where, error, frame = found.signature
        return (where, error) == (self.where, self.error) and frame.split(":")[0] == self.module


# Empty: the four found so far (fitbit on a header-only file, csv_tools splitting the header at a
# vertical tab, apple_health on an unknown XML encoding, withings on a 5,000-digit integer) are
# fixed and have regression tests in the readers' own test files.
KNOWN_BUGS: tuple[KnownBug, ...] = ()


def known_bug(found: UntypedError) -> KnownBug | None:
    return next((bug for bug in KNOWN_BUGS if bug.matches(found)), None)


def write_seed_file(folder: Path, seed: Seed, content: bytes) -> Path:
    for name, data in seed.companions:
        (folder / name).write_bytes(data)
    path = folder / seed.file_name
    path.write_bytes(content)
    return path


def _untyped(where: str, seed: Seed, exc: BaseException, content: bytes) -> UntypedError:
    lines = traceback.format_exception(exc)
    return UntypedError(f"{where} on a mutation of {seed.name}: {type(exc).__name__}: {exc}\n" + "".join(lines[-6:]),
                        where, exc, content)


def _validate(frame: pl.DataFrame, seed: Seed, path: Path, reader: str) -> int:
    assert dict(frame.schema) == READER_COLUMNS, f"{reader} on {seed.name}: columns {frame.schema}"
    participant = Participant(seed.participant, "c1", seed.time_zone, datetime(2024, 1, 1).date())
    from pipeline.ingest import InboxFile, _batch_intervals, _checked_intervals, _FileRows

    item = InboxFile(path, f"{seed.participant}/{seed.file_name}", seed.participant, 0, 0)
    try:  # ingest's own steps: the check of each file, then the batch's conversion to the lake schema
        checked = _checked_intervals(frame, item, reader)
        _batch_intervals([_FileRows(participant, "0" * 64, checked, None)], datetime.now(UTC))
    except InputFileError:
        return -1
    return frame.height


def check(seed: Seed, content: bytes, *, tolerate_known: bool = True) -> Outcome:
    """The mutated `content` through detection, every reader that claims it, and ingest's checks.
    Raises UntypedError for an untyped exception (a known, reported one is only counted)."""
    try:
        return _check(seed, content)
    except UntypedError as found:
        bug = known_bug(found) if tolerate_known else None
        if bug is None:
            raise
        COUNTS["known reader bug"] += 1
        COUNTS["cases"] += 1
        return Outcome("known-bug", (found.where,))


def _check(seed: Seed, content: bytes) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="stepwise-fuzz-") as folder:
        path = write_seed_file(Path(folder), seed, content)
        context = ReadContext(seed.participant, seed.time_zone)
        head = content[:4096]
        claimed = []
        for reader in READERS:
            try:
                if reader.detect(path, head):
                    claimed.append(reader)
            except InputFileError:
                pass
            except Exception as exc:  # noqa: BLE001 - the finding
                raise _untyped(f"{reader.name}.detect", seed, exc, content) from exc
        try:
            first = detect_reader(path)
        except InputFileError:
            first = None
        except Exception as exc:  # noqa: BLE001
            raise _untyped("detect_reader", seed, exc, content) from exc
        outcome = Outcome("unrecognised" if first is None else "rejected", tuple(r.name for r in claimed))
        for reader in claimed:
            try:
                result = reader.read(path, context)
            except InputFileError:
                continue
            except Exception as exc:  # noqa: BLE001
                raise _untyped(f"{reader.name}.read", seed, exc, content) from exc
            rows = _validate(result.intervals, seed, path, reader.name)
            if result.device_daily_totals is not None:
                missing = set(DAILY_TOTAL_COLUMNS) - set(result.device_daily_totals.columns)
                assert not missing, f"{reader.name} on {seed.name}: daily totals lack {missing}"
            if reader is first and rows >= 0:
                outcome = Outcome("read", outcome.readers, rows)
        assert path.read_bytes() == content, f"a reader altered the file it read ({seed.name})"
    COUNTS[outcome.kind] += 1
    COUNTS["cases"] += 1
    return outcome


def read_valid(seed: Seed) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The seed's own intervals and device daily totals (it must read cleanly)."""
    with tempfile.TemporaryDirectory(prefix="stepwise-seed-") as folder:
        path = write_seed_file(Path(folder), seed, seed.content)
        result = detect_reader(path).read(path, ReadContext(seed.participant, seed.time_zone))
        return result.intervals, result.device_daily_totals


# --------------------------------------------------------------------------- mutations

AWKWARD_CELLS = ["", "-1", "-0", "0.5", "1e400", "NaN", "inf", "9" * 40, "1,000", "1.000,5", "0x1F", "٣", "\u00a0",
                 '"', "'", "\x00", "1/1/1970 12:00:00 AM", "2/30/2024 10:00:00 AM", "13/13/2024 25:61:00 PM",
                 "2100-01-01 00:00", "1969-12-31T23:59:59+14:00", "24:00:00.000+02:00", "[60,60", "[1e9]",
                 "[-5,5]", "null", "true", "P1", "p1 ", "--", "1" * 5000, "-2", "108"]


@st.composite
def byte_mutation(draw, seed: Seed) -> bytes:
    data = bytearray(seed.content)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "delete", "insert", "duplicate", "truncate", "append"]))
        if not data:
            data += draw(st.binary(min_size=1, max_size=16))
            continue
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, ord(","), ord("\n"), ord('"'), ord("<"), 0x0E]))
        elif kind == "delete":
            del data[at: at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "duplicate":
            end = min(len(data), at + draw(st.integers(1, 256)))
            data[at:at] = data[at:end]
        elif kind == "truncate":
            del data[at:]
        else:
            data += draw(st.binary(min_size=1, max_size=64))
    if seed.is_fit and draw(st.booleans()):
        return corpus.fit_with_fixed_crcs(data)
    return bytes(data)


def _cells(line: str) -> list[str]:
    try:
        return next(csv.reader([line.rstrip("\r\n")]), [""])
    except csv.Error:  # an earlier mutation left a line break inside the line
        return line.rstrip("\r\n").split(",")


@st.composite
def text_mutation(draw, seed: Seed) -> bytes:
    text = seed.content.decode("utf-8", errors="surrogateescape")
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cell", "cell", "cell", "drop", "duplicate", "swap", "header", "delimiter"]))
        at = draw(st.integers(0, len(lines) - 1))
        if kind == "cell":
            cells = _cells(lines[at])
            if cells:
                cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(AWKWARD_CELLS) | st.text(max_size=12))
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow(cells)
            lines[at] = buffer.getvalue()
        elif kind == "drop" and len(lines) > 1:
            del lines[at]
        elif kind == "duplicate":
            lines.insert(at, lines[at])
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif kind == "header":
            cells = _cells(lines[0])
            if cells:
                position = draw(st.integers(0, len(cells) - 1))
                choice = draw(st.sampled_from(["drop", "rename", "repeat"]))
                if choice == "drop":
                    del cells[position]
                elif choice == "rename":
                    cells[position] = cells[position].upper() + "_x"
                else:
                    cells.append(cells[position])
            lines[0] = ",".join(cells) + "\n"
        elif kind == "delimiter":
            lines[at] = lines[at].replace(",", draw(st.sampled_from([";", "\t", ",,", ""])))
    return "".join(lines).encode("utf-8", errors="surrogateescape")


def mutation(seed: Seed):
    return st.one_of(byte_mutation(seed), text_mutation(seed)) if seed.is_text else byte_mutation(seed)


def examples(default: int) -> int:
    return int(os.environ.get("STEPWISE_FUZZ_EXAMPLES", default))


# --------------------------------------------------------------------------- through ingest

GOOD = corpus.good_csv(PID).encode()


def ingest_case(seed: Seed, content: bytes, root: Path) -> str:
    """Ingest the damaged file beside a valid one of the same participant; the valid one's rows
    must go in exactly as they are. Returns the damaged file's manifest status."""
    from pipeline.config import DataFolder
    from pipeline.ingest import ingest_inbox

    folder = DataFolder(root)
    inbox = folder.inbox / seed.participant
    inbox.mkdir(parents=True)
    (inbox / "good.csv").write_bytes(corpus.good_csv(seed.participant).encode())
    write_seed_file(inbox, seed, content)
    participant = Participant(seed.participant, "c1", seed.time_zone, datetime(2024, 1, 1).date())
    report = ingest_inbox(folder, [participant], now=datetime(2025, 1, 1, tzinfo=UTC))
    manifest = pl.read_parquet(folder.manifest)
    good = manifest.filter(pl.col("inbox_path") == f"{seed.participant}/good.csv").row(0, named=True)
    assert (good["status"], good["rows"]) == ("ingested", 3), good
    lake = pl.read_parquet(list(folder.intervals_dir.rglob("batch-*.parquet")))
    mine = lake.filter(pl.col("file_sha256") == good["file_sha256"]).sort("start_utc")
    assert mine["steps"].to_list() == [80.0, 90.0, 100.0]
    assert mine["start_utc"].to_list() == [datetime(2024, 1, 2, 10, m, tzinfo=UTC) for m in range(3)]
    damaged = manifest.filter(pl.col("inbox_path") == f"{seed.participant}/{seed.file_name}").row(0, named=True)
    assert damaged["status"] in {"ingested", "quarantined", "duplicate"}
    assert report.ingested + report.quarantined + report.skipped == 2
    assert (inbox / seed.file_name).read_bytes() == content  # the inbox is never modified
    COUNTS["ingest cases"] += 1
    return damaged["status"]
