"""Benchmark of defined events on PostgreSQL (SPEC 13): a report on a defined event against the same report on a raw
event name with the same number of events, and the backfill's time.

    .venv/bin/python bench/defined_events.py                  # 1,000,000 events
    .venv/bin/python bench/defined_events.py --size 1000000 --repeat 7 --rebuild

Data is generated in SQL into `cairn_bench_defined_events_<size>` on BENCH_PG (default
postgres://postgres@127.0.0.1:5432), reused by later runs (`--rebuild` to start over): people = events / 20,
events over 90 days (each received when it happened), 30% `click` events with realistic autocapture properties
(ten elements of a site: links, buttons, a span inside the buy button, form fields, each with its tracker
`hierarchy`, text and path), the rest pageviews. The definition "Clicked Buy" is `{"event": "click", "selector":
"#buy", "path": "/pricing*"}` (the buy button and the span inside it: N events); then exactly N pageviews are
renamed `Purchase`, the raw name with the same count, and the table is put in time order (CLUSTER), as a live
table roughly is.
Each run times the backfill of a fresh "Clicked Buy" (its match rows dropped first), then both reports through
GET /api/v1/reports/query (URL routing, API-key auth, report_series, JSON), alternately, medians.
"""

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    DAYS,
    FROM,
    TO,
    event_indexes_create,
    event_indexes_drop,
    load_average,
    median_times,
    people_insert,
    prepare_bench,
    run_header,
)

API_KEY = "bench-defined-events-key-0000000000"
DEFINED = {"name": "Clicked Buy", "rules": [{"event": "click", "selector": "#buy", "path": "/pricing*"}]}
RAW = "Purchase"
REPORTS = {
    "events per day": {"measure": "events", "interval": "day"},
    "unique users per week": {"measure": "unique_users", "interval": "week"},
    # An event property: the defined event's events are read row by row (Event.objects.named), not its match rows.
    "events per week by event.path": {"measure": "events", "interval": "week", "group_by": "event.path"},
}
APP = "@body;|@div;#app;.layout;|"
# (hierarchy, target_tag, target_id, target_class, target_text, path): what the tracker sends for ten elements.
ELEMENTS = [
    (APP + "@header;.site-header;|@nav;.main-nav;|@a;.nav-link;|", "a", "", "nav-link", "Pricing", "/"),
    (APP + "@header;.site-header;|@nav;.main-nav;|@a;.nav-link;.active;|", "a", "", "nav-link active", "Docs", "/docs"),
    (
        APP + "@main;|@section;.pricing;|@div;.plan;.plan-pro;|@button;#buy;.btn;.btn-primary;|",
        "button",
        "buy",
        "btn btn-primary",
        "Buy now",
        "/pricing",
    ),
    (
        APP + "@main;|@section;.pricing;|@div;.plan;.plan-pro;|@button;#buy;.btn;.btn-primary;|@span;.label;|",
        "span",
        "",
        "label",
        "Buy now",
        "/pricing/annual",
    ),
    (
        APP + "@main;|@section;.pricing;|@div;.plan;.plan-free;|@button;#start-free;.btn;|",
        "button",
        "start-free",
        "btn",
        "Start free",
        "/pricing",
    ),
    (APP + "@main;|@form;#signup;.form;|@input;#email;.field;|", "input", "email", "field", "", "/signup"),
    (
        APP + "@main;|@form;#signup;.form;|@button;.btn;.submit;|",
        "button",
        "",
        "btn submit",
        "Create account",
        "/signup",
    ),
    (APP + "@main;|@article;.doc;|@a;.anchor;|", "a", "", "anchor", "#", "/docs/install"),
    (APP + "@footer;.site-footer;|@ul;.links;|@li;|@a;|", "a", "", "", "Careers", "/"),
    (
        APP + "@main;|@div;.dashboard;|@div;.card;.chart;|@button;#export;.btn;.btn-small;|",
        "button",
        "export",
        "btn btn-small",
        "Export CSV",
        "/app",
    ),
]


def generate(size: int) -> None:
    """`size` events, set-based, the event indexes built after the load."""
    from django.db import connection

    from users_app.services.environments import environment_create

    environment = environment_create(name=f"Bench {size:,}", app_id=f"bench{size}", api_key=API_KEY).environment
    people = max(size // 20, 10)
    started = time.monotonic()
    columns = list(zip(*ELEMENTS, strict=True))
    with connection.cursor() as cursor:
        first_person = people_insert(cursor, environment, people)
        indexes = event_indexes_drop(cursor)
        cursor.execute(
            """
            INSERT INTO events_app_event (environment_id, profile_id, original_profile_id, session_id, name,
                                          timestamp, properties, idempotency_key, received_at)
            SELECT %(env)s, pid, pid, NULL, CASE WHEN r < 0.3 THEN 'click' ELSE 'pageview' END, moment,
                   CASE WHEN r < 0.3 THEN jsonb_strip_nulls(jsonb_build_object(
                       'hierarchy', (%(hierarchy)s::text[])[element], 'target_tag', (%(tag)s::text[])[element],
                       'target_id', NULLIF((%(id)s::text[])[element], ''),
                       'target_class', NULLIF((%(class)s::text[])[element], ''),
                       'target_text', NULLIF((%(text)s::text[])[element], ''), 'path', (%(path)s::text[])[element]))
                   ELSE jsonb_build_object('path', '/p/' || floor(r * 100)::int) END,
                   NULL, moment
            FROM (SELECT %(first)s + floor(random() * %(people)s)::bigint AS pid, random() AS r,
                         1 + floor(random() * %(elements)s)::int AS element,
                         %(start)s::timestamptz + random() * %(days)s * interval '1 day' AS moment
                  FROM generate_series(1, %(count)s)) s""",
            {
                "env": environment.pk,
                "start": FROM,
                "days": DAYS,
                "first": first_person,
                "people": people,
                "count": size,
                "elements": len(ELEMENTS),
                "hierarchy": list(columns[0]),
                "tag": list(columns[1]),
                "id": list(columns[2]),
                "class": list(columns[3]),
                "text": list(columns[4]),
                "path": list(columns[5]),
            },
        )
        # The raw name with the same count as the definition will match: that many pageviews renamed.
        cursor.execute(
            """SELECT count(*) FROM events_app_event WHERE name = 'click' AND properties->>'hierarchy' LIKE '%%#buy;%%'
               AND properties->>'path' LIKE '/pricing%%'"""
        )
        matching = cursor.fetchone()[0]
        cursor.execute(
            """UPDATE events_app_event SET name = %s WHERE id IN (
                   SELECT id FROM events_app_event WHERE name = 'pageview' ORDER BY random() LIMIT %s)""",
            [RAW, matching],
        )
        event_indexes_create(cursor, indexes)
        # In the order a live table has (events arrive about when they happen): the renamed pageviews would
        # otherwise sit together at the table's end, which makes reading them unrealistically cheap.
        cursor.execute("CLUSTER events_app_event USING event_by_time")
        cursor.execute("VACUUM ANALYZE events_app_event")
        cursor.execute("VACUUM ANALYZE users_app_profile")
    print(f"  generated in {time.monotonic() - started:.0f} s ({matching:,} events for each name)", flush=True)


def backfill(environment) -> tuple[float, float, int]:
    """A fresh definition: (seconds to create it and backfill, seconds of the re-sweep alone, events matched)."""
    from django.db import connection, transaction

    from events_app.defined_events.backfill import defined_event_backfill
    from events_app.defined_events.services import defined_event_create, defined_event_delete
    from events_app.models import DefinedEvent, DefinedEventMatch

    for old in DefinedEvent.objects.filter(environment=environment):
        defined_event_delete(environment=environment, defined_event_id=old.pk)
    started = time.perf_counter()
    with transaction.atomic():  # eager Celery: the backfill and its re-sweep run when this commits
        defined = defined_event_create(environment=environment, **DEFINED)
    total = time.perf_counter() - started
    DefinedEvent.objects.filter(pk=defined.pk).update(resweep_done_at=None)
    started = time.perf_counter()
    defined_event_backfill(defined_event_id=defined.pk)
    resweep = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE events_app_definedeventmatch")  # as autovacuum would, after a bulk load
    return total, resweep, DefinedEventMatch.objects.filter(defined_event=defined).count()


def run(size: int, repeat: int) -> None:
    from django.db import connection
    from django.test import Client

    from events_app.models import Event
    from users_app.models import Environment

    environment = Environment.objects.get(app_id=f"bench{size}")
    count = Event.objects.filter(environment=environment).count()
    print(run_header(count, connection), flush=True)
    seconds, resweep, matched = backfill(environment)
    print(f"backfill of {DEFINED['name']!r}: {matched:,} events matched in {seconds:.1f} s (re-sweep {resweep:.2f} s)")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    lines = []
    for title, params in REPORTS.items():

        def call(event: str, params=params):
            response = client.get("/api/v1/reports/query", {**params, "event": event, "from": FROM, "to": TO})
            assert response.status_code == 200, response.content[:500]
            return response.json()

        defined_seconds, raw_seconds, defined_answer, raw_answer = median_times(
            lambda: call(DEFINED["name"]), lambda: call(RAW), repeat
        )
        ratio = defined_seconds / raw_seconds
        # Over every group (`Other` included): the events or people each report counted, the same for both names.
        totals = tuple(sum(item["total"] for item in answer["series"]) for answer in (defined_answer, raw_answer))
        lines.append((title, defined_seconds, raw_seconds, ratio, totals))
        print(
            f"{title:24s} defined {defined_seconds * 1000:7.1f} ms   raw {raw_seconds * 1000:7.1f} ms   "
            f"ratio {ratio:4.2f}   totals {totals[0]:,} / {totals[1]:,}",
            flush=True,
        )
    print(f"load average at the end: {load_average()}")
    print("\n| events | report (90 days) | defined event | raw name, same count | ratio | totals |")
    print("|---:|---|---:|---:|---:|---|")
    for title, defined_seconds, raw_seconds, ratio, totals in lines:
        print(
            f"| {count:,} | {title} | {defined_seconds * 1000:.0f} ms | {raw_seconds * 1000:.0f} ms | {ratio:.2f} | "
            f"{totals[0]:,} / {totals[1]:,} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per report (median); one warm-up first")
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the bench database")
    arguments = parser.parse_args()
    prepare_bench(f"cairn_bench_defined_events_{arguments.size}", arguments.rebuild, generate, arguments.size)
    run(arguments.size, arguments.repeat)


if __name__ == "__main__":
    main()
