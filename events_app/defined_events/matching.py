"""Whether an event matches a defined event's rules, in Python: the one evaluator ingest, the backfill and the
page's preview all call, so the three can never disagree (rules.py says what a rule means).

The tracker's `hierarchy` property is the target and its ancestors from body down to the target, each element
`@<tag>;` + `#<id>;` + `.<class>;` per class, closed by `|`: `@body;|@div;#main;.nav;|@button;#buy;.btn;|`.
A selector matches when the target or any ancestor matches it, as CSS `sel, sel *` would: a click on a <span>
inside <button id=buy> counts for `#buy`. The hierarchy is a chain (no siblings), so a descendant or child
combinator is decided exactly on it. An event without `hierarchy` (a server call that sent only `target_tag`,
`target_id` and `target_class`) is matched as a one-element chain of those.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from events_app.defined_events.rules import CHILD, Compound, Rule, Selector, rule_compile


class Element(NamedTuple):
    tag: str | None
    element_id: str | None
    classes: frozenset[str]


Chain = tuple[Element, ...]


# A site has a few thousand distinct elements, clicked again and again: each hierarchy string is parsed once per
# process, not once per event and rule (docs/benchmarks.md, "Defined events").
@lru_cache(maxsize=8192)
def hierarchy_parse(text: str) -> Chain:
    elements = []
    for part in text.split("|"):
        if not part:
            continue
        tag, element_id, classes = None, None, []
        for token in part.split(";"):
            if token.startswith("@"):
                tag = token[1:].lower()
            elif token.startswith("#"):
                element_id = token[1:]
            elif token.startswith("."):
                classes.append(token[1:])
        elements.append(Element(tag, element_id, frozenset(classes)))
    return tuple(elements)


def _chain(properties: dict) -> Chain:
    hierarchy = properties.get("hierarchy")
    if isinstance(hierarchy, str) and hierarchy:
        return hierarchy_parse(hierarchy)
    tag, element_id, classes = properties.get("target_tag"), properties.get("target_id"), properties.get("target_class")
    if tag is None and element_id is None and classes is None:
        return ()
    return (
        Element(
            str(tag).lower() if tag is not None else None,
            str(element_id) if element_id is not None else None,
            frozenset(str(classes).split()) if classes is not None else frozenset(),
        ),
    )


def _compound_matches(compound: Compound, element: Element) -> bool:
    if compound.tag is not None and compound.tag != element.tag:
        return False
    if any(wanted != element.element_id for wanted in compound.ids):
        return False
    return compound.classes <= element.classes


def _matches_at(selector: Selector, chain: Sequence[Element], index: int, position: int) -> bool:
    """compounds[index] matches chain[position], and the compounds left of it match its ancestors."""
    if not _compound_matches(selector.compounds[index], chain[position]):
        return False
    if index == 0:
        return True
    if selector.combinators[index - 1] == CHILD:
        return position > 0 and _matches_at(selector, chain, index - 1, position - 1)
    return any(_matches_at(selector, chain, index - 1, ancestor) for ancestor in range(position - 1, -1, -1))


def selector_matches(selector: Selector, chain: Sequence[Element]) -> bool:
    """`sel, sel *`: the selector matches the target or one of its ancestors."""
    last = len(selector.compounds) - 1
    return any(_matches_at(selector, chain, last, position) for position in range(len(chain)))


def _text(value) -> str | None:
    return None if value is None else str(value)


# Verdicts of a selector on a hierarchy string, kept by a CompiledDefinitions (whose selectors outlive it): the
# same elements are clicked again and again. Bounded: cleared when full.
Memo = dict[tuple[int, str], bool]
MEMO_SIZE = 50_000


def _selector_verdict(selector: Selector, properties: dict, memo: Memo | None) -> bool:
    hierarchy = properties.get("hierarchy")
    if memo is None or not isinstance(hierarchy, str):
        return selector_matches(selector, _chain(properties))
    key = (id(selector), hierarchy)
    verdict = memo.get(key)
    if verdict is None:
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        verdict = memo[key] = selector_matches(selector, _chain(properties))
    return verdict


def rule_matches(rule: Rule, properties, name: str, memo: Memo | None = None) -> bool:
    """Every field the rule gives matches the event (`name`, its `properties`); the cheap fields first. `memo`:
    a CompiledDefinitions' verdicts of its selectors, by hierarchy."""
    if name != rule.event:
        return False
    properties = properties if isinstance(properties, dict) else {}
    if rule.text is not None and _text(properties.get("target_text")) != rule.text:
        return False
    if rule.path is not None:
        path = _text(properties.get("path"))
        if path is None or not rule.path.fullmatch(path):
            return False
    return rule.selector is None or _selector_verdict(rule.selector, properties, memo)


@dataclass
class CompiledDefinitions:
    """An environment's defined events, compiled, indexed by the raw event name their rules look at: an event
    whose name no rule names costs one dict lookup."""

    by_event: dict[str, list[tuple[int, Rule]]] = field(default_factory=dict)
    memo: Memo = field(default_factory=dict)

    @classmethod
    def of(cls, definitions: Iterable[tuple[int, list[dict]]]) -> "CompiledDefinitions":
        """From (defined event pk, stored rules) pairs."""
        compiled = cls()
        for defined_pk, rules in definitions:
            for stored in rules:
                rule = rule_compile(stored)
                compiled.by_event.setdefault(rule.event, []).append((defined_pk, rule))
        return compiled

    @property
    def event_names(self) -> list[str]:
        return list(self.by_event)

    def matching(self, name: str, properties) -> tuple[int, ...]:
        """The pks of the defined events the event matches (each once), in definition order."""
        candidates = self.by_event.get(name)
        if not candidates:
            return ()
        found: list[int] = []
        for defined_pk, rule in candidates:
            if defined_pk not in found and rule_matches(rule, properties, name, self.memo):
                found.append(defined_pk)
        return tuple(found)
