"""Scale: a synthetic cohort through `stepwise run`, first full run and next nightly run (issue 5, target 2).

Usage (from the project root)::

    .venv/bin/python benchmarks/scale.py --quick                    # 20 participants x 30 and 60 days, ~1-2 min
    .venv/bin/python benchmarks/scale.py --participants 100 --days 90 --history-days 180
    .venv/bin/python benchmarks/scale.py --participants 1000 --days 365 --history-days 0   # the target itself
    .venv/bin/python benchmarks/scale.py --participants 50 --days 30 --history-days 0 --no-library-full --nights 20
                                        # 20 more nights after the nightly: does a night cost more as batches pile up?
    add --cohort DIR to reuse a cohort written earlier by cohort_generator.py with the same settings
    (hard-linked, not generated again: a year of 1,000 participants takes ~17 min to write);
    add --profile to profile the phases (cProfile of ingest on a few participants, per-model warehouse
    timings, cProfile of the reports); --keep to keep the data folders under benchmarks/out/scale/.

For each history size H (``--days`` and, unless 0, ``--history-days``; default 2 x days):

1. ``benchmarks/cohort_generator.generate`` writes N participants x H days (Garmin-style FIT
   monitoring day files, ``--fitbit-share`` of participants as monthly Fitabase minute CSVs).
   Generation time is reported apart; it is not part of any run.
2. **full run**: ``stepwise run --data-dir D --as-of <last day + 1>`` in a subprocess, under
   ``/usr/bin/time -v``: wall time, the largest single-process peak RSS (``ru_maxrss``), and the
   peak of the whole process tree's summed RSS sampled every 0.2 s from /proc (the CLI process plus
   Prefect's temporary API server, which is a separate process).
3. The same library calls without Prefect (``registry.read_participants`` -> ``ingest.ingest_inbox``
   -> ``warehouse.build_warehouse`` -> ``reports.render.write_clinic_reports``, under the run lock,
   as the flow does) in a subprocess on a copy of the folder made before step 2 (inbox hard-linked,
   it is never written): wall time per phase, and in total. Orchestration share =
   (CLI wall - library wall) / CLI wall, both whole-process times (imports included).
4. ``cohort_generator.add_day`` drops one new day per participant into both folders; then the
   **nightly run**: steps 2 and 3 again.

Prefect runs on its temporary local server with ``PREFECT_HOME=benchmarks/out/scale/prefect_home``
(kept between runs, like a system timer's fixed Prefect home); a warm-up run on a one-participant
folder creates its database first, so no measured run pays for the migrations.

The last line is machine-readable::

    RESULT participants=... days=... full_run_s=... nightly_run_s=... peak_rss_mb=... days_h2=...
           full_run_s_h2=... nightly_run_s_h1=... nightly_run_s_h2=... ingest_s=... warehouse_s=...
           reports_s=... nightly_ingest_s=... nightly_warehouse_s=... nightly_reports_s=...
           orchestration_share=... nightly_orchestration_share=... gen_s=...

With ``--nights K``: ``nights=K nights_first_wall_s=... nights_last_wall_s=...`` and the least-squares
slope per night of the library's wall time and of each phase (``nights_wall_slope_s=...``).

(``peak_rss_mb``: the largest process-tree peak of all measured CLI runs; ``*_h1`` is the
``--days`` history, ``*_h2`` the ``--history-days`` one; phase figures are the library driver's
on the ``--days`` history.)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

DEFAULT_OUT = PROJECT_ROOT / "benchmarks" / "out" / "scale"
STEPWISE = PROJECT_ROOT / ".venv" / "bin" / "stepwise"
PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"
GNU_TIME = Path("/usr/bin/time")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TARGET_PARTICIPANTS, TARGET_DAYS = 1000, 365


# ============================================================================ measuring a process


@dataclass
class Measured:
    label: str
    wall_s: float
    max_rss_mb: float  # largest single process (ru_maxrss via /usr/bin/time -v or getrusage)
    tree_peak_mb: float  # peak of the summed RSS of the process tree (sampled)
    returncode: int
    stdout: str = ""
    stderr: str = ""
    extra: dict = field(default_factory=dict)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree_rss_bytes(root_pid: int) -> int:
    children = _children_map()
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE_SIZE
        except OSError:
            pass
    return total


def measure(label: str, command: list[str], env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT) -> Measured:
    """Run `command` to completion; wall time, peak RSS of the largest process and of the tree."""
    use_time = GNU_TIME.exists()
    full = [str(GNU_TIME), "-v", *command] if use_time else command
    peak = 0
    began = time.perf_counter()
    process = subprocess.Popen(full, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_bytes(process.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - began
    done.set()
    sampler.join()
    max_rss_kb = 0.0
    if use_time:
        for line in stderr.splitlines():
            if "Maximum resident set size" in line:
                max_rss_kb = float(line.rsplit(":", 1)[1])
        stderr = stderr.split("\tCommand being timed:")[0]
    else:
        import resource

        max_rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over all children so far
    return Measured(label, wall, max_rss_kb / 1024, max(peak / 2**20, max_rss_kb / 1024), process.returncode,
                    stdout, stderr)


def _check(result: Measured) -> Measured:
    if result.returncode != 0:
        print(f"!! {result.label} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}",
              file=sys.stderr)
        raise SystemExit(f"{result.label} failed")
    return result


def prefect_env(out: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)  # the temporary local server, as `stepwise run` uses by default
    env.update(
        PREFECT_HOME=str(out / "prefect_home"),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def cli_run(label: str, data: Path, as_of: date, env: dict[str, str]) -> Measured:
    return _check(measure(label, [str(STEPWISE), "run", "--data-dir", str(data), "--as-of", as_of.isoformat()], env))


def library_run(label: str, data: Path, as_of: date, env: dict[str, str]) -> Measured:
    result = _check(measure(label, [str(PYTHON), str(Path(__file__).resolve()), "--library-driver", str(data),
                                    "--as-of", as_of.isoformat()], env))
    result.extra = json.loads(result.stdout.strip().splitlines()[-1])
    return result


# ============================================================================ the library driver


def library_driver(data_dir: Path, as_of: date) -> dict:
    """The flow's steps as plain library calls, each timed (runs in its own process)."""
    began = time.perf_counter()
    from pipeline.config import Settings
    from pipeline.ingest import ingest_inbox, read_workers
    from pipeline.registry import read_participants, read_plan_rows
    from pipeline.reports.render import write_clinic_reports
    from pipeline.runlock import run_lock
    from pipeline.warehouse import build_warehouse, read_report_date

    import resource

    def peak_mb() -> float:  # this process's peak RSS so far (Linux: KiB)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    phases = {"import_s": time.perf_counter() - began, "import_peak_mb": peak_mb()}
    settings = Settings.for_folder(data_dir)
    with run_lock(settings.data.lock):
        mark = time.perf_counter()
        participants = read_participants(settings.data.participants_csv)
        plan_rows = read_plan_rows(settings.data.prescriptions_csv, participants)
        phases["registry_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        report = ingest_inbox(settings.data, participants, workers=read_workers())  # as the flow does
        phases["ingest_s"] = time.perf_counter() - mark
        phases["ingest_peak_mb"] = peak_mb()
        mark = time.perf_counter()
        warehouse = build_warehouse(settings, participants, plan_rows, as_of=as_of)
        phases["warehouse_s"] = time.perf_counter() - mark
        phases["warehouse_peak_mb"] = peak_mb()
        mark = time.perf_counter()
        reports = write_clinic_reports(warehouse, participants, settings.data.outbox, read_report_date(warehouse),
                                       definitions=settings.definitions)
        phases["reports_s"] = time.perf_counter() - mark
        phases["reports_peak_mb"] = peak_mb()
    phases.update(total_s=time.perf_counter() - began, ingested=report.ingested, skipped=report.skipped,
                  quarantined=report.quarantined, rows=report.rows, reports=len(reports))
    return phases


# ============================================================================ folders and facts


def clone(source: Path, target: Path) -> None:
    """A copy of a data folder for the library driver: inbox/ and raw/ hard-linked (never
    written in place), everything else copied."""
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name == ".stepwise.lock":
            continue
        if entry.is_dir() and entry.name in ("inbox", "raw"):
            subprocess.run(["cp", "-al", str(entry), str(target / entry.name)], check=True)
        elif entry.is_dir():
            subprocess.run(["cp", "-a", str(entry), str(target / entry.name)], check=True)
        else:
            shutil.copy2(entry, target / entry.name)


def reuse_cohort(source: Path, target: Path, participants: int, days: int, fitbit_share: float, seed: int,
                 start: date):
    """A cohort written earlier by cohort_generator.py (--cohort), instead of generating it again
    (a year of 1,000 participants takes ~17 min to write), cloned into `target` as `clone` does: its
    inbox hard-linked (no run writes into an inbox file: add_day only adds files), participants.csv
    and generator.json copied (add_day rewrites the latter). Its settings must be those asked for,
    and no day added."""
    gen = _gen()
    info = json.loads((source / gen.INFO_FILE).read_text())
    wanted = {"participants": participants, "fitbit_share": fitbit_share, "seed": seed, "start": start.isoformat(),
              "last_day": (start + timedelta(days=days - 1)).isoformat()}
    differ = {key: (info.get(key), value) for key, value in wanted.items() if info.get(key) != value}
    if differ or "generated" not in info:
        raise SystemExit(f"--cohort {source}: not a cohort of these settings (have, asked for: {differ}) "
                         "or written by a generator that did not record what it wrote")
    clone(source, target)
    return gen.GenerationInfo(**info["generated"])


def folder_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def count_files(path: Path, pattern: str = "*") -> int:
    return sum(1 for p in path.rglob(pattern) if p.is_file()) if path.exists() else 0


def warehouse_facts(data: Path) -> dict:
    import duckdb

    facts: dict = {}
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        for table in ("step_intervals", "minute_steps", "walking_segments", "daily_activity", "weekly_adherence"):
            facts[f"{table}_rows"] = con.sql(f'select count(*) from "{table}"').fetchall()[0][0]
    finally:
        con.close()
    facts["warehouse_mb"] = (data / "warehouse.duckdb").stat().st_size / 1e6
    facts["lake_parquet_files"] = count_files(data / "lake", "*.parquet")
    facts["lake_mb"] = folder_bytes(data / "lake") / 1e6
    facts["inbox_files"] = count_files(data / "inbox")
    facts["inbox_mb"] = folder_bytes(data / "inbox") / 1e6
    return facts


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ============================================================================ profiling


def profile_phases(data: Path, as_of: date, scratch: Path, participants: int, top: int = 18) -> str:
    """cProfile of ingest on the first `participants` participants' files (a fresh folder),
    per-model timings of the warehouse build on `data`'s lake (in a scratch database, no swap),
    and cProfile of the reports on `data`'s warehouse (into a scratch outbox)."""
    import duckdb

    from pipeline import warehouse as wh
    from pipeline.config import Settings
    from pipeline.ingest import ingest_inbox
    from pipeline.registry import read_participants, read_plan_rows
    from pipeline.reports.render import write_clinic_reports
    from pipeline.warehouse import read_report_date

    out = io.StringIO()

    def stats(profile: cProfile.Profile, title: str, seconds: float) -> None:
        for order in ("tottime", "cumulative"):
            text = io.StringIO()
            pstats.Stats(profile, stream=text).strip_dirs().sort_stats(order).print_stats(top)
            body = text.getvalue()
            body = body[body.find("ncalls"):] if "ncalls" in body else body
            out.write(f"\n--- {title}: {seconds:.2f} s wall; top {top} by {order}\n{body}")

    # 1. ingest, a subset of participants
    subset = scratch / "ingest_subset"
    shutil.rmtree(subset, ignore_errors=True)
    subset.mkdir(parents=True)
    shutil.copy2(data / "participants.csv", subset / "participants.csv")
    everyone = read_participants(data / "participants.csv")
    chosen = everyone[:participants]
    (subset / "inbox").mkdir()
    for person in chosen:
        if (data / "inbox" / person.participant_id).exists():
            subprocess.run(["cp", "-al", str(data / "inbox" / person.participant_id),
                            str(subset / "inbox" / person.participant_id)], check=True)
    settings = Settings.for_folder(subset)
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    report = ingest_inbox(settings.data, everyone)
    profile.disable()
    seconds = time.perf_counter() - began
    stats(profile, f"ingest_inbox, {report.ingested} files of {len(chosen)} participants "
                   f"({seconds / max(report.ingested, 1) * 1000:.1f} ms/file)", seconds)

    # 2. warehouse, statement by statement: a build from scratch on a copy of the lake (no previous
    #    derived build), then a build with nothing new; every DuckDB statement timed
    settings = Settings.for_folder(data)
    participants_all = read_participants(settings.data.participants_csv)
    plan_rows = read_plan_rows(settings.data.prescriptions_csv, participants_all)
    copy = scratch / "warehouse_from_scratch"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data / "lake", copy / "lake", ignore=shutil.ignore_patterns("derived"))
    shutil.copy2(data / "participants.csv", copy / "participants.csv")
    copy_settings = Settings.for_folder(copy)
    timings: dict[str, float] = {}
    original_execute = duckdb.DuckDBPyConnection.execute

    def timed_execute(self, query, *args, **kwargs):  # noqa: ANN001 - a timing shim for this profile only
        began_statement = time.perf_counter()
        try:
            return original_execute(self, query, *args, **kwargs)
        finally:
            key = " ".join(str(query).split())[:90]
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - began_statement

    for label in ("from scratch", "nothing new"):
        timings.clear()
        duckdb.DuckDBPyConnection.execute = timed_execute
        mark = time.perf_counter()
        try:
            wh.build_warehouse(copy_settings, participants_all, plan_rows, as_of=as_of)
        finally:
            duckdb.DuckDBPyConnection.execute = original_execute
        seconds = time.perf_counter() - mark
        out.write(f"\n--- warehouse build {label}: {seconds:.2f} s; slowest statements\n")
        for key, spent in sorted(timings.items(), key=lambda item: -item[1])[:top]:
            out.write(f"  {spent:8.2f} s  {key}\n")
    shutil.rmtree(copy, ignore_errors=True)

    # 3. reports
    warehouse = settings.data.warehouse
    outbox = scratch / "outbox"
    shutil.rmtree(outbox, ignore_errors=True)
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    written = write_clinic_reports(warehouse, participants_all, outbox, read_report_date(warehouse),
                                   definitions=settings.definitions)
    profile.disable()
    stats(profile, f"write_clinic_reports ({len(written)} files)", time.perf_counter() - began)
    shutil.rmtree(subset, ignore_errors=True)
    shutil.rmtree(outbox, ignore_errors=True)
    return out.getvalue()


# ============================================================================ the benchmark


@dataclass
class HistoryResult:
    days: int
    generation: dict
    add_day_generation: dict
    full_cli: Measured
    full_lib: Measured | None
    nightly_cli: Measured
    nightly_lib: Measured
    facts_full: dict
    facts_nightly: dict
    load_before: str
    load_after: str
    later_nights: list[dict] = field(default_factory=list)  # --nights: one library nightly each


def share(cli: Measured, lib: Measured | None) -> float:
    return (cli.wall_s - lib.wall_s) / cli.wall_s if cli.wall_s and lib else float("nan")


def _gen():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cohort_generator

    return cohort_generator


def _summary_line(result: Measured) -> str:
    lines = [line for line in result.stdout.strip().splitlines() if "file(s) ingested" in line]
    return lines[-1] if lines else ""


def _run_history(out: Path, participants: int, days: int, fitbit_share: float, seed: int, start: date,
                 env: dict[str, str], keep: bool, profile: bool, profile_participants: int,
                 library_full: bool, nights: int = 0, cohort: Path | None = None) -> tuple[HistoryResult, str]:
    gen = _gen()
    base = out / f"p{participants}-d{days}"
    shutil.rmtree(base, ignore_errors=True)
    cli_dir, lib_full_dir, lib_dir = base / "cli", base / "lib_full", base / "lib_nightly"
    load_before = load_average()
    print(f"\n== {participants} participants x {days} days  (load average {load_before})", flush=True)
    if cohort is None:
        generation = gen.generate(cli_dir, participants, days, fitbit_share=fitbit_share, seed=seed, start=start)
        print(f"   generated: {generation.one_line()}", flush=True)
    else:
        generation = reuse_cohort(cohort, cli_dir, participants, days, fitbit_share, seed, start)
        print(f"   reused {cohort} (generated earlier: {generation.one_line()})", flush=True)
    if library_full:
        clone(cli_dir, lib_full_dir)
    as_of = start + timedelta(days=days)

    full_cli = cli_run("full run (stepwise run)", cli_dir, as_of, env)
    print(f"   full run, CLI:      {full_cli.wall_s:8.1f} s  peak tree RSS {full_cli.tree_peak_mb:7.0f} MB  "
          f"(largest process {full_cli.max_rss_mb:.0f} MB)  [{_summary_line(full_cli)}]  load {load_average()}",
          flush=True)
    if library_full:
        full_lib = library_run("full run (library)", lib_full_dir, as_of, env)
        print(f"   full run, library:  {full_lib.wall_s:8.1f} s  peak tree RSS {full_lib.tree_peak_mb:7.0f} MB  "
              f"{_phases(full_lib.extra)}  load {load_average()}", flush=True)
        shutil.rmtree(lib_full_dir, ignore_errors=True)
    else:
        full_lib = None
    facts_full = warehouse_facts(cli_dir)

    clone(cli_dir, lib_dir)  # the library's nightly starts from the state the CLI's full run left
    added = gen.add_day(cli_dir)
    gen.add_day(lib_dir)
    print(f"   new day: {added.one_line()}", flush=True)
    nightly_as_of = as_of + timedelta(days=1)
    nightly_cli = cli_run("nightly run (stepwise run)", cli_dir, nightly_as_of, env)
    print(f"   nightly, CLI:       {nightly_cli.wall_s:8.1f} s  peak tree RSS {nightly_cli.tree_peak_mb:7.0f} MB  "
          f"(largest process {nightly_cli.max_rss_mb:.0f} MB)  [{_summary_line(nightly_cli)}]  load {load_average()}",
          flush=True)
    nightly_lib = library_run("nightly run (library)", lib_dir, nightly_as_of, env)
    print(f"   nightly, library:   {nightly_lib.wall_s:8.1f} s  peak tree RSS {nightly_lib.tree_peak_mb:7.0f} MB  "
          f"{_phases(nightly_lib.extra)}  load {load_average()}", flush=True)
    facts_nightly = warehouse_facts(cli_dir)
    later_nights = run_later_nights(lib_dir, nightly_as_of, env, nights)
    profile_text = ""
    if profile:
        print("   profiling ...", flush=True)
        profile_text = profile_phases(cli_dir, nightly_as_of, base / "profile", profile_participants)
    result = HistoryResult(days, asdict(generation), asdict(added), full_cli, full_lib, nightly_cli, nightly_lib,
                           facts_full, facts_nightly, load_before, load_average(), later_nights)
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return result, profile_text


def run_later_nights(data: Path, as_of: date, env: dict[str, str], nights: int) -> list[dict]:
    """`nights` more nights on the library's folder, each one new day per participant: does a
    night cost more as nightly batches pile up in the lake (a file per participant per night)?"""
    gen = _gen()
    rows = []
    for night in range(1, nights + 1):
        gen.add_day(data)
        run = library_run(f"later night {night}", data, as_of + timedelta(days=night), env)
        row = {"night": night, "wall_s": run.wall_s, "tree_peak_mb": run.tree_peak_mb,
               "lake_parquet_files": count_files(data / "lake", "*.parquet"),
               **{k: run.extra[k] for k in ("ingest_s", "warehouse_s", "reports_s")}}
        rows.append(row)
        print(f"   later night {night:3d}: {run.wall_s:6.1f} s  {_phases(run.extra)}  "
              f"lake {row['lake_parquet_files']} Parquet files", flush=True)
    return rows


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mean_x, mean_y = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else float("nan")


def _phases(extra: dict) -> str:
    return "  ".join(f"{name} {extra[name + '_s']:.1f}s" + (f" (peak {extra[name + '_peak_mb']:.0f} MB)"
                                                           if name + "_peak_mb" in extra else "")
                     for name in ("import", "ingest", "warehouse", "reports") if name + "_s" in extra)


def warm_up(out: Path, env: dict[str, str]) -> float:
    """One run on a one-participant folder: creates Prefect's database under PREFECT_HOME."""
    if (Path(env["PREFECT_HOME"]) / "prefect.db").exists():
        return 0.0
    gen = _gen()
    folder = out / "warmup"
    shutil.rmtree(folder, ignore_errors=True)
    gen.generate(folder, 1, 2, fitbit_share=0.0)
    result = cli_run("warm-up", folder, gen.DEFAULT_START + timedelta(days=2), env)
    shutil.rmtree(folder, ignore_errors=True)
    return result.wall_s


def extrapolate(result: HistoryResult, participants: int) -> list[str]:
    """Linear extrapolation to 1,000 x 365 from per-file and per-row rates (not a measurement)."""
    lib, facts = result.full_lib.extra, result.facts_full
    files = result.generation["fit_files"] + result.generation["fitbit_files"]
    fit_share = result.generation["fit_files"] / max(files, 1)
    scale_participants = TARGET_PARTICIPANTS / participants
    scale_days = TARGET_DAYS / result.days
    target_files = files * scale_participants * scale_days
    per_file = lib["ingest_s"] / max(lib["ingested"], 1)
    ingest = per_file * target_files
    rows = facts["minute_steps_rows"]
    warehouse = lib["warehouse_s"] * scale_participants * scale_days
    reports = lib["reports_s"] * scale_participants  # reports cover recent weeks: ~ participants
    overhead = result.full_cli.wall_s - result.full_lib.wall_s
    nightly_lib = result.nightly_lib.extra
    nightly_ingest = nightly_lib["ingest_s"] * scale_participants  # new files ~ participants
    # incremental build: the new days are recomputed (~ participants); the small tables rebuilt from the
    # daily rows grow with history too (the h1/h2 comparison above shows how much), not counted here
    nightly_wh = nightly_lib["warehouse_s"] * scale_participants
    nightly_reports = nightly_lib["reports_s"] * scale_participants
    lines = [
        f"EXTRAPOLATION to {TARGET_PARTICIPANTS} x {TARGET_DAYS} (linear in files/rows from the {participants} x "
        f"{result.days} measurement; NOT measured):",
        f"  files {target_files:,.0f} ({fit_share:.0%} FIT); ingest {per_file * 1000:.1f} ms/file -> "
        f"{ingest / 60:,.1f} min (with the flow's reading workers)",
        f"  warehouse: {lib['warehouse_s']:.1f} s for {rows:,} minute_steps rows "
        f"({lib['warehouse_s'] / max(rows, 1) * 1e6:.2f} us/row) -> ~{rows * scale_participants * scale_days / 1e6:,.0f} M "
        f"rows, {warehouse / 60:,.1f} min if linear",
        f"  reports: {lib['reports_s']:.1f} s -> {reports / 60:,.1f} min (~ participants)",
        f"  full run ~ {(ingest + warehouse + reports + overhead) / 60:,.0f} min (target 30 min)",
        f"  nightly ~ ingest {nightly_ingest:,.0f} s + warehouse {nightly_wh:,.0f} s + reports {nightly_reports:,.0f} s "
        f"+ orchestration {result.nightly_cli.wall_s - result.nightly_lib.wall_s:.0f} s = "
        f"{(nightly_ingest + nightly_wh + nightly_reports + result.nightly_cli.wall_s - result.nightly_lib.wall_s) / 60:,.1f}"
        f" min (target 2 min)",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scale benchmark: full run and nightly run of a synthetic cohort.")
    parser.add_argument("--participants", type=int, default=TARGET_PARTICIPANTS)
    parser.add_argument("--days", type=int, default=TARGET_DAYS, help="history of the main measurement")
    parser.add_argument("--history-days", type=int, default=None,
                        help="a second, longer history for the nightly-cost comparison (default 2 x days; 0: none)")
    parser.add_argument("--quick", action="store_true", help="10 participants x 14 days (and 28): ~2-3 min")
    parser.add_argument("--no-library-full", action="store_true",
                        help="skip the library full run (no full-run phase split or orchestration share)")
    parser.add_argument("--library-full-all", action="store_true",
                        help="also run the library full run on the second history (default: first only)")
    parser.add_argument("--nights", type=int, default=0,
                        help="after the nightly run, this many more library nightlies on the --days history, "
                             "one new day each: does a night's cost grow as nightly batches pile up?")
    parser.add_argument("--fitbit-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--keep", action="store_true", help="keep the data folders")
    parser.add_argument("--profile", action="store_true", help="profile the phases on the --days history")
    parser.add_argument("--profile-participants", type=int, default=None,
                        help="participants whose files the ingest profile reads (default ~5%%, at least 2)")
    parser.add_argument("--cohort", type=Path, default=None,
                        help="for the --days history, reuse this cohort (written by cohort_generator.py with the same "
                             "participants, days, fitbit share, seed and start) instead of generating it")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    parser.add_argument("--library-driver", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.library_driver:
        print(json.dumps(library_driver(args.library_driver, args.as_of)))
        return
    if args.quick:
        args.participants, args.days = 10, 14
    histories = [args.days]
    second = 2 * args.days if args.history_days is None else args.history_days
    if second:
        histories.append(second)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = prefect_env(out)
    print(f"scale benchmark: {args.participants} participants, histories {histories} days, "
          f"fitbit share {args.fitbit_share}; {os.cpu_count()} CPU(s); load average {load_average()}")
    warm = warm_up(out, env)
    print(f"warm-up run (Prefect database under {env['PREFECT_HOME']}): "
          + (f"{warm:.1f} s" if warm else "not needed, the database exists"))
    results, profiles = [], []
    for index, days in enumerate(histories):
        result, profile_text = _run_history(
            out, args.participants, days, args.fitbit_share, args.seed, args.start, env, args.keep,
            args.profile and index == 0, args.profile_participants or max(2, args.participants // 20),
            (index == 0 and not args.no_library_full) or args.library_full_all, args.nights if index == 0 else 0,
            args.cohort.resolve() if args.cohort and index == 0 else None)
        results.append(result)
        if profile_text:
            profiles.append(profile_text)

    print("\n" + "=" * 100)
    header = f"{'history':>8} {'run':<8} {'CLI wall s':>10} {'lib wall s':>10} {'orch %':>7} {'ingest s':>9} " \
             f"{'wareh. s':>9} {'reports s':>9} {'tree MB':>8} {'max proc MB':>11} {'files in':>8}"
    print(header)
    for r in results:
        for name, cli, lib in (("full", r.full_cli, r.full_lib), ("nightly", r.nightly_cli, r.nightly_lib)):
            if lib is None:
                print(f"{r.days:>8} {name:<8} {cli.wall_s:>10.1f} {'-':>10} {'-':>7} {'-':>9} {'-':>9} {'-':>9} "
                      f"{cli.tree_peak_mb:>8.0f} {cli.max_rss_mb:>11.0f} {_summary_line(cli).split()[0]:>8}")
                continue
            e = lib.extra
            print(f"{r.days:>8} {name:<8} {cli.wall_s:>10.1f} {lib.wall_s:>10.1f} {share(cli, lib) * 100:>6.1f}% "
                  f"{e['ingest_s']:>9.1f} {e['warehouse_s']:>9.1f} {e['reports_s']:>9.1f} {cli.tree_peak_mb:>8.0f} "
                  f"{cli.max_rss_mb:>11.0f} {e['ingested']:>8}")
    for r in results:
        f = r.facts_nightly
        print(f"history {r.days} d: generation {r.generation['seconds']:.1f} s ({r.generation['fit_files']} FIT + "
              f"{r.generation['fitbit_files']} CSV files, {r.generation['bytes_written'] / 1e6:.0f} MB, "
              f"{r.generation['fit_messages']:,} monitoring messages, {r.generation['fitbit_rows']:,} Fitbit rows); "
              f"after nightly: lake {f['lake_parquet_files']} Parquet files / {f['lake_mb']:.0f} MB, "
              f"warehouse {f['warehouse_mb']:.0f} MB, step_intervals {f['step_intervals_rows']:,} rows, "
              f"minute_steps {f['minute_steps_rows']:,} rows; load {r.load_before} -> {r.load_after}")
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"nightly cost vs history: {a.days} d -> {a.nightly_cli.wall_s:.1f} s, {b.days} d -> "
              f"{b.nightly_cli.wall_s:.1f} s (x{b.nightly_cli.wall_s / a.nightly_cli.wall_s:.2f} for "
              f"x{b.days / a.days:.1f} history; warehouse x{b.nightly_lib.extra['warehouse_s'] / max(a.nightly_lib.extra['warehouse_s'], 1e-9):.2f}, "
              f"ingest x{b.nightly_lib.extra['ingest_s'] / max(a.nightly_lib.extra['ingest_s'], 1e-9):.2f})")
    main_result = results[0]
    print()
    if main_result.full_lib is not None:
        for line in extrapolate(main_result, args.participants):
            print(line)
    for text in profiles:
        print("\n" + "=" * 100 + "\nPROFILE (--days history)" + text)

    peak = max(max(r.full_cli.tree_peak_mb, r.nightly_cli.tree_peak_mb) for r in results)
    m = main_result
    fields = {
        "participants": args.participants,
        "days": m.days,
        "full_run_s": m.full_cli.wall_s,
        "nightly_run_s": m.nightly_cli.wall_s,
        "peak_rss_mb": peak,
        "nightly_run_s_h1": m.nightly_cli.wall_s,
        "ingest_s": m.full_lib.extra["ingest_s"] if m.full_lib else float("nan"),
        "warehouse_s": m.full_lib.extra["warehouse_s"] if m.full_lib else float("nan"),
        "reports_s": m.full_lib.extra["reports_s"] if m.full_lib else float("nan"),
        "nightly_ingest_s": m.nightly_lib.extra["ingest_s"],
        "nightly_warehouse_s": m.nightly_lib.extra["warehouse_s"],
        "nightly_reports_s": m.nightly_lib.extra["reports_s"],
        "orchestration_share": share(m.full_cli, m.full_lib),
        "nightly_orchestration_share": share(m.nightly_cli, m.nightly_lib),
        "gen_s": m.generation["seconds"],
    }
    if main_result.later_nights:
        later = main_result.later_nights
        for phase in ("wall", "ingest", "warehouse", "reports"):
            fields[f"nights_{phase}_slope_s"] = slope([(row["night"], row[f"{phase}_s"]) for row in later])
        fields.update(nights=len(later), nights_first_wall_s=later[0]["wall_s"], nights_last_wall_s=later[-1]["wall_s"])
    if len(results) > 1:
        fields.update(days_h2=results[-1].days, full_run_s_h2=results[-1].full_cli.wall_s,
                      nightly_run_s_h2=results[-1].nightly_cli.wall_s)
    if args.json:
        args.json.write_text(json.dumps({"fields": fields, "histories": [asdict(r) for r in results],
                                         "profiles": profiles}, indent=2, default=str))
    print("RESULT " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
