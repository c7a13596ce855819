"""Reads for the dashboard's "Define an event" page: the recent autocaptured elements to pick from, the rule one
suggests, and the live preview count of a rule (the same Python matcher as ingest and the backfill, over a bounded
recent window, so the preview can never disagree with what the definition will match there)."""

import re
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from events_app.defined_events.matching import hierarchy_parse, rule_matches
from events_app.defined_events.rules import rule_compile, rules_parse
from events_app.models import Event
from users_app.models import Environment

AUTOCAPTURED_EVENTS = ("click", "submit", "change")
RECENT_DAYS = 7
# Events read per autocaptured name for the element list, and for a preview: the newest ones of the window.
ELEMENTS_SCAN = 5000
PREVIEW_SCAN = 20000
MAX_ELEMENTS = 50
_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class RecentElement:
    event: str
    tag: str
    element_id: str
    classes: str
    text: str
    path: str
    count: int

    @property
    def label(self) -> str:
        """How the page shows the element: `button#buy.btn.primary` (plain text, escaped by the template)."""
        return (
            self.tag
            + (f"#{self.element_id}" if self.element_id else "")
            + "".join(f".{name}" for name in self.classes.split())
        )

    @property
    def selector(self) -> str:
        """The selector the page suggests: the tag with its id, else with its classes (names the parser takes)."""
        tag = self.tag.lower() if re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", self.tag) else ""
        if _NAME.fullmatch(self.element_id):
            return f"{tag}#{self.element_id}"
        classes = "".join(f".{name}" for name in self.classes.split() if _NAME.fullmatch(name))
        return f"{tag}{classes}" or "*"

    def rule(self) -> dict:
        rule = {"event": self.event, "selector": self.selector}
        if self.text:
            rule["text"] = self.text
        if self.path:
            rule["path"] = self.path
        return rule


def _text(properties: dict, key: str) -> str:
    value = properties.get(key)
    return "" if value is None else str(value)[:200]


def _target(properties: dict) -> tuple[str, str, str]:
    """(tag, id, classes) of the target: each from its target_* property, else from the hierarchy's last element."""
    tag, element_id, classes = (_text(properties, key) for key in ("target_tag", "target_id", "target_class"))
    hierarchy = properties.get("hierarchy")
    if not (tag and element_id and classes) and isinstance(hierarchy, str):
        chain = hierarchy_parse(hierarchy[:2000])
        if chain:
            last = chain[-1]
            tag = tag or last.tag or ""
            element_id = element_id or last.element_id or ""
            classes = classes or " ".join(sorted(last.classes))
    return tag, element_id, classes


def _recent(environment: Environment, name: str, limit: int):
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    # One backward walk of event_by_name_time_cover per name: bounded however large the environment is.
    return (
        Event.objects.filter(environment=environment, name=name, timestamp__gte=since)
        .order_by("-timestamp")
        .values_list("properties", flat=True)[:limit]
    )


def recent_elements(*, environment: Environment) -> list[RecentElement]:
    """The autocaptured elements of the last RECENT_DAYS days, grouped by event + tag, id, classes, text and path,
    most frequent first (over at most ELEMENTS_SCAN events of each autocaptured name)."""
    counts: Counter = Counter()
    for name in AUTOCAPTURED_EVENTS:
        for properties in _recent(environment, name, ELEMENTS_SCAN):
            properties = properties if isinstance(properties, dict) else {}
            counts[(name, *_target(properties), _text(properties, "target_text"), _text(properties, "path"))] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_ELEMENTS]
    return [RecentElement(*key, count=count) for key, count in ranked]


@dataclass(frozen=True)
class Preview:
    count: int
    scanned: int
    days: int = RECENT_DAYS


def rule_preview(*, environment: Environment, rule: dict) -> Preview:
    """How many of the newest events (at most PREVIEW_SCAN of the rule's event name, last RECENT_DAYS days) the
    rule matches. Raises InvalidInput naming `rules[0].<field>` for a bad rule."""
    compiled = rule_compile(rules_parse([rule])[0])
    scanned = matched = 0
    for properties in _recent(environment, compiled.event, PREVIEW_SCAN):
        scanned += 1
        matched += rule_matches(compiled, properties, compiled.event)
    return Preview(count=matched, scanned=scanned)
