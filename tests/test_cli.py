"""`stepwise run` as the user sees it: the real command in its own process, its stdout, stderr
and exit status. The runs use the session's temporary Prefect API (PREFECT_API_URL), so no
embedded server is started per run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.robustness.corpus import good_csv

STEPWISE = Path(sys.executable).with_name("stepwise")
ROOT = Path(__file__).resolve().parents[1]
HEADER = "participant_id,clinic_id,time_zone,programme_start\n"
LOG_RECORD = re.compile(r"\| (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) +\|")


@pytest.fixture(scope="module")
def api_url(prefect_harness) -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def stepwise(api_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_LOGGING")}
    env.update(PREFECT_API_URL=api_url, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([str(STEPWISE), *args], capture_output=True, text=True, env=env, timeout=300,
                          stdin=subprocess.DEVNULL)


def data_folder(root: Path, participants: str) -> Path:
    (root / "inbox" / "p1").mkdir(parents=True)
    (root / "participants.csv").write_text(HEADER + participants)
    return root


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("p1,../escape,UTC,2024-01-01\n", "column clinic_id: '../escape' cannot name a folder"),
        ("p1,c1,Not/AZone,2024-01-01\n", "time_zone 'Not/AZone' is not an IANA zone"),
    ],
)
def test_a_failed_run_prints_one_line_and_no_traceback(api_url, tmp_path, row, words):
    data = data_folder(tmp_path / "data", row)
    result = stepwise(api_url, "run", "--data-dir", str(data))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), result.stderr
    line = lines[0]
    assert line.startswith(f"stepwise: {data / 'participants.csv'} (line 2): ")  # the file
    assert words in line  # what is wrong
    assert "Correct the file and run again" in line  # what to do


def test_debug_shows_the_traceback(api_url, tmp_path):
    data = data_folder(tmp_path / "data", "p1,c1,Not/AZone,2024-01-01\n")
    result = stepwise(api_url, "--debug", "run", "--data-dir", str(data))
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RegistryError" in result.stderr


def test_a_run_with_a_quarantined_file_exits_0_and_ends_with_the_account(api_url, tmp_path):
    data = data_folder(tmp_path / "data", "p1,c1,UTC,2024-01-01\n")
    (data / "inbox" / "p1" / "minuteStepsNarrow.csv").write_text(good_csv("p1"))
    (data / "inbox" / "p1" / "junk.bin").write_bytes(b"\x00\x01not an export\xff" * 20)
    result = stepwise(api_url, "run", "--data-dir", str(data), "--as-of", "2024-01-10")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert not LOG_RECORD.search(result.stderr), result.stderr  # neither Prefect's nor a library's log
    lines = result.stdout.splitlines()
    assert lines[-1] == "1 file(s) ingested, 0 skipped as already seen, 1 quarantined"
    assert any(line.startswith("quarantined: p1/junk.bin: ") for line in lines)
    assert len(list((data / "quarantine").rglob("reason.json"))) == 1
