"""Ingest: idempotence, incrementality, quarantine with reasons, nothing lost, one run at a time."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.config import Settings
from pipeline.errors import RunLocked
from pipeline.ingest import ingest_inbox, sha256_of
from pipeline.registry import read_participants
from pipeline.runlock import run_lock
from pipeline.warehouse import build_warehouse

NARROW = "Id,ActivityMinute,Steps\n{pid},1/{day}/2024 10:{minute:02d}:00 AM,{steps}\n"


def make_folder(root: Path, participants=("p1",)) -> Settings:
    lines = ["participant_id,clinic_id,time_zone,programme_start,display_name"]
    lines += [f"{pid},c1,Europe/London,2024-01-01,Name {pid}" for pid in participants]
    root.mkdir(parents=True, exist_ok=True)
    (root / "participants.csv").write_text("\n".join(lines) + "\n")
    return Settings.for_folder(root)


def drop(settings: Settings, relative: str, text: str | bytes) -> Path:
    path = settings.data.inbox / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def run(settings: Settings):
    participants = read_participants(settings.data.participants_csv)
    report = ingest_inbox(settings.data, participants)
    build_warehouse(settings, participants, [], as_of=date(2024, 1, 10))
    return report


def snapshot(settings: Settings) -> list:
    con = duckdb.connect(str(settings.data.warehouse), read_only=True)
    try:
        return con.sql("select * exclude (last_data_utc) from weekly_adherence order by all").fetchall() + \
            con.sql("select * from minute_steps order by all").fetchall()
    finally:
        con.close()


def test_second_run_changes_nothing(tmp_path):
    settings = make_folder(tmp_path)
    drop(settings, "p1/a.csv", NARROW.format(pid="p1", day=2, minute=1, steps=80))
    first = run(settings)
    before = snapshot(settings)
    lake_before = sorted(p.name for p in settings.data.intervals_dir.rglob("*.parquet"))
    second = run(settings)
    assert (first.ingested, second.ingested, second.skipped) == (1, 0, 1)
    assert snapshot(settings) == before
    assert sorted(p.name for p in settings.data.intervals_dir.rglob("*.parquet")) == lake_before


def test_new_file_adds_only_its_data(tmp_path):
    settings = make_folder(tmp_path)
    drop(settings, "p1/a.csv", NARROW.format(pid="p1", day=2, minute=1, steps=80))
    run(settings)
    drop(settings, "p1/later/b.csv", NARROW.format(pid="p1", day=3, minute=1, steps=90))
    report = run(settings)
    assert (report.ingested, report.skipped) == (1, 1)
    con = duckdb.connect(str(settings.data.warehouse), read_only=True)
    assert con.sql("select steps from minute_steps order by minute_utc").fetchall() == [(80.0,), (90.0,)]


def test_bad_file_is_quarantined_with_reason_and_the_rest_goes_on(tmp_path):
    settings = make_folder(tmp_path)
    good = drop(settings, "p1/good.csv", NARROW.format(pid="p1", day=2, minute=1, steps=80))
    bad = drop(settings, "p1/bad.csv", b"\x00\x01junk")
    report = run(settings)
    assert (report.ingested, report.quarantined) == (1, 1)
    folder = settings.data.quarantine / sha256_of(bad)
    assert (folder / "bad.csv").read_bytes() == b"\x00\x01junk"
    reason = json.loads((folder / "reason.json").read_text())
    assert reason["inbox_path"] == "p1/bad.csv" and "not a format" in reason["problem"]
    assert bad.exists() and good.exists()  # the inbox is never emptied or modified
    assert (settings.data.raw / sha256_of(good)[:2] / sha256_of(good)).read_bytes() == good.read_bytes()


def test_unknown_participant_folder_and_links_are_quarantined_without_reading(tmp_path):
    settings = make_folder(tmp_path)
    drop(settings, "stranger/a.csv", NARROW.format(pid="stranger", day=2, minute=1, steps=80))
    secret = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    secret.write_text("outside the data folder")
    (settings.data.inbox / "p1").mkdir(parents=True)
    os.symlink(secret, settings.data.inbox / "p1" / "link.csv")
    report = run(settings)
    assert report.quarantined == 2 and report.ingested == 0
    reasons = " ".join(report.quarantine_reasons)
    assert "not a participant" in reasons and "symbolic link" in reasons
    assert not any(p.read_bytes() == b"outside the data folder" for p in settings.data.root.rglob("*") if p.is_file() and not p.is_symlink())


def test_wrong_participant_rows_are_never_attributed(tmp_path):
    settings = make_folder(tmp_path, ("p1", "p2"))
    drop(settings, "p1/a.csv", NARROW.format(pid="p2", day=2, minute=1, steps=80))
    report = run(settings)
    assert report.quarantined == 1 and "p2" in report.quarantine_reasons[0]
    con = duckdb.connect(str(settings.data.warehouse), read_only=True)
    assert con.sql("select count(*) from step_intervals").fetchall() == [(0,)]


def test_orphan_batch_of_a_crashed_run_is_removed(tmp_path):
    settings = make_folder(tmp_path)
    drop(settings, "p1/a.csv", NARROW.format(pid="p1", day=2, minute=1, steps=80))
    run(settings)
    orphan = settings.data.intervals_dir / "participant_id=p1" / "month=2024-01" / "batch-crashed.parquet"
    orphan.write_bytes(next(settings.data.intervals_dir.rglob("batch-*.parquet")).read_bytes())
    settings.data.ingest_finished.unlink()  # as the crashed run did when it started
    run(settings)
    assert not orphan.exists()
    con = duckdb.connect(str(settings.data.warehouse), read_only=True)
    assert con.sql("select sum(steps) from minute_steps").fetchall() == [(80.0,)]


def test_temporaries_a_killed_run_left_are_removed_wherever_it_writes(tmp_path):
    settings = make_folder(tmp_path)
    drop(settings, "p1/a.csv", NARROW.format(pid="p1", day=2, minute=1, steps=80))
    run(settings)
    data = settings.data
    partition = next(data.intervals_dir.rglob("batch-*.parquet")).parent
    left = [partition / ".batch-x.parquet.999.tmp", data.lake / ".manifest.parquet.999.tmp",
            data.lake / "device_daily_totals" / "participant_id=p1" / ".batch-y.parquet.999.tmp",
            next(data.raw.iterdir()) / ".abc.999.tmp", data.quarantine / "f00d" / ".a.csv.999.tmp"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written")
    data.ingest_finished.unlink()  # as the killed run did when it started
    run(settings)
    assert [path for path in left if path.exists()] == []
    assert sorted(p.name for p in data.intervals_dir.rglob("*") if p.is_file()) == [next(
        data.intervals_dir.rglob("batch-*.parquet")).name]  # the committed batch stays


def test_warehouse_holds_no_display_names(tmp_path):
    settings = make_folder(tmp_path)
    drop(settings, "p1/a.csv", NARROW.format(pid="p1", day=2, minute=1, steps=80))
    run(settings)
    assert b"Name p1" not in settings.data.warehouse.read_bytes()


def test_second_run_waits_for_the_lock_and_a_dead_holder_is_taken_over(tmp_path):
    lock = tmp_path / ".stepwise.lock"
    with run_lock(lock):
        with pytest.raises(RunLocked, match=str(os.getpid())):
            with run_lock(lock):
                pass
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename, "started_at": "x"}))
    with run_lock(lock):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
