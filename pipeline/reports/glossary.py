"""Every number of a clinic summary, defined once: in clinic words for the "how to read this"
section, and with its unit for the columns of summary.csv / summary.json.

The thresholds are read from `Definitions`, so the words cannot drift from the numbers.
tests/test_reports.py keeps `CSV_COLUMNS` and the files in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Definitions


@dataclass(frozen=True)
class Term:
    name: str
    meaning: str


def how_to_read(definitions: Definitions = Definitions()) -> list[Term]:
    d = definitions
    return [
        Term(
            "Programme week",
            "Week 1 starts on the patient's first programme day, whatever weekday that is; each week is "
            "7 days in the patient's own time zone. \"This week\" in the roster is the last completed "
            "week; the week still running is shown as in progress and gets no status.",
        ),
        Term(
            "Walk minutes",
            f"Minutes of purposeful walking: stretches of at least {d.bout_min_span_minutes} minutes at "
            f"{d.walking_cadence_steps_min:g} steps a minute or more (pauses of up to "
            f"{d.bout_max_gap_minutes} minutes allowed, not counted), added up over the week. Pottering "
            "about the house does not count.",
        ),
        Term(
            "Prescribed minutes and days",
            "The plan for that week: the default progression or the plan set at a review.",
        ),
        Term(
            "Walking days",
            f"Days with at least {d.walking_day_min_bout_minutes:g} walk minutes.",
        ),
        Term(
            "Adherence %",
            "Walk minutes divided by prescribed minutes, times 100. Not capped: 150% means half as much "
            "again as planned.",
        ),
        Term(
            "Valid day",
            f"A day the device was worn for at least {d.valid_day_min_worn_hours} hours. A day known only "
            f"from a daily total counts when it has at least {d.coarse_valid_day_min_steps:,.0f} steps, "
            "and is marked low confidence.",
        ),
        Term(
            "Status",
            "Met: walk minutes and walking days both reach the plan. "
            f"Too few valid days: fewer than {d.status_min_valid_days} valid days, so the week cannot be "
            f"judged. Partial: at least {d.partial_min_adherence_pct:g}% of the prescribed minutes. "
            f"Not met: below {d.partial_min_adherence_pct:g}%. No data: no valid day and no walking at all. "
            "In progress: the week has not ended yet; its numbers are the days so far.",
        ),
        Term(
            "Needs attention",
            f"Overload: more than {d.overload_ratio:g} times the prescribed minutes, a flare-up risk worth a "
            f"call. Falling behind: this and the previous week both below {d.falling_behind_pct:g}% with at "
            f"least {d.falling_behind_min_valid_days} valid days each. No recent data: nothing from the "
            f"device in the last {d.no_recent_data_days} days. Not met: the last completed week below "
            f"{d.partial_min_adherence_pct:g}%. Listed in that order, the most severe first within each.",
        ),
        Term(
            "Steps per day",
            "The week's mean daily steps over valid days only, so a day the device sat in a drawer does "
            "not pull it down.",
        ),
        Term(
            "Moderate minutes",
            f"Minutes at {d.moderate_cadence_steps_min:g} steps a minute or more (brisk walking, about 3 METs), "
            "bouted or not.",
        ),
        Term(
            "Peak-30 cadence",
            f"The mean of a day's {d.peak_cadence_minutes} fastest minutes (steps per minute), averaged over "
            "the week's valid days: how briskly the patient can walk, even when they walk little.",
        ),
        Term(
            "Charts",
            "Top: walk minutes per week as bars coloured by status, the number above each bar, against the "
            "prescribed minutes (black line). Below, for the same weeks: walking days (the tick is the plan), "
            "steps per day, moderate minutes and peak-30 cadence; the week still running is drawn faint. "
            "Roster trend: walk minutes (blue) against the prescribed minutes (dashed), last 8 completed weeks.",
        ),
        Term(
            "Data quality",
            "Low confidence: the week's valid days rest only on daily totals (no minute detail). "
            "Device vs computed: days where the device's own step total differs from ours; ours keeps one "
            "device per minute and never adds two devices together. A dash means no data, never zero.",
        ),
    ]


# summary.csv: one row per patient and programme week (completed and in progress). summary.json
# carries the same fields per week. Names are stable: add columns at the end, never rename.
CSV_COLUMNS: dict[str, str] = {
    "clinic_id": "clinic identifier",
    "report_date": "date of this report (YYYY-MM-DD)",
    "participant_id": "participant identifier from participants.csv",
    "display_name": "patient's name from participants.csv (clinic outputs only)",
    "programme_week": "programme week number (week 1 starts on programme_start)",
    "week_start": "first local day of the week (YYYY-MM-DD)",
    "week_end": "last local day of the week (YYYY-MM-DD)",
    "reported_week": "true on the completed week this report is about",
    "status": "no_data | met | insufficient_data | partial | not_met | in_progress",
    "flags": "semicolon-separated: overload, falling_behind, no_recent_data, low_confidence",
    "walk_minutes": "bout minutes in the week (minutes)",
    "prescribed_minutes": "prescribed walk minutes for the week (minutes)",
    "adherence_pct": "100 * walk_minutes / prescribed_minutes (percent, not capped)",
    "walking_days": "days with enough bout minutes (days)",
    "prescribed_days": "prescribed walking days for the week (days)",
    "valid_days": "days worn long enough to count (days)",
    "low_confidence_days": "valid days known only from daily totals (days)",
    "steps": "steps in the week (steps)",
    "mean_daily_steps": "mean steps per valid day (steps/day)",
    "walking_minutes_all": "every walking minute, bouted or not (minutes)",
    "moderate_minutes": "minutes at moderate cadence or faster (minutes)",
    "vigorous_minutes": "minutes at vigorous cadence (minutes)",
    "peak30_cadence": "mean of the 30 fastest minutes per valid day (steps/min)",
    "sources": "semicolon-separated data sources used that week",
    "last_data_utc": "latest data received for the patient (UTC, ISO 8601)",
    "attention_rank": "position in the attention list (1 = first), empty when not listed",
    "attention_reasons": "plain-language reasons for attention, semicolon-separated",
    "definitions_version": "version of the metric definitions",
}

# How each data source is named on the page (the technical name follows in brackets).
SOURCE_LABELS: dict[str, str] = {
    "fit_activity": "watch activity files (FIT)",
    "fit_monitoring": "watch all-day monitoring (FIT)",
    "fitbit": "Fitbit export",
    "withings": "Withings export",
    "garmin_connect": "Garmin Connect export",
    "actigraph": "ActiGraph export",
    "apple_health": "Apple Health (phone)",
    "samsung_health": "Samsung Health (phone)",
    "google_fit": "Google Fit (phone)",
    "mapped_csv": "CSV with declared columns",
}
