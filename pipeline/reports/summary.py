"""A clinic's summary as the page shows it: patients in roster order, who needs attention, the
header facts. Pure: built from `ClinicData` and the registry, no I/O and no charts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pipeline.config import Definitions
from pipeline.registry import Participant
from pipeline.reports.attention import (
    Attention,
    attention_list,
    in_progress_week,
    last_data_utc,
    reported_week,
)
from pipeline.reports.data import ClinicData, CrosscheckRow, DayNote, RunInfo, WeekRow

TREND_WEEKS = 8


@dataclass(frozen=True)
class PatientSummary:
    participant: Participant
    anchor: str  # HTML id of the patient's section
    weeks: tuple[WeekRow, ...]  # programme order, the in-progress week last
    reported: WeekRow | None  # the completed week being reported
    current: WeekRow | None  # the week in progress
    last_data_utc: datetime | None
    day_notes: tuple[DayNote, ...]
    crosscheck: tuple[CrosscheckRow, ...]
    attention: Attention | None = None
    attention_rank: int | None = None

    @property
    def participant_id(self) -> str:
        return self.participant.participant_id

    @property
    def name(self) -> str:
        return self.participant.display_name or self.participant.participant_id

    @property
    def last_data_local(self) -> datetime | None:
        if self.last_data_utc is None:
            return None
        return self.last_data_utc.astimezone(ZoneInfo(self.participant.time_zone))

    @property
    def trend_weeks(self) -> tuple[WeekRow, ...]:
        completed = [week for week in self.weeks if not week.in_progress]
        return tuple(completed[-TREND_WEEKS:])

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted({source for week in self.weeks for source in week.sources}))

    @property
    def low_confidence_weeks(self) -> tuple[int, ...]:
        return tuple(
            week.programme_week
            for week in self.weeks
            if "low_confidence" in week.flags or (week.low_confidence_days or 0) > 0
        )

    @property
    def days_differing(self) -> int:
        return self.crosscheck[0].days_differing if self.crosscheck else 0


@dataclass(frozen=True)
class ClinicSummary:
    clinic_id: str
    report_date: date
    run: RunInfo
    definitions: Definitions
    patients: tuple[PatientSummary, ...]  # roster order: name, then id
    attention: tuple[PatientSummary, ...]  # most urgent first
    time_zone: str  # the clinic's zone when all its patients share one, else UTC
    definitions_versions: tuple[str, ...] = field(default=())

    @property
    def period_start(self) -> date | None:
        return min((p.weeks[0].week_start for p in self.patients if p.weeks), default=None)

    @property
    def period_end(self) -> date | None:
        return max((p.reported.week_end for p in self.patients if p.reported), default=None)

    @property
    def last_data_utc(self) -> datetime | None:
        return max((p.last_data_utc for p in self.patients if p.last_data_utc), default=None)


def _roster_key(participant: Participant) -> tuple[str, str]:
    return ((participant.display_name or participant.participant_id).casefold(), participant.participant_id)


def build_clinic_summary(
    data: ClinicData, participants: Sequence[Participant], definitions: Definitions = Definitions()
) -> ClinicSummary:
    """The page's content for one clinic: `participants` are that clinic's registry records."""
    if any(p.clinic_id != data.clinic_id for p in participants):
        raise ValueError(f"participants of another clinic passed for clinic {data.clinic_id!r}")
    ordered = sorted(participants, key=_roster_key)
    attention = attention_list(
        [(p.participant_id, p.time_zone, data.weeks.get(p.participant_id, [])) for p in ordered],
        data.report_date,
        definitions,
    )
    rank = {item.participant_id: (position, item) for position, item in enumerate(attention, start=1)}
    patients = []
    for index, participant in enumerate(ordered, start=1):
        weeks = tuple(data.weeks.get(participant.participant_id, []))
        position, item = rank.get(participant.participant_id, (None, None))
        patients.append(
            PatientSummary(
                participant=participant,
                anchor=f"patient-{index}",
                weeks=weeks,
                reported=reported_week(weeks),
                current=in_progress_week(weeks),
                last_data_utc=last_data_utc(weeks),
                day_notes=tuple(data.day_notes.get(participant.participant_id, [])),
                crosscheck=tuple(data.crosscheck.get(participant.participant_id, [])),
                attention=item,
                attention_rank=position,
            )
        )
    by_id = {p.participant_id: p for p in patients}
    zones = {p.time_zone for p in participants}
    versions = sorted({data.run.definitions_version} | {w.definitions_version for p in patients for w in p.weeks})
    return ClinicSummary(
        clinic_id=data.clinic_id,
        report_date=data.report_date,
        run=data.run,
        definitions=definitions,
        patients=tuple(patients),
        attention=tuple(by_id[item.participant_id] for item in attention),
        time_zone=zones.pop() if len(zones) == 1 else "UTC",
        definitions_versions=tuple(versions),
    )
