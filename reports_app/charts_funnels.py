"""The funnel's and the retention report's charts and tables, built in Python from the one selector of each
(report_funnel, report_retention), as reports_app/charts.py builds the graph report's. The page draws the
Plotly figures with static/cairn/reports.js and renders the tables server-side (every group name is escaped:
Plotly's with `escaped_label`, the tables' by the template's autoescaping)."""

import json

import plotly.graph_objects as go

from reports_app.charts import PALETTE, escaped_label, line_traces
from reports_app.selectors import OTHER_GROUP, FunnelResult, RetentionResult

# The cohort table's cell colours, from 0 % returned to 100 %, in ten steps of one blue (fixed: a colour is never
# built from input). Text turns white on the darker half.
HEAT = [
    "#f3f6fd",
    "#e1e9fb",
    "#cbd8f7",
    "#b1c4f2",
    "#93aeec",
    "#7497e5",
    "#587fdc",
    "#4268d2",
    "#3355b8",
    "#28449a",
]
DARK_FROM = 5


def duration_text(seconds: float | None) -> str:
    """A median time as a person reads it: `45s`, `12m`, `3h 20m`, `2d 4h`; empty for none."""
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if whole < 3600:
        return f"{minutes}m"
    if whole < 86400:
        return f"{hours}h {minutes % 60}m" if minutes % 60 else f"{hours}h"
    return f"{days}d {hours % 24}h" if hours % 24 else f"{days}d"


def percent_text(rate: float) -> str:
    return f"{rate * 100:.1f}%" if 0 < rate < 0.1 else f"{rate * 100:.0f}%"


def step_labels(result: FunnelResult) -> list[str]:
    """`1. Sign Up`, `2. Activate`: numbered, as a funnel may repeat a name (`View -> View`)."""
    return [
        f"{position + 1}. {'Page views' if step == 'pageview' else step}"
        for position, step in enumerate(result.query.steps)
    ]


def funnel_rows(result: FunnelResult) -> list[dict]:
    """The data table: one row per group and step (the CSV export's rows, reports_app/csv_export.py, as a person
    reads them)."""
    labels = step_labels(result)
    return [
        {
            "group": series.group,
            "step": labels[position],
            "first_of_group": position == 0,
            "people": series.counts[position],
            "of_first": percent_text(series.conversion_rates[position]),
            "of_previous": percent_text(series.step_rates[position]),
            "median": duration_text(series.median_seconds_to_convert[position]),
        }
        for series in result.series
        for position in range(len(labels))
    ]


def funnel_figure(result: FunnelResult) -> dict | None:
    """Bars per step, one colour per group, labelled with the conversion from step 1 and from the step before;
    the hover adds the people and the median time from the step before."""
    if not result.series:
        return None
    labels = [escaped_label(label) for label in step_labels(result)]
    figure = go.Figure()
    for position, series in enumerate(result.series):
        texts, hovers = [], []
        for step, count in enumerate(series.counts):
            of_first = percent_text(series.conversion_rates[step])
            of_previous = percent_text(series.step_rates[step])
            median = duration_text(series.median_seconds_to_convert[step])
            # Short, to fit above narrow bars (ten groups side by side); the title says what the two numbers are.
            texts.append(of_first if step == 0 else f"{of_first}<br>({of_previous})")
            hover = f"{count:,} people<br>{of_first} of step 1"
            if step:
                hover += f"<br>{of_previous} of step {step}" + (
                    f"<br>median {median} from step {step}" if median else ""
                )
            hovers.append(hover)
        figure.add_trace(
            go.Bar(
                x=labels,
                y=series.counts,
                name=escaped_label(series.group),
                marker={"color": PALETTE[position % len(PALETTE)]},
                text=texts,
                textposition="outside",
                textfont={"size": 11},
                cliponaxis=False,
                customdata=hovers,
                hovertemplate="%{customdata}<extra>%{fullData.name}</extra>",
            )
        )
    peak = max(max(series.counts) for series in result.series)
    figure.update_layout(
        barmode="group",
        title={
            "text": "Bar labels: % of step 1 (% of the step before). Hover a bar for the median time.",
            "font": {"size": 12, "color": "#6b7280"},
            "x": 0.01,
        },
        margin={"l": 50, "r": 20, "t": 40, "b": 50},
        height=420,  # the chart box's height (reports.css .report-chart)
        legend={"orientation": "h", "y": -0.12, "traceorder": "normal"},
        plot_bgcolor="#fff",
        paper_bgcolor="#fff",
        uniformtext={"minsize": 9, "mode": "hide"},
        yaxis={
            "title": {"text": "People"},
            "rangemode": "tozero",
            "range": [0, peak * 1.25 if peak else 1],  # room for the labels above the tallest bar
            "gridcolor": "#eef0f4",
            **({"dtick": 1} if peak <= 8 else {"tickformat": ",d"}),
        },
        xaxis={"type": "category"},
    )
    return json.loads(figure.to_json())


def _heat(rate: float) -> tuple[str, str]:
    shade = min(int(rate * len(HEAT)), len(HEAT) - 1)
    return HEAT[shade], "#fff" if shade >= DARK_FROM else "#1f2937"


def retention_rows(result: RetentionResult) -> list[dict]:
    """The cohort triangle: per cohort its start, group, size and a cell per period 0..periods (None where the
    period has not begun by `to`), coloured by the share returned, marked when the period is not over yet."""
    rows = []
    for cohort in result.cohorts:
        partial = set(result.partial_periods(cohort))
        cells = []
        for position in range(result.query.periods + 1):
            if position >= len(cohort.returned):
                cells.append(None)
                continue
            rate = cohort.rates[position]
            background, color = _heat(rate)
            cells.append(
                {
                    "people": cohort.returned[position],
                    "percent": percent_text(rate),
                    "style": f"background:{background};color:{color}",
                    "partial": position in partial,
                }
            )
        rows.append({"start": cohort.start, "group": cohort.group, "size": cohort.size, "cells": cells})
    return rows


def retention_curves(result: RetentionResult) -> list[dict]:
    """Per group, the share of its cohorts' people back in period k: over the cohorts whose period k is over
    (weighted by size); where none is over yet, over those whose period k has begun, marked partial. So the
    curve's last points are the only ones that can still grow."""
    sums: dict[str, list[list[int]]] = {}  # group -> per period [returned, size] over the finished, then begun
    for cohort in result.cohorts:
        periods = sums.setdefault(cohort.group, [[0, 0, 0, 0] for _ in range(result.query.periods + 1)])
        partial = set(result.partial_periods(cohort))
        for position, returned in enumerate(cohort.returned):
            offset = 2 if position in partial else 0
            periods[position][offset] += returned
            periods[position][offset + 1] += cohort.size
    sizes: dict[str, int] = {}
    for cohort in result.cohorts:
        sizes[cohort.group] = sizes.get(cohort.group, 0) + cohort.size
    # The selector's ranking of groups: the most people first, then by name, `Other` last.
    ranked = sorted(sums, key=lambda group: (group == OTHER_GROUP, -sizes[group], group))
    curves = []
    for group in ranked:
        periods = sums[group]
        values, partial = [], []
        for position, (returned, size, returned_partial, size_partial) in enumerate(periods):
            if size:
                values.append(round(100 * returned / size, 1))
            elif size_partial:
                values.append(round(100 * returned_partial / size_partial, 1))
                partial.append(position)
            else:
                break  # no cohort has reached this period yet
        curves.append({"group": group, "values": values, "partial": partial})
    return curves


def retention_figure(result: RetentionResult) -> dict | None:
    """A retention curve per group (Plotly lines, % of the cohort by period), dotted where not over yet."""
    if not result.cohorts:
        return None
    interval = result.query.interval.capitalize()
    labels = [f"{interval} {position}" for position in range(result.query.periods + 1)]
    figure = go.Figure()
    for position, curve in enumerate(retention_curves(result)):
        count = len(curve["values"])
        for trace in line_traces(
            labels[:count],
            curve["values"],
            set(curve["partial"]),
            escaped_label(curve["group"]),
            PALETTE[position % len(PALETTE)],
        ):
            trace.hovertemplate = "%{y}%<extra>%{fullData.name}</extra>"
            figure.add_trace(trace)
    figure.update_layout(
        margin={"l": 50, "r": 20, "t": 20, "b": 50},
        height=380,
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.15, "traceorder": "normal"},
        plot_bgcolor="#fff",
        paper_bgcolor="#fff",
        yaxis={"title": {"text": "% of cohort back"}, "range": [0, 105], "ticksuffix": "%", "gridcolor": "#eef0f4"},
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": labels},
    )
    return json.loads(figure.to_json())
