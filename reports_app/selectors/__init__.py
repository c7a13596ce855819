"""Reads of reports_app, by job: `series` (the numbers of a report: the one computation behind the page, the CSV
export and GET /api/v1/reports/query), `buckets` (the buckets of its range), `funnels` and `retention` (SPEC 14,
likewise behind their CSV and API; what both share is in `person_steps`) and `choices` (what the builder
offers, saved reports)."""

from reports_app.selectors.buckets import bucket_label, report_buckets, time_range
from reports_app.selectors.choices import (
    MAX_CHOICES,
    report_defined_event_names,
    report_event_names,
    report_property_choices,
    report_user_property_keys,
    saved_report_list,
)
from reports_app.selectors.funnels import FunnelResult, FunnelSeries, report_funnel
from reports_app.selectors.retention import Cohort, RetentionResult, report_retention
from reports_app.selectors.series import (
    ALL_GROUP,
    NONE_GROUP,
    OTHER_GROUP,
    TOP_GROUPS,
    ReportResult,
    Series,
    report_series,
)

__all__ = [
    "ALL_GROUP",
    "Cohort",
    "FunnelResult",
    "FunnelSeries",
    "RetentionResult",
    "MAX_CHOICES",
    "NONE_GROUP",
    "OTHER_GROUP",
    "TOP_GROUPS",
    "ReportResult",
    "Series",
    "bucket_label",
    "report_buckets",
    "report_defined_event_names",
    "report_event_names",
    "report_funnel",
    "report_property_choices",
    "report_retention",
    "report_series",
    "report_user_property_keys",
    "saved_report_list",
    "time_range",
]
