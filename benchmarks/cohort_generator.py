"""A synthetic cohort at scale: Garmin-style monitoring FIT day files (+ a share of Fitbit CSVs).

Usage (from the project root)::

    .venv/bin/python benchmarks/cohort_generator.py OUT_DIR [--participants 100] [--days 90]
        [--fitbit-share 0.1] [--seed 0] [--start 2024-01-01] [--workers 2]

Library use (benchmarks/scale.py)::

    generate(root, participants, days, fitbit_share=0.1, seed=0, start=date(2024, 1, 1)) -> GenerationInfo
    add_day(root, day) -> GenerationInfo        # one new day per participant (the nightly drop)

What it writes (a data folder as the README's contract describes it):

- ``participants.csv``: ids ``S0001``.., spread over five clinics in five time zones (London,
  Berlin, New York, Los Angeles, Sydney), all starting the programme on ``start``.
- Watch participants: ``inbox/<pid>/Monitor/<YYYY-MM-DD>.fit``, one ``monitoring_b`` file per
  local day written by ``pipeline.samples.fit_writer.monitoring_file`` with the message layout
  of ``pipeline.samples.cohort.monitoring_messages`` (a message at the start and end of every
  minute with steps, otherwise one every 15 minutes; full ``timestamp`` hourly, ``timestamp_16``
  in between). Density, per day: the watch is worn ~14 h (wake 06:00-08:30, 13-15 h); while worn,
  ~4 short bursts an hour (1-4 min, 8-70 steps/min); on 2-5 days a week (per participant) a walk
  of 20-50 min at 95-125 steps/min, sometimes ending with 3-6 min of running; ~3% of days have
  no file (not synced) and ~3% a file with no steps (left on the charger). That is ~270
  monitoring messages (~100 on a charger day), ~2.5 KB per file (the real Garmin vivofit day file
  in ../shared/realdata has 337 messages, 2 KB); ~8,900 steps on a worn day.
- Fitbit participants (``fitbit_share``): Fitabase ``minuteStepsNarrow`` CSVs, one file per
  calendar month, ``inbox/<pid>/fitbit/minuteStepsNarrow_merged_<first>_<last>.csv``, every
  minute of every local day (zeros included, as Fitabase exports them: ~1,440 rows a day), local
  wall-clock times. ``add_day`` drops a one-day export for them.

Each participant-day is a pure function of (seed, participant, date): ``add_day`` gives the same
bytes a longer ``generate`` would have written for that day, and the work splits over processes
(``workers``, default 2) by participant.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time as clock
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from pipeline.samples import fit_writer  # noqa: E402
from pipeline.samples.cohort import at_minute, fitabase_time, monitoring_messages, utc_minute  # noqa: E402
from pipeline.samples.fit_writer import ACTIVITY_TYPE_RUNNING, ACTIVITY_TYPE_WALKING, Device  # noqa: E402

DEFAULT_START = date(2024, 1, 1)
CLINICS = (  # (clinic_id, time zone): DST changes in both directions on three continents
    ("north", "Europe/London"),
    ("central", "Europe/Berlin"),
    ("east", "America/New_York"),
    ("west", "America/Los_Angeles"),
    ("south", "Australia/Sydney"),
)
SERIAL_BASE = 3_900_000_000
NO_FILE_DAY = 0.03  # the watch was not synced that day: no file
CHARGER_DAY = 0.03  # a file, but the watch was never worn: no steps
INFO_FILE = "generator.json"


@dataclass(frozen=True)
class Spec:
    """One synthetic participant."""

    number: int
    participant_id: str
    clinic_id: str
    time_zone: str
    source: str  # "fit" or "fitbit"
    walking_days_per_week: int


@dataclass
class GenerationInfo:
    participants: int
    fit_participants: int
    fitbit_participants: int
    first_day: str
    last_day: str
    fit_files: int = 0
    fitbit_files: int = 0
    fit_messages: int = 0  # monitoring messages written
    fitbit_rows: int = 0  # CSV data rows written
    bytes_written: int = 0
    seconds: float = 0.0
    workers: int = 1

    @property
    def files(self) -> int:
        return self.fit_files + self.fitbit_files

    def one_line(self) -> str:
        return (f"{self.files} files ({self.fit_files} FIT, {self.fitbit_files} Fitbit CSV), "
                f"{self.fit_messages} monitoring messages, {self.fitbit_rows} Fitbit rows, "
                f"{self.bytes_written / 1e6:.1f} MB in {self.seconds:.1f} s ({self.workers} worker(s))")


# ----------------------------------------------------------------------------- the cohort


def cohort_specs(participants: int, fitbit_share: float, seed: int) -> list[Spec]:
    """Clinics round-robin; every k-th participant (k = 1 / fitbit_share) is a Fitbit user."""
    rng = random.Random(f"{seed}-cohort")
    every = round(1 / fitbit_share) if fitbit_share > 0 else 0
    specs = []
    for number in range(1, participants + 1):
        clinic_id, zone = CLINICS[(number - 1) % len(CLINICS)]
        source = "fitbit" if every and number % every == 0 else "fit"
        specs.append(Spec(number, f"S{number:04d}", clinic_id, zone, source, rng.randint(2, 5)))
    return specs


def write_participants(root: Path, specs: list[Spec], start: date) -> Path:
    path = root / "participants.csv"
    root.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["participant_id", "clinic_id", "time_zone", "programme_start", "display_name"])
        for spec in specs:
            writer.writerow([spec.participant_id, spec.clinic_id, spec.time_zone, start.isoformat(),
                             f"Participant {spec.number}"])
    return path


# ----------------------------------------------------------------------------- one day of steps

Minutes = dict[int, tuple[int, int]]  # UTC epoch minute -> (steps, FIT activity type)


@lru_cache(maxsize=None)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[int, int]:
    """[local midnight, next local midnight) as UTC epoch minutes (23 or 25 h on DST days)."""
    return utc_minute(day, time(0), zone), utc_minute(day + timedelta(days=1), time(0), zone)


def day_kind(spec: Spec, day: date, seed: int) -> str:
    roll = random.Random(f"{seed}-{spec.participant_id}-{day.isoformat()}-kind").random()
    if roll < NO_FILE_DAY:
        return "no_file"
    if roll < NO_FILE_DAY + CHARGER_DAY:
        return "charger"
    return "worn"


def day_minutes(spec: Spec, day: date, seed: int) -> Minutes:
    """The minutes with steps on one local day of a worn device."""
    rng = random.Random(f"{seed}-{spec.participant_id}-{day.isoformat()}")
    zone = _zone(spec.time_zone)
    midnight, next_midnight = day_bounds(day, zone)
    wake = midnight + rng.randint(360, 510)  # 06:00-08:30 local (wall clock, near enough on DST days)
    worn_until = min(wake + rng.randint(13 * 60, 15 * 60), next_midnight - 1)
    minutes: Minutes = {}
    for hour_start in range(wake, worn_until, 60):
        for _ in range(rng.choice((2, 3, 4, 4, 5, 6))):
            first = hour_start + rng.randrange(60)
            for minute in range(first, min(first + rng.randint(1, 4), worn_until)):
                minutes[minute] = (rng.randint(8, 70), ACTIVITY_TYPE_WALKING)
    if rng.random() < spec.walking_days_per_week / 7:
        length = rng.randint(20, 50)
        start = rng.randint(wake + 60, max(wake + 61, worn_until - length - 1))
        cadence = rng.randint(95, 125)
        run = rng.randint(3, 6) if rng.random() < 0.15 else 0
        for offset in range(length):
            if offset >= length - run:
                minutes[start + offset] = (rng.randint(140, 165), ACTIVITY_TYPE_RUNNING)
            else:
                minutes[start + offset] = (cadence + rng.randint(-4, 4), ACTIVITY_TYPE_WALKING)
    return {m: v for m, v in minutes.items() if midnight <= m < next_midnight}


# ----------------------------------------------------------------------------- files


def fit_day_file(spec: Spec, day: date, seed: int) -> tuple[str, bytes, int] | None:
    """(path relative to the participant's inbox folder, content, monitoring messages)."""
    kind = day_kind(spec, day, seed)
    if kind == "no_file":
        return None
    zone = _zone(spec.time_zone)
    start, end = day_bounds(day, zone)
    stepped = day_minutes(spec, day, seed) if kind == "worn" else {}
    messages = monitoring_messages(start, end, stepped)
    midnight = at_minute(start)
    content = fit_writer.monitoring_file(
        Device(serial_number=SERIAL_BASE + spec.number), midnight, midnight.astimezone(zone).utcoffset(), messages
    )
    return f"Monitor/{day.isoformat()}.fit", content, len(messages)


def fitbit_rows(spec: Spec, day: date, seed: int) -> list[str]:
    """Fitabase narrow rows of one local day: every minute, zeros included (none on a no-file
    day; all zeros on a charger day, as Fitbit exports a day it has no steps for)."""
    kind = day_kind(spec, day, seed)
    if kind == "no_file":
        return []
    zone = _zone(spec.time_zone)
    start, end = day_bounds(day, zone)
    stepped = day_minutes(spec, day, seed) if kind == "worn" else {}
    rows = []
    for minute in range(start, end):
        local = at_minute(minute).astimezone(zone).replace(tzinfo=None)
        rows.append(f"{spec.participant_id},{fitabase_time(local)},{stepped.get(minute, (0, 0))[0]}")
    return rows


def fitbit_file(spec: Spec, days: list[date], seed: int) -> tuple[str, bytes, int] | None:
    rows = [row for day in days for row in fitbit_rows(spec, day, seed)]
    if not rows:
        return None
    name = f"fitbit/minuteStepsNarrow_merged_{days[0]:%Y%m%d}_{days[-1]:%Y%m%d}.csv"
    return name, ("\r\n".join(["Id,ActivityMinute,Steps", *rows]) + "\r\n").encode(), len(rows)


def months(days: list[date]) -> Iterable[list[date]]:
    chunk: list[date] = []
    for day in days:
        if chunk and (day.year, day.month) != (chunk[0].year, chunk[0].month):
            yield chunk
            chunk = []
        chunk.append(day)
    if chunk:
        yield chunk


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _participant_files(job: tuple[Path, Spec, list[date], int, bool]) -> dict[str, int]:
    """Write one participant's files for `days` (a worker's unit of work)."""
    root, spec, days, seed, monthly = job
    folder = root / "inbox" / spec.participant_id
    counts = {"fit_files": 0, "fitbit_files": 0, "fit_messages": 0, "fitbit_rows": 0, "bytes_written": 0}
    if spec.source == "fit":
        for day in days:
            made = fit_day_file(spec, day, seed)
            if made:
                name, content, messages = made
                _write(folder / name, content)
                counts["fit_files"] += 1
                counts["fit_messages"] += messages
                counts["bytes_written"] += len(content)
    else:
        for chunk in (months(days) if monthly else [days]):
            made = fitbit_file(spec, chunk, seed)
            if made:
                name, content, rows = made
                _write(folder / name, content)
                counts["fitbit_files"] += 1
                counts["fitbit_rows"] += rows
                counts["bytes_written"] += len(content)
    return counts


def _run_jobs(jobs: list, workers: int) -> dict[str, int]:
    total: dict[str, int] = {}
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_participant_files, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
    else:
        results = [_participant_files(job) for job in jobs]
    for counts in results:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total


def _save_info(root: Path, settings: dict) -> None:
    (root / INFO_FILE).write_text(json.dumps(settings, indent=2) + "\n")


def _load_info(root: Path) -> dict:
    return json.loads((root / INFO_FILE).read_text())


def generate(
    root: Path | str,
    participants: int,
    days: int,
    fitbit_share: float = 0.1,
    seed: int = 0,
    start: date = DEFAULT_START,
    *,
    workers: int | None = None,
) -> GenerationInfo:
    """Write participants.csv and `days` days of files per participant (from `start`) into
    `root` (which must be empty or absent). The run's report date is start + days."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    began = clock.perf_counter()
    workers = workers or min(2, os.cpu_count() or 1)
    specs = cohort_specs(participants, fitbit_share, seed)
    write_participants(root, specs, start)
    all_days = [start + timedelta(days=k) for k in range(days)]
    totals = _run_jobs([(root, spec, all_days, seed, True) for spec in specs], workers)
    info = GenerationInfo(
        participants=participants,
        fit_participants=sum(s.source == "fit" for s in specs),
        fitbit_participants=sum(s.source == "fitbit" for s in specs),
        first_day=all_days[0].isoformat(), last_day=all_days[-1].isoformat(),
        seconds=clock.perf_counter() - began, workers=workers, **totals,
    )
    # what was generated is kept beside the settings: a benchmark reusing the cohort reports it
    _save_info(root, {"participants": participants, "fitbit_share": fitbit_share, "seed": seed,
                      "start": start.isoformat(), "last_day": all_days[-1].isoformat(), "generated": asdict(info)})
    return info


def add_day(root: Path | str, day: date | None = None, *, workers: int | None = None) -> GenerationInfo:
    """Drop one new day (default: the day after the last one written) per participant: a FIT day
    file for watch users, a one-day Fitabase export for Fitbit users."""
    root = Path(root)
    began = clock.perf_counter()
    info = _load_info(root)
    day = day or date.fromisoformat(info["last_day"]) + timedelta(days=1)
    specs = cohort_specs(info["participants"], info["fitbit_share"], info["seed"])
    workers = workers or min(2, os.cpu_count() or 1)
    totals = _run_jobs([(root, spec, [day], info["seed"], False) for spec in specs], workers)
    info["last_day"] = max(day, date.fromisoformat(info["last_day"])).isoformat()
    _save_info(root, info)
    return GenerationInfo(
        participants=len(specs),
        fit_participants=sum(s.source == "fit" for s in specs),
        fitbit_participants=sum(s.source == "fitbit" for s in specs),
        first_day=day.isoformat(), last_day=day.isoformat(),
        seconds=clock.perf_counter() - began, workers=workers, **totals,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--fitbit-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--add-day", action="store_true", help="add one day to an existing cohort instead")
    args = parser.parse_args(argv)
    if args.add_day:
        info = add_day(args.root, workers=args.workers)
    else:
        info = generate(args.root, args.participants, args.days, args.fitbit_share, args.seed, args.start,
                        workers=args.workers)
    print(info.one_line())
    print(json.dumps(asdict(info)))


if __name__ == "__main__":
    main()
