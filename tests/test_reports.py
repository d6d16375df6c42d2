"""Clinic summaries rendered from a synthetic warehouse in the marts' contract: files, numbers,
clinic separation, the PDF, and what happens when the warehouse or the outbox misbehave."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from pypdf import PdfReader

from pipeline.registry import Participant
from pipeline.reports import files as report_files
from pipeline.reports.data import ReportDataError
from pipeline.reports.files import ReportWriteError, write_atomic
from pipeline.reports.glossary import CSV_COLUMNS, how_to_read
from pipeline.reports.render import FILE_NAMES, JSON_SCHEMA, encode_json, write_clinic_reports
from pipeline.reports.synthetic import expected_attention, sample_cohort, write_synthetic_warehouse

REPORT_DATE = date(2024, 3, 20)
COHORT = sample_cohort(REPORT_DATE)
CLINICS = sorted({p.clinic_id for p in COHORT})
URGENCY_OF_TRUTH = ("overload", "falling_behind", "no_recent_data", "not_met")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("reports")
    warehouse = root / "warehouse.duckdb"
    write_synthetic_warehouse(warehouse, COHORT, REPORT_DATE)
    before = hashlib.sha256(warehouse.read_bytes()).hexdigest()
    paths = write_clinic_reports(warehouse, [p.participant() for p in COHORT], root / "outbox", REPORT_DATE)
    return {"root": root, "warehouse": warehouse, "paths": paths, "warehouse_sha256_before": before}


def folder(rendered: dict, clinic_id: str) -> Path:
    return rendered["root"] / "outbox" / clinic_id / REPORT_DATE.isoformat()


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def readable_text(path: Path) -> str:
    """What a file says: the PDF's text, the HTML with its SVG charts decoded, else the text."""
    if path.suffix == ".pdf":
        return pdf_text(path)
    text = path.read_text(encoding="utf-8")
    return re.sub(
        r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)",
        lambda m: base64.b64decode(m.group(1)).decode("utf-8"),
        text,
    )


def mentions(text: str, token: str) -> bool:
    """`token` as a whole word: 'A-01' is not mentioned by 'A-010', nor 'Ann Lee' by 'Ann Leeds'."""
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


def warehouse_rows(warehouse: Path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


# ----------------------------------------------------------------------------- files


def test_each_clinic_gets_its_four_files_and_nothing_half_written(rendered):
    assert len(rendered["paths"]) == 4 * len(CLINICS)
    for clinic_id in CLINICS:
        names = sorted(p.name for p in folder(rendered, clinic_id).iterdir())
        assert names == sorted(FILE_NAMES)  # no temporary file left behind
    assert sorted(p.name for p in (rendered["root"] / "outbox").iterdir()) == CLINICS


def test_rendering_reads_the_warehouse_without_changing_it_and_it_holds_no_display_names(rendered):
    warehouse = rendered["warehouse"]
    assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == rendered["warehouse_sha256_before"]
    names = [p.display_name for p in COHORT]
    tables = [t for (t,) in warehouse_rows(warehouse, "SELECT table_name FROM information_schema.tables")]
    for table in tables:
        for row in warehouse_rows(warehouse, f'SELECT * FROM "{table}"'):
            assert not any(isinstance(v, str) and v in names for v in row), table


def test_csv_has_the_stable_columns_and_the_marts_numbers(rendered):
    text = (folder(rendered, "north") / "summary.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    expected = warehouse_rows(
        rendered["warehouse"],
        "SELECT participant_id, programme_week, walk_minutes, prescribed_minutes, adherence_pct, status, steps "
        "FROM weekly_adherence WHERE clinic_id = 'north' ORDER BY participant_id, programme_week",
    )
    assert len(rows) == len(expected)
    by_key = {(r["participant_id"], int(r["programme_week"])): r for r in rows}
    for pid, number, walk, prescribed, adherence, status, steps in expected:
        row = by_key[(pid, number)]
        assert row["walk_minutes"] == ("" if walk is None else str(walk))
        assert row["prescribed_minutes"] == str(prescribed)
        assert row["adherence_pct"] == ("" if adherence is None else str(adherence))
        assert row["status"] == status
        assert row["steps"] == ("" if steps is None else str(steps))
    names = {r["participant_id"]: r["display_name"] for r in rows}
    assert names["A-01"] == "Ann Lee"
    reported = [r for r in rows if r["participant_id"] == "A-02" and r["reported_week"] == "true"]
    assert len(reported) == 1 and reported[0]["flags"] == "overload" and reported[0]["attention_rank"] == "1"


@pytest.mark.parametrize("clinic_id", CLINICS)
def test_json_attention_list_is_the_cohorts_truth_in_urgency_order(rendered, clinic_id):
    document = json.loads((folder(rendered, clinic_id) / "summary.json").read_text(encoding="utf-8"))
    assert document["schema"] == JSON_SCHEMA
    assert document["clinic_id"] == clinic_id and document["report_date"] == REPORT_DATE.isoformat()
    listed = [p for p in COHORT if p.clinic_id == clinic_id and expected_attention(p)]
    truth = sorted(
        ((p.participant_id, expected_attention(p)) for p in listed), key=lambda item: URGENCY_OF_TRUTH.index(item[1])
    )
    assert [(a["participant_id"], a["kind"]) for a in document["attention"]] == truth
    assert [a["rank"] for a in document["attention"]] == list(range(1, len(truth) + 1))
    assert sorted(p["participant_id"] for p in document["patients"]) == sorted(
        p.participant_id for p in COHORT if p.clinic_id == clinic_id
    )


def test_json_patient_record_carries_weeks_and_data_quality(rendered):
    document = json.loads((folder(rendered, "north") / "summary.json").read_text(encoding="utf-8"))
    patients = {p["participant_id"]: p for p in document["patients"]}
    grace = patients["A-07"]
    assert grace["sources"] == ["apple_health", "fit_monitoring"]
    assert grace["device_differences"]["days_differing"] == 1
    assert grace["device_differences"]["largest"][0]["difference"] == 1234.0
    bilal = patients["A-02"]
    assert [n["implausible"] for n in bilal["day_notes"]] == [True]
    hamid = patients["A-08"]  # started three days ago: only a week in progress
    assert hamid["reported_week"] is None and hamid["in_progress_week"] == 1
    assert [w["status"] for w in hamid["weeks"]] == ["in_progress"]


# ----------------------------------------------------------------------------- separation


@pytest.mark.parametrize("clinic_id", CLINICS)
def test_a_clinics_files_name_none_of_another_clinics_patients(rendered, clinic_id):
    others = [p for p in COHORT if p.clinic_id != clinic_id]
    own = [p for p in COHORT if p.clinic_id == clinic_id]
    own_numbers = {
        n for (n,) in warehouse_rows(
            rendered["warehouse"], "SELECT DISTINCT steps FROM weekly_adherence WHERE clinic_id = ?", [clinic_id]
        ) if n is not None
    }
    other_numbers = {
        n for (n,) in warehouse_rows(
            rendered["warehouse"], "SELECT DISTINCT steps FROM weekly_adherence WHERE clinic_id <> ?", [clinic_id]
        ) if n is not None
    } - own_numbers
    assert other_numbers, "the cohort must give other clinics numbers of their own"
    for path in sorted(folder(rendered, clinic_id).iterdir()):
        text = readable_text(path)
        for patient in own:  # the check can see what it looks for
            assert mentions(text, patient.participant_id), (path.name, patient.participant_id)
        for patient in others:
            assert not mentions(text, patient.participant_id), (path.name, patient.participant_id)
            assert not mentions(text, patient.display_name), (path.name, patient.display_name)
            assert not mentions(text, patient.clinic_id), (path.name, patient.clinic_id)
        for number in other_numbers:
            assert not mentions(text, str(number)) and not mentions(text, f"{number:,}"), (path.name, number)


def test_look_alike_ids_are_matched_exactly():
    assert mentions("A-01, A-010", "A-01") and not mentions("A-010 A-0100", "A-01")
    assert not mentions("Ann Leeds", "Ann Lee")


# ----------------------------------------------------------------------------- the page and the PDF


def test_html_is_self_contained_and_has_every_section(rendered):
    html = (folder(rendered, "north") / "summary.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.findall(r'(?:src|href)="(?!#|data:)', html), "every resource is inline"
    assert "<script" not in html
    for section in ("attention", "roster", "patients", "how-to-read"):
        assert f'id="{section}"' in html
    assert html.count('class="patient"') == sum(p.clinic_id == "north" for p in COHORT)
    for term in how_to_read():
        assert term.name in html
    assert "@page" in html and "size: A4" in html


def test_the_pdf_prints_the_same_page_with_the_same_charts(rendered):
    from pipeline.reports.render import load_clinic_summaries, render_clinic

    (summary,) = load_clinic_summaries(
        rendered["warehouse"], [p.participant() for p in COHORT], REPORT_DATE, clinics={"east"}
    )
    result = render_clinic(summary)
    inline_svgs = re.findall(r"<svg .*?</svg>", result.html, re.S)
    printed_svgs = [
        base64.b64decode(uri).decode("utf-8")
        for uri in re.findall(r'<img alt="" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)">', result.print_html)
    ]
    assert inline_svgs and inline_svgs == printed_svgs

    def without_charts(html: str) -> str:
        html = re.sub(r"<svg .*?</svg>|<img [^>]*>", "", html, flags=re.S)
        return re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)

    assert without_charts(result.html) == without_charts(result.print_html)


def test_roster_shows_the_reported_weeks_numbers(rendered):
    html = (folder(rendered, "north") / "summary.html").read_text(encoding="utf-8")
    walk, prescribed, adherence = warehouse_rows(
        rendered["warehouse"],
        "SELECT walk_minutes, prescribed_minutes, adherence_pct FROM weekly_adherence "
        "WHERE participant_id = 'A-02' AND status <> 'in_progress' ORDER BY programme_week DESC LIMIT 1",
    )[0]
    row = re.search(r'<tr class="attention-row" data-participant-id="A-02">(.*?)</tr>', html, re.S).group(1)
    assert f"{walk:.0f} / {prescribed:.0f}" in row and f"{adherence:.0f}%" in row


def test_pdf_has_a4_pages_with_the_attention_list_and_every_patient(rendered):
    path = folder(rendered, "north") / "summary.pdf"
    reader = PdfReader(path)
    north = [p for p in COHORT if p.clinic_id == "north"]
    # first pages: header, attention list, roster; then two patients a page; then the glossary
    assert 1 + len(north) // 2 <= len(reader.pages) <= 3 + len(north)
    for page in reader.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert abs(width - 595.3) < 1.5 and abs(height - 841.9) < 1.5  # A4 in points
    text = pdf_text(path)
    assert "Who needs attention first" in text and "How to read this" in text
    assert f"page 1 of {len(reader.pages)}" in text
    for patient in north:
        assert patient.display_name in text
    flattened = " ".join(text.split())
    assert "walked 34 of 115 prescribed minutes, 3rd week below half" in flattened
    assert "no data from the phone since Tue 12 Mar" in flattened


def test_charts_plot_the_marts_values_as_svg_with_nothing_to_fetch(rendered):
    from pipeline.reports import charts
    from pipeline.reports.data import open_warehouse, read_clinic, read_run_info

    warehouse = rendered["warehouse"]
    con = open_warehouse(warehouse)
    try:
        data = read_clinic(con, warehouse, "north", ["A-03"], REPORT_DATE, read_run_info(con, warehouse))
    finally:
        con.close()
    weeks = data.weeks["A-03"]
    svg = charts.patient_chart_svg(weeks)
    assert svg.startswith("<svg") and "walk minutes / week" in svg and "peak-30 cadence" in svg
    assert not re.findall(r'(?:href|src)="(?!#)', svg)
    for walk in {w.walk_minutes for w in weeks if w.walk_minutes is not None}:
        assert f">{walk:.0f}<" in svg  # each bar is labelled with the mart's walk minutes
    html = (folder(rendered, "north") / "summary.html").read_text(encoding="utf-8")
    assert svg in html  # the page carries exactly this chart


# ----------------------------------------------------------------------------- failures


def test_missing_warehouse_is_a_typed_error(tmp_path):
    with pytest.raises(ReportDataError, match="does not exist"):
        write_clinic_reports(tmp_path / "nope.duckdb", [p.participant() for p in COHORT], tmp_path, REPORT_DATE)


def test_warehouse_without_the_marts_is_a_typed_error(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    with pytest.raises(ReportDataError, match="missing") as caught:
        write_clinic_reports(warehouse, [p.participant() for p in COHORT], tmp_path, REPORT_DATE)
    assert "Build the warehouse" in caught.value.one_line()


def test_registry_patient_without_rows_gets_a_section_saying_so(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    write_synthetic_warehouse(warehouse, [p for p in COHORT if p.participant_id == "A-01"], REPORT_DATE)
    newcomer = Participant("A-09", "north", "Europe/London", REPORT_DATE, display_name="Nadia Osei")
    participants = [COHORT[0].participant(), newcomer]
    write_clinic_reports(warehouse, participants, tmp_path / "outbox", REPORT_DATE, pdf=False)
    html = (tmp_path / "outbox" / "north" / REPORT_DATE.isoformat() / "summary.html").read_text(encoding="utf-8")
    section = re.search(r'<section class="patient"[^>]*data-participant-id="A-09">(.*?)</section>', html, re.S)
    assert section and "No data in the warehouse for this patient yet" in section.group(1)


def test_a_clinic_id_that_cannot_name_a_folder_is_refused(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    write_synthetic_warehouse(warehouse, COHORT[:1], REPORT_DATE)
    evil = Participant("A-01", "../elsewhere", "Europe/London", COHORT[0].programme_start)
    with pytest.raises(ReportWriteError, match="cannot name a folder"):
        write_clinic_reports(warehouse, [evil], tmp_path / "outbox", REPORT_DATE, pdf=False)


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "summary.csv"
    target.write_text("previous\n")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_files.os, "replace", refuse)
    with pytest.raises(ReportWriteError, match="No space left"):
        write_atomic(target, b"new\n")
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_temporaries_a_killed_run_left_in_the_outbox_are_removed_by_the_next_run(tmp_path):
    """write_atomic's `.<name>.<pid>.tmp` survives a SIGKILL between write and rename; the next
    write_clinic_reports (under the run lock) removes every such file, and nothing else."""
    warehouse = tmp_path / "warehouse.duckdb"
    write_synthetic_warehouse(warehouse, COHORT[:1], REPORT_DATE)
    outbox = tmp_path / "outbox"
    day = outbox / "north" / "2024-03-13"
    day.mkdir(parents=True)
    stale = [day / ".summary.pdf.4242.tmp", outbox / "north" / ".summary.csv.7.tmp", outbox / ".receipt.json.99999.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    kept = [day / "summary.csv", day / "notes.tmp", day / ".tmp", outbox / ".summary.pdf.tmp"]
    for path in kept:
        path.write_bytes(b"not ours to remove")
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("keep me")
    link = day / ".summary.html.5.tmp"
    link.symlink_to(outside)

    write_clinic_reports(warehouse, [COHORT[0].participant()], outbox, REPORT_DATE, pdf=False)

    assert not [path for path in stale if path.exists()]
    assert all(path.read_bytes() == b"not ours to remove" for path in kept)
    assert link.is_symlink() and outside.read_text() == "keep me"
    assert not list((outbox / "north" / REPORT_DATE.isoformat()).glob(".*.tmp"))
    assert (outbox / "north" / REPORT_DATE.isoformat() / "summary.csv").exists()


def test_remove_stale_temporaries_on_a_missing_outbox_does_nothing(tmp_path):
    assert report_files.remove_stale_temporaries(tmp_path / "no-outbox") == []


def test_summary_json_is_written_as_the_standard_library_wrote_it():
    """encode_json (orjson) against json.dumps(indent=2, ensure_ascii=False) over the values it
    used to be given: dates and times as ISO 8601, tuples as lists, NaN and infinity as null."""

    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        return value

    document = {
        "report_date": date(2024, 6, 5),
        "generated_at_utc": datetime(2024, 6, 5, 2, 0, 7, 123456, tzinfo=UTC),
        "last_data_local": datetime(2024, 6, 4, 23, 30, tzinfo=timezone(timedelta(hours=-4))),
        "whole_second": datetime(2024, 6, 4, 0, 0, tzinfo=UTC),
        "patients": [{"name": "Zoë Ø'Brien \"Jr\"", "weeks": (1, 2), "adherence_pct": 103.25,
                      "minutes": 80.0, "missing": float("nan"), "huge": float("inf"), "none": None,
                      "flags": [], "notes": {}, "ok": True}],
    }
    assert encode_json(document) == json.dumps(plain(document), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
