"""Ingest in batches: a batch gives the same lake as files ingested one by one, and a batch's
originals reach raw/ together, durably, only when the batch commits (never half-written)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import polars as pl
import pytest

from pipeline import ingest, lake
from pipeline.config import Settings
from pipeline.errors import StorageError
from pipeline.ingest import ingest_inbox
from pipeline.registry import read_participants
from tests.processes import alive, assert_all_end

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def sample_folder(root: Path, participants: tuple[str, ...] = ("P001", "P002", "P003")) -> Settings:
    """Part of the committed sample cohort: FIT and CSV exports, participants in three time zones."""
    root.mkdir(parents=True)
    shutil.copy2(SAMPLE / "participants.csv", root / "participants.csv")
    for participant_id in participants:
        shutil.copytree(SAMPLE / "inbox" / participant_id, root / "inbox" / participant_id)
    return Settings.for_folder(root)


def visible_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]


def lake_rows(settings: Settings) -> dict[str, pl.DataFrame]:
    """The lake's content, whatever the batches: intervals, daily totals, manifest, originals."""
    def read(folder: Path) -> pl.DataFrame:
        frame = pl.read_parquet(sorted(folder.rglob("batch-*.parquet")), hive_partitioning=False)
        return frame.sort(pl.all())

    manifest = pl.read_parquet(settings.data.manifest).drop("batch_id")
    originals = sorted(p.name for p in settings.data.raw.rglob("*") if p.is_file())
    return {
        "intervals": read(settings.data.intervals_dir),
        "totals": read(settings.data.lake / "device_daily_totals"),
        "manifest": manifest.sort(pl.all()),
        "raw": pl.DataFrame({"sha256": originals}),
    }


def hidden_files(folder: Path) -> list[Path]:
    """Hidden files left behind (the mark of a finished ingest is not one)."""
    return [p for p in folder.rglob(".*") if p.is_file() and p.name != ".ingest-finished"] if folder.exists() else []


def test_one_batch_gives_the_lake_of_files_ingested_one_by_one(tmp_path):
    together = sample_folder(tmp_path / "together")
    one_by_one = sample_folder(tmp_path / "one_by_one")
    participants = read_participants(together.data.participants_csv)
    assert len({p.time_zone for p in participants}) == 3  # one batch mixes time zones
    first = ingest_inbox(together.data, participants, now=NOW, batch_size=10_000)
    second = ingest_inbox(one_by_one.data, participants, now=NOW, batch_size=1)
    assert (first.ingested, first.quarantined, first.rows) == (second.ingested, second.quarantined, second.rows)
    assert first.ingested > 20 and first.rows > 0
    expected, actual = lake_rows(one_by_one), lake_rows(together)
    for name in expected:
        assert actual[name].equals(expected[name]), name
    for path in together.data.raw.rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def test_originals_of_a_batch_are_not_visible_before_it_commits(tmp_path, monkeypatch):
    settings = sample_folder(tmp_path / "data")
    participants = read_participants(settings.data.participants_csv)
    seen_at_commit = []

    def failing_commit(pairs, created=()):
        seen_at_commit.append((len(pairs), visible_files(settings.data.raw)))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ingest, "replace_all_atomically", failing_commit)
    with pytest.raises(StorageError, match="cannot store a copy of the inbox file"):
        ingest_inbox(settings.data, participants, now=NOW, batch_size=20)
    (written, visible), = seen_at_commit
    assert written == 20 and visible == []  # all written under hidden names, none renamed yet
    assert visible_files(settings.data.raw) == []
    assert hidden_files(settings.data.raw) == []  # the temporaries are removed after the failure
    assert not settings.data.manifest.exists()


def test_batch_commit_without_syncfs_fsyncs_each_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(lake, "_sync_filesystems", lambda folders: False)
    synced = []
    real_fsync = lake.os.fsync
    monkeypatch.setattr(lake.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    settings = sample_folder(tmp_path / "data")
    participants = read_participants(settings.data.participants_csv)
    report = ingest_inbox(settings.data, participants, now=NOW)
    originals = [p for p in settings.data.raw.rglob("*") if p.is_file()]
    assert len(originals) == report.ingested and len(synced) > len(originals)
    assert hidden_files(settings.data.raw) == [] and hidden_files(settings.data.lake) == []


def with_troublesome_files(settings: Settings) -> None:
    """A copy of an export under another name (the same bytes twice in one batch) and junk."""
    inbox = settings.data.inbox / "P001"
    first = sorted(p for p in inbox.rglob("*") if p.is_file())[0]
    shutil.copy2(first, inbox / ("copy-of-" + first.name))
    (inbox / "junk.csv").write_bytes(b"\x00\x01 not an export\n")
    (inbox / "cut.fit").write_bytes(first.read_bytes()[:40] if first.suffix.lower() == ".fit" else b".FIT")


def test_reading_in_worker_processes_gives_the_same_lake_and_quarantine(tmp_path, monkeypatch):
    pools = []

    tasks: list[int] = []  # files per task sent to the workers

    class RecordedPool(ingest.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            pools.append(self)

        def submit(self, function, *args, **kwargs):
            tasks.append(len(args[0]))
            return super().submit(function, *args, **kwargs)

    monkeypatch.setattr(ingest, "ProcessPoolExecutor", RecordedPool)
    monkeypatch.setattr(ingest, "PARALLEL_MIN_FILES", 1)  # the sample is smaller than a run worth workers
    monkeypatch.setattr(ingest, "READ_AHEAD_FILES", 4)  # finishing files while later ones are being read
    inline, parallel = sample_folder(tmp_path / "inline"), sample_folder(tmp_path / "parallel")
    for settings in (inline, parallel):
        with_troublesome_files(settings)
    participants = read_participants(inline.data.participants_csv)
    first = ingest_inbox(inline.data, participants, now=NOW, batch_size=16, workers=0)
    assert not pools
    second = ingest_inbox(parallel.data, participants, now=NOW, batch_size=16, workers=2)
    assert len(pools) == 1  # the files were read by worker processes
    assert sum(tasks) >= 20 and max(tasks) == 4  # several files to a task (at most READ_AHEAD_FILES ahead)
    assert first == second
    assert first.quarantined >= 2 and first.skipped >= 1  # the junk, the cut file; the copy is a duplicate
    expected, actual = lake_rows(inline), lake_rows(parallel)
    for name in expected:
        if name == "manifest":  # the junk files were written a moment apart in the two folders
            expected[name], actual[name] = expected[name].drop("mtime_ns"), actual[name].drop("mtime_ns")
        assert actual[name].equals(expected[name]), name
    def reasons(settings: Settings) -> list[str]:  # each names the file by its full path
        return sorted(p.read_text().replace(str(settings.data.root), "DIR")
                      for p in settings.data.quarantine.rglob("reason.json"))

    assert reasons(inline) == reasons(parallel) and len(reasons(inline)) == first.quarantined


def test_a_worker_that_dies_leaves_its_files_to_be_read_here(tmp_path, monkeypatch):
    pools = []

    class DyingPool:  # every reading fails as it does when a worker process is killed
        def __init__(self, *args, **kwargs) -> None:
            self.shut = False
            pools.append(self)

        def submit(self, *args) -> Future:
            future: Future = Future()
            future.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            return future

        def shutdown(self, *args, **kwargs) -> None:
            self.shut = True

    reference, settings = sample_folder(tmp_path / "reference"), sample_folder(tmp_path / "data")
    participants = read_participants(settings.data.participants_csv)
    expected = ingest_inbox(reference.data, participants, now=NOW, workers=0)
    monkeypatch.setattr(ingest, "ProcessPoolExecutor", DyingPool)
    monkeypatch.setattr(ingest, "PARALLEL_MIN_FILES", 1)
    assert ingest_inbox(settings.data, participants, now=NOW, workers=2) == expected
    assert len(pools) == 1 and pools[0].shut  # broken once, then every file was read here
    for name, frame in lake_rows(reference).items():
        assert lake_rows(settings)[name].equals(frame), name


WORKER_HOLDER = """
import sys, time
from pathlib import Path
from pipeline.ingest import InboxFile, _Readers
from pipeline.registry import Participant
path = Path(sys.argv[1])
item = InboxFile(path, "P001/x.fit", "P001", path.stat().st_size, 0)
readers = _Readers(2).__enter__()
readers.result(readers.submit(item, Participant("P001", "c", "UTC", None), None))
print(" ".join(str(p) for p in readers.pool._processes), flush=True)
time.sleep(120)
"""


def test_reading_workers_end_when_the_run_is_killed(tmp_path):
    export = next(p for p in (SAMPLE / "inbox" / "P001").rglob("*") if p.is_file())
    holder = subprocess.Popen([sys.executable, "-c", WORKER_HOLDER, str(export)], stdout=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parent.parent, text=True)
    try:
        workers = [int(pid) for pid in holder.stdout.readline().split()]
        assert workers and all(alive(pid) for pid in workers)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert_all_end(workers, 10, "a reading worker outlived the killed run")


def test_a_large_run_is_cut_into_at_most_max_batches(tmp_path, monkeypatch):
    # the manifest is rewritten once per batch: a first run of a year of files must not rewrite it
    # thousands of times
    monkeypatch.setattr(ingest, "MIN_BATCH_FILES", 1)
    monkeypatch.setattr(ingest, "MAX_BATCHES", 3)
    settings = sample_folder(tmp_path / "data")
    participants = read_participants(settings.data.participants_csv)
    written = []
    real_write = ingest.write_manifest
    monkeypatch.setattr(ingest, "write_manifest", lambda frame, path: (written.append(frame.height),
                                                                       real_write(frame, path)))
    report = ingest_inbox(settings.data, participants, now=NOW)
    files = report.ingested + report.skipped + report.quarantined
    assert files > 30 and len(written) == 3 and written[-1] == files
    assert pl.read_parquet(settings.data.manifest)["batch_id"].n_unique() == 3


def test_files_are_read_at_most_read_ahead_files_ahead(tmp_path, monkeypatch):
    # the bytes of every started file are held until it is finished: a batch of thousands of
    # 1 MB exports must not all be in memory at once
    monkeypatch.setattr(ingest, "READ_AHEAD_FILES", 3)
    outstanding, most = [0], [0]
    real_submit, real_result = ingest._Readers.submit, ingest._Readers.result

    def submit(self, *args):
        outstanding[0] += 1
        most[0] = max(most[0], outstanding[0])
        return real_submit(self, *args)

    def result(self, submitted):
        outstanding[0] -= 1
        return real_result(self, submitted)

    monkeypatch.setattr(ingest._Readers, "submit", submit)
    monkeypatch.setattr(ingest._Readers, "result", result)
    reference, settings = sample_folder(tmp_path / "reference"), sample_folder(tmp_path / "data")
    participants = read_participants(settings.data.participants_csv)
    assert ingest_inbox(settings.data, participants, now=NOW, batch_size=50) == ingest_inbox(
        reference.data, participants, now=NOW, batch_size=10_000)
    assert most[0] == 3 and outstanding[0] == 0
    for name, frame in lake_rows(reference).items():
        assert lake_rows(settings)[name].equals(frame), name


def test_the_next_batch_is_read_while_a_batch_commits(tmp_path, monkeypatch):
    # the reading workers must not wait for a commit's writes and syncs: the first batch's
    # manifest is only written once a file of the second batch has been read
    settings = sample_folder(tmp_path / "data")
    participants = read_participants(settings.data.participants_csv)
    second_batch_read = threading.Event()
    reads = [0]
    real_read, real_write = ingest._read_and_check, ingest.write_manifest

    def read(*args):
        reads[0] += 1
        if reads[0] > 10:  # a file of the second batch
            second_batch_read.set()
        return real_read(*args)

    def write_manifest(frame, path):
        if frame.height == 10:  # the first batch's commit
            assert second_batch_read.wait(timeout=30), "the second batch was not read during the first commit"
        real_write(frame, path)

    monkeypatch.setattr(ingest, "_read_and_check", read)
    monkeypatch.setattr(ingest, "write_manifest", write_manifest)
    reference = sample_folder(tmp_path / "reference")
    assert ingest_inbox(settings.data, participants, now=NOW, batch_size=10) == ingest_inbox(
        reference.data, participants, now=NOW, batch_size=10_000)
    for name, frame in lake_rows(reference).items():
        assert lake_rows(settings)[name].equals(frame), name


def test_a_failed_commit_stops_the_run_and_leaves_no_temporary_of_the_batch_being_read(tmp_path, monkeypatch):
    settings = sample_folder(tmp_path / "data")
    participants = read_participants(settings.data.participants_csv)
    commits = []

    def failing_rename(tmp, final):  # the manifest's (a lake batch's files are renamed together)
        commits.append(pl.read_parquet(tmp).height)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lake, "replace_atomically", failing_rename)
    with pytest.raises(StorageError):
        ingest_inbox(settings.data, participants, now=NOW, batch_size=10)
    assert commits == [10]  # the second batch was read, never committed
    assert not settings.data.manifest.exists()
    assert hidden_files(settings.data.raw) == [] and hidden_files(settings.data.lake) == []


def test_each_lake_file_holds_one_participant_and_month_sorted_by_time(tmp_path):
    # a batch is sorted once and cut into runs (lake._runs): each file must hold exactly its own
    # participant's rows of its month, in start, end and source order, and no row may be lost
    settings = sample_folder(tmp_path / "data")
    ingest_inbox(settings.data, read_participants(settings.data.participants_csv), now=NOW, batch_size=50)
    files = sorted(settings.data.intervals_dir.rglob("*.parquet"))
    assert len({path.parent.parent for path in files}) > 1 and len({path.name for path in files}) > 1
    rows = 0
    for path in files:
        frame = pl.read_parquet(path)
        rows += frame.height
        assert frame["participant_id"].unique().to_list() == [unquote(path.parent.parent.name.split("=", 1)[1])]
        assert frame["start_utc"].dt.strftime("%Y-%m").unique().to_list() == [path.parent.name.split("=", 1)[1]]
        assert frame.equals(frame.sort("start_utc", "end_utc", "source", maintain_order=True)), path
    manifest = pl.read_parquet(settings.data.manifest)
    assert rows == manifest.filter(pl.col("status") == "ingested")["rows"].sum()
    for path in sorted((settings.data.lake / "device_daily_totals").rglob("*.parquet")):
        frame = pl.read_parquet(path)
        assert frame["participant_id"].n_unique() == 1
        assert frame.equals(frame.sort("local_date", "source", maintain_order=True)), path


def test_a_worker_group_gives_back_each_files_own_rows(tmp_path):
    # a group's rows travel as one frame per table; each file must get exactly its own back, in
    # the reader schema, whatever the other files of the group were (quarantined, no totals)
    settings = sample_folder(tmp_path / "data")
    participants = {p.participant_id: p for p in read_participants(settings.data.participants_csv)}
    items, _ = ingest.discover_inbox(settings.data, list(participants.values()))
    items = [item for item in items if item.problem is None]
    cut = tmp_path / "cut.fit"
    cut.write_bytes(b"\x0e\x10" + b"\x00" * 30)
    items.insert(3, ingest.InboxFile(cut, "P001/cut.fit", "P001", cut.stat().st_size, 0))
    arguments = [(item, participants[item.participant_id], None) for item in items]
    one_by_one = [ingest._read_and_check(*file_arguments) for file_arguments in arguments]
    group = ingest._read_group(arguments)
    assert sum(read.reason is not None for read in one_by_one) >= 1
    assert sum(read.totals is not None for read in one_by_one) >= 1
    assert sum(read.totals is None and read.reason is None for read in one_by_one) >= 1
    for index, expected in enumerate(one_by_one):
        got = group.read(index)
        assert (got.reader, got.reason) == (expected.reader, expected.reason)
        for name in ("intervals", "totals"):
            frame, wanted = getattr(got, name), getattr(expected, name)
            assert (frame is None) == (wanted is None), (index, name)
            if wanted is not None:
                assert frame.equals(wanted), (index, name)


def test_leftovers_are_looked_for_only_after_a_run_that_did_not_finish(tmp_path, monkeypatch):
    # the walks of raw/ and the lake cover the whole history: a night after a finished run skips
    # them; a run that stops part-way has already removed the mark, so the next run looks
    settings = sample_folder(tmp_path / "data")
    participants = read_participants(settings.data.participants_csv)
    walks = []
    real_walk, real_replace = ingest.remove_orphan_batches, lake.replace_atomically
    monkeypatch.setattr(ingest, "remove_orphan_batches", lambda *args: (walks.append(1), real_walk(*args))[1])
    ingest_inbox(settings.data, participants, now=NOW)
    assert walks == [1] and settings.data.ingest_finished.exists()  # a first run: no mark yet
    ingest_inbox(settings.data, participants, now=NOW)
    assert walks == [1]
    first = sorted(p for p in (settings.data.inbox / "P001").rglob("*") if p.is_file())[0]
    shutil.copy2(first, first.with_name("again-" + first.name))

    def failing_rename(tmp, final):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lake, "replace_atomically", failing_rename)
    with pytest.raises(StorageError):
        ingest_inbox(settings.data, participants, now=NOW)
    assert walks == [1] and not settings.data.ingest_finished.exists()
    monkeypatch.setattr(lake, "replace_atomically", real_replace)
    ingest_inbox(settings.data, participants, now=NOW)
    assert walks == [1, 1] and settings.data.ingest_finished.exists()
    assert hidden_files(settings.data.lake) == [] and hidden_files(settings.data.raw) == []
