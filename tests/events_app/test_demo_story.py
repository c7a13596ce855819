"""The demo tells the story the funnel and retention reports are for (issue #15): paying plans activate after
signing up, and come back, more than Free does. Counted from the stored events, by the person's current plan."""

from collections import defaultdict

import pytest

from events_app.models import Event
from events_app.services.demo_data import ACTIVATE_EVENT, demo_seed
from users_app.models import UserProperty, property_key_hash
from users_app.people import person_pk

pytestmark = pytest.mark.django_db


def test_paying_plans_activate_and_return_more_than_free(db):
    environment = demo_seed(people=600, days=60, seed=5).environment
    plan_of = {
        row.profile_id: row.value
        for row in UserProperty.objects.filter(profile__environment=environment, key_hash=property_key_hash("plan"))
    }
    signed_up, activated, active_days = defaultdict(set), defaultdict(set), defaultdict(lambda: defaultdict(set))
    for event in Event.objects.filter(environment=environment).select_related("profile"):
        person = person_pk(event.profile)
        plan = plan_of.get(person)
        if plan is None:
            continue
        if event.name == "Sign Up":
            signed_up[plan].add(person)
        elif event.name == ACTIVATE_EVENT:
            activated[plan].add(person)
        active_days[plan][person].add(event.timestamp.date())

    def activation(plans):
        return sum(len(activated[p]) for p in plans) / sum(len(signed_up[p]) for p in plans)

    def days_active(plans):
        people = [days for p in plans for days in active_days[p].values()]
        return sum(len(days) for days in people) / len(people)

    paying = ["Startup", "Growth", "Premium", "Enterprise"]
    assert activation(paying) > activation(["Free"]) + 0.15
    assert days_active(paying) > days_active(["Free"]) * 1.3
    assert all(activated[plan] <= signed_up[plan] for plan in activated)  # Activate only after Sign Up
