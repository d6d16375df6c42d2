"""The prescription per programme week (definitions v1, "Weeks and the prescription").

Pure functions: the default WalkBack-style progression, replaced by per-participant parameters,
and physiotherapist plan rows that set a new flat plan from a given week onward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.config import Definitions
from pipeline.registry import Participant, PlanRow


@dataclass(frozen=True)
class PrescribedWeek:
    participant_id: str
    programme_week: int
    prescribed_minutes: float
    prescribed_days: int
    plan_source: str  # "default", "participant" (own progression parameters) or "plan_row"


def round_to_nearest(value: float, step: float) -> float:
    """Nearest multiple of `step`, halves going up (87.5 -> 90 for step 5)."""
    return math.floor(value / step + 0.5) * step


def default_minutes(week: int, start: float, week12: float, final: float, d: Definitions) -> float:
    """start in week 1, linear to week12 in week 12, linear to final in week d.final_week, then held."""
    if week <= 12:
        raw = start + (week12 - start) * (week - 1) / 11
    elif week <= d.final_week:
        raw = week12 + (final - week12) * (week - 12) / (d.final_week - 12)
    else:
        raw = final
    return round_to_nearest(raw, d.round_to_minutes)


def default_days(week: int) -> int:
    if week <= 4:
        return 3
    if week <= 12:
        return 4
    return 5


def prescribed_week(
    participant: Participant, plan_rows: list[PlanRow], week: int, d: Definitions
) -> PrescribedWeek:
    """The prescription of one week: the latest applicable plan row, else the progression."""
    applicable = [row for row in plan_rows if row.participant_id == participant.participant_id and row.from_week <= week]
    if applicable:
        row = max(applicable, key=lambda r: (r.from_week, r.row_order))
        return PrescribedWeek(participant.participant_id, week, row.minutes_per_week, row.days_per_week, "plan_row")
    own = any(v is not None for v in (participant.start_minutes, participant.week12_minutes, participant.final_minutes))
    minutes = default_minutes(
        week,
        participant.start_minutes if participant.start_minutes is not None else d.start_minutes,
        participant.week12_minutes if participant.week12_minutes is not None else d.week12_minutes,
        participant.final_minutes if participant.final_minutes is not None else d.final_minutes,
        d,
    )
    return PrescribedWeek(
        participant.participant_id, week, minutes, default_days(week), "participant" if own else "default"
    )


def prescription_weeks(
    participants: list[Participant], plan_rows: list[PlanRow], weeks: int, d: Definitions
) -> list[PrescribedWeek]:
    """Weeks 1..`weeks` for every participant."""
    return [prescribed_week(p, plan_rows, week, d) for p in participants for week in range(1, weeks + 1)]
