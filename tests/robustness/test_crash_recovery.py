"""A run killed (SIGKILL) at any phase: nothing partial is ever visible, and the next run's outputs
equal those of a run that was never interrupted.

Crash points are recognised by what the run leaves in the data folder (a new original stored, a
lake folder appearing, the manifest or warehouse file changing, the outbox appearing), never by a
hook in library code. Most runs go through the library (tests/robustness/run_driver.py, the
flow's steps without Prefect); one goes through `stepwise run`. `make crash` tries many more
points (scripts/crash.py).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.robustness import helpers as h
from tests.robustness.helpers import crash_and_recover


@pytest.mark.parametrize("point", h.PHASE_POINTS, ids=lambda p: p.name)
def test_killed_incremental_run_recovers_to_the_uninterrupted_outputs(baseline, tmp_path, point):
    """A second night's run (new files, new report date) killed at `point`."""
    outcome = crash_and_recover(baseline, tmp_path, [point], fresh=False)
    assert outcome.fired == [True], f"the run ended before reaching {point.name}"
    assert outcome.problems == []


def test_killed_first_run_recovers_to_the_uninterrupted_outputs(baseline, tmp_path):
    """The very first run on a folder, killed while writing the lake and again (on the retry)
    while building the warehouse."""
    points = [h.PHASE_POINTS[1], h.PHASE_POINTS[3]]
    outcome = crash_and_recover(baseline, tmp_path, points, fresh=True)
    assert outcome.fired == [True, True]
    assert outcome.problems == []


def test_killed_cli_run_leaves_a_stale_lock_that_the_next_run_takes_over(baseline, tmp_path):
    """`stepwise run` (Prefect's embedded server and all) killed while building the warehouse."""
    data = h.copy_folder(baseline.after_first, tmp_path / "data")
    h.small_cohort(data, part="later")
    prefect_home = tmp_path / "prefect-home"
    command = [str(h.STEPWISE), "run", "--data-dir", str(data), "--as-of", h.AS_OF]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=h.env(PREFECT_HOME=str(prefect_home)), start_new_session=True)
    building = data / "warehouse.duckdb.building"
    fired = h.kill_when(process, building.exists, timeout=240, group=True)
    assert fired, "the CLI run ended before building the warehouse"
    holder = json.loads((data / ".stepwise.lock").read_text())
    assert holder["pid"] == process.pid  # the dead run's lock is still there
    h.assert_nothing_partial_visible(data)
    assert h.warehouse_snapshot(data / "warehouse.duckdb") == baseline.first_warehouse
    h.run_ok(data)
    snapshot = h.folder_snapshot(data)
    assert h.diff_keys(snapshot, baseline.incremental) == []
    assert not (data / ".stepwise.lock").exists()
