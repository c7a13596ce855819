"""The report builder's three report types (trends, funnel, retention): which one a query string asks for, and
its definition parsed from the page's form, a shared URL or a saved report.

A URL names its type with `type=funnel|retention`; without it a URL is a graph report (trends), so links and
saved reports made before funnels existed keep working. The page's form sends a few fields the API does not
take, written back into the API's parameters here, so that a URL, a saved report and the API mean one report:
the filter rows (`filter_field`, `filter_op`, `filter_value`, as for trends) become `where` parameters, and a
funnel's window as a number and a unit (`window_count`, `window_unit`) becomes `window=<N><unit>`.
"""

from django.http import QueryDict

from config.kernel.errors import InvalidInput
from reports_app.query import ReportQuery, filter_build, property_ref_parse, report_query_parse
from reports_app.query_funnels import (
    FUNNEL,
    RETENTION,
    SHARED_PARAMETERS,
    FunnelQuery,
    RetentionQuery,
    funnel_query_parse,
    retention_query_parse,
)

TRENDS = "trends"
REPORT_TYPES = {TRENDS: "Trends", FUNNEL: "Funnel", RETENTION: "Retention"}
# The parameters of the builder's form that a funnel and a retention report take (shared ones included): the
# type switch carries the shared ones from one type to another.
CARRIED_PARAMETERS = ("env", "group_by", "where", "range", "from", "to")

AnyQuery = ReportQuery | FunnelQuery | RetentionQuery


def report_type_of(params) -> str:
    value = params.get("type") or TRENDS
    if value not in REPORT_TYPES:
        raise InvalidInput("invalid_field", f"`type` must be one of: {', '.join(REPORT_TYPES)}.", "type")
    return value


def query_type(query: AnyQuery) -> str:
    return FUNNEL if isinstance(query, FunnelQuery) else RETENTION if isinstance(query, RetentionQuery) else TRENDS


def is_blank(report_type: str, params) -> bool:
    """True for a funnel or retention report whose events are not chosen yet (the type switch's first visit):
    the page shows the builder without numbers and without an error."""
    if report_type == FUNNEL:
        return not any(_getlist(params, "step"))
    if report_type == RETENTION:
        return not (params.get("start_event") or params.get("return_event"))
    return False


def _getlist(params, name: str) -> list[str]:
    if hasattr(params, "getlist"):
        return params.getlist(name)
    value = params.get(name)
    return [] if value is None else [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _page_params(params) -> QueryDict:
    """The form's fields written as the API's parameters (module docstring)."""
    written = QueryDict(mutable=True)
    for key in params:
        if key not in ("filter_field", "filter_op", "filter_value", "window_count", "window_unit"):
            written.setlist(key, _getlist(params, key))
    rows = zip(
        _getlist(params, "filter_field"), _getlist(params, "filter_op"), _getlist(params, "filter_value"), strict=False
    )
    for prop_text, operator, raw_value in rows:
        if prop_text.strip():
            prop = property_ref_parse(prop_text.strip(), "filter_field")
            written.appendlist("where", filter_build(prop, operator, raw_value, "filter_value").to_where())
    count = (params.get("window_count") or "").strip()
    if count:
        written["window"] = f"{count}{params.get('window_unit') or 'd'}"
    return written


def any_query_parse(params, *, page: bool = False) -> AnyQuery:
    """The report a query string (a QueryDict, or a saved report's params) defines, of its type. `page` also
    reads the form's own fields (module docstring). Raises InvalidInput naming the field."""
    report_type = report_type_of(params)
    if report_type == TRENDS:
        return report_query_parse(params, page_filters=page)
    if page:
        params = _page_params(params)
    if report_type == FUNNEL:
        return funnel_query_parse(params)
    return retention_query_parse(params)


def shared_query_parse(params) -> ReportQuery:
    """Only the parameters every type shares (group, filters, range), for a funnel or a retention report whose
    events are not chosen yet (`is_blank`): what the type switch carried over stays in the form."""
    shared = QueryDict(mutable=True)
    for name in (*SHARED_PARAMETERS, "filter_field", "filter_op", "filter_value"):
        shared.setlist(name, _getlist(params, name))
    return report_query_parse(shared, page_filters=True, check_buckets=False)


def query_querystring(query: AnyQuery) -> str:
    """The canonical query string of any report type (ReportQuery.to_querystring for all three)."""
    written = QueryDict(mutable=True)
    for key, value in query.to_params().items():
        written.setlist(key, value if isinstance(value, list) else [value])
    return written.urlencode()
