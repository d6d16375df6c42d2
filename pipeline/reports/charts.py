"""Charts of a clinic summary, written as SVG text.

Two charts: a patient's weekly chart (walk minutes per week as bars coloured by status, labelled,
against the prescribed minutes as a line; below it four small panels: walking days against
prescribed days, steps per day, moderate minutes and peak-30 cadence) and the roster's sparkline
(walk minutes against the prescription over the last completed weeks).

The charts plot the weekly_adherence values as they are; nothing is aggregated here, and a missing
value (NULL) draws nothing, never a zero. The SVG is self-contained (no fonts, scripts, ids or links),
so it is placed inline in the page, works offline and prints in Chromium. Participant names never
enter a chart.

Why not a charting library: these charts were Altair (Vega-Lite) specifications rendered by
vl-convert, which took about 100 ms a patient (a JavaScript engine, one chart at a time) and was
most of a nightly run's report time; this module writes the same marks in well under 1 ms and
`benchmarks/report_render.py` measures the two in one run (the Vega-Lite peer is kept in
`benchmarks/vegalite_charts.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from pipeline.reports.data import WeekRow

STATUS_LABELS: dict[str, str] = {
    "met": "met",
    "partial": "partial",
    "not_met": "not met",
    "insufficient_data": "too few valid days",
    "no_data": "no data",
    "in_progress": "in progress",
}

# Okabe-Ito colours: told apart with the common colour-vision deficiencies and in grey print.
STATUS_COLOURS: dict[str, str] = {
    "met": "#0072B2",
    "partial": "#E69F00",
    "not_met": "#D55E00",
    "insufficient_data": "#999999",
    "no_data": "#CCCCCC",
    "in_progress": "#56B4E9",
}

PRESCRIBED_COLOUR = "#222222"
AXIS_COLOUR = "#888888"
GRID_COLOUR = "#e6e6e6"
LABEL_COLOUR = "#333333"
FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
WIDTH_PX = 640  # fits the A4 text width (186 mm) at 96 dpi with the axis titles
IN_PROGRESS_OPACITY = 0.35  # the week in progress is drawn faint: its numbers are the days so far
DOT_SPACING = 4  # a line's points are dotted only when they lie at least this many radii apart


# ----------------------------------------------------------------------------- scales


def nice_ticks(high: float, count: int) -> list[float]:
    """Ticks from 0 to at least `high`, about `count` of them, on a 1-2-5 step (as d3's `nice`)."""
    if not high > 0:
        return [0.0, 1.0]
    step = 10 ** math.floor(math.log10(high / count))
    error = count / (high / step)
    if error <= 0.15:
        step *= 10
    elif error <= 0.35:
        step *= 5
    elif error <= 0.75:
        step *= 2
    top = math.ceil(high / step - 1e-9) * step
    return [i * step for i in range(round(top / step) + 1)]


def _range_ticks(low: float, high: float, count: int) -> list[float]:
    """Nice ticks covering low..high, not starting at zero (the cadence panel)."""
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    span = nice_ticks(high - low, count)
    step = span[1] - span[0]
    start = math.floor(low / step) * step
    ticks = [start]
    while ticks[-1] < high - 1e-9:
        ticks.append(ticks[-1] + step)
    return ticks


@dataclass(frozen=True)
class Linear:
    """A value scale onto pixels: `low`..`high` onto `bottom`..`top` (SVG y grows downwards)."""

    low: float
    high: float
    bottom: float
    top: float

    def __call__(self, value: float) -> float:
        return self.bottom - (value - self.low) / (self.high - self.low) * (self.bottom - self.top)


def _tick_label(value: float, step: float) -> str:
    """A tick's label with as many decimals as the step needs (0.5 steps: one decimal)."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if 0 < step < 1 else 0
    return f"{value:,.{decimals}f}"


def _px(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


# ----------------------------------------------------------------------------- marks


class Svg:
    """An SVG document built as a list of elements (plain strings: the values are ours, text is escaped)."""

    def __init__(self, width: float, height: float) -> None:
        self.width, self.height = width, height
        self.parts: list[str] = []

    def rect(self, x: float, y: float, width: float, height: float, fill: str, *, opacity: float = 1.0,
             title: str | None = None, css: str | None = None) -> None:
        extra = f' class="{css}"' if css else ""
        extra += f' fill-opacity="{opacity}"' if opacity < 1 else ""
        close = f"><title>{escape(title)}</title></rect>" if title else "/>"
        self.parts.append(f'<rect{extra} x="{_px(x)}" y="{_px(y)}" width="{_px(width)}" height="{_px(height)}" '
                          f'fill="{fill}"{close}')

    def bars(self, boxes: Sequence[tuple[float, float, float, float]], fill: str, *, opacity: float = 1.0) -> None:
        """Bars (x, y, width, height) of one colour as one path: a chart of a year draws thousands of
        them, and each element costs the browser (and the PDF print) more than a subpath does."""
        if boxes:
            faint = f' fill-opacity="{opacity}"' if opacity < 1 else ""
            shape = "".join(f"M{_px(x)},{_px(y)}h{_px(w)}v{_px(h)}h{_px(-w)}z" for x, y, w, h in boxes)
            self.parts.append(f'<path class="bars"{faint} d="{shape}" fill="{fill}"/>')

    def ticks(self, segments: Sequence[tuple[float, float, float]], stroke: str, width: float) -> None:
        """Horizontal marks (x from, x to, y) of one colour as one path."""
        if segments:
            shape = "".join(f"M{_px(x1)},{_px(y)}H{_px(x2)}" for x1, x2, y in segments)
            self.parts.append(f'<path class="ticks" d="{shape}" fill="none" stroke="{stroke}" stroke-width="{width}"/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1.0) -> None:
        self.parts.append(f'<line x1="{_px(x1)}" y1="{_px(y1)}" x2="{_px(x2)}" y2="{_px(y2)}" stroke="{stroke}" '
                          f'stroke-width="{width}"/>')

    def polyline(self, points: Sequence[tuple[float, float]], stroke: str, width: float = 1.5,
                 dash: str | None = None, dots: float = 0.0) -> None:
        if len(points) > 1:
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            joined = " ".join(f"{_px(x)},{_px(y)}" for x, y in points)
            self.parts.append(f'<polyline points="{joined}" fill="none" stroke="{stroke}" stroke-width="{width}"'
                              f'{dashed}/>')
        spacing = min((b[0] - a[0] for a, b in zip(points, points[1:])), default=math.inf)
        if dots and points and spacing >= DOT_SPACING * dots:  # crowded dots only blur the line
            # each dot a zero-length subpath with a round cap: a disc of radius `dots`, as a <circle>
            # would draw it, but one element per line and two PDF operators a dot (a circle prints as
            # four Bezier curves): the PDF of a 200-patient clinic is 40% smaller and prints faster
            shape = "".join(f"M{_px(x)},{_px(y)}h0" for x, y in points)
            self.parts.append(f'<path class="dots" d="{shape}" fill="none" stroke="{stroke}" '
                              f'stroke-width="{_px(2 * dots)}" stroke-linecap="round"/>')

    def text(self, x: float, y: float, content: str, *, size: float = 10, anchor: str = "start",
             colour: str = LABEL_COLOUR, bold: bool = False, rotate: bool = False) -> None:
        attributes = f'x="{_px(x)}" y="{_px(y)}" font-size="{size}" fill="{colour}"'
        if anchor != "start":
            attributes += f' text-anchor="{anchor}"'
        if bold:
            attributes += ' font-weight="bold"'
        if rotate:
            attributes += f' transform="rotate(-90 {_px(x)} {_px(y)})"'
        self.parts.append(f"<text {attributes}>{escape(content)}</text>")

    def render(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_px(self.width)}" height="{_px(self.height)}" '
                f'viewBox="0 0 {_px(self.width)} {_px(self.height)}" font-family="{FONT}">'
                + "".join(self.parts) + "</svg>")


@dataclass(frozen=True)
class Bands:
    """The programme weeks along x: one band each, in order, within left..right."""

    weeks: tuple[int, ...]
    left: float
    right: float

    @property
    def width(self) -> float:
        return (self.right - self.left) / max(len(self.weeks), 1)

    def centre(self, index: int) -> float:
        return self.left + (index + 0.5) * self.width

    def label_every(self, size: float, widest: int) -> int:
        """Label every n-th band so that labels `widest` characters long do not overlap."""
        needed = widest * size * 0.62 + 4
        return max(1, math.ceil(needed / self.width))


def _y_axis(svg: Svg, scale: Linear, ticks: Sequence[float], left: float, right: float, *, grid: bool) -> None:
    step = min((b - a for a, b in zip(ticks, ticks[1:])), default=1.0)
    for tick in ticks:
        y = scale(tick)
        if grid:
            svg.line(left, y, right, y, GRID_COLOUR)
        svg.text(left - 4, y + 3.5, _tick_label(tick, step), size=10 if grid else 9, anchor="end")
    svg.line(left, scale.bottom, left, scale.top, AXIS_COLOUR)


def _points(bands: Bands, values: Sequence[float | None], scale: Linear) -> list[tuple[float, float]]:
    """Line points of the values that exist (a missing week is skipped, as Vega-Lite's line does)."""
    return [(bands.centre(i), scale(v)) for i, v in enumerate(values) if v is not None]


# ----------------------------------------------------------------------------- the patient chart

MAIN_TOP, MAIN_HEIGHT = 8.0, 100.0
PLOT_LEFT = 52.0
PLOT_RIGHT = WIDTH_PX - 8.0
PANEL_WIDTH, PANEL_HEIGHT, PANEL_GAP = 112.0, 40.0, 38.0
PANELS_TOP = MAIN_TOP + MAIN_HEIGHT + 52.0  # below the week labels, the axis title and the panel titles


def _week_title(week: WeekRow) -> str:
    walked = "no data" if week.walk_minutes is None else f"{week.walk_minutes:,.0f} min"
    planned = "" if week.prescribed_minutes is None else f" of {week.prescribed_minutes:,.0f} prescribed"
    return f"week {week.programme_week}: {walked}{planned}, {STATUS_LABELS.get(week.status, week.status)}"


def _main_panel(svg: Svg, weeks: Sequence[WeekRow], bands: Bands) -> None:
    values = [v for w in weeks for v in (w.walk_minutes, w.prescribed_minutes) if v is not None]
    ticks = nice_ticks(max(values, default=0.0), 4)
    scale = Linear(0.0, ticks[-1], MAIN_TOP + MAIN_HEIGHT, MAIN_TOP)
    _y_axis(svg, scale, ticks, PLOT_LEFT, PLOT_RIGHT, grid=True)
    svg.text(12, MAIN_TOP + MAIN_HEIGHT / 2, "walk minutes / week", size=10, anchor="middle", rotate=True, bold=True)
    bar_width = bands.width * 0.7
    label_every = bands.label_every(9, max((len(f"{w.walk_minutes:,.0f}") for w in weeks
                                            if w.walk_minutes is not None), default=1))
    last = len(weeks) - 1
    for i, week in enumerate(weeks):
        if week.walk_minutes is None:
            continue
        top = scale(week.walk_minutes)
        svg.rect(bands.centre(i) - bar_width / 2, top, bar_width, scale.bottom - top,
                 STATUS_COLOURS.get(week.status, "#777777"), title=_week_title(week), css="bar")
        if (last - i) % label_every == 0:  # the newest weeks are always labelled
            svg.text(bands.centre(i), top - 3, f"{week.walk_minutes:.0f}", size=9, anchor="middle")
    prescribed = _points(bands, [w.prescribed_minutes for w in weeks], scale)
    svg.polyline(prescribed, PRESCRIBED_COLOUR, 1.5, dots=2.0)
    svg.line(PLOT_LEFT, scale.bottom, PLOT_RIGHT, scale.bottom, AXIS_COLOUR)
    every = bands.label_every(10, len(str(max(bands.weeks, default=0))))
    for i, week in enumerate(bands.weeks):
        if (last - i) % every == 0:
            svg.text(bands.centre(i), scale.bottom + 13, str(week), size=10, anchor="middle")
    svg.text((PLOT_LEFT + PLOT_RIGHT) / 2, scale.bottom + 26, "Programme week", size=10, anchor="middle", bold=True)


def _small_panel(svg: Svg, left: float, title: str, weeks: Sequence[WeekRow],
                 value: Callable[[WeekRow], float | None], colour: str, *, bars: bool,
                 domain: Sequence[float] | None = None, plan: Callable[[WeekRow], float | None] | None = None) -> None:
    right, bottom = left + PANEL_WIDTH, PANELS_TOP + PANEL_HEIGHT
    svg.text(left - 32, PANELS_TOP - 7, title, size=10)
    values = [value(w) for w in weeks]
    present = [v for v in values if v is not None]
    if domain is not None:
        ticks = list(domain)
    elif bars:
        ticks = nice_ticks(max(present, default=0.0), 3)
    else:
        ticks = _range_ticks(min(present, default=0.0), max(present, default=1.0), 3)
    scale = Linear(ticks[0], ticks[-1], bottom, PANELS_TOP)
    _y_axis(svg, scale, ticks, left, right, grid=False)
    bands = Bands(tuple(w.programme_week for w in weeks), left, right)
    if bars:
        bar_width = bands.width * 0.8
        boxes: dict[bool, list[tuple[float, float, float, float]]] = {False: [], True: []}
        for i, (week, v) in enumerate(zip(weeks, values)):
            if v is not None:
                top = scale(v)
                boxes[week.in_progress].append((bands.centre(i) - bar_width / 2, top, bar_width, bottom - top))
        svg.bars(boxes[False], colour)
        svg.bars(boxes[True], colour, opacity=IN_PROGRESS_OPACITY)
    else:
        svg.polyline(_points(bands, values, scale), colour, 1.5, dots=1.8)
    if plan is not None:
        half = bands.width * 0.4
        svg.ticks([(bands.centre(i) - half, bands.centre(i) + half, scale(planned))
                   for i, planned in enumerate(plan(w) for w in weeks) if planned is not None], PRESCRIBED_COLOUR, 2)
    svg.line(left, bottom, right, bottom, AXIS_COLOUR)


def patient_chart_svg(weeks: Sequence[WeekRow]) -> str:
    """Weekly walk minutes (bars by status, labelled) against the prescription (line), over four
    small panels: walking days against prescribed days, steps per day, moderate minutes and
    peak-30 cadence. The week in progress is drawn faint in the small panels."""
    svg = Svg(WIDTH_PX, PANELS_TOP + PANEL_HEIGHT + 6)
    _main_panel(svg, weeks, Bands(tuple(w.programme_week for w in weeks), PLOT_LEFT, PLOT_RIGHT))
    left = PLOT_LEFT - 12
    _small_panel(svg, left, "walking days (tick: plan)", weeks, lambda w: w.walking_days, "#0072B2",
                 bars=True, domain=(0, 3, 5, 7), plan=lambda w: w.prescribed_days)
    left += PANEL_WIDTH + PANEL_GAP
    _small_panel(svg, left, "steps / day", weeks, lambda w: w.mean_daily_steps, "#009E73", bars=True)
    left += PANEL_WIDTH + PANEL_GAP
    _small_panel(svg, left, "moderate minutes", weeks, lambda w: w.moderate_minutes, "#CC79A7", bars=True)
    left += PANEL_WIDTH + PANEL_GAP
    _small_panel(svg, left, "peak-30 cadence", weeks, lambda w: w.peak30_cadence, "#444444", bars=False)
    return svg.render()


def trend_svg(weeks: Sequence[WeekRow]) -> str:
    """A sparkline: walk minutes (line with points) and the prescription (dashed), no axes."""
    width, height, pad = 100.0, 26.0, 3.0
    values = [v for w in weeks for v in (w.walk_minutes, w.prescribed_minutes) if v is not None]
    scale = Linear(0.0, max(values, default=0.0) or 1.0, height - pad, pad)
    bands = Bands(tuple(w.programme_week for w in weeks), pad, width - pad)
    svg = Svg(width, height)
    svg.polyline(_points(bands, [w.prescribed_minutes for w in weeks], scale), "#888888", 1.0, dash="2,2")
    svg.polyline(_points(bands, [w.walk_minutes for w in weeks], scale), "#0072B2", 1.5, dots=1.5)
    return svg.render()
