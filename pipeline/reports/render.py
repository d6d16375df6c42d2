"""Clinic summaries on disk: outbox/<clinic_id>/<report date>/summary.{html,pdf,csv,json}.

The HTML is one self-contained page (inline CSS, charts as inline SVG, a content security policy
that forbids every fetch); the PDF is the same page printed on A4 by headless Chromium (`pdf.py`,
from a copy that carries the same charts as data-URI images, which prints faster); the CSV and
JSON carry the same numbers with the stable names of `glossary.CSV_COLUMNS`. Every file is
written to a temporary name in the same folder and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import base64
import csv
import io
import math
import threading
from collections import defaultdict
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import orjson
from markupsafe import Markup

from pipeline.config import Definitions
from pipeline.registry import Participant
from pipeline.reports import charts
from pipeline.reports.attention import day_label
from pipeline.reports.data import WeekRow, open_warehouse, read_clinic, read_run_info
from pipeline.reports.files import ReportWriteError, remove_stale_temporaries, write_atomic
from pipeline.reports.glossary import CSV_COLUMNS, SOURCE_LABELS, how_to_read
from pipeline.reports.pdf import PdfPrintError, Printer, remove_abandoned_scratch
from pipeline.reports.summary import ClinicSummary, PatientSummary, build_clinic_summary

TEMPLATES = Path(__file__).with_name("templates")
FILE_NAMES = ("summary.html", "summary.pdf", "summary.csv", "summary.json")
JSON_SCHEMA = "stepwise.clinic_summary/1"

ATTENTION_LABELS = {
    "overload": "overload",
    "falling_behind": "falling behind",
    "no_recent_data": "no recent data",
    "not_met": "not met",
}
FLAG_LABELS = {**ATTENTION_LABELS, "low_confidence": "low confidence"}


@dataclass(frozen=True)
class RenderedClinic:
    """One clinic's summary, before any file is written: the page, the page as it is printed
    (the same content, charts as <img>), the CSV and the JSON."""

    summary: ClinicSummary
    html: str
    print_html: str
    csv: str
    json: str


# ----------------------------------------------------------------------------- formatting


def _number(value: float | None, pattern: str = "{:,.0f}") -> str:
    return "-" if value is None else pattern.format(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}%"


def _long_day(value: date | datetime | None) -> str:
    if value is None:
        return "-"
    return f"{value:%a} {value.day} {value:%b %Y}"


def _clock(value: datetime | None) -> str:
    return "-" if value is None else f"{_long_day(value)}, {value:%H:%M}"


def _embed_svg(svg: str | None, embedding: str) -> Markup | None:
    """A chart for the page: inline <svg> for the browser (a third smaller than a data URI), or an
    <img> with a data URI for printing (Chromium prints the page about 1.3 times faster so)."""
    if svg is None:
        return None
    if not svg.startswith("<svg"):
        raise ValueError("a chart is something other than an SVG element")
    if embedding == "inline":
        return Markup(svg)
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return Markup('<img alt="" src="{}">').format(uri)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        whole=_number,
        pct=_pct,
        long_day=_long_day,
        clock=_clock,
        status_label=lambda status: charts.STATUS_LABELS.get(status, status),
        flag_label=lambda flag: FLAG_LABELS.get(flag, flag),
        source_label=lambda source: SOURCE_LABELS.get(source, source),
    )
    environment.globals.update(day_label=day_label)
    return environment


_ENVIRONMENT = _environment()


# ----------------------------------------------------------------------------- rendering


ChartSvgs = dict[str, dict[str, str | None]]  # patient anchor -> {"main": svg, "trend": svg}


def render_charts(summary: ClinicSummary) -> ChartSvgs:
    """Every chart of the page as SVG text."""
    return {
        patient.anchor: {
            "main": charts.patient_chart_svg(patient.weeks) if patient.weeks else None,
            "trend": charts.trend_svg(patient.trend_weeks) if patient.trend_weeks else None,
        }
        for patient in summary.patients
    }


def render_html(summary: ClinicSummary, chart_svgs: ChartSvgs | None = None, *, embedding: str = "inline") -> str:
    """The page: numbers formatted by the template's filters only. `embedding` "inline" for the
    browser's summary.html, "img" for the copy that is printed to summary.pdf (same content)."""
    if embedding not in ("inline", "img"):
        raise ValueError(f"embedding must be 'inline' or 'img', not {embedding!r}")
    chart_svgs = render_charts(summary) if chart_svgs is None else chart_svgs
    patient_charts = {
        anchor: {kind: _embed_svg(svg, embedding) for kind, svg in svgs.items()} for anchor, svgs in chart_svgs.items()
    }
    template = _ENVIRONMENT.get_template("summary.html.j2")
    return template.render(
        s=summary,
        embedding=embedding,
        charts=patient_charts,
        glossary=how_to_read(summary.definitions),
        status_colours=charts.STATUS_COLOURS,
        status_labels=charts.STATUS_LABELS,
        attention_labels=ATTENTION_LABELS,
        zone=ZoneInfo(summary.time_zone),
    )


def _plain(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _week_record(patient: PatientSummary, week: WeekRow) -> dict:
    return {
        "programme_week": week.programme_week,
        "week_start": week.week_start,
        "week_end": week.week_end,
        "reported_week": patient.reported is not None and week.programme_week == patient.reported.programme_week,
        "status": week.status,
        "flags": week.flags,
        "walk_minutes": week.walk_minutes,
        "prescribed_minutes": week.prescribed_minutes,
        "adherence_pct": week.adherence_pct,
        "walking_days": week.walking_days,
        "prescribed_days": week.prescribed_days,
        "valid_days": week.valid_days,
        "low_confidence_days": week.low_confidence_days,
        "steps": week.steps,
        "mean_daily_steps": week.mean_daily_steps,
        "walking_minutes_all": week.walking_minutes_all,
        "moderate_minutes": week.moderate_minutes,
        "vigorous_minutes": week.vigorous_minutes,
        "peak30_cadence": week.peak30_cadence,
        "sources": week.sources,
        "last_data_utc": week.last_data_utc,
        "definitions_version": week.definitions_version,
    }


def summary_rows(summary: ClinicSummary) -> list[dict]:
    """summary.csv: one row per patient and week, columns in `CSV_COLUMNS` order."""
    rows = []
    for patient in summary.patients:
        reasons = patient.attention.text if patient.attention else None
        for week in patient.weeks:
            record = {
                "clinic_id": summary.clinic_id,
                "report_date": summary.report_date,
                "participant_id": patient.participant_id,
                "display_name": patient.participant.display_name,
                **_week_record(patient, week),
                "attention_rank": patient.attention_rank,
                "attention_reasons": reasons,
            }
            rows.append({column: record[column] for column in CSV_COLUMNS})
    return rows


def render_csv(summary: ClinicSummary) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in summary_rows(summary):
        cells = {}
        for column, value in row.items():
            value = _plain(value)
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, list):
                value = ";".join(value)
            cells[column] = "" if value is None else value
        writer.writerow(cells)
    return buffer.getvalue()


def summary_document(summary: ClinicSummary) -> dict:
    """summary.json's content: the header, the attention list and every patient's weeks and data
    notes (dates and times as Python values: `encode_json` writes them)."""

    def patient_record(patient: PatientSummary) -> dict:
        return {
            "participant_id": patient.participant_id,
            "display_name": patient.participant.display_name,
            "programme_start": patient.participant.programme_start,
            "reported_week": patient.reported.programme_week if patient.reported else None,
            "in_progress_week": patient.current.programme_week if patient.current else None,
            "last_data_utc": patient.last_data_utc,
            "attention_rank": patient.attention_rank,
            "attention": [
                {"kind": reason.kind, "text": reason.text}
                for reason in (patient.attention.reasons if patient.attention else ())
            ],
            "sources": patient.sources,
            "low_confidence_weeks": patient.low_confidence_weeks,
            "weeks": [_week_record(patient, week) for week in patient.weeks],
            "day_notes": [
                {
                    "local_date": note.local_date,
                    "steps": note.steps,
                    "implausible": note.implausible,
                    "clock_adjusted": note.clock_adjusted,
                    "low_confidence": note.low_confidence,
                }
                for note in patient.day_notes
            ],
            "device_differences": {
                "days_differing": patient.days_differing,
                "largest": [
                    {
                        "local_date": row.local_date,
                        "source": row.source,
                        "device": row.device,
                        "device_steps": row.device_steps,
                        "computed_steps": row.computed_steps,
                        "difference": row.difference,
                    }
                    for row in patient.crosscheck
                ],
            },
        }

    document = {
        "schema": JSON_SCHEMA,
        "clinic_id": summary.clinic_id,
        "report_date": summary.report_date,
        "period_start": summary.period_start,
        "period_end": summary.period_end,
        "definitions_version": summary.run.definitions_version,
        "definitions_versions_in_rows": summary.definitions_versions,
        "warehouse_built_at_utc": summary.run.built_at_utc,
        "latest_data_utc": summary.last_data_utc,
        "attention": [
            {
                "rank": patient.attention_rank,
                "participant_id": patient.participant_id,
                "display_name": patient.participant.display_name,
                "kind": patient.attention.kind,
                "reasons": [{"kind": r.kind, "text": r.text} for r in patient.attention.reasons],
            }
            for patient in summary.attention
        ],
        "patients": [patient_record(patient) for patient in summary.patients],
        "columns": CSV_COLUMNS,
    }
    return document


def encode_json(document: dict) -> str:
    """A document as summary.json writes it: indented by two spaces, UTF-8 text, dates and times
    in ISO 8601, tuples as lists, a NaN or infinity as null. orjson writes what
    `json.dumps(indent=2, ensure_ascii=False)` wrote after converting those values, byte for byte
    (tests/test_reports.py), in a twentieth of the time: the standard library's encoder is pure
    Python once it indents, and took 0.6 s of a 200-patient clinic's 9 MB."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode()


def render_clinic(summary: ClinicSummary) -> RenderedClinic:
    chart_svgs = render_charts(summary)
    return RenderedClinic(
        summary=summary,
        html=render_html(summary, chart_svgs, embedding="inline"),
        print_html=render_html(summary, chart_svgs, embedding="img"),
        csv=render_csv(summary),
        json=encode_json(summary_document(summary)),
    )


# ----------------------------------------------------------------------------- writing


def clinic_folder(outbox: Path, clinic_id: str, report_date: date) -> Path:
    if not clinic_id or clinic_id in (".", "..") or any(c in clinic_id for c in "/\\\x00"):
        raise ReportWriteError(f"clinic_id {clinic_id!r} cannot name a folder")
    return outbox / clinic_id / report_date.isoformat()


def write_rendered(rendered: RenderedClinic, outbox: Path, *, pdf: bytes | None) -> list[Path]:
    summary = rendered.summary
    folder = clinic_folder(outbox, summary.clinic_id, summary.report_date)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportWriteError(f"{folder}: cannot create the clinic's outbox folder ({exc.strerror or exc})") from exc
    contents = {
        "summary.html": rendered.html.encode("utf-8"),
        "summary.pdf": pdf,
        "summary.csv": rendered.csv.encode("utf-8"),
        "summary.json": rendered.json.encode("utf-8"),
    }
    if pdf is None:  # a PDF left by an earlier render of the same day would not match these files
        (folder / "summary.pdf").unlink(missing_ok=True)
    return [write_atomic(folder / name, data) for name, data in contents.items() if data is not None]


def load_clinic_summaries(
    warehouse: Path,
    participants: Sequence[Participant],
    report_date: date,
    *,
    definitions: Definitions = Definitions(),
    clinics: Collection[str] | None = None,
) -> list[ClinicSummary]:
    """Read each clinic's rows (one query set per clinic) and build its summary."""
    by_clinic: dict[str, list[Participant]] = defaultdict(list)
    for participant in participants:
        if clinics is None or participant.clinic_id in clinics:
            by_clinic[participant.clinic_id].append(participant)
    con = open_warehouse(warehouse)
    try:
        run = read_run_info(con, warehouse)
        data = {
            clinic_id: read_clinic(
                con, warehouse, clinic_id, [p.participant_id for p in members], report_date, run
            )
            for clinic_id, members in sorted(by_clinic.items())
        }
    finally:
        con.close()
    return [build_clinic_summary(data[clinic_id], by_clinic[clinic_id], definitions) for clinic_id in data]


def write_clinic_reports(
    warehouse: Path,
    participants: list[Participant],
    outbox: Path,
    report_date: date,
    *,
    definitions: Definitions = Definitions(),
    clinics: Collection[str] | None = None,
    pdf: bool = True,
) -> list[Path]:
    """Write every clinic's summary.html/.pdf/.csv/.json into outbox/<clinic_id>/<report_date>/.

    `participants` is the registry (display names come from there, never from the warehouse);
    `clinics` limits the run to some clinics; `pdf=False` skips printing (and removes a PDF an
    earlier render of the same day left, which would no longer match). Clinics are rendered by two
    threads, so that one clinic's PDF prints in Chromium while the next one's page is rendered;
    one page renders at a time (two at once would delay the first print, which waits for its page)
    and one PDF prints at a time (a print keeps Chromium's renderer busy on one core and its other
    processes on the other; two prints at once were 1.07 times faster for 5 clinics of 200
    patients and held 3.7 GB instead of 2.0). Returns the files written.

    A PDF that cannot be printed does not stop the others: every clinic's HTML, CSV and JSON are
    written first, then one `PdfPrintError` names the clinics without a PDF.
    Call under the run lock: temporaries a killed run left in the outbox (and its print scratch
    folders) are removed first.
    """
    remove_stale_temporaries(outbox)
    remove_abandoned_scratch()  # the print folders of a run killed mid-print
    summaries = load_clinic_summaries(warehouse, participants, report_date, definitions=definitions, clinics=clinics)
    for summary in summaries:
        clinic_folder(outbox, summary.clinic_id, report_date)  # refuse a bad clinic id before rendering
    written: list[Path] = []
    failures: list[tuple[str, PdfPrintError]] = []
    rendering, printing = threading.Lock(), threading.Lock()
    # one Chromium for every clinic: started by the first print, in a thread of the pool, which lives
    # until every print is done (see Printer); ended here
    with Printer() as printer, ThreadPoolExecutor(max_workers=2) as pool:
        for files, failure in pool.map(lambda summary: _write_clinic(summary, outbox, printer if pdf else None,
                                                                     rendering, printing), summaries):
            written += files
            if failure is not None:
                failures.append(failure)
    if failures:
        clinics_without = ", ".join(clinic_id for clinic_id, _ in failures)
        raise PdfPrintError(f"summary.pdf not printed for clinic(s) {clinics_without} (their HTML, CSV and JSON "
                            f"are written): {failures[0][1].message}")
    return written


def _write_clinic(summary: ClinicSummary, outbox: Path, printer: Printer | None, rendering: threading.Lock,
                  printing: threading.Lock) -> tuple[list[Path], tuple[str, PdfPrintError] | None]:
    with rendering:
        rendered = render_clinic(summary)
    document, failure = None, None
    if printer is not None:
        try:
            with printing:
                document = printer.print_pdf(rendered.print_html)
        except PdfPrintError as exc:
            failure = (summary.clinic_id, exc)
    return write_rendered(rendered, outbox, pdf=document), failure
