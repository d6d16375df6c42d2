"""Benchmark: our Apple Health reader against healthkit-to-sqlite on the same synthetic export.

    .venv/bin/python benchmarks/apple_health.py            # 1 GB export.xml (a few minutes)
    .venv/bin/python benchmarks/apple_health.py --quick    # 50 MB
    .venv/bin/python benchmarks/apple_health.py --size-mb 200 --skip-healthkit

The export is written to benchmarks/out/ (gitignored) and reused when it already has the size
asked for. Each tool runs in its own child process; wall time, throughput (MB of XML per second)
and peak resident memory (the child's ru_maxrss from wait4, cross-checked with VmHWM) are
measured from outside. The last line is machine-readable:

    RESULT size_mb=... ours_mb_s=... ours_peak_mb=... healthkit_to_sqlite_mb_s=... ratio=...

The synthetic export mimics a phone + watch user: per 10-minute slot the iPhone and the Watch
each write a step and a matching distance sample, the Watch writes heart-rate (with a metadata
child), active and basal energy samples, and Garmin Connect writes a step sample every hour:
about 30% of the records are steps. The file carries an inline DTD like real exports.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "benchmarks" / "out"
MB = 1_000_000

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 11 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Me EMPTY>
<!ATTLIST Me
  HKCharacteristicTypeIdentifierDateOfBirth         CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex       CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key   CDATA #REQUIRED
  value CDATA #REQUIRED
>
]>
<HealthData locale="en_US">
 <ExportDate value="2024-06-30 21:07:11 -0400"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1960-06-16" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale"/>
"""
FOOTER = "</HealthData>\n"

IPHONE = ("Pat's iPhone", "17.5", "&lt;&lt;HKDevice: 0x28{ptr:07x}&gt;, name:iPhone, manufacturer:Apple Inc., model:iPhone, hardware:iPhone14,2, software:17.5&gt;")
WATCH = ("Pat's Apple Watch", "10.5", "&lt;&lt;HKDevice: 0x29{ptr:07x}&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,2, software:10.5&gt;")
GARMIN = ("Connect", "4.70", "&lt;&lt;HKDevice: 0x2a{ptr:07x}&gt;, name:Forerunner 245, manufacturer:Garmin, model:Forerunner 245, software:4.70&gt;")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S -0400")


def _record(kind: str, unit: str, writer: tuple[str, str, str], ptr: int, start: datetime, end: datetime,
            value: str, children: str = "") -> str:
    name, version, device = writer
    opening = (
        f' <Record type="{kind}" sourceName="{name}" sourceVersion="{version}" device="{device.format(ptr=ptr)}" '
        f'unit="{unit}" creationDate="{_stamp(end + timedelta(minutes=3))}" startDate="{_stamp(start)}" '
        f'endDate="{_stamp(end)}" value="{value}"'
    )
    return f"{opening}>\n{children} </Record>\n" if children else f"{opening}/>\n"


def _slot(index: int, start: datetime) -> tuple[str, int]:
    """The records of one 10-minute slot, and how many of them are step samples."""
    steps_phone = 40 + (index * 37) % 500
    steps_watch = 60 + (index * 53) % 700
    phone_end = start + timedelta(seconds=420 + index % 120)
    watch_end = start + timedelta(seconds=540)
    parts = [
        _record("HKQuantityTypeIdentifierStepCount", "count", IPHONE, index, start, phone_end, str(steps_phone)),
        _record("HKQuantityTypeIdentifierDistanceWalkingRunning", "km", IPHONE, index, start, phone_end,
                f"{steps_phone * 0.00072:.6f}"),
        _record("HKQuantityTypeIdentifierStepCount", "count", WATCH, index, start, watch_end, str(steps_watch)),
        _record("HKQuantityTypeIdentifierDistanceWalkingRunning", "km", WATCH, index, start, watch_end,
                f"{steps_watch * 0.00071:.6f}"),
        _record("HKQuantityTypeIdentifierHeartRate", "count/min", WATCH, index, start, start, str(60 + index % 50),
                '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>\n'),
        _record("HKQuantityTypeIdentifierActiveEnergyBurned", "Cal", WATCH, index, start, watch_end,
                f"{0.5 + (index % 90) / 10:.3f}"),
        _record("HKQuantityTypeIdentifierBasalEnergyBurned", "Cal", WATCH, index, start, watch_end, "11.204"),
    ]
    step_records = 2
    if index % 6 == 0:
        parts.append(_record("HKQuantityTypeIdentifierStepCount", "count", GARMIN, index, start,
                             start + timedelta(minutes=15), str(100 + index % 900)))
        step_records += 1
    return "".join(parts), step_records


def generate(path: Path, size_bytes: int) -> int:
    """Write a synthetic export of about `size_bytes`; returns the number of step records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    start = datetime(2018, 1, 1, 8, 0, tzinfo=timezone.utc)
    written = 0
    step_records = 0
    index = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write(HEADER)
        written += len(HEADER)
        while written < size_bytes - len(FOOTER):
            block = []
            for _ in range(2000):
                text, steps = _slot(index, start + timedelta(minutes=10 * index))
                block.append(text)
                step_records += steps
                index += 1
            text = "".join(block)
            out.write(text)
            written += len(text)
        out.write(FOOTER)
    return step_records


def measure_ours(xml: Path) -> dict:
    """Runs in the child process: read the export with our reader."""
    sys.path.insert(0, str(ROOT))
    from pipeline.sources.apple_health import AppleHealthReader
    from pipeline.sources.base import ReadContext

    started = time.perf_counter()
    result = AppleHealthReader().read(xml, ReadContext(participant_id="bench", time_zone="America/New_York"))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": result.intervals.height,
        "steps": float(result.intervals["steps"].sum()),
        "vm_hwm_mb": _vm_hwm_mb(),
    }


def _vm_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return None


def run_child(command: list[str]) -> tuple[float, float, float, str]:
    """Run a command; returns (wall seconds, CPU seconds, peak RSS in MB from wait4, stdout).

    CPU seconds (user + system) are printed beside wall time because on a shared 2-core machine
    wall time also measures the other processes."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        stdout.seek(0)
        output = stdout.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({process.returncode}):\n{stderr[-2000:]}")
    cpu_seconds = usage.ru_utime + usage.ru_stime
    return seconds, cpu_seconds, usage.ru_maxrss * 1024 / MB, output  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1000, help="size of the synthetic export.xml (MB)")
    parser.add_argument("--quick", action="store_true", help="50 MB instead of the default 1000 MB")
    parser.add_argument("--skip-healthkit", action="store_true", help="do not run healthkit-to-sqlite")
    parser.add_argument("--measure-ours", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure_ours:
        print(json.dumps(measure_ours(args.measure_ours)))
        return 0

    size_mb = 50 if args.quick else args.size_mb
    xml = OUT_DIR / f"export_{size_mb}mb.xml"
    if not xml.exists() or abs(xml.stat().st_size - size_mb * MB) > 0.05 * size_mb * MB:
        started = time.perf_counter()
        generate(xml, size_mb * MB)
        print(f"generated {xml} in {time.perf_counter() - started:.1f} s")
    actual_mb = xml.stat().st_size / MB

    seconds, cpu_seconds, peak_mb, output = run_child([sys.executable, __file__, "--measure-ours", str(xml)])
    ours = json.loads(output.strip().splitlines()[-1])
    ours_mb_s = actual_mb / ours["seconds"]
    print(
        f"ours: {actual_mb:.0f} MB in {ours['seconds']:.1f} s read ({seconds:.1f} s with start-up) = "
        f"{ours_mb_s:.1f} MB/s; peak RSS {peak_mb:.0f} MB (VmHWM {ours['vm_hwm_mb']:.0f} MB); "
        f"{ours['rows']:,} step intervals, {ours['steps']:,.0f} steps; "
        f"{cpu_seconds:.1f} CPU s = {actual_mb / cpu_seconds:.1f} MB per CPU second"
    )

    hk_mb_s = float("nan")
    if not args.skip_healthkit:
        database = OUT_DIR / f"healthkit_{size_mb}mb.db"
        database.unlink(missing_ok=True)
        tool = Path(sys.executable).with_name("healthkit-to-sqlite")
        hk_seconds, hk_cpu_seconds, hk_peak_mb, _ = run_child([str(tool), "--xml", "-s", str(xml), str(database)])
        hk_mb_s = actual_mb / hk_seconds
        print(
            f"healthkit-to-sqlite 1.0.1: {hk_seconds:.1f} s = {hk_mb_s:.1f} MB/s; peak RSS {hk_peak_mb:.0f} MB; "
            f"{hk_cpu_seconds:.1f} CPU s = {actual_mb / hk_cpu_seconds:.1f} MB per CPU second"
        )
        database.unlink(missing_ok=True)

    print(
        f"RESULT size_mb={actual_mb:.0f} ours_mb_s={ours_mb_s:.1f} ours_peak_mb={peak_mb:.0f} "
        f"healthkit_to_sqlite_mb_s={hk_mb_s:.1f} ratio={ours_mb_s / hk_mb_s:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
