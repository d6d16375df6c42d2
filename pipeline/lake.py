"""The Parquet lake: atomic writes, hive partitions, and the ingest manifest.

Layout under DIR/lake/:
  step_intervals/participant_id=<id>/month=<YYYY-MM>/batch-<batch_id>.parquet
  device_daily_totals/participant_id=<id>/batch-<batch_id>.parquet
  manifest.parquet     one row per inbox file ever seen (ingested or quarantined)
  .ingest-finished     empty: the last ingest finished (each run removes it first, adds it last)

Every file is written to a temporary name, flushed to disk and renamed into place, so a crash
never leaves half a file where a reader would find it (the files of one batch are flushed
together, with one filesystem sync, before any of them is renamed). The manifest is written
last: a batch file whose batch_id the manifest does not know is an orphan of a crashed run and
is removed before the next ingest (its inbox files are then ingested again). The next ingest
looks for such leftovers only when `.ingest-finished` is missing.
"""

from __future__ import annotations

import ctypes
import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

import polars as pl

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


def make_dirs(folder: Path, *, durable: bool = True) -> list[Path]:
    """`mkdir -p`, with each folder it creates made durable in its parent (a file renamed into a
    new folder is only durable once the folder itself is). `durable=False`: the caller makes them
    durable later (`replace_all_atomically(..., created)`). Returns the folders created."""
    missing = []
    probe = folder
    while not probe.is_dir() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if not missing:
        return missing
    folder.mkdir(parents=True, exist_ok=True)
    if durable:
        for created in reversed(missing):
            fsync_dir(created.parent)
    return missing


def replace_atomically(tmp: Path, final: Path) -> None:
    """Rename a fully written temporary file into place and make the rename durable."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def replace_all_atomically(pairs: list[tuple[Path, Path]], created: Iterable[Path] = ()) -> None:
    """Rename many fully written temporary files into place, durably, as `replace_atomically` does
    for one: every file's data (and every folder in `created`, made by `make_dirs(durable=False)`)
    is durable before any file is renamed, and the renames are durable when this returns. On
    Linux this is one `syncfs` of each filesystem before the renames and one after (a few ms for
    a batch of hundreds of small files), instead of an fsync of every file and its folder (a few
    ms each); elsewhere, each file and folder is fsynced."""
    if not pairs:
        return
    make_durable([tmp for tmp, _ in pairs],
                 sorted({folder.parent for folder in created}, key=lambda f: len(f.parts), reverse=True))
    for tmp, final in pairs:
        os.replace(tmp, final)
    make_durable([], sorted({final.parent for _, final in pairs}))


def make_durable(files: Iterable[Path], folders: Iterable[Path]) -> None:
    """Make written files, and the entries of `folders`, durable: on Linux one `syncfs` of each
    of their filesystems (a batch or build of thousands of files: one call instead of an fsync of
    each); elsewhere an fsync of every file, then of every folder, in the order given."""
    files, folders = list(files), list(folders)
    if _sync_filesystems(set(folders) | {path.parent for path in files}):
        return
    for path in files:
        with open(path, "rb+") as handle:
            os.fsync(handle.fileno())
    for folder in folders:
        fsync_dir(folder)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _sync_filesystems(folders: set[Path]) -> bool:
    """`syncfs` the filesystem of each folder (once per device): False where there is no syncfs.
    Raises OSError when the kernel reports a write-back error (Linux >= 5.8)."""
    syncfs = getattr(_LIBC, "syncfs", None)
    if syncfs is None:
        return False
    by_device: dict[int, Path] = {}
    for folder in folders:
        by_device.setdefault(os.stat(folder).st_dev, folder)
    for folder in by_device.values():
        fd = os.open(folder, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:
                error = ctypes.get_errno()
                raise OSError(error, os.strerror(error), str(folder))
        finally:
            os.close(fd)
    return True


def temporary_name(path: Path) -> Path:
    """The hidden name a file is written under before it is renamed into place."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def discard(path: Path) -> None:
    """Remove a temporary file after a failed write, if it can be (its folder may not exist)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Zstd, encoded by polars (it dictionary-encodes the columns with few distinct values): a
    batch of 855,671 interval rows took 0.21-0.26 s and 7.6 MB, against 0.34-0.41 s and 11.2 MB
    through pyarrow with a dictionary for the text columns; a night's small file of 292 rows,
    1.7 ms against 3.2 ms. The bytes are written by Python: a full disk is then an OSError that
    says so (polars writing the file itself reports "Invalid thrift: transport error")."""
    encoded = io.BytesIO()
    frame.write_parquet(encoded, compression="zstd")
    with open(path, "wb") as out:
        out.write(encoded.getbuffer())


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    tmp = temporary_name(path)
    try:
        make_dirs(path.parent)
        _write_parquet(frame, tmp)
        replace_atomically(tmp, path)
    except OSError as exc:  # disk full, no permission: the file in place (if any) is untouched
        discard(tmp)
        raise StorageError(path, exc, doing="write the Parquet file") from exc


def write_parquet_files_atomic(tables: Iterable[tuple[pl.DataFrame, Path]]) -> list[Path]:
    """Several Parquet files (each table written as it comes), as `write_parquet_atomic` writes
    one, made durable together (see `replace_all_atomically`): none is visible before all are
    written and durable. Returns the paths written."""
    written: list[tuple[Path, Path]] = []
    created: list[Path] = []
    path: Path | None = None
    committed = False
    try:
        for table, path in tables:
            tmp = temporary_name(path)
            created += make_dirs(path.parent, durable=False)
            written.append((tmp, path))
            _write_parquet(table, tmp)
        if written:
            path = written[0][1]
            replace_all_atomically(written, created)
        committed = True
    except OSError as exc:  # disk full, no permission: the files in place (if any) are untouched
        raise StorageError(path or "the lake", exc, doing="write the Parquet file") from exc
    finally:
        if not committed:  # whatever went wrong, no temporary stays behind
            for tmp, _ in written:
                discard(tmp)
    return [final for _, final in written]


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
    """One Parquet file per participant and month of start_utc, its rows sorted by start_utc,
    end_utc and source."""
    ordered = intervals.sort("participant_id", "start_utc", "end_utc", "source", maintain_order=True)
    return write_parquet_files_atomic(
        (part, intervals_dir / partition_name(participant_id) / f"month={month}" / f"batch-{batch_id}.parquet")
        for (participant_id, month), part in _runs(ordered, pl.col("start_utc").dt.strftime("%Y-%m"))
    )


def write_daily_totals_batch(totals: pl.DataFrame, totals_dir: Path, batch_id: str) -> list[Path]:
    """One Parquet file per participant, its rows sorted by local_date and source."""
    ordered = totals.sort("participant_id", "local_date", "source", maintain_order=True)
    return write_parquet_files_atomic(
        (part, totals_dir / partition_name(participant_id) / f"batch-{batch_id}.parquet")
        for (participant_id, _), part in _runs(ordered, pl.lit(None))
    )


def _runs(ordered: pl.DataFrame, key: pl.Expr) -> Iterator[tuple[tuple[str, object], pl.DataFrame]]:
    """The runs of rows of `ordered` (sorted by participant, then so that `key` changes only
    between runs) that share participant_id and `key`, as slices: sorting the batch once and
    slicing it costs less than sorting each participant's rows (a night writes a file for each of
    1,000 participants)."""
    keys = (
        ordered.select(pl.col("participant_id"), key.alias("_key"))
        .with_row_index("_first")
        .group_by("participant_id", "_key", maintain_order=True)
        .agg(pl.col("_first").first(), pl.len().alias("_rows"))
    )
    for participant_id, value, first, rows in keys.iter_rows():
        yield (participant_id, value), ordered.slice(first, rows)


def files_under(folder: Path, wanted: Callable[[str], bool]) -> list[Path]:
    """The files under `folder` (links to folders not followed) whose name is `wanted`, sorted.
    os.walk on strings: several times faster than Path.rglob on a lake of a year (tens of
    thousands of files), which every run lists."""
    found = []
    for dirpath, _, filenames in os.walk(folder):
        found += [os.path.join(dirpath, name) for name in filenames if wanted(name)]
    return sorted(Path(path) for path in found)


def _files_in(folder: Path, wanted: Callable[[str], bool]) -> list[Path]:
    """The entries of `folder` itself (not below it) whose name is `wanted`, sorted."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(folder / name for name in names if wanted(name))


def _is_batch_file(name: str) -> bool:  # batch-*.parquet
    return name.startswith("batch-") and name.endswith(".parquet")


def _is_temporary(name: str) -> bool:  # .*.tmp, as temporary_name makes them
    return len(name) >= 5 and name.startswith(".") and name.endswith(".tmp")


def batch_files(folder: Path) -> list[Path]:
    return files_under(folder, _is_batch_file)


def batch_id_of(path: Path) -> str:
    return path.stem.removeprefix("batch-")


def remove_orphan_batches(folders: list[Path], known_batches: set[str]) -> list[Path]:
    """Delete batch files of runs that crashed before committing their manifest, and the hidden
    temporaries a killed run left among them, in one walk of each folder (`remove_stale_temporaries`
    for the other folders): a lake of a year of 1,000 participants is 14,000 folders, and each
    walk of them costs most of a second of every nightly run."""
    removed = []
    for folder in folders:
        for path in files_under(folder, lambda name: _is_batch_file(name) or _is_temporary(name)):
            if _is_temporary(path.name):
                removed += _remove_temporary(path)
            elif batch_id_of(path) not in known_batches:
                path.unlink()
                removed.append(path)
    return removed


def remove_stale_temporaries(folders: list[Path], *, recursive: bool = True) -> list[Path]:
    """Delete the hidden temporary files (`.<name>.<pid>.tmp`) a killed run left behind in
    `folders` (with `recursive=False`, in the folders themselves, not below). Only called under
    the run lock, so no live writer owns them."""
    removed = []
    for folder in folders:
        for tmp in files_under(folder, _is_temporary) if recursive else _files_in(folder, _is_temporary):
            removed += _remove_temporary(tmp)
    return removed


def _remove_temporary(tmp: Path) -> list[Path]:
    """Delete a hidden temporary file (never a link or a folder of that name); [tmp] if deleted."""
    if tmp.is_file() and not tmp.is_symlink():
        tmp.unlink()
        return [tmp]
    return []
