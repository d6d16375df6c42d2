"""Render time of one clinic's summary: 200 patients x 12 completed weeks (synthetic marts).

    .venv/bin/python benchmarks/report_render.py [--patients 200] [--weeks 12] [--keep DIR]

Prints the time of each step (wall clock and this process's CPU time, which includes
Chromium's processes) and ends with
`RESULT patients=200 html_s=... pdf_s=... charts_s=... vegalite_charts_s=... ratio_vegalite=...
weasyprint_pdf_s=... ratio_weasyprint=...`, where html_s is reading the warehouse, building the
summary, rendering the charts and the page (and the CSV/JSON), pdf_s is Chromium's printing of that
page (what summary.pdf is made with), charts_s is drawing every patient's two charts with
`pipeline/reports/charts.py`. The peers, measured in the same run on the same rows (the `bench`
extra; each skipped with a note when it is not installed): the same charts as Vega-Lite rendered by
vl-convert (`benchmarks/vegalite_charts.py`, how the summary drew them before), and WeasyPrint 70
printing the same page (how summary.pdf was printed before).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.reports import charts as ours  # noqa: E402
from pipeline.reports.pdf import Printer  # noqa: E402
from pipeline.reports.render import load_clinic_summaries, render_clinic, write_rendered  # noqa: E402
from pipeline.reports.synthetic import synthetic_clinic, write_synthetic_warehouse  # noqa: E402

try:  # a peer: the charts as Vega-Lite rendered by vl-convert (the `bench` extra)
    import vegalite_charts as vegalite  # noqa: E402
except ImportError:
    vegalite = None

try:  # a peer: WeasyPrint, which printed summary.pdf before Chromium (the `bench` extra)
    import weasyprint
except ImportError:
    weasyprint = None

REPORT_DATE = date(2024, 6, 5)


def time_charts(summary, module) -> float:
    """Seconds to draw every patient's chart and sparkline with `module` (ours or the Vega-Lite peer)."""
    began = time.perf_counter()
    for patient in summary.patients:
        if patient.weeks:
            module.patient_chart_svg(patient.weeks)
        if patient.trend_weeks:
            module.trend_svg(patient.trend_weeks)
    return time.perf_counter() - began


class Stopwatch:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        lap = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return lap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--keep", type=Path, help="write the summary files into this folder")
    args = parser.parse_args()

    # one Chromium for the warm-up and the timed print, as a run prints its clinics
    with tempfile.TemporaryDirectory() as scratch, Printer() as printer:
        root = Path(scratch)
        patients = synthetic_clinic("bench", args.patients, REPORT_DATE, weeks=args.weeks)
        warehouse = root / "warehouse.duckdb"
        write_synthetic_warehouse(warehouse, patients, REPORT_DATE)
        participants = [p.participant() for p in patients]
        # warm-up on one patient: imports, vl-convert's JavaScript engine, Chromium's and WeasyPrint's fonts
        (warm,) = load_clinic_summaries(warehouse, participants[:1], REPORT_DATE)
        printer.print_pdf(render_clinic(warm).print_html)
        if weasyprint is not None:
            weasyprint.HTML(string=render_clinic(warm).print_html).write_pdf()

        clock = Stopwatch()
        (summary,) = load_clinic_summaries(warehouse, participants, REPORT_DATE)
        read_s = clock.lap()
        rendered = render_clinic(summary)
        render_s = clock.lap()
        pdf = printer.print_pdf(rendered.print_html)
        pdf_s = clock.lap()
        written = write_rendered(rendered, args.keep or root / "outbox", pdf=pdf)
        write_s = clock.lap()
        charts_s = time_charts(summary, ours)
        vegalite_s = time_charts(summary, vegalite) if vegalite else None
        clock.lap()
        if weasyprint is not None:
            peer_pages = len(PdfReader(io.BytesIO(weasyprint.HTML(string=rendered.print_html).write_pdf())).pages)
            peer_s = clock.lap()

    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    print(f"patients={args.patients} weeks={args.weeks} attention={len(summary.attention)}")
    print(f"read + summary  wall {read_s[0]:7.2f} s  cpu {read_s[1]:7.2f} s")
    size = len(rendered.html) / 1e6
    print(f"charts + page   wall {render_s[0]:7.2f} s  cpu {render_s[1]:7.2f} s  ({size:.1f} MB html)")
    print(f"pdf             wall {pdf_s[0]:7.2f} s  cpu {pdf_s[1]:7.2f} s  ({len(pdf) / 1e6:.1f} MB, {pages} pages)")
    print(f"write 4 files   wall {write_s[0]:7.2f} s  ({', '.join(p.name for p in written)})")
    html_s = read_s[0] + render_s[0]
    result = f"RESULT patients={args.patients} html_s={html_s:.2f} pdf_s={pdf_s[0]:.2f}"
    print(f"charts (ours)   wall {charts_s:7.2f} s  ({2 * len(summary.patients)} charts)")
    if vegalite_s is None:
        print("charts, Vega-Lite not measured: install the bench extra (pip install -e '.[bench]')")
    else:
        print(f"charts, Vega-Lite wall {vegalite_s:5.2f} s  ours is {vegalite_s / charts_s:.0f}x faster")
        result += f" charts_s={charts_s:.3f} vegalite_charts_s={vegalite_s:.2f} ratio_vegalite={vegalite_s / charts_s:.0f}"
    if weasyprint is None:
        print("pdf, WeasyPrint  not measured: install the bench extra (pip install -e '.[bench]')")
    else:
        print(f"pdf, WeasyPrint wall {peer_s[0]:7.2f} s  cpu {peer_s[1]:7.2f} s  ({peer_pages} pages), "
              f"Chromium is {peer_s[0] / pdf_s[0]:.1f}x faster")
        result += f" weasyprint_pdf_s={peer_s[0]:.2f} ratio_weasyprint={peer_s[0] / pdf_s[0]:.1f}"
    print(result)


if __name__ == "__main__":
    main()
