"""Fixtures of the robustness tests (helpers live in helpers.py)."""

from __future__ import annotations

import pytest

from tests.robustness.helpers import Baseline, make_baseline


@pytest.fixture(scope="session")
def baseline(tmp_path_factory) -> Baseline:
    """Uninterrupted runs on the small cohort, to compare crashed or failed runs with."""
    return make_baseline(tmp_path_factory.mktemp("baseline"))
