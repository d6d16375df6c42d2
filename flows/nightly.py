"""The nightly flow: registry -> ingest new inbox files -> build the warehouse -> clinic reports.

Each task is a thin call into the `pipeline` library (which knows nothing of Prefect), so any
step can be run and tested without a server. Retries only where the work is I/O that may pass
(report delivery); ingest and the warehouse build are deterministic and would fail again.
"""

# No `from __future__ import annotations` here: a served deployment runs the flow in a subprocess from a
# cloudpickled copy, where a postponed annotation such as `date | None` can no longer be resolved (the
# run fails validating its parameters). Annotations must be real objects at definition time.

import logging
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from prefect import flow, task

from pipeline.config import Settings
from pipeline.ingest import IngestReport, ingest_inbox, read_workers
from pipeline.registry import Participant, PlanRow, read_participants, read_plan_rows
from pipeline.reports.delivery import DeliveryError, deliver_clinic_summary, load_smtp_settings
from pipeline.reports.render import write_clinic_reports
from pipeline.runlock import run_lock
from pipeline.warehouse import build_warehouse, read_report_date

# Progress of long steps goes to this logger; the CLI shows it on a terminal.
progress_log = logging.getLogger("stepwise.progress")


@dataclass
class RunSummary:
    data_dir: str
    ingested: int
    skipped: int
    quarantined: int
    warehouse: str
    reports: list[str]
    quarantine_reasons: list[str]
    delivery_failures: list[str]

    def one_line(self) -> str:
        return (
            f"{self.ingested} file(s) ingested, {self.skipped} skipped as already seen, "
            f"{self.quarantined} quarantined"
        )


@task
def load_registry(settings: Settings) -> tuple[list[Participant], list[PlanRow]]:
    participants = read_participants(settings.data.participants_csv)
    return participants, read_plan_rows(settings.data.prescriptions_csv, participants)


@task
def ingest(settings: Settings, participants: list[Participant]) -> IngestReport:
    def report_progress(done: int, total: int) -> None:
        progress_log.info("ingest", extra={"done": done, "total": total})

    return ingest_inbox(settings.data, participants, progress=report_progress, workers=read_workers())


@task
def build(settings: Settings, participants: list[Participant], plan_rows: list[PlanRow], as_of: date | None) -> Path:
    return build_warehouse(settings, participants, plan_rows, as_of=as_of)


@task
def write_reports(settings: Settings, warehouse: Path, participants: list[Participant]) -> list[Path]:
    return write_clinic_reports(warehouse, participants, settings.data.outbox, read_report_date(warehouse),
                                definitions=settings.definitions)


@task
def deliver_reports(settings: Settings, reports: list[Path]) -> list[str]:
    """E-mail each clinic's summary when stepwise.toml has an [smtp] section. A failed delivery
    (after the retries inside deliver_clinic_summary) is logged and returned, never fatal: the
    files stay in the outbox."""
    smtp = load_smtp_settings(settings.data.config) if settings.data.config.exists() else None
    if smtp is None:
        return []
    failures = []
    for folder in sorted({path.parent for path in reports}):
        clinic_id = folder.parent.name
        if clinic_id not in smtp.recipients:
            continue
        try:
            deliver_clinic_summary(smtp, clinic_id, folder)
        except DeliveryError as exc:  # retried inside; the files stay in the outbox
            logging.getLogger("stepwise.delivery").warning(exc.one_line())
            failures.append(exc.one_line())
    return failures


@flow(name="stepwise-nightly", log_prints=False)
def nightly(data_dir: str, as_of: date | None = None) -> dict:
    """Run the whole pipeline once on DATA_DIR. Returns the run summary as a dict."""
    settings = Settings.for_folder(data_dir)
    with run_lock(settings.data.lock):
        participants, plan_rows = load_registry(settings)
        ingested = ingest(settings, participants)
        warehouse = build(settings, participants, plan_rows, as_of)
        reports = write_reports(settings, warehouse, participants)
        delivery_failures = deliver_reports(settings, reports)
    summary = RunSummary(
        data_dir=str(settings.data.root),
        ingested=ingested.ingested,
        skipped=ingested.skipped,
        quarantined=ingested.quarantined,
        warehouse=str(warehouse),
        reports=[str(p) for p in reports],
        quarantine_reasons=ingested.quarantine_reasons,
        delivery_failures=delivery_failures,
    )
    return asdict(summary)
