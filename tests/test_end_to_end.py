"""The sample cohort through the Prefect flow: every weekly and daily number equals the truth
written by the generator (an independent implementation of definitions v1), and a second run
changes nothing."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
WEEKLY = ["participant_id", "programme_week", "walk_minutes", "walking_minutes_all", "moderate_minutes",
          "vigorous_minutes", "steps", "mean_daily_steps", "walking_days", "valid_days", "peak30_cadence",
          "prescribed_minutes", "prescribed_days", "adherence_pct", "status", "flags"]
DAILY = ["participant_id", "local_date", "programme_week", "steps", "walking_minutes_all", "bout_minutes",
         "moderate_minutes", "vigorous_minutes", "worn_hours", "valid_day", "low_confidence", "implausible",
         "minute_resolution", "peak30_cadence"]


def _normal(value):
    if value is None or value == "":
        return None
    if value in ("true", "false"):
        return value == "true"
    try:
        return round(float(value), 4)
    except ValueError:
        return value


def _as_text(frame: pl.DataFrame) -> list[dict]:
    return [{k: _normal(v) for k, v in row.items()} for row in frame.cast(pl.String).iter_rows(named=True)]


@pytest.fixture(scope="module")
def cohort_run(prefect_harness, tmp_path_factory):
    from flows.nightly import nightly

    data = tmp_path_factory.mktemp("cohort") / "data"
    shutil.copytree(SAMPLE, data)
    as_of = date.fromisoformat(json.loads((data / "truth" / "cohort.json").read_text())["as_of"])
    first = nightly(data_dir=str(data), as_of=as_of)
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    weekly = con.sql(f"select {', '.join(WEEKLY[:-1])}, array_to_string(flags, '|') as flags "
                     "from weekly_adherence order by participant_id, programme_week").pl()
    daily = con.sql(f"select {', '.join(DAILY)} from daily_activity order by participant_id, local_date").pl()
    con.close()
    second = nightly(data_dir=str(data), as_of=as_of)
    return data, as_of, first, second, weekly, daily


@pytest.mark.e2e
def test_weekly_numbers_equal_the_truth(cohort_run):
    data, _, _, _, weekly, _ = cohort_run
    expected = pl.read_csv(data / "truth" / "expected_weekly.csv", infer_schema=False).select(WEEKLY)
    expected = expected.sort("participant_id", pl.col("programme_week").cast(pl.Int32))
    assert _as_text(weekly) == _as_text(expected)


@pytest.mark.e2e
def test_daily_numbers_equal_the_truth(cohort_run):
    data, as_of, _, _, _, daily = cohort_run
    expected = pl.read_csv(data / "truth" / "expected_daily.csv", infer_schema=False).select(DAILY)
    expected = expected.filter(pl.col("local_date") <= as_of.isoformat()).sort("participant_id", "local_date")
    assert _as_text(daily.with_columns(pl.col("local_date").cast(pl.String))) == _as_text(expected)


@pytest.mark.e2e
def test_every_file_ingested_and_second_run_changes_nothing(cohort_run):
    data, _, first, second, weekly, _ = cohort_run
    files = [p for p in (data / "inbox").rglob("*") if p.is_file()]
    assert (first["ingested"], first["quarantined"]) == (len(files), 0)
    assert (second["ingested"], second["skipped"], second["quarantined"]) == (0, len(files), 0)
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    again = con.sql(f"select {', '.join(WEEKLY[:-1])}, array_to_string(flags, '|') as flags "
                    "from weekly_adherence order by participant_id, programme_week").pl()
    assert again.equals(weekly)


@pytest.mark.e2e
def test_each_clinic_gets_its_summary(cohort_run):
    data, as_of, first, _, _, _ = cohort_run
    clinics = set(pl.read_csv(data / "participants.csv", infer_schema=False)["clinic_id"])
    for clinic in clinics:
        folder = data / "outbox" / clinic / as_of.isoformat()
        assert {p.name for p in folder.iterdir()} >= {"summary.html", "summary.pdf", "summary.csv", "summary.json"}


from tests.test_reports_browser import PAGE_FACTS, chromium, open_page  # noqa: E402,F401  (fixture)


@pytest.mark.e2e
def test_sample_cohort_summaries_in_headless_chromium(cohort_run, chromium, tmp_path):
    """Each clinic's page loads with no console error or request, names exactly the patients the
    cohort's truth says need attention, and has a section for every patient of the clinic."""
    import base64
    import os

    data, as_of, _, _, _, _ = cohort_run
    truth = json.loads((data / "truth" / "cohort.json").read_text())["attention"]
    registry = pl.read_csv(data / "participants.csv", infer_schema=False)
    for clinic in sorted(set(registry["clinic_id"])):
        page = data / "outbox" / clinic / as_of.isoformat() / "summary.html"
        assert open_page(chromium, page) == []
        facts = chromium.evaluate(PAGE_FACTS)
        members = set(registry.filter(pl.col("clinic_id") == clinic)["participant_id"])
        assert {item["id"] for item in facts["attention"]} == members & set(truth)
        assert sorted(s["id"] for s in facts["sections"]) == sorted(members)
        assert sorted(facts["roster"]) == sorted(members)
        shot = chromium.call("Page.captureScreenshot", format="png")
        folder = Path(os.environ.get("STEPWISE_TEST_ARTIFACTS", tmp_path))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"sample-{clinic}.png").write_bytes(base64.b64decode(shot["data"]))
