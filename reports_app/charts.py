"""Plotly figures of a report, built in Python and drawn in the browser by static/cairn/reports.js."""

import html
import json

import plotly.graph_objects as go

from reports_app.query import MEASURES
from reports_app.selectors import ReportResult

PALETTE = [
    "#3558d6",
    "#e8793a",
    "#2ca58d",
    "#d64565",
    "#8e6bd6",
    "#c9a227",
    "#1f9bd1",
    "#7a8b99",
    "#b65fb5",
    "#5a9e3d",
    "#a0a7b4",
]


def escaped_label(text: str) -> str:
    # Plotly reads a few HTML-like tags in names and hover text; property values are attacker-controlled,
    # so escape them: Plotly shows entities as the characters they stand for.
    return html.escape(text, quote=False)


def line_traces(labels: list[str], values: list[int], partial: set[int], name: str, color: str) -> list:
    """A solid line over the buckets that are over, and a dotted one from the last of them through the buckets
    that are not (one legend entry for both), so an unfinished week reads as unfinished, not as a drop."""
    first_partial = min(partial, default=len(labels))
    solid = go.Scatter(
        x=labels[:first_partial],
        y=values[:first_partial],
        name=name,
        legendgroup=name,
        mode="lines+markers",
        line={"color": color, "width": 2},
        marker={"size": 5},
    )
    if first_partial == len(labels):
        return [solid]
    start = max(first_partial - 1, 0)
    dotted = go.Scatter(
        x=labels[start:],
        y=values[start:],
        name=f"{name} (not over yet)",
        legendgroup=name,
        showlegend=first_partial == 0,
        mode="lines+markers",
        line={"color": color, "width": 2, "dash": "dot"},
        marker={"size": 5, "symbol": "circle-open"},
    )
    return [solid, dotted] if first_partial else [dotted]


def report_figure(result: ReportResult) -> dict | None:
    """The figure as a plain JSON-able dict (fig.to_plotly_json() through JSON), or None for a table."""
    query = result.query
    if query.chart == "table":
        return None
    labels = result.bucket_labels
    partial = set(result.partial_positions)
    figure = go.Figure()
    for position, series in enumerate(result.series):
        color = PALETTE[position % len(PALETTE)]
        name = escaped_label(series.group)
        if query.chart == "line":
            for trace in line_traces(labels, series.values, partial, name, color):
                figure.add_trace(trace)
        else:
            figure.add_trace(
                go.Bar(
                    x=labels,
                    y=series.values,
                    name=name,
                    marker={
                        "color": color,
                        "opacity": [0.45 if index in partial else 1 for index in range(len(labels))],
                        "pattern": {"shape": ["/" if index in partial else "" for index in range(len(labels))]},
                    },
                )
            )
    if query.chart == "stacked_bar":
        peak = max((sum(column) for column in zip(*(item.values for item in result.series), strict=True)), default=0)
    else:
        peak = max((max(item.values, default=0) for item in result.series), default=0)
    figure.update_layout(
        barmode="stack" if query.chart == "stacked_bar" else "group",
        margin={"l": 50, "r": 20, "t": 20, "b": 50},
        height=420,
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.15, "traceorder": "normal"},
        plot_bgcolor="#fff",
        paper_bgcolor="#fff",
        yaxis={
            "title": {"text": MEASURES[query.measure]},
            "rangemode": "tozero",
            "gridcolor": "#eef0f4",
            # Counts are whole numbers: no 0.2 ticks on small reports.
            **({"dtick": 1} if peak <= 8 else {"tickformat": ",d"}),
        },
        xaxis={"type": "category"},
    )
    return json.loads(figure.to_json())
