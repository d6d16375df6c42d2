"""The Parquet lake: atomic writes, hive partitions, and the ingest manifest.

Layout under DIR/lake/:
  step_intervals/participant_id=<id>/month=<YYYY-MM>/batch-<batch_id>.parquet
  device_daily_totals/participant_id=<id>/batch-<batch_id>.parquet
  manifest.parquet     one row per inbox file ever seen (ingested or quarantined)

Every file is written to a temporary name, flushed to disk and renamed into place, so a crash
never leaves half a file where a reader would find it. The manifest is written last: a batch
file whose batch_id the manifest does not know is an orphan of a crashed run and is removed
before the next ingest (its inbox files are then ingested again).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import StorageError

MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    "inbox_path": pl.String,  # relative to DIR/inbox
    "participant_id": pl.String,
    "file_sha256": pl.String,
    "size_bytes": pl.Int64,
    "mtime_ns": pl.Int64,
    "reader": pl.String,
    "status": pl.String,  # ingested | quarantined
    "rows": pl.Int64,
    "batch_id": pl.String,
    "ingested_at": pl.Datetime("us", "UTC"),
    "problem": pl.String,
}


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(folder: Path) -> None:
    """`mkdir -p`, with each folder it creates made durable in its parent (a file renamed into a
    new folder is only durable once the folder itself is)."""
    missing = []
    probe = folder
    while not probe.is_dir() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        fsync_dir(created.parent)


def replace_atomically(tmp: Path, final: Path) -> None:
    """Rename a fully written temporary file into place and make the rename durable."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def temporary_name(path: Path) -> Path:
    """The hidden name a file is written under before it is renamed into place."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def discard(path: Path) -> None:
    """Remove a temporary file after a failed write, if it can be (its folder may not exist)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def write_parquet_atomic(table: pa.Table | pl.DataFrame, path: Path) -> None:
    if isinstance(table, pl.DataFrame):
        table = table.to_arrow()
    tmp = temporary_name(path)
    try:
        make_dirs(path.parent)
        pq.write_table(table, tmp, compression="zstd")
        replace_atomically(tmp, path)
    except OSError as exc:  # disk full, no permission: the file in place (if any) is untouched
        discard(tmp)
        raise StorageError(path, exc, doing="write the Parquet file") from exc


def partition_name(participant_id: str) -> str:
    """A participant id made safe as one folder name (ids are strings of any characters)."""
    return "participant_id=" + quote(participant_id, safe="")


def read_manifest(path: Path) -> pl.DataFrame:
    if not path.exists():
        return pl.DataFrame(schema=MANIFEST_SCHEMA)
    return pl.read_parquet(path).cast(MANIFEST_SCHEMA)


def write_manifest(manifest: pl.DataFrame, path: Path) -> None:
    write_parquet_atomic(manifest.select(list(MANIFEST_SCHEMA)).sort("inbox_path", "file_sha256"), path)


def write_interval_batch(intervals: pl.DataFrame, intervals_dir: Path, batch_id: str) -> list[Path]:
    """One Parquet file per participant and month of start_utc."""
    written: list[Path] = []
    if intervals.is_empty():
        return written
    keyed = intervals.with_columns(pl.col("start_utc").dt.strftime("%Y-%m").alias("_month"))
    for (participant_id, month), part in keyed.group_by("participant_id", "_month", maintain_order=True):
        path = intervals_dir / partition_name(participant_id) / f"month={month}" / f"batch-{batch_id}.parquet"
        write_parquet_atomic(part.drop("_month").sort("start_utc", "end_utc", "source"), path)
        written.append(path)
    return written


def write_daily_totals_batch(totals: pl.DataFrame, totals_dir: Path, batch_id: str) -> list[Path]:
    written: list[Path] = []
    for (participant_id,), part in totals.group_by("participant_id", maintain_order=True):
        path = totals_dir / partition_name(participant_id) / f"batch-{batch_id}.parquet"
        write_parquet_atomic(part.sort("local_date", "source"), path)
        written.append(path)
    return written


def batch_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("batch-*.parquet")) if folder.exists() else []


def batch_id_of(path: Path) -> str:
    return path.stem.removeprefix("batch-")


def remove_orphan_batches(folders: list[Path], known_batches: set[str]) -> list[Path]:
    """Delete batch files of runs that crashed before committing their manifest."""
    removed = []
    for folder in folders:
        for path in batch_files(folder):
            if batch_id_of(path) not in known_batches:
                path.unlink()
                removed.append(path)
    remove_stale_temporaries(folders)
    return removed


def remove_stale_temporaries(folders: list[Path]) -> list[Path]:
    """Delete the hidden temporary files (`.<name>.<pid>.tmp`) a killed run left behind. Only
    called under the run lock, so no live writer owns them."""
    removed = []
    for folder in folders:
        if folder.exists():
            for tmp in folder.rglob(".*.tmp"):
                if tmp.is_file() and not tmp.is_symlink():
                    tmp.unlink()
                    removed.append(tmp)
    return removed
