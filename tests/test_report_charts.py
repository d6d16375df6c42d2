"""The clinic summary's charts (pipeline/reports/charts.py): what each mark says about the rows.

The SVG is parsed and its marks measured: bar heights against the values, colours against the
status, the prescription's line against the prescribed minutes, missing values drawing nothing.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from pipeline.reports import charts
from pipeline.reports.data import WeekRow

SVG = "{http://www.w3.org/2000/svg}"


def week(number: int, walk: float | None, prescribed: float | None = 100.0, status: str = "met", **values) -> WeekRow:
    start = date(2024, 1, 1) + timedelta(weeks=number - 1)
    row = WeekRow(
        participant_id="P-1", clinic_id="c", programme_week=number, week_start=start,
        week_end=start + timedelta(days=6), walk_minutes=walk, walking_minutes_all=walk, moderate_minutes=10.0,
        vigorous_minutes=0.0, steps=50_000, mean_daily_steps=7_000.0, walking_days=4, valid_days=7,
        low_confidence_days=0, peak30_cadence=100.0, prescribed_minutes=prescribed, prescribed_days=4,
        adherence_pct=None if walk is None or not prescribed else 100 * walk / prescribed, status=status,
        flags=(), sources=("fit_monitoring",), definitions_version="1", last_data_utc=None,
    )
    return dataclasses.replace(row, **values)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def bars(root: ET.Element) -> list[ET.Element]:
    return [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "bar"]


def test_bar_heights_are_proportional_to_walk_minutes_and_coloured_by_status():
    weeks = [week(1, 80, status="met"), week(2, 40, status="not_met"), week(3, 120, status="partial"),
             week(4, 20, status="in_progress")]
    root = parse(charts.patient_chart_svg(weeks))
    drawn = bars(root)
    assert len(drawn) == 4
    heights = [float(rect.get("height")) for rect in drawn]
    for value, height in zip((80, 40, 120, 20), heights):
        assert height / heights[0] == pytest.approx(value / 80, rel=0.02)
    assert [rect.get("fill") for rect in drawn] == [charts.STATUS_COLOURS[s] for s in
                                                    ("met", "not_met", "partial", "in_progress")]
    xs = [float(rect.get("x")) for rect in drawn]
    assert xs == sorted(xs)  # weeks left to right in programme order
    titles = [rect.find(f"{SVG}title").text for rect in drawn]
    assert titles[1] == "week 2: 40 min of 100 prescribed, not met"
    bottoms = {round(float(r.get("y")) + float(r.get("height")), 1) for r in drawn}
    assert len(bottoms) == 1  # every bar stands on zero


def test_the_prescription_line_passes_through_the_prescribed_minutes():
    weeks = [week(1, 50, prescribed=80), week(2, 60, prescribed=100), week(3, 90, prescribed=120)]
    root = parse(charts.patient_chart_svg(weeks))
    drawn = bars(root)
    line = next(p for p in root.iter(f"{SVG}polyline") if p.get("stroke") == charts.PRESCRIBED_COLOUR)
    points = [tuple(map(float, pair.split(","))) for pair in line.get("points").split()]
    assert len(points) == 3
    zero = float(drawn[0].get("y")) + float(drawn[0].get("height"))
    for (x, y), rect, (walk, prescribed) in zip(points, drawn, ((50, 80), (60, 100), (90, 120))):
        assert x == pytest.approx(float(rect.get("x")) + float(rect.get("width")) / 2, abs=0.1)
        assert (zero - y) / float(rect.get("height")) == pytest.approx(prescribed / walk, rel=0.02)


def test_a_week_without_data_draws_no_bar_and_no_zero():
    weeks = [week(1, 80), week(2, None, status="no_data", walking_days=None, mean_daily_steps=None,
                              moderate_minutes=None, peak30_cadence=None), week(3, 90)]
    svg = charts.patient_chart_svg(weeks)
    assert len(bars(parse(svg))) == 2
    assert ">0<" not in re.sub(r'<text[^>]*text-anchor="end"[^>]*>0</text>', "", svg)  # only axis ticks say 0


def panel_bars(root: ET.Element) -> list[tuple[str, str | None, list[tuple[float, float, float, float]]]]:
    """The small panels' bar paths: (fill, fill-opacity, [(x, y, width, height) per bar])."""
    found = []
    for path in root.iter(f"{SVG}path"):
        if path.get("class") == "bars":
            boxes = [tuple(float(v) for v in re.split(r"[,hvz]", box)[:4]) for box in path.get("d").split("M")[1:]]
            found.append((path.get("fill"), path.get("fill-opacity"), boxes))
    return found


def dots(root: ET.Element) -> list[tuple[float, float, str, float]]:
    """The lines' dots: (x, y, colour, diameter), each a zero-length subpath with a round cap."""
    found = []
    for path in root.iter(f"{SVG}path"):
        if path.get("class") == "dots":
            assert path.get("stroke-linecap") == "round" and path.get("fill") == "none"
            for subpath in path.get("d").split("M")[1:]:
                point, length = subpath.split("h")
                assert length == "0"
                x, y = (float(v) for v in point.split(","))
                found.append((x, y, path.get("stroke"), float(path.get("stroke-width"))))
    return found


def test_in_progress_week_is_faint_in_the_small_panels():
    weeks = [week(1, 80), week(2, 30, status="in_progress")]
    faint = [(fill, boxes) for fill, opacity, boxes in panel_bars(parse(charts.patient_chart_svg(weeks)))
             if opacity == str(charts.IN_PROGRESS_OPACITY)]
    assert len(faint) == 3  # walking days, steps/day, moderate minutes of week 2
    assert all(len(boxes) == 1 for _, boxes in faint)


def test_small_panel_bars_are_proportional_to_their_values():
    weeks = [week(1, 80, walking_days=2, mean_daily_steps=4_000.0), week(2, 90, walking_days=6, mean_daily_steps=8_000.0),
             week(3, None, walking_days=None, mean_daily_steps=None)]
    paths = {fill: boxes for fill, _, boxes in panel_bars(parse(charts.patient_chart_svg(weeks)))}
    days, steps = paths["#0072B2"], paths["#009E73"]
    assert len(days) == len(steps) == 2  # the week without data draws nothing
    assert days[1][3] / days[0][3] == pytest.approx(6 / 2, rel=0.02)
    assert steps[1][3] / steps[0][3] == pytest.approx(8_000 / 4_000, rel=0.02)
    assert days[0][0] < days[1][0]  # weeks in order along x
    assert days[0][1] + days[0][3] == pytest.approx(days[1][1] + days[1][3])  # on one baseline


def test_plan_ticks_mark_the_prescribed_days():
    weeks = [week(1, 80, prescribed_days=3), week(2, 90, prescribed_days=5), week(3, 90, prescribed_days=None)]
    root = parse(charts.patient_chart_svg(weeks))
    ticks, = [p for p in root.iter(f"{SVG}path") if p.get("class") == "ticks"]
    ys = [float(seg.split("H")[0].split(",")[1]) for seg in ticks.get("d").split("M")[1:]]
    (_, _, days), = [(f, o, b) for f, o, b in panel_bars(root) if f == "#0072B2"]
    baseline = days[0][1] + days[0][3]
    per_day = days[0][3] / 4  # the fixture walks 4 days a week
    assert [baseline - y for y in ys] == pytest.approx([3 * per_day, 5 * per_day], rel=0.02)


def test_crowded_line_points_are_not_dotted():
    year = [week(n, 100.0 + n) for n in range(1, 53)]
    assert not dots(parse(charts.trend_svg(year)))  # 52 dots in 100 px would blur the line
    root = parse(charts.patient_chart_svg(year))
    dotted = {colour for _, _, colour, _ in dots(root)}
    assert dotted == {charts.PRESCRIBED_COLOUR}  # the main chart's prescription keeps its dots; the small cadence panel does not


def test_many_weeks_label_the_newest_bars_without_overlap():
    weeks = [week(n, 100 + n) for n in range(1, 53)]
    root = parse(charts.patient_chart_svg(weeks))
    labels = [t for t in root.iter(f"{SVG}text") if t.get("font-size") == "9" and t.get("text-anchor") == "middle"]
    assert labels[-1].text == "152"  # the newest week is always labelled
    xs = [float(t.get("x")) for t in labels]
    assert min(b - a for a, b in zip(xs, xs[1:])) >= 3 * 9 * 0.62  # three digits fit between labels


def test_nice_ticks_cover_the_values_in_round_steps():
    assert charts.nice_ticks(130, 4) == [0, 50, 100, 150]
    assert charts.nice_ticks(7, 3) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0, 4) == [0.0, 1.0]
    assert charts.nice_ticks(12_345, 3) == [0, 5_000, 10_000, 15_000]


def test_trend_sparkline_has_the_walked_and_prescribed_lines():
    weeks = [week(n, 10.0 * n, prescribed=80) for n in range(1, 9)]
    root = parse(charts.trend_svg(weeks))
    walked, = [p for p in root.iter(f"{SVG}polyline") if not p.get("stroke-dasharray")]
    prescribed, = [p for p in root.iter(f"{SVG}polyline") if p.get("stroke-dasharray")]
    ys = [float(pair.split(",")[1]) for pair in walked.get("points").split()]
    assert ys == sorted(ys, reverse=True)  # rising minutes rise on the page
    assert len({pair.split(",")[1] for pair in prescribed.get("points").split()}) == 1
    walked_points = [tuple(float(v) for v in pair.split(",")) for pair in walked.get("points").split()]
    assert [(x, y) for x, y, colour, _ in dots(root) if colour == walked.get("stroke")] == walked_points
    assert {diameter for *_, diameter in dots(root)} == {3.0}  # discs of radius 1.5, as the circles were


def test_svg_is_self_contained():
    svg = charts.patient_chart_svg([week(1, 80), week(2, 90)])
    assert not re.search(r"<script|href=|src=|url\(|id=", svg)
