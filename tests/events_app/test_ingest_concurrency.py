"""Concurrent first calls of brand-new visitors: the call that creates a profile takes no lock on it and looks
nothing up (nobody else can see it before commit); the others wait on its insert and then find it."""

import os
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from events_app.models import Event, Session
from tests.builders import post_json
from users_app.models import Profile, UserProperty

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="concurrent writers need PostgreSQL"
)

CALLS_AT_ONCE = 8


def all_at_once(send) -> list[int]:
    barrier = threading.Barrier(CALLS_AT_ONCE)
    statuses = []

    def run(n: int) -> None:
        barrier.wait()
        statuses.append(send(n)[0])

    threads = [threading.Thread(target=run, args=(n,)) for n in range(CALLS_AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


@pytest.mark.parametrize("session", [{}, {"session_id": "tab-1"}], ids=["server", "session_id"])
def test_concurrent_first_calls_of_a_new_visitor_make_one_profile_and_one_visit(
    transactional_db, live_server, environment, session
):
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)

    def send(n: int) -> tuple[int, dict]:
        return post_json(
            f"{live_server.url}/api/track",
            {
                "app_id": environment.app_id,
                "user_id": "8300",
                "event": "pageview",
                "timestamp": (start + timedelta(seconds=n)).isoformat(),
                "properties": {"path": f"/p{n}"},
                **session,
            },
        )

    assert all_at_once(send) == [200] * CALLS_AT_ONCE
    profile = Profile.objects.get(user_id=8300)
    assert Event.objects.filter(profile=profile).count() == CALLS_AT_ONCE
    visit = Session.objects.get()
    assert visit.events.count() == CALLS_AT_ONCE
    assert (visit.started_at, visit.ended_at) == (start, start + timedelta(seconds=CALLS_AT_ONCE - 1))
    assert (profile.first_seen, profile.last_seen) == (visit.started_at, visit.ended_at)
    # One set of initial properties, from the visit's row.
    landing = UserProperty.objects.get(profile=profile, key="Initial Landing Page")
    assert landing.value == visit.landing_page


def test_concurrent_bulks_of_new_visitors_store_each_idempotency_key_once(transactional_db, live_server, environment):
    events = [
        {"user_id": str(8400 + index % 30), "event": "Sign Up", "idempotency_key": f"signup-{index}"}
        for index in range(60)
    ]

    def send(n: int) -> tuple[int, dict]:
        return post_json(f"{live_server.url}/api/track", {"app_id": environment.app_id, "events": events})

    assert all_at_once(send) == [200] * CALLS_AT_ONCE
    assert Event.objects.count() == 60
    assert Profile.objects.count() == 30
    assert sorted(Event.objects.values_list("idempotency_key", flat=True)) == sorted(
        e["idempotency_key"] for e in events
    )
