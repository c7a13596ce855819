"""The Users view and Reports share one vocabulary of periods and filters (config/kernel/periods.py and
property_filters.py) but keep their own syntax, and a preset means something different on each page."""

from datetime import UTC, date, datetime, timedelta

from reports_app.query import report_query_parse
from reports_app.selectors import time_range
from users_app.user_query import parse_period

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def test_a_preset_is_a_moving_window_in_the_users_view_and_whole_days_in_a_report():
    _period, _from, _to, since, until = parse_period({"period": "7d"}, NOW)
    assert (since, until) == (NOW - timedelta(days=7), None)
    report = report_query_parse({"range": "7d"}, today=NOW.date())
    assert (report.date_from, report.date_to) == (date(2026, 3, 4), date(2026, 3, 10))


def test_from_and_to_are_the_same_utc_days_on_both_pages():
    dates = {"from": "2026-02-01", "to": "2026-02-07"}
    _period, _from, _to, since, until = parse_period(dates, NOW)
    report = report_query_parse(dates, today=NOW.date())
    assert (
        (since, until)
        == time_range(report)
        == (
            datetime(2026, 2, 1, tzinfo=UTC),
            datetime(2026, 2, 8, tzinfo=UTC),
        )
    )
