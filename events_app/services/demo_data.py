"""Demo data made through the same services the API uses, so its profiles, sessions and merges are real.

People visit anonymously, some sign up (identify + plan + `Sign Up`), some later log in from a second or
third device (identify into an existing identity: a real merge), some activate (`Activate`: their first
report) and some of those upgrade their plan. Paying plans activate, upgrade and come back more often than Free,
so a Sign Up -> Activate -> Upgrade funnel and a weekly retention report by plan tell a story. Signed-up people work
at one of a few dozen companies (the environment's account id property, `company_id`), each with a tier and an
industry (account properties, SPEC 11), so an account report has something to show.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from events_app.models import PAGEVIEW_EVENT
from events_app.services.account_ingest import account_properties_ingest
from events_app.services.ingest import MAX_BULK_ITEMS, track_ingest, user_properties_ingest
from users_app.models import Environment, MergeRecord
from users_app.services.environments import api_key_hash, environment_create, environment_rotate_api_key
from users_app.services.identify import profile_identify
from users_app.services.profiles import new_user_id

DEMO_APP_ID = "2718281828"
# Printed in docs/api.md, so anyone can read an environment that has it: only for DEBUG (seed_demo decides).
DEMO_API_KEY = "cairn_demo_key_not_secret_0001"
PLANS = ["Free", "Startup", "Growth", "Premium", "Enterprise"]
PLAN_WEIGHTS = [50, 22, 14, 9, 5]
ACTIVATE_EVENT = "Activate"
# The story the funnel and retention reports show, by plan: the chance to activate after signing up, to upgrade
# once activated (Enterprise has nothing to upgrade to), and how many extra return visits a person may make.
ACTIVATION_RATE = {"Free": 0.35, "Startup": 0.6, "Growth": 0.7, "Premium": 0.8, "Enterprise": 0.85}
UPGRADE_RATE = {"Free": 0.2, "Startup": 0.3, "Growth": 0.35, "Premium": 0.25, "Enterprise": 0.0}
EXTRA_RETURN_VISITS = {"Free": 0, "Startup": 3, "Growth": 4, "Premium": 5, "Enterprise": 6}
PAGES = [
    "/",
    "/pricing",
    "/features",
    "/blog/using-identify",
    "/docs",
    "/signup",
    "/login",
    "/app/dashboard",
    "/app/reports",
    "/app/settings",
]
REFERRERS = [
    "",
    "",
    "https://www.google.com/",
    "https://news.ycombinator.com/",
    "https://twitter.com/",
    "https://www.linkedin.com/",
]
CAMPAIGNS = [
    ("", "", ""),
    ("google", "cpc", "spring_sale"),
    ("newsletter", "email", "weekly_digest"),
    ("twitter", "social", "launch"),
]


ACCOUNT_ID_PROPERTY = "company_id"
COMPANY_NAMES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne"]
COMPANY_SUFFIXES = ["Inc", "Labs", "Group", "Systems"]
TIERS = ["Free", "Startup", "Growth", "Enterprise"]
INDUSTRIES = ["Software", "Retail", "Finance", "Healthcare", "Media", "Energy"]


def demo_companies(seed: int) -> list[dict]:
    """The demo's accounts: {account_id, properties: tier, industry, employees}. Their own random stream, so
    adding them changed none of the demo's other numbers."""
    rng = random.Random(seed * 7919)
    return [
        {
            "account_id": f"{name.lower()}-{suffix.lower()}",
            "properties": {
                "name": f"{name} {suffix}",
                "tier": rng.choices(TIERS, weights=[40, 30, 20, 10])[0],
                "industry": rng.choice(INDUSTRIES),
                "employees": rng.choice([8, 25, 120, 600, 4000]),
            },
        }
        for name in COMPANY_NAMES
        for suffix in COMPANY_SUFFIXES
    ]


@dataclass
class Person:
    index: int
    plan: str
    identity: str | None
    devices: list[int]
    signup_at: datetime | None = None
    activated_at: datetime | None = None
    upgrade_to: str | None = None
    visits: list[tuple[int, datetime]] = field(default_factory=list)  # (device user_id, visit start)


@dataclass
class DemoSummary:
    environment: Environment
    api_key: str | None  # None: the environment existed and keeps the key it had (only its hash is stored)
    people: int
    events: int
    merges: int


def _people(count: int, days: int, rng: random.Random, now: datetime) -> list[Person]:
    # The funnel and retention story (activation, extra return visits) draws from its own stream.
    story = random.Random(count * 7907 + days)
    people = []
    for index in range(count):
        signed_up = rng.random() < 0.6
        device_count = 1
        if signed_up:
            device_count = rng.choices([1, 2, 3], weights=[70, 22, 8])[0]
        person = Person(
            index=index,
            plan=rng.choices(PLANS, weights=PLAN_WEIGHTS)[0],
            identity=f"user{index:05d}@example.com" if signed_up else None,
            devices=[new_user_id() for _ in range(device_count)],
        )
        first_visit = now - timedelta(days=rng.uniform(0, days), minutes=rng.uniform(0, 600))
        extra_visits = story.randint(0, EXTRA_RETURN_VISITS[person.plan])
        for visit_number in range(rng.randint(1, 4) + device_count + extra_visits):
            device = person.devices[min(visit_number, device_count - 1)] if visit_number else person.devices[0]
            start = first_visit + timedelta(days=rng.uniform(0, 6) * visit_number)
            if start < now - timedelta(minutes=30):
                person.visits.append((device, start))
        if not person.visits:
            person.visits.append((person.devices[0], now - timedelta(hours=1)))
        if signed_up:
            person.signup_at = person.visits[0][1] + timedelta(minutes=rng.uniform(2, 20))
            upgrade_roll = rng.random()
            if story.random() < ACTIVATION_RATE[person.plan]:
                activated_at = person.signup_at + timedelta(hours=story.uniform(0.2, 72))
                person.activated_at = activated_at if activated_at < now else None
            if person.activated_at and upgrade_roll < UPGRADE_RATE[person.plan]:
                person.upgrade_to = PLANS[PLANS.index(person.plan) + 1]
        people.append(person)
    return people


def _visit_events(person: Person, device: int, start: datetime, rng: random.Random, now: datetime) -> list[dict]:
    source, medium, campaign = rng.choice(CAMPAIGNS)
    referrer = rng.choice(REFERRERS)
    session_id = f"demo-{device}-{int(start.timestamp())}"
    events = []
    moment = start
    for page_number in range(rng.randint(1, 5)):
        path = rng.choice(PAGES) if page_number else "/"
        query = ""
        if source and not page_number:
            query = f"?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
        properties = {"path": path, "url": f"https://demo.cairn.test{path}{query}", "title": path.strip("/") or "Home"}
        if not page_number:
            properties["referrer"] = referrer
        events.append(
            {
                "user_id": str(device),
                "event": PAGEVIEW_EVENT,
                "timestamp": moment.isoformat(),
                "session_id": session_id,
                "properties": properties,
            }
        )
        moment += timedelta(seconds=rng.uniform(10, 240))
        if moment > now:
            break
    return events


def _send_tracks(environment: Environment, items: list[dict]) -> int:
    for offset in range(0, len(items), MAX_BULK_ITEMS):
        track_ingest(environment=environment, items=items[offset : offset + MAX_BULK_ITEMS])
    return len(items)


def demo_environment(*, api_key: str | None) -> tuple[Environment, str | None]:
    """The demo environment, created with `api_key` (None: a random one), and the key when it is known.

    An existing environment keeps its key, except the public DEMO_API_KEY when the caller did not ask for it
    (an install seeded under DEBUG, then again in production): that key is rotated to a random one."""
    environment = Environment.objects.filter(app_id=DEMO_APP_ID).first()
    if environment is None:
        created = environment_create(
            name="Demo", app_id=DEMO_APP_ID, api_key=api_key, account_id_property=ACCOUNT_ID_PROPERTY
        )
        return created.environment, created.api_key
    if not environment.account_id_property:
        environment.account_id_property = ACCOUNT_ID_PROPERTY
        environment.save(update_fields=["account_id_property"])
    if api_key is not None and environment.api_key_hash == api_key_hash(api_key):
        return environment, api_key
    if api_key != DEMO_API_KEY and environment.api_key_hash == api_key_hash(DEMO_API_KEY):
        return environment, environment_rotate_api_key(environment=environment)
    return environment, None


def demo_seed(*, people: int = 5000, days: int = 90, seed: int = 7, api_key: str | None = None) -> DemoSummary:
    """Create (or top up) the demo environment. Deterministic for a given seed, apart from user_ids."""
    rng = random.Random(seed)
    now = timezone.now()
    environment, api_key = demo_environment(api_key=api_key)
    crowd = _people(people, days, rng, now)

    # 1. Anonymous visits before anyone signs up (every device of every person).
    anonymous, later = [], []
    for person in crowd:
        for device, start in person.visits:
            events = _visit_events(person, device, start, rng, now)
            (anonymous if person.signup_at is None or start <= person.signup_at else later).append(
                (person, device, events)
            )
    event_count = _send_tracks(environment, [e for _, _, events in anonymous for e in events])

    # 2. Sign-ups: identify on the first device (anonymous -> new identity), set the plan and the company,
    # track Sign Up. The companies are described first (account properties).
    companies = demo_companies(seed)
    account_properties_ingest(environment=environment, items=companies)
    company_rng = random.Random(seed * 104729)
    signed_up = [person for person in crowd if person.identity]
    company_of = {p.index: company_rng.choice(companies)["account_id"] for p in signed_up}
    for person in signed_up:
        profile_identify(
            environment=environment,
            user_id=person.devices[0],
            identity=person.identity,
            trigger=MergeRecord.Trigger.DEMO,
        )
    user_properties_ingest(
        environment=environment,
        items=[
            {
                "identity": p.identity,
                "properties": {
                    "plan": p.plan,
                    "company_size": rng.choice([1, 5, 20, 100, 500]),
                    ACCOUNT_ID_PROPERTY: company_of[p.index],
                },
            }
            for p in signed_up
        ],
    )
    signups = [
        {
            "identity": p.identity,
            "event": "Sign Up",
            "timestamp": p.signup_at.isoformat(),
            "properties": {"plan": p.plan},
            "idempotency_key": f"demo-signup-{p.index}",
        }
        for p in signed_up
    ]
    event_count += _send_tracks(environment, signups)

    # 3. Later visits; a second or third device logs in (anonymous -> existing identity: a merge).
    event_count += _send_tracks(environment, [e for _, _, events in later for e in events])
    merges = 0
    for person in signed_up:
        for device in person.devices[1:]:
            result = profile_identify(
                environment=environment, user_id=device, identity=person.identity, trigger=MergeRecord.Trigger.DEMO
            )
            merges += result.merge is not None

    # 4. Activation (the first report), then upgrades: the plan changes and an Upgrade event is tracked.
    activations = [
        {
            "identity": p.identity,
            "event": ACTIVATE_EVENT,
            "timestamp": p.activated_at.isoformat(),
            "idempotency_key": f"demo-activate-{p.index}",
        }
        for p in signed_up
        if p.activated_at
    ]
    event_count += _send_tracks(environment, activations)
    upgraded = [p for p in signed_up if p.upgrade_to]
    user_properties_ingest(
        environment=environment,
        items=[{"identity": p.identity, "properties": {"plan": p.upgrade_to}} for p in upgraded],
    )
    upgrades = [
        {
            "identity": p.identity,
            "event": "Upgrade",
            "timestamp": (
                p.activated_at + min(timedelta(days=20), now - p.activated_at) * rng.uniform(0.2, 0.95)
            ).isoformat(),
            "properties": {"from": p.plan, "to": p.upgrade_to},
            "idempotency_key": f"demo-upgrade-{p.index}",
        }
        for p in upgraded
    ]
    event_count += _send_tracks(environment, upgrades)
    return DemoSummary(environment=environment, api_key=api_key, people=people, events=event_count, merges=merges)
