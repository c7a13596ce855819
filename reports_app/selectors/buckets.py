"""The buckets of a report's range (SPEC 7): UTC, weeks from Monday, months from the 1st, `to` inclusive. The
numbers (series.py) and whatever else counts by bucket share them."""

from datetime import datetime, timedelta

from config.kernel.periods import day_end, day_start
from reports_app.query import ReportQuery


def bucket_label(bucket: datetime, interval: str) -> str:
    return bucket.strftime("%Y-%m-%dT%H:00:00Z") if interval == "hour" else bucket.date().isoformat()


def bucket_floor(moment: datetime, interval: str) -> datetime:
    if interval == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "week":
        return day - timedelta(days=day.weekday())  # weeks start on Monday
    if interval == "month":
        return day.replace(day=1)
    return day


def bucket_next(bucket: datetime, interval: str) -> datetime:
    if interval == "hour":
        return bucket + timedelta(hours=1)
    if interval == "day":
        return bucket + timedelta(days=1)
    if interval == "week":
        return bucket + timedelta(days=7)
    return (bucket + timedelta(days=32)).replace(day=1)


def time_range(query: ReportQuery) -> tuple[datetime, datetime]:
    """[from 00:00 UTC, the day after `to` 00:00 UTC): `to` is inclusive."""
    return day_start(query.date_from), day_end(query.date_to)


def report_buckets(query: ReportQuery) -> list[datetime]:
    """Every bucket of the range, empty or not. The first week or month may start before `from`."""
    start, end = time_range(query)
    buckets, bucket = [], bucket_floor(start, query.interval)
    while bucket < end:
        buckets.append(bucket)
        bucket = bucket_next(bucket, query.interval)
    return buckets
