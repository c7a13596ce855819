"""events_insert: the COPY path (bulk calls) and the INSERT path (a few events) store every new event once,
and a batch that hits an idempotency_key stored meanwhile by a concurrent call keeps its other events."""

import pytest
from django.utils import timezone

from events_app.models import Event
from events_app.services.event_rows import COPY_MIN_ROWS, events_insert
from tests.builders import profile_build

pytestmark = pytest.mark.django_db

SIZES = {"copy": COPY_MIN_ROWS + 5, "insert": 3}


def rows(environment, profile, keys):
    now = timezone.now()
    return [
        (environment.pk, profile.pk, profile.pk, None, "Signed up", now, {"plan": "Free", "n": 1}, key) for key in keys
    ]


@pytest.mark.parametrize("path", sorted(SIZES))
def test_events_are_stored_with_their_values(environment, path):
    profile = profile_build(environment, 5)
    keys = ["a"] + [None] * (SIZES[path] - 1)
    events_insert(rows(environment, profile, keys))
    stored = list(Event.objects.order_by("pk"))
    assert len(stored) == SIZES[path]
    assert stored[0].properties == {"plan": "Free", "n": 1} and stored[0].idempotency_key == "a"
    assert stored[0].received_at is not None and stored[0].profile_id == profile.pk


@pytest.mark.parametrize("path", sorted(SIZES))
def test_a_key_stored_meanwhile_is_skipped_and_the_rest_of_the_batch_kept(environment, path):
    profile = profile_build(environment, 5)
    events_insert(rows(environment, profile, ["race"]))  # the concurrent call that won
    events_insert(rows(environment, profile, ["race", "other"] + [None] * (SIZES[path] - 2)))
    assert Event.objects.filter(idempotency_key="race").count() == 1
    assert Event.objects.count() == 1 + SIZES[path] - 1


@pytest.mark.parametrize("path", sorted(SIZES))
def test_text_that_copy_would_read_as_escapes_or_separators_is_stored_as_sent(environment, path):
    """The COPY path writes its rows as COPY text: tabs, newlines, backslashes and quotes in names, keys and
    property values (and JSON's own escapes of them) come back exactly."""
    profile = profile_build(environment, 5)
    tricky = 'tab\there, line\nbreak\r, back\\slash \\N "quoted" \\t ünïcødé \u2028 end'
    now = timezone.now()
    batch = [
        (environment.pk, profile.pk, profile.pk, None, f"{tricky} {index}", now, {"text": tricky, "n": 1.5}, key)
        for index, key in enumerate([tricky] + [None] * (SIZES[path] - 1))
    ]
    events_insert(batch)
    stored = list(Event.objects.order_by("pk"))
    assert [event.name for event in stored] == [row[4] for row in batch]
    assert all(event.properties == {"text": tricky, "n": 1.5} for event in stored)
    assert stored[0].idempotency_key == tricky and stored[1].idempotency_key is None
    assert all(event.timestamp == now and event.session_id is None for event in stored)


@pytest.mark.parametrize("path", sorted(SIZES))
def test_values_orjson_refuses_or_writes_differently_come_back_as_sent(environment, path):
    """The COPY text's JSON comes from orjson, with json.dumps for what orjson refuses: an integer beyond 64
    bits (valid JSON, and jsonb keeps it); large and small floats, nested arrays and non-ASCII keys round-trip."""
    profile = profile_build(environment, 5)
    now = timezone.now()
    values = [
        {"huge": 2**70, "negative": -(2**65)},
        {"float": 1e16, "tiny": 5e-324, "nested": [[1, "ü"], {"k": None}], "ключ": True},
    ]
    batch = [
        (environment.pk, profile.pk, profile.pk, None, "Signed up", now, values[index % 2], None)
        for index in range(SIZES[path])
    ]
    events_insert(batch)
    stored = [event.properties for event in Event.objects.order_by("pk")]
    assert stored == [values[index % 2] for index in range(SIZES[path])]
