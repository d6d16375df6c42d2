"""Render time of one clinic's summary: 200 patients x 12 completed weeks (synthetic marts).

    .venv/bin/python benchmarks/report_render.py [--patients 200] [--weeks 12] [--keep DIR]

Prints the time of each step (wall clock and this process's CPU time, which includes
vl-convert's and WeasyPrint's threads) and ends with
`RESULT patients=200 html_s=... pdf_s=...`, where html_s is reading the warehouse, building the
summary, rendering the charts and the page (and the CSV/JSON), and pdf_s is WeasyPrint's printing of
that page.
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

from pipeline.reports.render import html_to_pdf, load_clinic_summaries, render_clinic, write_rendered  # noqa: E402
from pipeline.reports.synthetic import synthetic_clinic, write_synthetic_warehouse  # noqa: E402

REPORT_DATE = date(2024, 6, 5)


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

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        patients = synthetic_clinic("bench", args.patients, REPORT_DATE, weeks=args.weeks)
        warehouse = root / "warehouse.duckdb"
        write_synthetic_warehouse(warehouse, patients, REPORT_DATE)
        participants = [p.participant() for p in patients]
        # warm-up on one patient: imports, vl-convert's JavaScript engine, WeasyPrint's fonts
        (warm,) = load_clinic_summaries(warehouse, participants[:1], REPORT_DATE)
        html_to_pdf(render_clinic(warm).print_html)

        clock = Stopwatch()
        (summary,) = load_clinic_summaries(warehouse, participants, REPORT_DATE)
        read_s = clock.lap()
        rendered = render_clinic(summary)
        render_s = clock.lap()
        pdf = html_to_pdf(rendered.print_html)
        pdf_s = clock.lap()
        written = write_rendered(rendered, args.keep or root / "outbox", pdf=pdf)
        write_s = clock.lap()

    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    print(f"patients={args.patients} weeks={args.weeks} attention={len(summary.attention)}")
    print(f"read + summary  wall {read_s[0]:7.2f} s  cpu {read_s[1]:7.2f} s")
    size = len(rendered.html) / 1e6
    print(f"charts + page   wall {render_s[0]:7.2f} s  cpu {render_s[1]:7.2f} s  ({size:.1f} MB html)")
    print(f"pdf             wall {pdf_s[0]:7.2f} s  cpu {pdf_s[1]:7.2f} s  ({len(pdf) / 1e6:.1f} MB, {pages} pages)")
    print(f"write 4 files   wall {write_s[0]:7.2f} s  ({', '.join(p.name for p in written)})")
    html_s = read_s[0] + render_s[0]
    print(f"RESULT patients={args.patients} html_s={html_s:.2f} pdf_s={pdf_s[0]:.2f}")


if __name__ == "__main__":
    main()
