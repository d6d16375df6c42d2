"""Across sources: watch, phone and a re-export of the phone overlap; the weekly totals count
each minute once, from the best source. And the device's own daily totals sit beside ours."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from pipeline.config import Settings
from pipeline.lake import write_daily_totals_batch
from pipeline.registry import Participant
from tests.warehouse_helpers import INGESTED_AT, build, interval, worn_day

P = Participant("p1", "c1", "UTC", date(2024, 1, 1))


def walk(start: datetime, minutes: int, steps: float, **kwargs) -> list[dict]:
    return [interval("p1", start + timedelta(minutes=m), start + timedelta(minutes=m + 1), steps, **kwargs)
            for m in range(minutes)]


def test_watch_phone_and_reexport_overlap(tmp_path):
    rows = []
    for day in range(3):  # three days, each: watch worn all day and walked 30 min at 110/min
        d = date(2024, 1, 1) + timedelta(days=day)
        rows += worn_day("p1", d, "UTC", source="fit_monitoring")
        start = datetime(d.year, d.month, d.day, 10, 5, tzinfo=UTC)
        rows += walk(start, 30, 110, source="fit_monitoring")
        # the phone saw the same walk (undercounting, 95/min) and 15 more minutes the watch did not cover
        phone = walk(start, 30, 95, source="apple_health", device="iPhone") + \
            walk(start + timedelta(hours=3), 15, 100, source="apple_health", device="iPhone")
        rows += phone
        # a re-export of the phone's history brings the same records again, and a phone daily total
        rows += [{**r, "file_sha256": "e" * 64, "ingested_at": INGESTED_AT + timedelta(days=1)} for r in phone]
        rows.append(interval("p1", datetime(d.year, d.month, d.day, tzinfo=UTC),
                             datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1), 9999,
                             source="samsung_health"))
    con = build(tmp_path, [P], rows, date(2024, 1, 8))
    week = con.sql("select walk_minutes, walking_minutes_all, moderate_minutes, steps, walking_days "
                   "from weekly_adherence where programme_week = 1").fetchall()[0]
    # per day: 30 watch minutes (the phone's copy ignored) + 15 phone-only minutes, each a bout
    # steps per day: 12 worn minutes x 5 + 30 x 110 + 15 x 100 = 4,860 (the daily total never added)
    assert week == (135, 135, 135, 3 * 4860, 3)
    sources = con.sql("select source, count(*) from minute_steps where steps >= 60 group by 1 order by 1").fetchall()
    assert sources == [("apple_health", 45), ("fit_monitoring", 90)]


def test_daily_crosscheck_sets_device_totals_beside_ours(tmp_path):
    settings = Settings.for_folder(tmp_path)
    totals = pl.DataFrame({
        "source": ["fitbit"], "device": ["fitbit"], "local_date": [date(2024, 1, 1)], "steps": [5000.0],
        "participant_id": ["p1"], "file_sha256": ["d" * 64], "ingested_at": [INGESTED_AT],
    })
    write_daily_totals_batch(totals, settings.data.lake / "device_daily_totals", "test")
    con = build(tmp_path, [P], worn_day("p1", date(2024, 1, 1), "UTC", walk=[(10, 0, 20)]), date(2024, 1, 3))
    assert con.sql("select source, device_steps, computed_steps, difference from daily_crosscheck").fetchall() == [
        ("fitbit", 5000.0, 2260.0, 2740.0)]
