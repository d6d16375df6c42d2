"""summary.pdf printed by headless Chromium (pipeline/reports/pdf.py): what happens when it cannot be.

A Chromium that fails, hangs or is missing must not cost a clinic its HTML, CSV and JSON, nor leave
a process behind; the error names the clinic and says what to do.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from pipeline.reports.pdf import PdfPrintError, Printer, chromium_binary, html_to_pdf, remove_abandoned_scratch
from pipeline.reports.render import write_clinic_reports
from pipeline.reports.synthetic import sample_cohort, write_synthetic_warehouse
from tests.processes import assert_all_end

REPORT_DATE = date(2024, 3, 20)
COHORT = sample_cohort(REPORT_DATE)


def fake_chromium(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-chromium"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_a_failing_chromium_keeps_every_other_file_and_names_the_clinics(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    write_synthetic_warehouse(warehouse, COHORT, REPORT_DATE)
    monkeypatch.setenv("STEPWISE_CHROMIUM", fake_chromium(tmp_path, 'echo "cannot open display" >&2; exit 3'))
    outbox = tmp_path / "outbox"
    clinics = sorted({p.clinic_id for p in COHORT})
    with pytest.raises(PdfPrintError) as caught:
        write_clinic_reports(warehouse, [p.participant() for p in COHORT], outbox, REPORT_DATE)
    message = caught.value.one_line()
    assert all(clinic in message for clinic in clinics)
    assert "exited with status 3" in message and "cannot open display" in message
    assert "Install Chromium" in message
    for clinic in clinics:
        folder = outbox / clinic / REPORT_DATE.isoformat()
        assert sorted(p.name for p in folder.iterdir()) == ["summary.csv", "summary.html", "summary.json"]


def test_a_pdf_left_by_an_earlier_print_of_the_same_day_is_removed_when_printing_fails(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    write_synthetic_warehouse(warehouse, COHORT, REPORT_DATE)
    north = [p.participant() for p in COHORT if p.clinic_id == "north"]
    outbox = tmp_path / "outbox"
    write_clinic_reports(warehouse, north, outbox, REPORT_DATE)
    pdf = outbox / "north" / REPORT_DATE.isoformat() / "summary.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    monkeypatch.setenv("STEPWISE_CHROMIUM", fake_chromium(tmp_path, "exit 1"))
    with pytest.raises(PdfPrintError):
        write_clinic_reports(warehouse, north, outbox, REPORT_DATE)
    assert not pdf.exists()  # it would no longer match the HTML, CSV and JSON written beside it


FAKE_DEVTOOLS = """#!{python}
# answers every DevTools command on fd 4 (a tab, a session, a 'PDF' of {data!r}), fires the load event
import base64, json, os
with open({starts!r}, "a") as starts:
    starts.write(f"{{os.getpid()}}\\n")
buffer = b""
while chunk := os.read(3, 65536):
    buffer += chunk
    while b"\\0" in buffer:
        raw, buffer = buffer.split(b"\\0", 1)
        message = json.loads(raw)
        if message["method"] == "Page.printToPDF" and {die!r}:
            raise SystemExit("printing crashed")
        if message["method"] == "Page.printToPDF" and {garble!r}:
            os.write(4, b"{{not json\\0")
            continue
        result = {{"targetId": "t", "sessionId": "s", "data": base64.b64encode({data!r}).decode()}}
        os.write(4, json.dumps({{"id": message["id"], "result": result}}).encode() + b"\\0")
        if message["method"] == "Page.navigate":
            os.write(4, json.dumps({{"method": "Page.loadEventFired", "sessionId": "s"}}).encode() + b"\\0")
"""


def fake_devtools_chromium(tmp_path: Path, data: bytes, *, die: bool = False,
                           garble: bool = False) -> tuple[str, Path]:
    """A fake Chromium that speaks the DevTools pipe; the file listing the pid of each start."""
    starts = tmp_path / "starts"
    script = tmp_path / "fake-devtools-chromium"
    script.write_text(FAKE_DEVTOOLS.format(python=sys.executable, data=data, starts=str(starts), die=die,
                                           garble=garble))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script), starts


def test_output_that_is_not_a_pdf_is_refused(tmp_path, monkeypatch):
    chromium, _ = fake_devtools_chromium(tmp_path, b"junk")
    monkeypatch.setenv("STEPWISE_CHROMIUM", chromium)
    with pytest.raises(PdfPrintError, match="printed something that is not a PDF"):
        html_to_pdf("<p>x</p>")
    (tmp_path / "garbled").mkdir()
    chromium, _ = fake_devtools_chromium(tmp_path / "garbled", b"%PDF-1.4", garble=True)
    monkeypatch.setenv("STEPWISE_CHROMIUM", chromium)
    with pytest.raises(PdfPrintError, match="answered the DevTools protocol unexpectedly"):
        html_to_pdf("<p>x</p>")


def test_one_chromium_prints_every_page_and_a_new_one_follows_a_crash(tmp_path, monkeypatch):
    chromium, starts = fake_devtools_chromium(tmp_path, b"%PDF-1.4 fake")
    monkeypatch.setenv("STEPWISE_CHROMIUM", chromium)
    with Printer(timeout_s=30) as printer:
        assert [printer.print_pdf(f"<p>{n}</p>") for n in range(3)] == [b"%PDF-1.4 fake"] * 3
    assert len(starts.read_text().split()) == 1
    (tmp_path / "dying").mkdir()
    chromium, starts = fake_devtools_chromium(tmp_path / "dying", b"%PDF-1.4 fake", die=True)
    monkeypatch.setenv("STEPWISE_CHROMIUM", chromium)
    with Printer(timeout_s=30) as printer:
        for _ in range(2):
            with pytest.raises(PdfPrintError, match="exited with status 1 and no PDF: printing crashed"):
                printer.print_pdf("<p>x</p>")
    pids = [int(pid) for pid in starts.read_text().split()]
    assert len(set(pids)) == 2  # the second print started a Chromium of its own
    assert_all_end(pids, 5, "a crashed Chromium's process was left")


def test_a_hanging_chromium_is_killed_with_its_children(tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    body = f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    monkeypatch.setenv("STEPWISE_CHROMIUM", fake_chromium(tmp_path, body))
    began = time.monotonic()
    with pytest.raises(PdfPrintError, match="did not finish printing within 1 s"):
        html_to_pdf("<p>x</p>", timeout_s=1)
    assert time.monotonic() - began < 20
    assert_all_end(map(int, pids.read_text().split()), 5, "processes survived the timeout")


def test_a_missing_chromium_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("STEPWISE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(PdfPrintError, match="is not an executable file"):
        chromium_binary()
    monkeypatch.delenv("STEPWISE_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PdfPrintError, match="no Chromium to print summary.pdf with"):
        chromium_binary()


def test_chromium_prints_an_a4_pdf_with_the_pages_footer():
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        try:
            chromium_binary()
        except PdfPrintError as exc:
            pytest.skip(f"{exc.message} (CI=true fails instead)")
    html = ("<style>@page { size: A4; margin: 20mm; @bottom-right { content: 'page ' counter(page) ' of ' "
            "counter(pages); } } p { break-after: page; }</style><p>first</p><p>second</p>")
    reader = PdfReader(BytesIO(html_to_pdf(html)))
    assert len(reader.pages) == 2
    assert abs(float(reader.pages[0].mediabox.width) - 595.3) < 1.5
    assert "page 2 of 2" in reader.pages[1].extract_text()
    with Printer() as printer:  # one Chromium, two pages: each PDF has its own
        first, second = (PdfReader(BytesIO(printer.print_pdf(f"<p>page of {name}</p>"))) for name in ("ann", "bob"))
    assert "page of ann" in first.pages[0].extract_text() and "page of bob" in second.pages[0].extract_text()


PRINTING_RUN = """
from pipeline.reports.pdf import html_to_pdf
html_to_pdf("<p>x</p>", timeout_s=120)
"""


def _kill_a_run_mid_print(tmp_path: Path, **env: str) -> int:
    """Start a print in another process (a fake Chromium that waits), kill that process while it
    prints; the fake Chromium's pid."""
    pid_file = tmp_path / "chromium.pid"
    chromium = fake_chromium(tmp_path, f"echo $$ > {pid_file}; exec sleep 120")
    env = {**os.environ, "STEPWISE_CHROMIUM": chromium, **env}
    run = subprocess.Popen([sys.executable, "-c", PRINTING_RUN], env=env, cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline and run.poll() is None, "the fake Chromium never started"
            time.sleep(0.05)
        return int(pid_file.read_text())
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait()


NEEDS_SETPRIV = pytest.mark.skipif(shutil.which("setpriv") is None, reason="util-linux's setpriv is not installed")


@NEEDS_SETPRIV
def test_a_run_killed_mid_print_leaves_no_chromium_printing(tmp_path):
    chromium_pid = _kill_a_run_mid_print(tmp_path)
    assert_all_end([chromium_pid], 10, "Chromium went on printing after the run was killed")


@NEEDS_SETPRIV
def test_the_next_run_removes_the_print_folder_a_killed_run_left(tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    chromium_pid = _kill_a_run_mid_print(tmp_path, TMPDIR=str(scratch))
    assert_all_end([chromium_pid], 10, "Chromium went on printing after the run was killed")
    left = sorted(scratch.glob("stepwise-pdf-*"))
    assert len(left) == 1 and (left[0] / "summary.html").is_file()  # the page and profile stay behind
    under_way = scratch / f"stepwise-pdf-{os.getpid()}-print"  # a live process's print is not touched
    under_way.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert remove_abandoned_scratch() == left
    assert not left[0].exists() and under_way.is_dir()


def test_a_chromium_that_cannot_be_started_is_a_print_error(tmp_path, monkeypatch):
    not_executable = tmp_path / "chromium"
    not_executable.write_text("#!/bin/sh\nexit 0\n")  # no execute permission: exec fails
    monkeypatch.setattr("pipeline.reports.pdf.chromium_binary", lambda: str(not_executable))
    with pytest.raises(PdfPrintError, match="Permission denied"):  # setpriv says so, exiting 126
        html_to_pdf("<p>x</p>")
    monkeypatch.setattr("pipeline.reports.pdf._DIE_WITH_PARENT", ())  # no setpriv: our exec says so
    with pytest.raises(PdfPrintError, match="status 126 and no PDF: cannot start .*chromium: Permission denied"):
        html_to_pdf("<p>x</p>")
