"""Discover new inbox files, read them, keep every original, quarantine what cannot be read.

Flow of one file: inbox/<participant_id>/... -> sha256 -> already in the manifest? skip
-> detect the format by content -> read into canonical intervals -> raw/<sha256> (the original,
stored once) + lake Parquet; or, on any error, quarantine/<sha256>/<name> + reason.json.
Nothing a user gave us is lost: inbox files are never modified or deleted.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import stat
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.config import DataFolder
from pipeline.errors import InputFileError, StorageError
from pipeline.lake import (
    MANIFEST_SCHEMA,
    discard,
    fsync_dir,
    make_dirs,
    read_manifest,
    remove_orphan_batches,
    remove_stale_temporaries,
    replace_all_atomically,
    replace_atomically,
    temporary_name,
    write_daily_totals_batch,
    write_interval_batch,
    write_manifest,
)
from pipeline.registry import Participant
from pipeline.schema import DAILY_TOTAL_COLUMNS, READER_COLUMNS, conform_daily_totals, step_intervals_polars_schema
from pipeline.sources.base import HEAD_BYTES, ReadContext
from pipeline.sources.mapped_csv import MAPPING_SUFFIXES, is_mapping_file
from pipeline.sources.registry import detect_reader

Progress = Callable[[int, int], None]
HASH_CHUNK_BYTES = 1 << 20
WHOLE_READ_BYTES = 1 << 20  # a file up to this size is read once: hashed, detected and stored from memory
MIN_BATCH_FILES = 500
MAX_BATCHES = 100  # a first run of 365,000 files: batches of 3,650, the manifest written 100 times
PARALLEL_MIN_FILES = 256  # fewer new files than this are read in this process (see ingest_inbox)
MAX_READ_WORKERS = 4
READ_GROUP_FILES = 16  # files a worker reads as one task: a task's own cost (queues, pickling) is ~1 ms
READ_AHEAD_FILES = 64  # files hashed and reading ahead of the one being finished (each up to WHOLE_READ_BYTES)
MAX_PROBLEM_CHARS = 500  # a reason quotes the offending value; a 20 MB cell is not quoted whole


@dataclass(frozen=True)
class InboxFile:
    path: Path
    relative: str  # relative to inbox/, the manifest key
    participant_id: str | None  # None: the folder is not a registered participant
    size_bytes: int
    mtime_ns: int
    problem: str | None = None  # set when the file must be quarantined without reading


@dataclass
class IngestReport:
    ingested: int = 0
    skipped: int = 0
    quarantined: int = 0
    rows: int = 0
    quarantine_reasons: list[str] = field(default_factory=list)

    def one_line(self) -> str:
        return (
            f"{self.ingested} file(s) ingested, {self.skipped} skipped as already seen, "
            f"{self.quarantined} quarantined"
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def discover_inbox(
    folder: DataFolder, participants: list[Participant], seen: set[tuple[str, int, int]] | frozenset = frozenset()
) -> tuple[list[InboxFile], int]:
    """Every file under inbox/, without following links; sorted for a deterministic order (per
    folder: its files, then its links to folders, then its subfolders). Files whose (relative
    path, size, mtime) is in `seen` (the manifest's) are counted, not listed: (new files, seen).

    This walks the whole history every run (a year of 1,000 participants is 365,000 files), so
    it works on strings and one lstat per file; only new files become Path objects."""
    known = {p.participant_id for p in participants}
    found: list[InboxFile] = []
    skipped = 0
    inbox = os.fspath(folder.inbox)
    if not os.path.isdir(inbox):
        return found, skipped
    for dirpath, dirnames, filenames in os.walk(inbox, followlinks=False):
        dirnames.sort()
        relative_dir = os.path.relpath(dirpath, inbox)
        prefix = "" if relative_dir == "." else relative_dir.replace(os.sep, "/") + "/"
        top = prefix.split("/", 1)[0] or None
        # files, plus links to folders (os.walk lists those as folders and does not enter them)
        entries = sorted(filenames) + [name for name in dirnames if os.path.islink(os.path.join(dirpath, name))]
        for name in entries:
            full = os.path.join(dirpath, name)
            try:
                status = os.lstat(full)
            except FileNotFoundError:  # removed while we looked (e.g. a sync client's temporary file)
                continue
            relative = prefix + name
            if (relative, status.st_size, status.st_mtime_ns) in seen:
                skipped += 1
                continue
            is_link = stat.S_ISLNK(status.st_mode)
            if os.path.splitext(name)[1] in MAPPING_SUFFIXES and not is_link and is_mapping_file(Path(full)):
                continue  # a column mapping for the CSVs beside it, read by the mapped-CSV reader
            problem = None
            if is_link:
                problem = "a symbolic link; copy the file itself into the inbox (links are never followed)"
            elif not stat.S_ISREG(status.st_mode):
                problem = "not a regular file (a pipe, socket or device); copy the export file itself into the inbox"
            elif top is None:
                problem = "a file directly in inbox/; put it in inbox/<participant_id>/"
            elif top not in known:
                problem = f"folder {top!r} is not a participant in participants.csv"
            found.append(
                InboxFile(
                    path=Path(full),
                    relative=relative,
                    participant_id=top if top in known else None,
                    size_bytes=status.st_size,
                    mtime_ns=status.st_mtime_ns,
                    problem=problem,
                )
            )
    return found, skipped


class _Vanished(Exception):
    """The inbox file was removed while the run was reading it (it is not recorded; if it comes
    back, the next run reads it)."""


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy an inbox file to `target` through a hidden temporary name. Reading errors are the
    inbox's (_Vanished, OSError); writing errors are StorageError."""
    try:
        handle = open(source, "rb")
    except FileNotFoundError as exc:
        raise _Vanished(source) from exc
    tmp = temporary_name(target)
    with handle:
        try:
            make_dirs(target.parent)
            with open(tmp, "wb") as out:
                shutil.copyfileobj(handle, out, HASH_CHUNK_BYTES)
            replace_atomically(tmp, target)
        except OSError as exc:
            discard(tmp)
            raise StorageError(target, exc, doing="store a copy of the inbox file") from exc


def _write_text_atomically(target: Path, text: str) -> None:
    tmp = temporary_name(target)
    try:
        make_dirs(target.parent)
        tmp.write_text(text)
        replace_atomically(tmp, target)
    except OSError as exc:
        discard(tmp)
        raise StorageError(target, exc) from exc


class _PendingOriginals:
    """The originals of one batch, written under hidden temporary names as the files are read and
    renamed into raw/ together, durably, before the batch's manifest commits (`commit`): one
    filesystem sync per batch instead of an fsync of each file and its folder."""

    def __init__(self, folder: DataFolder) -> None:
        self.folder = folder
        self.temporaries: dict[Path, Path] = {}  # target -> its temporary
        self.created: list[Path] = []  # folders made for them, durable at `commit`

    def store(self, item: InboxFile, sha256: str, content: bytes | None) -> None:
        """Write the original (`content`, the bytes that were hashed, else the file) unless raw/
        already has it or this batch already wrote it."""
        target = self.folder.raw / sha256[:2] / sha256
        if target in self.temporaries or target.exists():
            return
        tmp = temporary_name(target)
        try:
            self.created += make_dirs(target.parent, durable=False)
            if content is not None:
                with open(tmp, "wb") as out:
                    out.write(content)
            else:
                _copy_to(item.path, tmp)
        except OSError as exc:
            discard(tmp)
            raise StorageError(target, exc, doing="store a copy of the inbox file") from exc
        self.temporaries[target] = tmp

    def commit(self) -> None:
        try:
            replace_all_atomically([(tmp, target) for target, tmp in self.temporaries.items()], self.created)
        except OSError as exc:
            target = next(iter(self.temporaries))
            raise StorageError(target, exc, doing="store a copy of the inbox file") from exc
        self.temporaries.clear()
        self.created.clear()

    def discard(self) -> None:
        """Remove the temporaries not yet renamed (after a failure: nothing half-written stays)."""
        for tmp in self.temporaries.values():
            discard(tmp)
        self.temporaries.clear()
        self.created.clear()


def _copy_to(source: Path, tmp: Path) -> None:
    """Copy a large inbox file into `tmp`; the file vanishing meanwhile is _Vanished."""
    try:
        handle = open(source, "rb")
    except FileNotFoundError as exc:
        raise _Vanished(source) from exc
    with handle, open(tmp, "wb") as out:
        shutil.copyfileobj(handle, out, HASH_CHUNK_BYTES)


def _quarantine(folder: DataFolder, item: InboxFile, sha256: str | None, reason: dict) -> None:
    """Keep the file (unless it is a link or cannot be read) beside a reason.json sidecar stating why."""
    if sha256 is None:  # a link or special file: record it, never read it (or what it points to)
        target_dir = folder.quarantine / "links" / uuid.uuid5(uuid.NAMESPACE_URL, item.relative).hex
    else:
        target_dir = folder.quarantine / sha256
        _copy_atomically(item.path, target_dir / (Path(item.relative).name or "file"))
    record = {"inbox_path": item.relative, "sha256": sha256, **reason}
    earlier = _earlier_reasons(target_dir / "reason.json", item.relative)
    if earlier:  # the same bytes came in under another name: keep why that one was refused too
        record["earlier"] = earlier
    _write_text_atomically(target_dir / "reason.json", json.dumps(record, indent=2, default=str))


def _earlier_reasons(sidecar: Path, inbox_path: str) -> list[dict]:
    try:
        previous = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(previous, dict):
        return []
    records = [{k: v for k, v in previous.items() if k != "earlier"}, *previous.get("earlier", [])]
    kept: dict[str, dict] = {}
    for record in records:
        if record.get("inbox_path") != inbox_path:
            kept.setdefault(record.get("inbox_path"), record)
    return list(kept.values())


def _read_file(
    item: InboxFile, participant: Participant, content: bytes | None
) -> tuple[str, pl.DataFrame, pl.DataFrame | None]:
    """Detect and read the file; `content`: its bytes, when they were read whole (small files)."""
    reader = detect_reader(item.path, None if content is None else content[:HEAD_BYTES])
    result = reader.read(item.path, ReadContext(participant.participant_id, participant.time_zone, content))
    return reader.name, result.intervals, result.device_daily_totals


@dataclass(frozen=True)
class _Read:
    """What reading one file gave: its rows (`reader`, `intervals`, `totals`), or `reason` (the
    quarantine record) when it could not be read."""

    reader: str | None = None
    intervals: pl.DataFrame | None = None
    totals: pl.DataFrame | None = None
    reason: dict | None = None


def _read_and_check(item: InboxFile, participant: Participant, content: bytes | None) -> _Read:
    """Detect, read and check one file: no writes, so it runs in a worker process as well as here.
    Every error becomes a quarantine reason; none escapes (a reader bug must not stop the run)."""
    try:
        reader, intervals, totals = _read_file(item, participant, content)
        frame = _checked_intervals(intervals, item, reader)
        if totals is None or not totals.height:
            totals = None
        elif list(totals.schema.items()) != list(DAILY_TOTAL_COLUMNS.items()):
            totals = conform_daily_totals(totals)  # one schema: a worker concatenates a group's totals
    except InputFileError as exc:
        return _Read(reason=exc.as_record())
    except Exception as exc:  # a reader bug must not stop the run: keep the file and say so
        return _Read(reason={"reader": None, "error": type(exc).__name__,
                             "problem": f"unexpected error while reading: {exc}"})
    return _Read(reader, frame, totals)


def _checked_intervals(intervals: pl.DataFrame, item: InboxFile, reader: str) -> pl.DataFrame:
    """The reader's rows in the reader schema, or InputFileError when one is unusable. Checked
    with NumPy (null times are NaT, null steps NaN): this runs once per file, and each polars
    query or Series operation has a fixed cost of ~0.1-1 ms."""
    if list(intervals.schema.items()) != list(READER_COLUMNS.items()):
        intervals = intervals.select([pl.col(name).cast(dtype) for name, dtype in READER_COLUMNS.items()])
    start = intervals["start_utc"].to_numpy()
    end = intervals["end_utc"].to_numpy()
    steps = intervals["steps"].to_numpy()
    bad = int((np.isnat(start) | np.isnat(end) | (end < start) | ~np.isfinite(steps) | (steps < 0)).sum())
    if bad:
        raise InputFileError(
            item.path, f"{bad} interval(s) with a missing time, an end before the start, or invalid steps", reader=reader
        )
    return intervals


@dataclass(frozen=True)
class _FileRows:
    """One ingested file's rows, waiting for its batch to be written."""

    participant: Participant
    sha256: str
    intervals: pl.DataFrame  # reader schema, checked
    totals: pl.DataFrame | None  # DAILY_TOTAL_COLUMNS


def _file_keys(files: list[_FileRows], heights: list[int]) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Per row of the files' concatenated frames: its file's index, participant id and hash."""
    index = pl.Series(np.repeat(np.arange(len(files)), heights))
    participant_ids = pl.Series([f.participant.participant_id for f in files], dtype=pl.String).gather(index)
    hashes = pl.Series([f.sha256 for f in files], dtype=pl.String).gather(index)
    return index, participant_ids, hashes


def _batch_intervals(files: list[_FileRows], ingested_at: datetime) -> pl.DataFrame:
    """The batch's intervals in the lake schema: one query for the whole batch, with each file's
    participant, hash and local date (in its participant's zone) added."""
    heights = [f.intervals.height for f in files]
    index, participant_ids, hashes = _file_keys(files, heights)
    zones = sorted({f.participant.time_zone for f in files})
    zone_of_file = pl.Series([zones.index(f.participant.time_zone) for f in files], dtype=pl.Int32)
    local_date = pl.lit(None, dtype=pl.Date)
    for number, zone in enumerate(zones):
        local_date = (
            pl.when(pl.col("_zone") == number)
            .then(pl.col("start_utc").dt.convert_time_zone(zone).dt.date())
            .otherwise(local_date)
        )
    schema = step_intervals_polars_schema()
    return (
        pl.concat([f.intervals for f in files])
        .with_columns(
            participant_ids.alias("participant_id"),
            hashes.alias("file_sha256"),
            zone_of_file.gather(index).alias("_zone"),
        )
        .with_columns(
            local_date.alias("local_date"),
            pl.lit(ingested_at).cast(pl.Datetime("us", "UTC")).alias("ingested_at"),
        )
        .select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
    )


def _batch_daily_totals(files: list[_FileRows], ingested_at: datetime) -> pl.DataFrame | None:
    with_totals = [f for f in files if f.totals is not None]
    if not with_totals:
        return None
    _, participant_ids, hashes = _file_keys(with_totals, [f.totals.height for f in with_totals])
    return pl.concat([f.totals for f in with_totals]).with_columns(
        participant_ids.alias("participant_id"),
        hashes.alias("file_sha256"),
        pl.lit(ingested_at).cast(pl.Datetime("us", "UTC")).alias("ingested_at"),
    )


def read_workers() -> int:
    """Reading workers for a run: one per core, at most MAX_READ_WORKERS (1 core: none)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cores, MAX_READ_WORKERS) if cores > 1 else 0


def _batches(items: list[InboxFile], size: int) -> Iterator[list[InboxFile]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ingest_inbox(
    folder: DataFolder,
    participants: list[Participant],
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    workers: int = 0,
) -> IngestReport:
    """Ingest every new inbox file. Bad files are quarantined; the run always goes on.

    `batch_size`: files whose originals, Parquet and manifest rows are committed together (a
    killed run redoes at most the batch being committed and the one being read); default
    MIN_BATCH_FILES, larger in a large run so that there are at most MAX_BATCHES (the manifest is
    rewritten once per batch).
    `workers`: processes that read (decode) files while this one hashes, stores and writes, used
    when PARALLEL_MIN_FILES or more files are new (a worker costs ~1 s to start); the result is the
    same with any number. The default, 0, reads here. Workers are spawned, so a script that passes
    workers > 1 needs the `if __name__ == "__main__":` guard (the nightly flow passes
    `read_workers()`)."""
    now = now or datetime.now(UTC)
    by_id = {p.participant_id: p for p in participants}
    manifest = read_manifest(folder.manifest)
    # what a run that did not finish left: batch files its manifest never committed, and hidden
    # temporaries in the lake's batch folders, beside the manifest, in raw/ and in quarantine/
    # (lake/derived/ writes none: its unfinished builds are hidden folders, which the derived build
    # removes). Only looked for when the last run did not finish: the walks cover the whole history
    # (320,000 originals and 17,000 lake folders after a year of 1,000 participants: 2.3 s a night).
    if not _take_finished_mark(folder):
        remove_orphan_batches([folder.intervals_dir, folder.lake / "device_daily_totals"],
                              set(manifest["batch_id"].drop_nulls().to_list()))
        remove_stale_temporaries([folder.lake], recursive=False)
        remove_stale_temporaries([folder.raw, folder.quarantine])
    seen_stat = set(zip(manifest["inbox_path"].to_list(), manifest["size_bytes"].to_list(),
                        manifest["mtime_ns"].to_list()))
    seen_content = set(zip(manifest["participant_id"].to_list(), manifest["file_sha256"].to_list()))
    report = IngestReport()
    pending, report.skipped = discover_inbox(folder, participants, seen_stat)
    if batch_size is None:
        batch_size = max(MIN_BATCH_FILES, -(-len(pending) // MAX_BATCHES))
    done = 0
    parallel = workers if workers > 1 and len(pending) >= PARALLEL_MIN_FILES else 0
    # A batch is committed (originals renamed into raw/, lake files and manifest written) in a
    # background thread while the next batch is read: the reading workers are not left idle for
    # the commit's writes and syncs (a first run of 365,000 files: 100 commits of 3,650 files).
    # One commit at a time, in batch order: a batch's commit waits for the one before it.
    with _Readers(parallel) as readers, ThreadPoolExecutor(1, thread_name_prefix="ingest-commit") as committer:
        run = _Run(folder, by_id, seen_content, now, report, readers)
        committing: Future | None = None  # the previous batch's commit: its result is the manifest
        for batch in _batches(pending, batch_size):
            batch_id = f"{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
            files: list[_FileRows] = []
            entries = []
            originals = _PendingOriginals(folder)
            try:
                for entry, rows in _read_batch(run, batch, batch_id, originals):
                    entries.append(entry)
                    if rows is not None:
                        files.append(rows)
                    done += 1
                    if progress:
                        progress(done, len(pending))
                if committing is not None:
                    manifest, committing = committing.result(), None  # raises that commit's error
            except BaseException:
                originals.discard()
                raise
            committing = committer.submit(_commit_batch, folder, originals, files, entries, manifest, batch_id, now)
        if committing is not None:
            committing.result()
    _mark_finished(folder)
    return report


def _take_finished_mark(folder: DataFolder) -> bool:
    """Whether the last ingest finished (`DataFolder.ingest_finished`); the mark is removed, durably,
    before this run writes anything, so that a run killed from here on leaves none."""
    try:
        folder.ingest_finished.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(folder.lake)
    return True


def _mark_finished(folder: DataFolder) -> None:
    """Every batch of this run is committed: nothing of it is left to clean up."""
    make_dirs(folder.lake)
    folder.ingest_finished.touch()
    fsync_dir(folder.lake)


def _commit_batch(folder: DataFolder, originals: _PendingOriginals, files: list[_FileRows], entries: list[dict],
                  manifest: pl.DataFrame, batch_id: str, now: datetime) -> pl.DataFrame:
    """Make one batch durable: its originals in raw/, then its lake files, then the manifest that
    records them (a batch file the manifest does not know is an orphan, removed by the next run).
    Returns the new manifest."""
    try:
        originals.commit()  # every original durable in raw/ before the manifest records it
    finally:
        originals.discard()
    if files:
        write_interval_batch(_batch_intervals(files, now), folder.intervals_dir, batch_id)
        totals = _batch_daily_totals(files, now)
        if totals is not None:
            write_daily_totals_batch(totals, folder.lake / "device_daily_totals", batch_id)
    manifest = pl.concat([manifest, pl.DataFrame(entries, schema=MANIFEST_SCHEMA)])
    write_manifest(manifest, folder.manifest)
    return manifest


def _read_batch(
    run: _Run, batch: list[InboxFile], batch_id: str, originals: _PendingOriginals
) -> Iterator[tuple[dict, _FileRows | None]]:
    """Each file's manifest entry and rows, in batch order (files removed meanwhile are left out).
    Files are hashed and sent to the readers at most READ_AHEAD_FILES ahead of the one being
    finished: the workers stay busy, and the bytes held in memory stay bounded."""
    started: deque[tuple[InboxFile, _Started]] = deque()
    for index, item in enumerate(batch):
        try:
            started.append((item, _start(run, item, batch_id)))
        except _Vanished:  # removed from the inbox during the run: nothing to keep
            run.report.skipped += 1
        while started and (len(started) >= READ_AHEAD_FILES or index == len(batch) - 1):
            finished, start = started.popleft()
            try:
                yield _finish(run, finished, start, originals)
            except _Vanished:
                run.report.skipped += 1


def _shorten(problem: str) -> str:
    """The reason's start and end (a long quoted value is cut in the middle)."""
    if len(problem) <= MAX_PROBLEM_CHARS:
        return problem
    half = MAX_PROBLEM_CHARS // 2
    return f"{problem[:half]} [... {len(problem) - 2 * half:,} characters left out ...] {problem[-half:]}"


def _hash_inbox_file(item: InboxFile) -> tuple[str, bytes | None]:
    """The file's SHA-256, and its bytes when it is small enough to keep them (read once)."""
    try:
        if item.size_bytes <= WHOLE_READ_BYTES:
            with open(item.path, "rb") as handle:
                content = handle.read(WHOLE_READ_BYTES + 1)
            if len(content) <= WHOLE_READ_BYTES:
                return hashlib.sha256(content).hexdigest(), content
        return sha256_of(item.path), None
    except FileNotFoundError as exc:
        raise _Vanished(item.path) from exc


@dataclass
class _Started:
    """One file of a batch, hashed, with its manifest entry; `read` is its reading under way
    (`_Readers.submit`), None when there is nothing to read: `recorded` (quarantined without
    reading) or already in the lake under this participant."""

    entry: dict
    sha256: str | None
    content: bytes | None
    read: "_Reading | None" = None
    recorded: bool = False


@dataclass
class _Run:
    """What every file of one ingest run is read against and recorded in."""

    folder: DataFolder
    by_id: dict[str, Participant]
    seen_content: set[tuple[str, str]]  # (participant_id, sha256) already in the lake
    now: datetime
    report: IngestReport
    readers: "_Readers"


def _start(run: _Run, item: InboxFile, batch_id: str) -> _Started:
    """Hash the file; quarantine it at once when it must not be read; else start reading it."""
    folder, report, now = run.folder, run.report, run.now
    entry = {
        "inbox_path": item.relative,
        "participant_id": item.participant_id,
        "file_sha256": None,
        "size_bytes": item.size_bytes,
        "mtime_ns": item.mtime_ns,
        "reader": None,
        "status": "quarantined",
        "rows": 0,
        "batch_id": batch_id,
        "ingested_at": now,
        "problem": None,
    }
    problem, sha256, content = item.problem, None, None
    if problem is None or (item.path.is_file() and not item.path.is_symlink()):  # never open a link or pipe
        try:
            sha256, content = _hash_inbox_file(item)
        except OSError as exc:  # no permission, I/O error: say so; the file itself stays in the inbox
            problem = f"the file cannot be read ({exc.strerror or exc}); check its permissions and export it again"
    entry["file_sha256"] = sha256
    if problem is not None:
        _quarantine(folder, item, sha256, {"reader": None, "error": "NotIngested", "problem": problem})
        entry["problem"] = problem
        report.quarantined += 1
        report.quarantine_reasons.append(f"{item.relative}: {problem}")
        return _Started(entry, sha256, content, recorded=True)
    started = _Started(entry, sha256, content)
    if (item.participant_id, sha256) not in run.seen_content:
        started.read = run.readers.submit(item, run.by_id[item.participant_id], content)
    return started


def _finish(
    run: _Run, item: InboxFile, started: _Started, originals: _PendingOriginals
) -> tuple[dict, _FileRows | None]:
    """Take the file's reading (in batch order): keep its original and rows, or quarantine it."""
    folder, report, seen_content, readers = run.folder, run.report, run.seen_content, run.readers
    entry, sha256 = started.entry, started.sha256
    if started.recorded:
        return entry, None
    if (item.participant_id, sha256) in seen_content:  # also when an earlier file of this batch had these bytes
        readers.forget(started.read)
        entry["status"] = "duplicate"
        report.skipped += 1
        return entry, None
    participant = run.by_id[item.participant_id]
    read = readers.result(started.read)
    if read.reason is None:
        originals.store(item, sha256, started.content)
        seen_content.add((item.participant_id, sha256))
        entry.update(status="ingested", reader=read.reader, rows=read.intervals.height)
        report.ingested += 1
        report.rows += read.intervals.height
        return entry, _FileRows(participant, sha256, read.intervals, read.totals)
    reason = {**read.reason, "problem": _shorten(str(read.reason.get("problem")))}
    _quarantine(folder, item, sha256, reason)
    entry["reader"] = reason.get("reader")
    entry["problem"] = reason.get("problem")
    report.quarantined += 1
    report.quarantine_reasons.append(f"{item.relative}: {reason.get('problem')}")
    return entry, None


def _end_with_parent(parent_pid: int) -> None:
    """In a reading worker: exit as soon as the run's process is gone (killed, say). The pool's
    queues would not tell a worker so: each worker holds both ends of them."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


@dataclass(eq=False)  # compared by identity (`forget`), never by its arguments (a file's bytes)
class _Reading:
    """One file handed to `_Readers`: its arguments, and once sent, its group's task and its place
    in it."""

    arguments: tuple
    future: Future | None = None
    index: int = 0


@dataclass(frozen=True)
class _GroupRead:
    """What a worker sends back for a group of files: their rows as one frame per table (one
    frame pickled costs less than one per file: 0.15 against 0.35 ms a file, both ends), and
    per file what `_Read` holds besides."""

    reads: list[_Read]  # without their frames
    intervals: pl.DataFrame | None  # every file's rows, in group order
    totals: pl.DataFrame | None
    rows: list[tuple[int, int, int, int]]  # per file: first row and rows in intervals, in totals

    @staticmethod
    def of(reads: list[_Read]) -> "_GroupRead":
        rows, row, total_row = [], 0, 0
        for read in reads:
            height = 0 if read.intervals is None else read.intervals.height
            total_height = 0 if read.totals is None else read.totals.height
            rows.append((row, height, total_row, total_height))
            row, total_row = row + height, total_row + total_height
        frames = [read.intervals for read in reads if read.intervals is not None]
        totals = [read.totals for read in reads if read.totals is not None]
        return _GroupRead([_Read(read.reader, None, None, read.reason) for read in reads],
                          pl.concat(frames) if frames else None, pl.concat(totals) if totals else None, rows)

    def read(self, index: int) -> _Read:
        """One file's read, with its rows (slices of the group's frames)."""
        read = self.reads[index]
        if read.reason is not None or self.intervals is None:
            return read
        row, height, total_row, total_height = self.rows[index]
        totals = self.totals.slice(total_row, total_height) if total_height and self.totals is not None else None
        return _Read(read.reader, self.intervals.slice(row, height), totals)


def _read_group(arguments: list[tuple]) -> _GroupRead:
    """In a worker: read a group of files, one task (see READ_GROUP_FILES)."""
    return _GroupRead.of([_read_and_check(*file_arguments) for file_arguments in arguments])


class _Readers:
    """Reads files (`_read_and_check`): where they are read, not what is read.

    With `workers` = 0 a file is read here, when its result is asked for, in batch order. With
    workers > 0 the reads of a batch run in that many worker processes (spawned: polars must not be
    forked) while this process hashes, stores and writes, READ_GROUP_FILES files to a task; results
    are still taken in batch order, so the manifest, the lake and the quarantine are the same either
    way. Should a worker die (the pool is then broken), the files not yet read are read here."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        self.group: list[_Reading] = []  # submitted, not yet sent to a worker

    def __enter__(self) -> "_Readers":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.group = []
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def submit(self, item: InboxFile, participant: Participant, content: bytes | None) -> _Reading:
        reading = _Reading((item, participant, content))
        if self.workers:
            self.group.append(reading)
            if len(self.group) >= READ_GROUP_FILES:
                self._send()
        return reading

    def _send(self) -> None:
        """Send the unsent group to the workers as one task."""
        group, self.group = self.group, []
        if not self.workers or not group:  # the pool broke meanwhile: they are read here
            return
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_end_with_parent, initargs=(os.getpid(),))
        future = self.pool.submit(_read_group, [reading.arguments for reading in group])
        for index, reading in enumerate(group):
            reading.future, reading.index = future, index

    def result(self, reading: _Reading) -> _Read:
        if reading.future is None:  # asked for before its group filled up (with no workers: nothing to send)
            self._send()
        if reading.future is not None:
            try:
                return reading.future.result().read(reading.index)
            except BrokenProcessPool:  # a worker died (killed, out of memory): read the rest here
                self.workers = 0
                if self.pool is not None:
                    self.pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = None
        return _read_and_check(*reading.arguments)

    def forget(self, reading: _Reading | None) -> None:
        """The file need not be read after all (not yet sent: it is not; else its group reads it)."""
        self.group = [waiting for waiting in self.group if waiting is not reading]
