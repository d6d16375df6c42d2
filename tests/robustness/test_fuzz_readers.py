"""Hypothesis-driven mutation of valid files of every reader (tests/robustness/fuzzing.py): only
typed errors ever escape, no reader alters its file, and a damaged file never changes the valid
data ingested beside it.

CI runs FUZZ_PER_SEED examples per seed (derandomized, so a CI failure reproduces); `make fuzz`
sets STEPWISE_FUZZ_EXAMPLES for a longer, random campaign and prints the counts.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness import fuzzing

SEEDS = fuzzing.generated_seeds() + fuzzing.realdata_seeds()
FUZZ_PER_SEED = fuzzing.examples(150)
INGEST_EXAMPLES = max(40, fuzzing.examples(150) // 4)
CAMPAIGN = "STEPWISE_FUZZ_EXAMPLES" in os.environ
FUZZ_SETTINGS = dict(deadline=None, derandomize=not CAMPAIGN, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.function_scoped_fixture])
EXPECTED = {}


@pytest.mark.parametrize("seed", SEEDS, ids=lambda seed: seed.name)
def test_every_seed_is_valid(seed):
    intervals, totals = fuzzing.read_valid(seed)
    assert intervals.height > 0 or (totals is not None and totals.height > 0)
    EXPECTED[seed.name] = (intervals, totals)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda seed: seed.name)
def test_mutated_files_raise_only_typed_errors(seed):
    @settings(max_examples=FUZZ_PER_SEED, **FUZZ_SETTINGS)
    @given(content=fuzzing.mutation(seed))
    def mutated(content: bytes) -> None:
        fuzzing.check(seed, content)

    mutated()


@settings(max_examples=INGEST_EXAMPLES, **FUZZ_SETTINGS)
@given(data=st.data())
def test_a_damaged_file_never_alters_the_valid_data_beside_it(tmp_path_factory, data):
    seed = data.draw(st.sampled_from(SEEDS), label="seed")
    content = data.draw(fuzzing.mutation(seed), label="mutation")
    fuzzing.ingest_case(seed, content, tmp_path_factory.mktemp("fuzz-ingest"))


@pytest.mark.parametrize("bug", fuzzing.KNOWN_BUGS, ids=lambda bug: f"{bug.where}-{bug.error}")
@pytest.mark.xfail(strict=True, reason="a reader bug reported to the lead; when this passes, drop it from KNOWN_BUGS")
def test_known_reader_bugs(bug):
    seed = next((seed for seed in SEEDS if seed.name == bug.seed), None)
    if seed is None:
        pytest.skip(f"seed {bug.seed} needs ../shared/realdata")
    fuzzing.check(seed, bug.example, tolerate_known=False)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda seed: seed.name)
def test_seeds_read_the_same_after_fuzzing(seed):
    """Readers keep no state between files: each seed still reads exactly as before."""
    if seed.name not in EXPECTED:
        pytest.skip("runs after test_every_seed_is_valid in the same session")
    intervals, totals = fuzzing.read_valid(seed)
    assert intervals.equals(EXPECTED[seed.name][0])
    assert (totals is None and EXPECTED[seed.name][1] is None) or totals.equals(EXPECTED[seed.name][1])


def test_print_counts(capsys):
    with capsys.disabled():
        counts = dict(sorted(fuzzing.COUNTS.items()))
        print(f"\nfuzz: {len(SEEDS)} seeds, {counts}")
