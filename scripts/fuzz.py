"""`make fuzz`: the long fuzz campaign over every reader (the CI part is tests/robustness/test_fuzz_readers.py).

    python scripts/fuzz.py [--examples N] [--ingest N] [--seed NAME ...]

Mutates each valid seed N times (tests/robustness/fuzzing.py), keeps going after a finding, and
prints the counts and every distinct untyped error with its smallest input. Exit status 1 when
an error not yet in fuzzing.KNOWN_BUGS was found.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.robustness import fuzzing  # noqa: E402

QUIET = dict(deadline=None, database=None, derandomize=False,
             suppress_health_check=list(HealthCheck))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="mutations per seed")
    parser.add_argument("--ingest", type=int, default=300, help="damaged files ingested beside a valid one")
    parser.add_argument("--seed", action="append", help="only these seeds (by name)")
    args = parser.parse_args()
    seeds = fuzzing.generated_seeds() + fuzzing.realdata_seeds()
    if args.seed:
        seeds = [s for s in seeds if s.name in args.seed]
    findings: dict[tuple, list] = defaultdict(list)
    started = time.monotonic()
    for seed in seeds:
        before = fuzzing.COUNTS["cases"]

        @settings(max_examples=args.examples, **QUIET)
        @given(content=fuzzing.mutation(seed))
        def campaign(content: bytes) -> None:
            try:
                fuzzing.check(seed, content, tolerate_known=False)
            except fuzzing.UntypedError as found:
                fuzzing.COUNTS["untyped"] += 1
                findings[found.signature].append((seed.name, content, str(found).splitlines()[0]))

        campaign()
        print(f"{seed.name:<32} {fuzzing.COUNTS['cases'] - before:>6} cases", flush=True)

    @settings(max_examples=args.ingest, **QUIET)
    @given(data=st.data())
    def through_ingest(data) -> None:
        seed = data.draw(st.sampled_from(seeds))
        content = data.draw(fuzzing.mutation(seed))
        with tempfile.TemporaryDirectory(prefix="stepwise-fuzz-ingest-") as root:
            fuzzing.ingest_case(seed, content, Path(root))

    if args.ingest:
        through_ingest()
    counts = dict(sorted(fuzzing.COUNTS.items()))
    print(f"\nfuzz campaign: {len(seeds)} seeds, {counts}, {time.monotonic() - started:.0f} s")
    unknown = 0
    for signature, cases in sorted(findings.items()):
        smallest = min(cases, key=lambda case: len(case[1]))
        known = any(bug.where == signature[0] and bug.error == signature[1] and bug.module == signature[2].split(":")[0]
                    for bug in fuzzing.KNOWN_BUGS)
        unknown += not known
        print(f"\n{'known' if known else 'NEW'}: {' '.join(signature)} ({len(cases)} cases)\n  {smallest[2]}\n"
              f"  smallest input ({smallest[0]}, {len(smallest[1])} bytes): {smallest[1][:300]!r}")
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
