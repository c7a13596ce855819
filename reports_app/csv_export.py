"""CSV exports of reports: the cell guard every exported cell goes through, and the rows of a funnel and of a
retention report (the graph report's rows are its data table's, reports_app/views.py)."""

import csv
import re

from django.http import HttpResponse

from reports_app.selectors import FunnelResult, RetentionResult

# Spreadsheets run a cell that starts with one of these as a formula (OWASP's CSV injection list, plus the
# full-width forms some spreadsheets also accept, and LF), and skip leading whitespace before them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_cell(value) -> str | int:
    """A CSV cell that a spreadsheet shows as text, never runs. Property values are attacker-controlled."""
    if not isinstance(value, str) or PLAIN_NUMBER.fullmatch(value):
        return value  # a number stays a number ("-5" is a group of a numeric property, not a formula)
    if value.startswith(FORMULA_STARTS) or value.lstrip().startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(rows, filename: str) -> HttpResponse:
    """A CSV download of `rows` (`filename` is fixed by the caller, never input)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Every cell goes through the guard, not only the group names: one rule, nothing to forget later.
    csv.writer(response).writerows([csv_cell(cell) for cell in row] for row in rows)
    return response


def _rate(value: float) -> str:
    return f"{value:.4f}"


def funnel_csv_rows(result: FunnelResult) -> list[list]:
    """One row per group and step: people, conversion from step 1 and from the step before, median seconds."""
    rows = [
        ["group", "step", "event", "people", "of step 1", "of the step before", "median seconds from the step before"]
    ]
    for series in result.series:
        for position, event in enumerate(result.query.steps):
            median = series.median_seconds_to_convert[position]
            rows.append(
                [
                    series.group,
                    position + 1,
                    event,
                    series.counts[position],
                    _rate(series.conversion_rates[position]),
                    _rate(series.step_rates[position]),
                    "" if median is None else median,
                ]
            )
    return rows


def retention_csv_rows(result: RetentionResult) -> list[list]:
    """One row per cohort: its start, group, size and the people back in each period (empty: not begun)."""
    periods = result.query.periods
    rows = [["cohort", "group", "size", *(f"{result.query.interval} {k}" for k in range(periods + 1))]]
    for cohort in result.cohorts:
        missing = [""] * (periods + 1 - len(cohort.returned))
        rows.append([cohort.start.isoformat(), cohort.group, cohort.size, *cohort.returned, *missing])
    return rows
