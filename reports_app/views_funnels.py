"""The report builder's funnel and retention pages (SPEC 14): what reports_app/views.py's ReportView shows when
the URL says `type=funnel` or `type=retention`, and their CSV export. The numbers come from the one selector of
each type (report_funnel, report_retention), which the API and the CSV export call too."""

from django.http import QueryDict

from config.kernel.errors import InvalidInput
from config.kernel.validation import ascii_decimal
from events_app.models import EVENT_NAME_MAX_LENGTH, PAGEVIEW_EVENT
from reports_app.charts_funnels import (
    funnel_figure,
    funnel_rows,
    retention_figure,
    retention_rows,
    step_labels,
)
from reports_app.csv_export import funnel_csv_rows, retention_csv_rows
from reports_app.query import ReportQuery
from reports_app.query_funnels import (
    DEFAULT_PERIODS,
    DEFAULT_RETENTION_INTERVAL,
    DEFAULT_WINDOW,
    FUNNEL,
    MAX_PERIODS,
    MAX_STEPS,
    MIN_STEPS,
    RETENTION_INTERVALS,
    FunnelQuery,
    RetentionQuery,
)
from reports_app.report_types import REPORT_TYPES, TRENDS, AnyQuery, any_query_parse, is_blank, shared_query_parse
from reports_app.selectors import report_funnel, report_retention
from users_app.models import Environment

WINDOW_UNITS = {"d": "days", "h": "hours"}
# The funnel's "+ Add step" and "×" are submit buttons of this name, so they work without JavaScript: `add`, or
# `remove-<k>` (k: the step's number, from 1). The page then shows the edited steps and runs nothing, as the
# script's in-place edit does; Run runs them.
STEP_EDIT = "step_edit"


def _text(value, limit: int = EVENT_NAME_MAX_LENGTH) -> str:
    return value[:limit] if isinstance(value, str) else ""


def steps_edited(steps: list[str], edit: str) -> list[str]:
    """The step rows after a press of "+ Add step" (`add`: one more empty row, up to MAX_STEPS) or of step k's
    "×" (`remove-<k>`: the row goes; of the last MIN_STEPS rows, it is emptied instead). Anything else changes
    nothing: the value comes from the URL."""
    steps = list(steps)
    _, _, number = edit.partition("remove-")
    position = ascii_decimal(number, MAX_STEPS + 1) if edit.startswith("remove-") else None
    if edit == "add" and len(steps) < MAX_STEPS:
        steps.append("")
    elif position is not None and 1 <= position <= len(steps):
        if len(steps) > MIN_STEPS:
            del steps[position - 1]
        else:
            steps[position - 1] = ""
    return steps


def _funnel_form(params, query: FunnelQuery | None) -> dict:
    """The funnel's own inputs as the form shows them: the query's, what was sent when it was refused (so a
    mistake loses nothing), or the rows after a step edit (STEP_EDIT)."""
    if query is not None:
        steps, window = list(query.steps), query.window
        count, unit = window[:-1], window[-1]
    else:
        edit = params.get(STEP_EDIT)
        # After an edit the empty rows stay (the one just added among them); a refused report keeps the chosen.
        steps = [_text(step) for step in params.getlist("step") if step or edit][:MAX_STEPS]
        if edit:
            steps = steps_edited(steps, edit)
        window = _text(params.get("window"), 10) or DEFAULT_WINDOW
        count = _text(params.get("window_count"), 10) or window[:-1]
        unit = params.get("window_unit") or window[-1:]
    return {
        "steps": steps + [""] * (MIN_STEPS - len(steps)),
        "window_count": count,
        "window_unit": unit if unit in WINDOW_UNITS else "d",
        "window_label": f"{count} {WINDOW_UNITS.get(unit, 'days')[: -1 if count == '1' else None]}",
        "max_steps": MAX_STEPS,
    }


def _retention_form(params, query: RetentionQuery | None) -> dict:
    if query is not None:
        return {
            "start_event": query.start_event,
            "return_event": query.return_event,
            "interval": query.interval,
            "periods": query.periods,
        }
    return {
        "start_event": _text(params.get("start_event")),
        "return_event": _text(params.get("return_event")) or PAGEVIEW_EVENT,
        "interval": params.get("interval")
        if params.get("interval") in RETENTION_INTERVALS
        else DEFAULT_RETENTION_INTERVAL,
        "periods": _text(params.get("periods"), 4) or DEFAULT_PERIODS,
    }


def people_report_context(
    params: QueryDict, environment: Environment, report_type: str, choices: dict
) -> tuple[dict, int]:
    """(the page's context for a funnel or a retention report, its HTTP status). `choices` is the graph report's
    context (event names, group choices), whose group choices are narrowed to people's properties."""
    query, error, status, base = None, None, 200, ReportQuery()
    step_edit = report_type == FUNNEL and bool(params.get(STEP_EDIT))
    try:
        if is_blank(report_type, params) or step_edit:
            base = shared_query_parse(params)
        else:
            query = any_query_parse(params, page=True)
            base = query.base
    except InvalidInput as refused:
        error, status = refused, 400
    result = None
    if query is not None:
        result = (report_funnel if report_type == FUNNEL else report_retention)(environment=environment, query=query)
    chosen = (
        list(query.steps)
        if isinstance(query, FunnelQuery)
        else [query.start_event, query.return_event]
        if query
        else []
    )
    event_names = list(choices["event_names"])
    for name in chosen:
        if name not in (PAGEVIEW_EVENT, *choices["defined_event_names"]) and name not in event_names:
            event_names.insert(0, name)
    group_choices = [choice for choice in choices["group_choices"] if not choice.startswith("event.")]
    if base.group_by is not None and str(base.group_by) not in group_choices:
        group_choices.insert(0, str(base.group_by))
    context = {
        "query": base,
        "report_query": query,
        "people_result": result,
        "event_names": event_names,
        "group_choices": group_choices,
        "filter_rows": [*base.filters, None],
        "window_units": WINDOW_UNITS,
        "retention_intervals": RETENTION_INTERVALS,
        "max_periods": MAX_PERIODS,
        "steps_edited": step_edit,
    }
    if error is not None:
        context["error"] = error
    if report_type == FUNNEL:
        context["funnel_form"] = _funnel_form(params, query)
        if result is not None:
            context.update(
                figure=funnel_figure(result), funnel_table=funnel_rows(result), step_labels=step_labels(result)
            )
    else:
        context["retention_form"] = _retention_form(params, query)
        if result is not None:
            context.update(figure=retention_figure(result), cohort_rows=retention_rows(result))
    return context, status


def type_switch(environment: Environment, base: ReportQuery, current: str) -> list[dict]:
    """The type switch's links: each type, carrying the range, the filters and a person's group (an event
    property is no funnel's or retention's group, so it stays behind)."""
    shared = QueryDict(mutable=True)
    shared["env"] = environment.app_id
    if base.group_by is not None and base.group_by.scope != "event":
        shared["group_by"] = str(base.group_by)
    shared.setlist("where", [item.to_where() for item in base.filters])
    shared["range"] = base.range
    if base.range == "custom":
        shared["from"], shared["to"] = base.date_from.isoformat(), base.date_to.isoformat()
    links = []
    for name, label in REPORT_TYPES.items():
        params = shared.copy()
        if name != TRENDS:
            params["type"] = name
        links.append({"type": name, "label": label, "querystring": params.urlencode(), "current": name == current})
    return links


def people_csv(query: AnyQuery, environment: Environment) -> tuple[list[list], str]:
    """(the CSV rows of a funnel or a retention report, the file name)."""
    if isinstance(query, FunnelQuery):
        return funnel_csv_rows(report_funnel(environment=environment, query=query)), "cairn-funnel.csv"
    return retention_csv_rows(report_retention(environment=environment, query=query)), "cairn-retention.csv"
