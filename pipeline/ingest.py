"""Discover new inbox files, read them, keep every original, quarantine what cannot be read.

Flow of one file: inbox/<participant_id>/... -> sha256 -> already in the manifest? skip
-> detect the format by content -> read into canonical intervals -> raw/<sha256> (the original,
stored once) + lake Parquet; or, on any error, quarantine/<sha256>/<name> + reason.json.
Nothing a user gave us is lost: inbox files are never modified or deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline.config import DataFolder
from pipeline.errors import InputFileError
from pipeline.lake import (
    MANIFEST_SCHEMA,
    read_manifest,
    remove_orphan_batches,
    replace_atomically,
    write_daily_totals_batch,
    write_interval_batch,
    write_manifest,
)
from pipeline.registry import Participant
from pipeline.schema import DAILY_TOTAL_COLUMNS, step_intervals_polars_schema
from pipeline.sources.base import ReadContext
from pipeline.sources.mapped_csv import is_mapping_file
from pipeline.sources.registry import detect_reader

Progress = Callable[[int, int], None]
HASH_CHUNK_BYTES = 1 << 20


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


def discover_inbox(folder: DataFolder, participants: list[Participant]) -> list[InboxFile]:
    """Every file under inbox/, without following links; sorted for a deterministic order."""
    known = {p.participant_id for p in participants}
    found: list[InboxFile] = []
    if not folder.inbox.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(folder.inbox, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        # files, plus links to folders (os.walk lists those as folders and does not enter them)
        entries = sorted(filenames) + [name for name in dirnames if (base / name).is_symlink()]
        for name in entries:
            path = base / name
            if is_mapping_file(path) and not path.is_symlink():
                continue  # a column mapping for the CSVs beside it, read by the mapped-CSV reader
            relative = path.relative_to(folder.inbox).as_posix()
            top = relative.split("/", 1)[0] if "/" in relative else None
            stat = path.lstat()
            problem = None
            if path.is_symlink():
                problem = "a symbolic link; copy the file itself into the inbox (links are never followed)"
            elif top is None:
                problem = "a file directly in inbox/; put it in inbox/<participant_id>/"
            elif top not in known:
                problem = f"folder {top!r} is not a participant in participants.csv"
            found.append(
                InboxFile(
                    path=path,
                    relative=relative,
                    participant_id=top if top in known else None,
                    size_bytes=stat.st_size,
                    mtime_ns=stat.st_mtime_ns,
                    problem=problem,
                )
            )
    return found


def _store_raw(folder: DataFolder, path: Path, sha256: str) -> None:
    target = folder.raw / sha256[:2] / sha256
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{sha256}.{os.getpid()}.tmp")
    shutil.copyfile(path, tmp)
    replace_atomically(tmp, target)


def _quarantine(folder: DataFolder, item: InboxFile, sha256: str | None, reason: dict) -> None:
    """Keep the file (unless it is a link) beside a reason.json sidecar stating why."""
    if sha256 is None:  # a link: record it, never read what it points to
        target_dir = folder.quarantine / "links" / uuid.uuid5(uuid.NAMESPACE_URL, item.relative).hex
    else:
        target_dir = folder.quarantine / sha256
    target_dir.mkdir(parents=True, exist_ok=True)
    if sha256 is not None:
        name = Path(item.relative).name or "file"
        tmp = target_dir / f".{name}.{os.getpid()}.tmp"
        shutil.copyfile(item.path, tmp)
        replace_atomically(tmp, target_dir / name)
    sidecar = target_dir / "reason.json"
    tmp = target_dir / f".reason.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"inbox_path": item.relative, "sha256": sha256, **reason}, indent=2, default=str))
    replace_atomically(tmp, sidecar)


def _read_file(item: InboxFile, participant: Participant) -> tuple[str, pl.DataFrame, pl.DataFrame | None]:
    reader = detect_reader(item.path)
    result = reader.read(item.path, ReadContext(participant.participant_id, participant.time_zone))
    return reader.name, result.intervals, result.device_daily_totals


def _normalise(
    intervals: pl.DataFrame, participant: Participant, sha256: str, ingested_at: datetime, item: InboxFile, reader: str
) -> pl.DataFrame:
    bad = intervals.filter(
        pl.col("start_utc").is_null()
        | pl.col("end_utc").is_null()
        | (pl.col("end_utc") < pl.col("start_utc"))
        | pl.col("steps").is_null()
        | pl.col("steps").is_nan()
        | pl.col("steps").is_infinite()
        | (pl.col("steps") < 0)
    )
    if bad.height:
        raise InputFileError(
            item.path, f"{bad.height} interval(s) with a missing time, an end before the start, or invalid steps", reader=reader
        )
    schema = step_intervals_polars_schema()
    return intervals.with_columns(
        pl.lit(participant.participant_id).alias("participant_id"),
        pl.lit(sha256).alias("file_sha256"),
        pl.col("start_utc").dt.convert_time_zone(participant.time_zone).dt.date().alias("local_date"),
        pl.lit(ingested_at).cast(pl.Datetime("us", "UTC")).alias("ingested_at"),
    ).select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def _batches(items: list[InboxFile], size: int) -> Iterator[list[InboxFile]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ingest_inbox(
    folder: DataFolder,
    participants: list[Participant],
    *,
    now: datetime | None = None,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest every new inbox file. Bad files are quarantined; the run always goes on."""
    now = now or datetime.now(UTC)
    by_id = {p.participant_id: p for p in participants}
    manifest = read_manifest(folder.manifest)
    remove_orphan_batches(
        [folder.intervals_dir, folder.lake / "device_daily_totals"], set(manifest["batch_id"].drop_nulls().to_list())
    )
    seen_stat = {(r["inbox_path"], r["size_bytes"], r["mtime_ns"]) for r in manifest.select("inbox_path", "size_bytes", "mtime_ns").iter_rows(named=True)}
    seen_content = set(zip(manifest["participant_id"].to_list(), manifest["file_sha256"].to_list()))
    report = IngestReport()
    pending = []
    for item in discover_inbox(folder, participants):
        if (item.relative, item.size_bytes, item.mtime_ns) in seen_stat:
            report.skipped += 1
        else:
            pending.append(item)
    done = 0
    for batch in _batches(pending, batch_size):
        batch_id = f"{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        frames, totals, entries = [], [], []
        for item in batch:
            entry, frame, total = _ingest_one(folder, item, by_id, seen_content, batch_id, now, report)
            entries.append(entry)
            if frame is not None:
                frames.append(frame)
            if total is not None:
                totals.append(total)
            done += 1
            if progress:
                progress(done, len(pending))
        if frames:
            write_interval_batch(pl.concat(frames), folder.intervals_dir, batch_id)
        if totals:
            write_daily_totals_batch(pl.concat(totals), folder.lake / "device_daily_totals", batch_id)
        manifest = pl.concat([manifest, pl.DataFrame(entries, schema=MANIFEST_SCHEMA)])
        write_manifest(manifest, folder.manifest)
    return report


def _ingest_one(
    folder: DataFolder,
    item: InboxFile,
    by_id: dict[str, Participant],
    seen_content: set[tuple[str, str]],
    batch_id: str,
    now: datetime,
    report: IngestReport,
) -> tuple[dict, pl.DataFrame | None, pl.DataFrame | None]:
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
    if item.problem is not None:
        sha256 = None if item.path.is_symlink() else sha256_of(item.path)
        entry["file_sha256"] = sha256
        _quarantine(folder, item, sha256, {"reader": None, "error": "NotIngested", "problem": item.problem})
        entry["problem"] = item.problem
        report.quarantined += 1
        report.quarantine_reasons.append(f"{item.relative}: {item.problem}")
        return entry, None, None
    sha256 = sha256_of(item.path)
    entry["file_sha256"] = sha256
    if (item.participant_id, sha256) in seen_content:
        entry["status"] = "duplicate"
        report.skipped += 1
        return entry, None, None
    participant = by_id[item.participant_id]
    try:
        reader, intervals, totals = _read_file(item, participant)
        frame = _normalise(intervals, participant, sha256, now, item, reader)
    except InputFileError as exc:
        reason = exc.as_record()
    except Exception as exc:  # a reader bug must not stop the run: keep the file and say so
        reason = {"reader": None, "error": type(exc).__name__, "problem": f"unexpected error while reading: {exc}"}
    else:
        _store_raw(folder, item.path, sha256)
        seen_content.add((item.participant_id, sha256))
        entry.update(status="ingested", reader=reader, rows=frame.height)
        report.ingested += 1
        report.rows += frame.height
        if totals is not None and totals.height:
            totals = totals.select(list(DAILY_TOTAL_COLUMNS)).with_columns(
                pl.lit(item.participant_id).alias("participant_id"),
                pl.lit(sha256).alias("file_sha256"),
                pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("ingested_at"),
            )
        return entry, frame, totals if totals is not None and totals.height else None
    _quarantine(folder, item, sha256, reason)
    entry["reader"] = reason.get("reader")
    entry["problem"] = reason.get("problem")
    report.quarantined += 1
    report.quarantine_reasons.append(f"{item.relative}: {reason.get('problem')}")
    return entry, None, None
