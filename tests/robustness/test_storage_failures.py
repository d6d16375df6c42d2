"""Disk full or permission denied while writing: the run stops with one clear line, nothing already
stored is damaged, and the next run recovers to the outputs of a run that never failed.

A full disk is simulated with RLIMIT_FSIZE in the run's process (SIGXFSZ ignored, so a write past
the limit fails with EFBIG exactly where ENOSPC would); "cannot create this folder" with a file
placed where a folder must go (chmod does not stop root, which these tests may run as).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.robustness import helpers as h


def _stored(data: Path) -> dict:
    """What is already stored: originals, lake files and manifest rows, reports, by content."""
    files = {}
    for folder in ("raw", "lake", "quarantine", "outbox"):
        for path in h.visible_files(data / folder):
            files[path.relative_to(data).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = pl.read_parquet(data / "lake" / "manifest.parquet")
    return {"files": files, "manifest": set(manifest.iter_rows())}


def _prepare(baseline: h.Baseline, tmp_path: Path) -> tuple[Path, dict]:
    data = h.copy_folder(baseline.after_first, tmp_path / "data")
    h.small_cohort(data, part="later")
    return data, _stored(data)


def _assert_failed_clearly_and_nothing_damaged(result: h.RunResult, data: Path, before: dict, baseline: h.Baseline,
                                               *, words: tuple[str, ...], warehouse_unchanged: bool = True,
                                               planted: tuple[Path, ...] = ()) -> None:
    assert result.returncode == 1
    assert len(result.error_lines) == 1, result.stderr[-3000:]
    line = result.error_lines[0]
    assert line.startswith("stepwise: ") and all(word in line for word in words), line
    assert "Free disk space or fix" in line or "outbox folder is writable" in line, line
    after = _stored(data)
    for name, digest in before["files"].items():
        if name != "lake/manifest.parquet":
            assert after["files"].get(name) == digest, f"{name} changed or vanished"
    assert before["manifest"] <= after["manifest"]  # committed rows are never lost or altered
    h.assert_nothing_partial_visible(data, planted=planted)
    if warehouse_unchanged:
        assert h.warehouse_snapshot(data / "warehouse.duckdb") == baseline.first_warehouse
    leftovers = [p for p in h.hidden_temporaries(data) if "outbox" not in p.parts]
    assert leftovers == [] and not (data / "warehouse.duckdb.building").exists()
    assert not (data / ".stepwise.lock").exists()


def _assert_next_run_recovers(data: Path, baseline: h.Baseline) -> None:
    h.run_ok(data)
    assert h.diff_keys(h.folder_snapshot(data), baseline.incremental) == []


def test_disk_full_while_storing_originals(baseline, tmp_path):
    data, before = _prepare(baseline, tmp_path)
    result = h.run(data, "--fsize", "512")  # every new export is larger
    _assert_failed_clearly_and_nothing_damaged(result, data, before, baseline,
                                               words=("raw/", "cannot store a copy", "File too large"))
    _assert_next_run_recovers(data, baseline)


def test_disk_full_while_writing_the_lake(baseline, tmp_path):
    data, _ = _prepare(baseline, tmp_path)
    for path in (data / "inbox").rglob("*"):  # the originals are already stored (an earlier failed run)
        if path.is_file():
            digest = h.sha256(path)
            (data / "raw" / digest[:2]).mkdir(exist_ok=True)
            shutil.copyfile(path, data / "raw" / digest[:2] / digest)
    before = _stored(data)
    result = h.run(data, "--fsize", "2048")  # every Parquet batch is larger
    _assert_failed_clearly_and_nothing_damaged(result, data, before, baseline,
                                               words=("lake/step_intervals/", "cannot write the Parquet file"))
    _assert_next_run_recovers(data, baseline)


def test_disk_full_while_building_the_warehouse(baseline, tmp_path):
    data, before = _prepare(baseline, tmp_path)
    result = h.run(data, "--fsize", str(1 << 20))  # the warehouse is ~3 MB, everything else smaller
    _assert_failed_clearly_and_nothing_damaged(result, data, before, baseline,
                                               words=("warehouse.duckdb.building", "cannot build the warehouse"))
    _assert_next_run_recovers(data, baseline)


def test_a_file_where_the_lake_needs_a_folder(baseline, tmp_path):
    data, before = _prepare(baseline, tmp_path)
    blocker = data / "lake" / "device_daily_totals" / "participant_id=P007"
    shutil.move(blocker, tmp_path / "moved-aside")
    blocker.write_text("not a folder")
    before = _stored(data)
    result = h.run(data)
    _assert_failed_clearly_and_nothing_damaged(result, data, before, baseline, words=("participant_id=P007",),
                                               planted=(blocker,))
    blocker.unlink()
    shutil.move(tmp_path / "moved-aside", blocker)
    _assert_next_run_recovers(data, baseline)


def test_a_file_where_a_clinic_report_folder_must_go(baseline, tmp_path):
    pytest.importorskip("pipeline.reports.render")
    data, before = _prepare(baseline, tmp_path)
    blocker = data / "outbox" / "riverside" / h.AS_OF
    blocker.write_text("not a folder")
    before = _stored(data)
    result = h.run(data)
    _assert_failed_clearly_and_nothing_damaged(result, data, before, baseline, words=(f"riverside/{h.AS_OF}",),
                                               warehouse_unchanged=False)
    blocker.unlink()
    _assert_next_run_recovers(data, baseline)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions (the cases above use RLIMIT_FSIZE)")
def test_permission_denied_on_the_lake(baseline, tmp_path):
    data, before = _prepare(baseline, tmp_path)
    folder = data / "lake" / "step_intervals" / "participant_id=P002" / "month=2024-11"
    folder.chmod(0o555)
    try:
        result = h.run(data)
        _assert_failed_clearly_and_nothing_damaged(result, data, before, baseline, words=("Permission denied",))
    finally:
        folder.chmod(0o755)
    _assert_next_run_recovers(data, baseline)
