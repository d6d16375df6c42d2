"""`make crash`: the long crash campaign (the CI part is tests/robustness/test_crash_recovery.py).

    python scripts/crash.py [--random N] [--chains N] [--batch-size N] [--cli N]

Kills runs of the small cohort (SIGKILL) at every phase, at random moments, and several times in
a row before letting one finish; each recovered folder is compared with an uninterrupted run's
(warehouse tables, lake rows, manifest, originals, quarantine, clinic reports). Prints every crash
point tried and the counts; exit status 1 when any recovery differed or left something partial.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.robustness import helpers as h  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=20, help="kills at random moments")
    parser.add_argument("--chains", type=int, default=6, help="runs killed 2-3 times in a row before recovering")
    parser.add_argument("--batch-size", type=int, default=3, help="also kill runs that commit every N files")
    parser.add_argument("--cli", type=int, default=2, help="kills of `stepwise run` (slow: Prefect starts each time)")
    parser.add_argument("--rng", type=int, default=int(time.time()), help="random seed (printed)")
    args = parser.parse_args()
    rng = random.Random(args.rng)
    tally = {"tried": 0, "fired": 0, "ended first": 0, "failed": 0}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stepwise-crash-") as tmp:
        root = Path(tmp)
        baseline = h.make_baseline(root / "baseline")
        print(f"baseline: one run takes {baseline.run_seconds:.1f} s; random seed {args.rng}", flush=True)
        plans: list[tuple[str, list[h.CrashPoint], bool, tuple[str, ...]]] = []
        for fresh in (False, True):
            plans += [(f"phase {p.name} ({'first' if fresh else 'second'} run)", [p], fresh, ()) for p in h.PHASE_POINTS]
        plans += [(f"phase {p.name} (batches of {args.batch_size})", [p], False, ("--batch-size", str(args.batch_size)))
                  for p in h.PHASE_POINTS[:3]]
        for _ in range(args.random):
            point = h.delay_point(rng.uniform(1.0, baseline.run_seconds))  # imports take ~1 s
            plans.append((f"random {point.name}", [point], rng.random() < 0.3, ()))
        for _ in range(args.chains):
            chain = rng.sample(h.PHASE_POINTS, rng.choice((2, 3)))
            plans.append(("chain " + " > ".join(p.name for p in chain), chain, False, ()))
        for number, (label, points, fresh, run_args) in enumerate(plans):
            outcome = h.crash_and_recover(baseline, root / f"case-{number}", points, fresh=fresh, run_args=run_args)
            _account(tally, label, outcome.fired, outcome.problems, outcome.leftovers)
        for number in range(args.cli):
            fired, problems = _cli_case(baseline, root / f"cli-{number}", rng)
            _account(tally, f"stepwise run killed after {fired[1]:.1f} s", [fired[0]], problems, [])
    print(f"\ncrash campaign: {tally['tried']} crash points tried, {tally['fired']} killed mid-run, "
          f"{tally['ended first']} runs ended before their point, {tally['failed']} cases with problems "
          f"({time.monotonic() - started:.0f} s)")
    return 1 if tally["failed"] else 0


def _account(tally: dict, label: str, fired: list[bool], problems: list[str], leftovers: list[str]) -> None:
    tally["tried"] += len(fired)
    tally["fired"] += sum(fired)
    tally["ended first"] += len(fired) - sum(fired)
    tally["failed"] += bool(problems)
    status = "ok" if not problems else "PROBLEM"
    print(f"{status:<8} {label}: killed {sum(fired)}/{len(fired)}", flush=True)
    for line in problems + [f"note: {n}" for n in leftovers]:
        print(f"           {line}", flush=True)


def _cli_case(baseline: h.Baseline, workdir: Path, rng: random.Random) -> tuple[tuple[bool, float], list[str]]:
    data = h.copy_folder(baseline.after_first, workdir / "data")
    h.small_cohort(data, part="later")
    delay = rng.uniform(10, 40)  # Prefect's embedded server takes ~15 s to start
    process = subprocess.Popen([str(h.STEPWISE), "run", "--data-dir", str(data), "--as-of", h.AS_OF],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=h.env(PREFECT_HOME=str(workdir / "prefect")), start_new_session=True)
    start = time.monotonic()
    fired = h.kill_when(process, lambda: time.monotonic() - start >= delay, timeout=300, group=True)
    problems = []
    try:
        h.assert_nothing_partial_visible(data)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"partial file visible: {exc!r}")
    recovery = h.run(data)
    if recovery.returncode != 0:
        problems.append(f"recovery failed: {recovery.stderr[-1000:]}")
    else:
        snapshot = h.folder_snapshot(data)  # the CLI also writes summary.pdf, the library runs here do not
        snapshot["outbox"] = {k: v for k, v in snapshot["outbox"].items() if not k.endswith(".pdf")}
        if h.diff_keys(snapshot, baseline.incremental):
            problems.append(f"differs after recovery: {h.diff_keys(snapshot, baseline.incremental)}")
    return (fired, delay), problems


if __name__ == "__main__":
    sys.exit(main())
