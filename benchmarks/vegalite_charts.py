"""The peer of `pipeline/reports/charts.py`: the same two charts as Altair (Vega-Lite) specifications
rendered to SVG by vl-convert, as the clinic summary drew them until 2026-11-29.

Kept only so that `benchmarks/report_render.py` can measure our SVG writer against Vega-Lite in the
same run (the `bench` extra installs altair and vl-convert-python). Not used by the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import altair as alt
import vl_convert

from pipeline.reports.charts import STATUS_COLOURS, STATUS_LABELS
from pipeline.reports.data import WeekRow

PRESCRIBED_COLOUR = "#222222"
FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
WIDTH_PX = 640  # fits the A4 text width (186 mm) at 96 dpi with the axis titles


def _rows(weeks: Sequence[WeekRow]) -> list[dict]:
    return [
        {
            "week": week.programme_week,
            "walk_minutes": week.walk_minutes,
            "prescribed_minutes": week.prescribed_minutes,
            "walking_days": week.walking_days,
            "prescribed_days": week.prescribed_days,
            "mean_daily_steps": week.mean_daily_steps,
            "moderate_minutes": week.moderate_minutes,
            "peak30_cadence": week.peak30_cadence,
            "status": STATUS_LABELS.get(week.status, week.status),
        }
        for week in weeks
    ]


def _status_scale() -> alt.Scale:
    return alt.Scale(
        domain=[STATUS_LABELS[key] for key in STATUS_COLOURS],
        range=list(STATUS_COLOURS.values()),
    )


WEEKS = alt.Data(name="weeks")  # the rows are bound per patient: the specification is built once
# the week in progress is drawn faint: its numbers are the days so far, not a week
IN_PROGRESS_FAINT = alt.condition("datum.status == 'in progress'", alt.value(0.35), alt.value(1.0))


def _week_axis(title: str | None = "Programme week") -> alt.X:
    return alt.X("week:O", title=title, axis=alt.Axis(labelAngle=0, labelOverlap=True, ticks=False))


# The small panels share the programme weeks of the main chart above them: no week labels of
# their own (fewer SVG text nodes to draw in the PDF).
SMALL_PANEL_WEEKS = alt.X("week:O", axis=None)


def _small_panel(field: str, title: str, colour: str, zero: bool = True) -> alt.Chart:
    base = alt.Chart().encode(x=SMALL_PANEL_WEEKS)
    axis = alt.Axis(tickCount=3, grid=False, ticks=False)
    if zero:
        marks = base.mark_bar(color=colour).encode(
            y=alt.Y(f"{field}:Q", title=None, axis=axis), opacity=IN_PROGRESS_FAINT
        )
    else:
        marks = base.mark_line(color=colour, point=True).encode(
            y=alt.Y(f"{field}:Q", title=None, axis=axis, scale=alt.Scale(zero=False)), opacity=IN_PROGRESS_FAINT
        )
    return marks.properties(width=118, height=40, title=alt.TitleParams(title, fontSize=11, anchor="start"))


@cache
def _patient_chart_base() -> dict:
    base = alt.Chart().encode(x=_week_axis())
    bars = base.mark_bar(width={"band": 0.7}).encode(
        y=alt.Y("walk_minutes:Q", title="walk minutes / week", axis=alt.Axis(tickCount=4)),
        color=alt.Color("status:N", scale=_status_scale(), legend=None),
    )
    labels = base.mark_text(dy=-5, fontSize=9, color="#333333").encode(
        y=alt.Y("walk_minutes:Q"), text=alt.Text("walk_minutes:Q", format=".0f")
    )
    prescribed = base.mark_line(
        color=PRESCRIBED_COLOUR, strokeWidth=1.5, point=alt.OverlayMarkDef(color=PRESCRIBED_COLOUR, size=14)
    ).encode(y=alt.Y("prescribed_minutes:Q"))
    main = alt.layer(bars, labels, prescribed).properties(width=WIDTH_PX - 60, height=100)

    days_base = alt.Chart().encode(x=SMALL_PANEL_WEEKS)
    days = alt.layer(
        days_base.mark_bar(color="#0072B2").encode(
            y=alt.Y("walking_days:Q", title=None, scale=alt.Scale(domain=[0, 7]),
                    axis=alt.Axis(values=[0, 3, 5, 7], grid=False, ticks=False)),
            opacity=IN_PROGRESS_FAINT,
        ),
        days_base.mark_tick(color=PRESCRIBED_COLOUR, thickness=2).encode(y="prescribed_days:Q"),
    ).properties(width=118, height=40, title=alt.TitleParams("walking days (tick: plan)", fontSize=11, anchor="start"))
    panels = alt.hconcat(
        days,
        _small_panel("mean_daily_steps", "steps / day", "#009E73"),
        _small_panel("moderate_minutes", "moderate minutes", "#CC79A7"),
        _small_panel("peak30_cadence", "peak-30 cadence", "#444444", zero=False),
        spacing=24,
    )
    chart = alt.vconcat(main, panels, data=WEEKS, spacing=10)
    return (
        chart.configure(font=FONT, aria=False)  # the page labels each chart; Vega's ARIA doubles the size
        .configure_axis(labelFontSize=10, titleFontSize=10, domainColor="#888888", gridColor="#e6e6e6")
        .configure_view(strokeWidth=0)
        .to_dict(validate=False)
    )


@cache
def _trend_base() -> dict:
    base = alt.Chart().encode(x=alt.X("week:O", axis=None))
    walked = base.mark_line(color="#0072B2", point=alt.OverlayMarkDef(size=10)).encode(
        y=alt.Y("walk_minutes:Q", axis=None)
    )
    prescribed = base.mark_line(color="#888888", strokeDash=[2, 2]).encode(
        y=alt.Y("prescribed_minutes:Q", axis=None)
    )
    chart = alt.layer(prescribed, walked, data=WEEKS).properties(width=96, height=22, padding=2)
    return chart.configure(aria=False).configure_view(strokeWidth=0).to_dict(validate=False)


@cache
def _compiled(name: str) -> dict:
    """The Vega (not -Lite) form of a chart, compiled once: only the rows change per patient."""
    base = {"patient": _patient_chart_base, "trend": _trend_base}[name]()
    return vl_convert.vegalite_to_vega(base)


def _render_compiled(name: str, weeks: Sequence[WeekRow]) -> str:
    vega = _compiled(name)
    rows = _rows(weeks)
    data = [{**entry, "values": rows} if entry.get("name") == WEEKS.name else entry for entry in vega["data"]]
    return vl_convert.vega_to_svg({**vega, "data": data})


def patient_chart_svg(weeks: Sequence[WeekRow]) -> str:
    """Weekly walk minutes against the prescription over four small panels (the Vega-Lite form is
    compiled to Vega once; only the rows change per patient)."""
    return _render_compiled("patient", weeks)


def trend_svg(weeks: Sequence[WeekRow]) -> str:
    """The roster's sparkline: walk minutes and the prescription, no axes."""
    return _render_compiled("trend", weeks)
