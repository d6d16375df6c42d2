"""One nightly run without Prefect, as a separate process the robustness tests can kill.

Does what flows/nightly.py does, step by step, through the library (run lock -> registry ->
ingest -> warehouse build -> clinic reports) and, like the CLI, turns a StepwiseError into one
line `stepwise: ...` on stderr and exit status 1. Test-only knobs, all applied inside this process
and never in library code:

  --fsize BYTES       RLIMIT_FSIZE (SIGXFSZ ignored, so an oversized write fails with EFBIG)
  --max-memory BYTES  RLIMIT_AS, set before the heavy imports
  --audit FILE        record every file the process opens, renames, removes or creates (Python
                      audit events) and write them to FILE as JSON at exit
  --ingest-only       stop after ingest (the hostile-corpus test)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AUDITED = {
    "open", "os.rename", "os.replace", "os.remove", "os.unlink", "os.mkdir", "os.rmdir", "os.symlink",
    "os.link", "shutil.copyfile", "shutil.rmtree", "os.truncate", "os.chmod", "os.listdir", "os.scandir",
}


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("--as-of", default=None)
    parser.add_argument("--no-reports", action="store_true")
    parser.add_argument("--pdf", action="store_true")
    parser.add_argument("--ingest-only", action="store_true")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--fsize", type=int, default=None)
    parser.add_argument("--max-memory", type=int, default=None)
    parser.add_argument("--audit", default=None)
    return parser.parse_args()


def _install_audit(events: list) -> None:
    def hook(event: str, args: tuple) -> None:
        if event in AUDITED and args:
            target = args[0]
            if isinstance(target, int):  # an open file descriptor, not a path
                return
            mode = args[1] if event == "open" and len(args) > 1 else None
            flags = args[2] if event == "open" and len(args) > 2 else None
            extra = [str(a) for a in args[1:2]] if event in {"os.rename", "os.replace", "os.link", "os.symlink", "shutil.copyfile"} else []
            events.append([event, os.fsdecode(target) if isinstance(target, (str, bytes, os.PathLike)) else str(target),
                           None if mode is None else str(mode), flags, extra])

    sys.addaudithook(hook)


def main() -> int:
    args = _parse()
    if args.max_memory:
        resource.setrlimit(resource.RLIMIT_AS, (args.max_memory, args.max_memory))
    events: list = []
    if args.audit:
        _install_audit(events)
    sys.path.insert(0, str(ROOT))
    from datetime import date

    from pipeline.config import Settings
    from pipeline.errors import StepwiseError
    from pipeline.ingest import ingest_inbox
    from pipeline.registry import read_participants, read_plan_rows
    from pipeline.runlock import run_lock
    from pipeline.warehouse import build_warehouse, read_report_date

    if not args.no_reports and not args.ingest_only:
        from pipeline.reports.render import write_clinic_reports
    if args.fsize is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize, args.fsize))
    summary: dict = {"pid": os.getpid(), "phases": {}}
    started = time.monotonic()

    def phase(name: str) -> None:
        summary["phases"][name] = round(time.monotonic() - started, 3)
        print(f"phase {name}", flush=True)

    status = 0
    try:
        settings = Settings.for_folder(args.data_dir)
        with run_lock(settings.data.lock):
            phase("locked")
            participants = read_participants(settings.data.participants_csv)
            plan_rows = read_plan_rows(settings.data.prescriptions_csv, participants)
            phase("ingest")
            report = ingest_inbox(settings.data, participants, batch_size=args.batch_size)
            summary.update(ingested=report.ingested, skipped=report.skipped, quarantined=report.quarantined,
                           quarantine_reasons=report.quarantine_reasons)
            if not args.ingest_only:
                phase("build")
                as_of = date.fromisoformat(args.as_of) if args.as_of else None
                warehouse = build_warehouse(settings, participants, plan_rows, as_of=as_of)
                if not args.no_reports:
                    phase("reports")
                    written = write_clinic_reports(warehouse, participants, settings.data.outbox,
                                                   read_report_date(warehouse), definitions=settings.definitions,
                                                   pdf=args.pdf)
                    summary["reports"] = [str(p) for p in written]
            phase("done")
    except StepwiseError as exc:  # as the CLI does: one line saying what is wrong and what to do
        print(f"stepwise: {exc.one_line()}", file=sys.stderr, flush=True)
        status = 1
    summary["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmPeak:"):
            summary["vm_peak_kib"] = int(line.split()[1])
    if args.audit:
        recorded = list(events)
        events.clear()
        Path(args.audit).write_text(json.dumps(recorded))
    print("summary " + json.dumps(summary), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
