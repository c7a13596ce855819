"""The realistic data of bench/lean_compare.py (issue #16), deterministic for a size and a seed.

People = 13 per 1,000 events (13,000 at 1,000,000), named by identity as a server integration names them. Each is
active on 1 to 6 days of the 90 (2026-08-01 .. 2026-10-29), one session a day of 5 to 40 events, 5 s to 2 min
apart (under Cairn's 30 minutes of inactivity, so each is one session); session lengths are then nudged, within
5 to 40, until the events number exactly `size`. Every session opens with a pageview; a person's first session
has their one `Sign Up` second; 40% of people `Activate` (on their second active day if they have one) and 10%
of those with two days or more `Upgrade` on their last; the other events are 80% `pageview`, 14% `Click`, 6%
`Search`, each with a few properties. Plans (Free 50 : Startup 20 : Growth 15 : Premium 10 : Enterprise 5) on
90% of people; one account (`company_id`) per ten people on 90% of them, a `tier` (same weights) on 90% of the
accounts.

Events are kept in time order in compact arrays (time in ms, person, name, a property variant), so 10,000,000
of them fit in a few hundred MB; the bulk bodies and the COPY text are built from those arrays.
"""

import json
import random
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

FROM, TO, DAYS = "2026-08-01", "2026-10-29", 90
START = datetime(2026, 8, 1, tzinfo=UTC)
PLANS = ["Free", "Startup", "Growth", "Premium", "Enterprise"]
PLAN_WEIGHTS = [50, 20, 15, 10, 5]
NAMES = ["pageview", "Click", "Search", "Sign Up", "Activate", "Upgrade"]
PAGEVIEW, CLICK, SEARCH, SIGN_UP, ACTIVATE, UPGRADE = range(len(NAMES))
PATHS = ["/", "/pricing", "/docs", "/docs/install", "/blog", "/app", "/app/reports", "/app/users", "/signup", "/about"]
BUTTONS = ["Start free", "Buy now", "Export CSV", "Save", "Invite", "Next"]
QUERIES = ["pricing", "api key", "export", "retention", "funnel", "sso", "invoice", "webhooks"]
REFERRERS = ["https://www.google.com/", "https://news.ycombinator.com/", "", "https://twitter.com/", ""]


def people_for(size: int) -> int:
    return max(13, round(size * 13 / 1000))


def identity_of(person: int) -> str:
    return f"user{person}@example.com"


@dataclass
class Dataset:
    size: int
    people: int
    plans: list  # per person (index 0 unused): a plan or None
    accounts: list  # per person: an account id ("acct-7") or None
    tiers: dict  # per account id that has a tier
    moments: array = field(default_factory=lambda: array("q"))  # ms since the epoch, ascending
    persons: array = field(default_factory=lambda: array("l"))
    names: array = field(default_factory=lambda: array("b"))
    variants: array = field(default_factory=lambda: array("H"))  # picks the event's properties


def generate(size: int, seed: int = 16) -> Dataset:
    rng = random.Random(seed)
    people = people_for(size)
    plans = [None] + [rng.choices(PLANS, PLAN_WEIGHTS)[0] if rng.random() < 0.9 else None for _ in range(people)]
    account_count = max(1, people // 10)
    accounts = [None] + [f"acct-{rng.randrange(account_count)}" if rng.random() < 0.9 else None for _ in range(people)]
    tiers = {
        f"acct-{number}": rng.choices(PLANS, PLAN_WEIGHTS)[0] for number in range(account_count) if rng.random() < 0.9
    }
    # Each person's active days, one session a day; then session lengths nudged until they add up to `size`.
    sessions = []  # [person, day, length]
    for person in range(1, people + 1):
        for day in sorted(rng.sample(range(DAYS), rng.randint(1, 6))):
            sessions.append([person, day, rng.randint(5, 40)])
    total = sum(session[2] for session in sessions)
    if not len(sessions) * 5 <= size <= len(sessions) * 40:
        raise ValueError(f"{size:,} events cannot be spread over {len(sessions):,} sessions of 5 to 40")
    while total != size:
        session = sessions[rng.randrange(len(sessions))]
        if total > size and session[2] > 5:
            session[2], total = session[2] - 1, total - 1
        elif total < size and session[2] < 40:
            session[2], total = session[2] + 1, total + 1
    first_day, second_day, last_day = {}, {}, {}
    for person, day, _ in sessions:
        if person not in first_day:
            first_day[person] = day
        elif person not in second_day:
            second_day[person] = day
        last_day[person] = day
    activates = {person: second_day.get(person, day) for person, day in first_day.items() if rng.random() < 0.4}
    upgrades = {person: last_day[person] for person in activates if person in second_day and rng.random() < 0.25}
    by_day = [[] for _ in range(DAYS)]
    for session in sessions:
        by_day[session[1]].append(session)
    dataset = Dataset(size=size, people=people, plans=plans, accounts=accounts, tiers=tiers)
    for day, day_sessions in enumerate(by_day):
        day_events = []
        for person, _, length in day_sessions:
            moment = int((START + timedelta(days=day)).timestamp() * 1000) + rng.randrange(81_000_000)
            specials = {}
            if first_day[person] == day:
                specials[min(1, length - 1)] = SIGN_UP
            if activates.get(person) == day:
                specials.setdefault(length - 1, ACTIVATE)
            if upgrades.get(person) == day:
                specials.setdefault(max(0, length - 2), UPGRADE)
            for position in range(length):
                name = specials.get(position)
                if name is None:
                    draw = rng.random()
                    name = PAGEVIEW if position == 0 or draw < 0.8 else CLICK if draw < 0.94 else SEARCH
                day_events.append((moment, person, name, rng.randrange(1000)))
                moment += rng.randint(5_000, 120_000)
        day_events.sort()
        for moment, person, name, variant in day_events:
            dataset.moments.append(moment)
            dataset.persons.append(person)
            dataset.names.append(name)
            dataset.variants.append(variant)
    return dataset


def iso(moment_ms: int) -> str:
    """2026-08-01T10:00:05.123Z"""
    return datetime.fromtimestamp(moment_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def properties(name: int, variant: int) -> dict:
    path = PATHS[variant % len(PATHS)]
    if name == PAGEVIEW:
        return {"path": path, "referrer": REFERRERS[variant % 5], "title": path.strip("/").title() or "Home"}
    if name == CLICK:
        return {"path": path, "target_text": BUTTONS[variant % len(BUTTONS)], "target_tag": "button"}
    if name == SEARCH:
        return {"path": "/search", "query": QUERIES[variant % len(QUERIES)], "results": variant % 40}
    if name == SIGN_UP:
        return {"method": ["email", "google", "github"][variant % 3]}
    if name == UPGRADE:
        return {"from_plan": "Free", "seats": 1 + variant % 20}
    return {"step": "first report"}


def track_bodies(dataset: Dataset, app_id: str, batch: int = 1000) -> list[bytes]:
    """The events as bulk /api/track calls of `batch` events each, in time order, as a server integration sends
    what happened since its last call."""
    bodies = []
    for offset in range(0, dataset.size, batch):
        events = [
            {
                "identity": identity_of(dataset.persons[index]),
                "event": NAMES[dataset.names[index]],
                "timestamp": iso(dataset.moments[index]),
                "properties": properties(dataset.names[index], dataset.variants[index]),
            }
            for index in range(offset, min(offset + batch, dataset.size))
        ]
        bodies.append(json.dumps({"app_id": app_id, "events": events}).encode())
    return bodies


def user_property_bodies(dataset: Dataset, app_id: str, batch: int = 1000) -> list[bytes]:
    """Plans and account ids as bulk /api/add_user_properties calls (people with neither are left out)."""
    users = []
    for person in range(1, dataset.people + 1):
        values = {"plan": dataset.plans[person], "company_id": dataset.accounts[person]}
        values = {key: value for key, value in values.items() if value is not None}
        if values:
            users.append({"identity": identity_of(person), "properties": values})
    return [
        json.dumps({"app_id": app_id, "users": users[offset : offset + batch]}).encode()
        for offset in range(0, len(users), batch)
    ]


def account_property_bodies(dataset: Dataset, app_id: str, batch: int = 1000) -> list[bytes]:
    accounts = [{"account_id": account, "properties": {"tier": tier}} for account, tier in dataset.tiers.items()]
    return [
        json.dumps({"app_id": app_id, "accounts": accounts[offset : offset + batch]}).encode()
        for offset in range(0, len(accounts), batch)
    ]


def lean_copy_text(dataset: Dataset) -> bytes:
    """The same events as COPY text rows of lean_event (user_id, name, ts)."""
    lines = [
        f"{dataset.persons[index]}\t{NAMES[dataset.names[index]]}\t{iso(dataset.moments[index])}\n"
        for index in range(dataset.size)
    ]
    return "".join(lines).encode()
