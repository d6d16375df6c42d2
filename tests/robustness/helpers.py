"""Shared helpers of the robustness tests: small data folders, a killable run, output snapshots.

A run here is `run_driver.py` in its own process (the nightly flow's steps through the library,
no Prefect), so a test can SIGKILL it at a chosen phase, limit its memory or file size, and
compare what it leaves with an uninterrupted run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
DRIVER = Path(__file__).with_name("run_driver.py")
PYTHON = sys.executable
STEPWISE = Path(PYTHON).with_name("stepwise")

FIRST_AS_OF = "2024-11-20"
AS_OF = "2024-11-27"

# A small slice of the sample cohort: two clinics, FIT monitoring + activity + Fitabase files.
SMALL_COHORT = {"P002": 4, "0042": 10, "P007": 8}
WAREHOUSE_TABLES = ("participants", "prescription_weeks", "step_intervals", "minute_steps", "walking_segments",
                    "daily_activity", "weekly_activity", "weekly_adherence", "daily_crosscheck", "definitions")
VOLATILE_COLUMNS = {"ingested_at", "batch_id", "built_at"}


def env(**extra: str) -> dict[str, str]:
    values = dict(os.environ)
    values["PYTHONPATH"] = str(ROOT) + os.pathsep + values.get("PYTHONPATH", "")
    values.update(extra)
    return values


def fuzz_examples(default: int) -> int:
    """Hypothesis examples per fuzz test: `default` in CI, STEPWISE_FUZZ_EXAMPLES for campaigns."""
    return int(os.environ.get("STEPWISE_FUZZ_EXAMPLES", default))


# --------------------------------------------------------------------------- data folders


def write_participants(root: Path, rows: list[dict], extra_columns: tuple[str, ...] = ()) -> Path:
    """participants.csv written with the csv module (ids with quotes and commas stay one cell)."""
    root.mkdir(parents=True, exist_ok=True)
    columns = ["participant_id", "clinic_id", "time_zone", "programme_start", "display_name", *extra_columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    path = root / "participants.csv"
    path.write_text(buffer.getvalue())
    return path


def sample_files(pid: str) -> list[Path]:
    return sorted(p for p in (SAMPLE / "inbox" / pid).rglob("*") if p.is_file())


def small_cohort(root: Path, *, part: str = "all") -> Path:
    """The SMALL_COHORT slice of the sample cohort in `root`. part: "initial" (the first two
    thirds of each participant's files), "later" (the rest, added to an existing folder) or "all"."""
    root.mkdir(parents=True, exist_ok=True)
    if part != "later":
        lines = (SAMPLE / "participants.csv").read_text().splitlines()
        keep = [lines[0]] + [line for line in lines[1:] if line.split(",")[0] in SMALL_COHORT]
        (root / "participants.csv").write_text("\n".join(keep) + "\n")
        plan = (SAMPLE / "prescriptions.csv").read_text().splitlines()
        (root / "prescriptions.csv").write_text(
            "\n".join([plan[0]] + [line for line in plan[1:] if line.split(",")[0] in SMALL_COHORT]) + "\n")
    for pid, count in SMALL_COHORT.items():
        files = sample_files(pid)
        files = files[:1] + files[-(count - 1):] if count < len(files) else files  # 0042 keeps its walk
        cut = (2 * len(files)) // 3
        chosen = {"initial": files[:cut], "later": files[cut:], "all": files}[part]
        for source in chosen:
            target = root / "inbox" / source.relative_to(SAMPLE / "inbox")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return root


def copy_folder(source: Path, target: Path) -> Path:
    """A copy keeping modification times (the manifest recognises files by path, size and mtime)."""
    shutil.copytree(source, target, symlinks=True)
    return target


# --------------------------------------------------------------------------- running


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    summary: dict = field(default_factory=dict)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def driver_command(data_dir: Path, *args: str, as_of: str | None = AS_OF) -> list[str]:
    command = [PYTHON, str(DRIVER), str(data_dir), *args]
    return command + (["--as-of", as_of] if as_of else [])


def start_run(data_dir: Path, *args: str, as_of: str | None = AS_OF, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(driver_command(data_dir, *args, as_of=as_of), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(), cwd=cwd or data_dir.parent)


def finish(process: subprocess.Popen, timeout: float = 300) -> RunResult:
    stdout, stderr = process.communicate(timeout=timeout)
    summary = {}
    for line in stdout.splitlines():
        if line.startswith("summary "):
            summary = json.loads(line.removeprefix("summary "))
    return RunResult(process.returncode, stdout, stderr, summary)


def run(data_dir: Path, *args: str, as_of: str | None = AS_OF, timeout: float = 300, cwd: Path | None = None) -> RunResult:
    return finish(start_run(data_dir, *args, as_of=as_of, cwd=cwd), timeout)


def run_ok(data_dir: Path, *args: str, as_of: str | None = AS_OF) -> RunResult:
    result = run(data_dir, *args, as_of=as_of)
    assert result.returncode == 0, f"run failed:\n{result.stderr[-4000:]}"
    return result


def kill_when(process: subprocess.Popen, fired: Callable[[], bool], *, timeout: float = 120,
              poll_seconds: float = 0.002, group: bool = False) -> bool:
    """SIGKILL `process` (with `group`: its whole process group, started with
    start_new_session=True) as soon as `fired()` is true. False when it ended first."""

    def kill() -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL) if group else process.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()

    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if fired():
            kill()
            return True
        if time.monotonic() > deadline:
            kill()
            raise AssertionError("the run neither reached the crash point nor ended")
        time.sleep(poll_seconds)
    if group:  # helpers (Prefect's embedded server) may outlive the main process
        kill()
    else:
        process.communicate()
    return False


# --------------------------------------------------------------------------- crash points


def _tree(folder: Path) -> set[str]:
    if not folder.exists():
        return set()
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        found.update(os.path.join(dirpath, name) for name in dirnames + filenames)
    return found


def _identity(path: Path) -> tuple | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


@dataclass(frozen=True)
class CrashPoint:
    """A moment of a run, recognised by what the run leaves in the data folder."""

    name: str
    description: str

    def trigger(self, data_dir: Path) -> Callable[[], bool]:
        """A predicate over the folder, armed against its state now (before the run starts)."""
        raw, quarantine = data_dir / "raw", data_dir / "quarantine"
        intervals, outbox = data_dir / "lake" / "step_intervals", data_dir / "outbox"
        manifest, warehouse = data_dir / "lake" / "manifest.parquet", data_dir / "warehouse.duckdb"
        building = data_dir / "warehouse.duckdb.building"
        if self.name == "ingest":
            before = _tree(raw) | _tree(quarantine)
            return lambda: bool((_tree(raw) | _tree(quarantine)) - before)
        if self.name == "parquet-write":
            before = _tree(intervals)
            return lambda: bool(_tree(intervals) - before)
        if self.name == "manifest-commit":
            before = _identity(manifest)
            return lambda: _identity(manifest) != before
        if self.name == "warehouse-build":
            return building.exists
        if self.name == "warehouse-swap":
            before = _identity(warehouse)
            return lambda: _identity(warehouse) != before
        if self.name == "reports":
            before = _tree(outbox)
            return lambda: bool(_tree(outbox) - before)
        if self.name.startswith("after-"):
            delay = float(self.name.removeprefix("after-").removesuffix("s"))
            started = time.monotonic()
            return lambda: time.monotonic() - started >= delay
        raise ValueError(self.name)


PHASE_POINTS = (
    CrashPoint("ingest", "while inbox files are read and their originals stored"),
    CrashPoint("parquet-write", "while the lake's Parquet batch files are written"),
    CrashPoint("manifest-commit", "just after the ingest manifest is committed"),
    CrashPoint("warehouse-build", "while warehouse.duckdb.building is built"),
    CrashPoint("warehouse-swap", "just after the new warehouse is swapped in"),
    CrashPoint("reports", "while the clinic summaries are written"),
)


def delay_point(seconds: float) -> CrashPoint:
    return CrashPoint(f"after-{seconds:.3f}s", "at a random moment")


# --------------------------------------------------------------------------- snapshots


def warehouse_snapshot(path: Path, tables: tuple[str, ...] = WAREHOUSE_TABLES) -> dict[str, list]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return connection_snapshot(con, tables)
    finally:
        con.close()


def connection_snapshot(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...] = WAREHOUSE_TABLES) -> dict[str, list]:
    return {table: _table_rows(con, table) for table in tables}


def _table_rows(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    columns = [row[0] for row in con.execute("select column_name from information_schema.columns "
                                             "where table_name = ? order by ordinal_position", [table]).fetchall()]
    keep = ", ".join(f'"{c}"' for c in columns if c not in VOLATILE_COLUMNS)  # names from the catalogue
    return rows_digest(con.sql(f'select {keep} from "{table}"').pl())


def rows_digest(frame: pl.DataFrame) -> tuple[int, str]:
    """(row count, digest of the rows as a multiset): equal for the same rows in any order;
    doubles rounded to 6 decimals (a parallel sum may differ in the last bit)."""
    frame = frame.select(sorted(frame.columns))
    floats = [name for name, dtype in frame.schema.items() if dtype in (pl.Float32, pl.Float64)]
    frame = frame.with_columns(pl.col(floats).round(6)) if floats else frame
    hashes = sorted(frame.hash_rows(seed=0).to_list())
    return frame.height, hashlib.sha256(",".join(map(str, hashes)).encode()).hexdigest()


def parquet_rows(files: list[Path]) -> tuple[int, str]:
    if not files:
        return 0, ""
    frames = [pl.read_parquet(path) for path in files]
    table = pl.concat(frames, how="diagonal_relaxed")
    return rows_digest(table.drop([c for c in table.columns if c in VOLATILE_COLUMNS]))


def visible_files(folder: Path) -> list[Path]:
    """Files a reader would look at: not hidden, not inside a hidden folder."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def hidden_temporaries(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob(".*.tmp") if "inbox" not in p.relative_to(data_dir).parts)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _report_content(path: Path):
    if path.suffix == ".json":
        document = json.loads(path.read_text())
        document.pop("warehouse_built_at_utc", None)
        return document
    if path.suffix == ".csv":
        return path.read_text()
    return "present"  # html/pdf carry the build time


def folder_snapshot(data_dir: Path) -> dict:
    """Everything a run produces, without what legitimately differs between runs (ingest and
    build times, batch ids)."""
    lake = data_dir / "lake"
    manifest = pl.read_parquet(lake / "manifest.parquet").drop("batch_id", "ingested_at")
    quarantine = {}
    for path in visible_files(data_dir / "quarantine"):
        key = path.relative_to(data_dir / "quarantine").as_posix()
        quarantine[key] = json.loads(path.read_text()) if path.name == "reason.json" else sha256(path)
    return {
        "warehouse": warehouse_snapshot(data_dir / "warehouse.duckdb"),
        "lake_step_intervals": parquet_rows(visible_files(lake / "step_intervals")),
        "lake_device_daily_totals": parquet_rows(visible_files(lake / "device_daily_totals")),
        "manifest": rows_digest(manifest),
        "raw": sorted(p.relative_to(data_dir).as_posix() for p in visible_files(data_dir / "raw")),
        "quarantine": quarantine,
        "outbox": {p.relative_to(data_dir).as_posix(): _report_content(p) for p in visible_files(data_dir / "outbox")},
    }


def diff_keys(left: dict, right: dict) -> list[str]:
    return sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))


def assert_manifest_backed(data_dir: Path) -> None:
    """The manifest never runs ahead of the data: every file it records as ingested has its
    original stored and exactly its rows in the lake's committed batches."""
    manifest_path = data_dir / "lake" / "manifest.parquet"
    if not manifest_path.exists():
        return
    manifest = pl.read_parquet(manifest_path)
    committed = set(manifest["batch_id"].drop_nulls().to_list())
    files = [p for p in visible_files(data_dir / "lake" / "step_intervals") if p.stem.removeprefix("batch-") in committed]
    lake = pl.read_parquet(files) if files else pl.DataFrame(schema={"participant_id": pl.String, "file_sha256": pl.String})
    counts = {(r["participant_id"], r["file_sha256"]): r["len"]
              for r in lake.group_by("participant_id", "file_sha256").len().iter_rows(named=True)}
    for row in manifest.filter(pl.col("status") == "ingested").iter_rows(named=True):
        digest = row["file_sha256"]
        assert (data_dir / "raw" / digest[:2] / digest).is_file(), f"{row['inbox_path']}: original not stored"
        if row["rows"]:
            found = counts.get((row["participant_id"], digest), 0)
            assert found == row["rows"], f"{row['inbox_path']}: manifest says {row['rows']} rows, lake has {found}"


def assert_nothing_partial_visible(data_dir: Path, *, planted: tuple[Path, ...] = ()) -> None:
    """Every file a reader can see is whole: Parquet files open, the warehouse opens read-only,
    originals match their hash, reports parse. `planted`: files a test put there on purpose."""
    for path in visible_files(data_dir / "lake"):
        if path not in planted:
            pq.read_table(path)
    if (data_dir / "warehouse.duckdb").exists():
        warehouse_snapshot(data_dir / "warehouse.duckdb", ("weekly_adherence", "run_info"))
    for path in visible_files(data_dir / "raw"):
        assert sha256(path) == path.name, f"partial original {path}"
    for path in visible_files(data_dir / "quarantine"):
        if path.name == "reason.json":
            json.loads(path.read_text())
    for path in visible_files(data_dir / "outbox"):
        data = path.read_bytes()
        if path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".csv":
            assert data.endswith(b"\n") and len(list(csv.reader(io.StringIO(data.decode())))) >= 1
        elif path.suffix == ".html":
            assert data.rstrip().endswith(b"</html>"), f"partial report {path}"
        elif path.suffix == ".pdf":
            assert data.startswith(b"%PDF") and b"%%EOF" in data[-1024:], f"partial report {path}"


# --------------------------------------------------------------------------- crash and recover


@dataclass
class Baseline:
    """Uninterrupted runs to compare crashed-and-recovered folders with."""

    after_first: Path  # folder after a first night (initial files, FIRST_AS_OF)
    first_warehouse: dict  # its warehouse
    incremental: dict  # folder snapshot after a second night (later files, AS_OF)
    fresh: dict  # folder snapshot of one run on all files (AS_OF)
    run_seconds: float  # wall time of one run, for random crash delays


def make_baseline(workdir: Path) -> Baseline:
    first = small_cohort(workdir / "first" / "data", part="initial")
    run_ok(first, as_of=FIRST_AS_OF)
    second = copy_folder(first, workdir / "second" / "data")
    small_cohort(second, part="later")
    started = time.monotonic()
    run_ok(second)
    seconds = time.monotonic() - started
    fresh = small_cohort(workdir / "fresh" / "data", part="all")
    run_ok(fresh)
    return Baseline(first, warehouse_snapshot(first / "warehouse.duckdb"), folder_snapshot(second),
                    folder_snapshot(fresh), seconds)


@dataclass
class CrashOutcome:
    fired: list[bool] = field(default_factory=list)  # per point: killed there (False: the run ended first)
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # hidden temporaries left in outbox/ (reports)


def crash_and_recover(baseline: Baseline, workdir: Path, points: list[CrashPoint], *, fresh: bool,
                      run_args: tuple[str, ...] = ()) -> CrashOutcome:
    """Kill one run per point in turn (each a retry of the last), then let a run finish and compare
    the folder with the uninterrupted run's. `run_args` go to the killed runs (e.g. a batch size)."""
    outcome = CrashOutcome()
    data = workdir / "data"
    if fresh:
        small_cohort(data, part="all")
        expected = baseline.fresh
        allowed = [expected["warehouse"]]
    else:
        copy_folder(baseline.after_first, data)
        small_cohort(data, part="later")
        expected = baseline.incremental
        allowed = [baseline.first_warehouse, expected["warehouse"]]
    for point in points:
        process = start_run(data, *run_args)
        outcome.fired.append(kill_when(process, point.trigger(data)))
        try:
            assert_nothing_partial_visible(data)
        except Exception as exc:  # noqa: BLE001 - reported with the crash point
            outcome.problems.append(f"{point.name}: partial file visible: {exc!r}")
        try:
            assert_manifest_backed(data)
        except Exception as exc:  # noqa: BLE001
            outcome.problems.append(f"{point.name}: the manifest ran ahead of the data: {exc!r}")
        if (data / "warehouse.duckdb").exists():
            try:
                seen = warehouse_snapshot(data / "warehouse.duckdb")
            except Exception as exc:  # noqa: BLE001
                outcome.problems.append(f"{point.name}: warehouse unreadable after the kill: {exc!r}")
            else:
                if seen not in allowed:
                    outcome.problems.append(f"{point.name}: the warehouse is neither the old nor the new one")
    recovery = run(data)
    if recovery.returncode != 0:
        outcome.problems.append(f"recovery run failed: {recovery.stderr[-2000:]}")
        return outcome
    different = diff_keys(folder_snapshot(data), expected)
    if different:
        outcome.problems.append(f"after recovery these differ from an uninterrupted run: {different}")
    for tmp in hidden_temporaries(data):
        relative = tmp.relative_to(data).as_posix()
        (outcome.leftovers if relative.startswith("outbox/") else outcome.problems).append(
            f"temporary file left behind: {relative}")
    for leftover in ("warehouse.duckdb.building", "warehouse.duckdb.building.wal", ".stepwise.lock"):
        if (data / leftover).exists():
            outcome.problems.append(f"{leftover} left behind")
    return outcome
