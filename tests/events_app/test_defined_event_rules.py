"""The rule language of defined events (events_app/defined_events/rules.py) and its one evaluator (matching.py)."""

import re

import pytest

from config.kernel.errors import InvalidInput
from events_app.defined_events.matching import CompiledDefinitions, rule_matches
from events_app.defined_events.rules import SELECTOR_PATTERN, rule_compile, rules_parse, selector_parse

BUY_IN_NAV = "@body;|@div;#main;.nav;.dark;|@button;#buy;.btn;.primary;|@span;.label;|"


def matches(rule: dict, properties: dict, name: str = "click") -> bool:
    return rule_matches(rule_compile(rules_parse([rule])[0]), properties, name)


@pytest.mark.parametrize(
    "selector",
    [
        "#buy",
        "button",
        "BUTTON#buy",
        ".btn",
        ".btn.primary",
        "button.btn#buy",
        "*",
        "span",
        "div button",
        "div > button",
        "body span",
        "#main > #buy > .label",
        "div.nav.dark span.label",
        "  #buy  ",
    ],
)
def test_a_selector_matches_the_target_or_any_ancestor(selector):
    assert matches({"event": "click", "selector": selector}, {"hierarchy": BUY_IN_NAV})


@pytest.mark.parametrize(
    "selector",
    [
        "#sell",
        "a",
        ".btn.secondary",
        "body > button",
        "#buy div",
        "span > button",
        "span button",
        "button > div",
        "#main > span",
        "html body",
    ],
)
def test_a_selector_that_names_no_element_of_the_chain_does_not_match(selector):
    assert not matches({"event": "click", "selector": selector}, {"hierarchy": BUY_IN_NAV})


def test_ids_and_classes_are_case_sensitive_tags_are_not():
    assert not matches({"event": "click", "selector": "#Buy"}, {"hierarchy": BUY_IN_NAV})
    assert not matches({"event": "click", "selector": ".BTN"}, {"hierarchy": BUY_IN_NAV})
    assert matches({"event": "click", "selector": "DIV#main"}, {"hierarchy": BUY_IN_NAV})


def test_without_a_hierarchy_the_target_fields_are_the_chain():
    properties = {"target_tag": "A", "target_id": "signup", "target_class": "cta big"}
    assert matches({"event": "click", "selector": "a#signup.cta.big"}, properties)
    assert not matches({"event": "click", "selector": "div a"}, properties)
    assert not matches({"event": "click", "selector": "a"}, {})


def test_every_field_of_a_rule_must_match():
    properties = {"hierarchy": BUY_IN_NAV, "target_text": "Buy now", "path": "/pricing/annual"}
    rule = {"event": "click", "selector": "#buy", "text": "Buy now", "path": "/pricing*"}
    assert matches(rule, properties)
    assert not matches(rule, properties, name="submit")
    assert not matches({**rule, "text": "Buy"}, properties)
    assert not matches({**rule, "text": "buy now"}, properties)
    assert not matches({**rule, "path": "/pricing"}, properties)
    assert matches({**rule, "path": "*/annual"}, properties)
    assert matches({**rule, "path": "/p*g*"}, properties)
    assert not matches({**rule, "path": "/docs*"}, properties)
    assert not matches(rule, {**properties, "path": None})


def test_a_glob_has_no_other_wildcards():
    assert matches({"event": "click", "path": "/a.b?c[d]"}, {"path": "/a.b?c[d]"})
    assert not matches({"event": "click", "path": "/a.b"}, {"path": "/aXb"})


def test_any_event_name_and_an_event_name_alone():
    assert matches({"event": "Sign Up"}, {}, name="Sign Up")
    assert not matches({"event": "Sign Up"}, {}, name="sign up")


def test_a_defined_event_matches_when_any_rule_does_and_names_each_definition_once():
    compiled = CompiledDefinitions.of(
        [
            (7, [{"event": "click", "selector": "#buy"}, {"event": "click", "selector": ".btn"}]),
            (8, [{"event": "submit"}]),
        ]
    )
    assert compiled.matching("click", {"hierarchy": BUY_IN_NAV}) == (7,)
    assert compiled.matching("submit", {}) == (8,)
    assert compiled.matching("pageview", {"hierarchy": BUY_IN_NAV}) == ()


@pytest.mark.parametrize(
    ("selector", "reason"),
    [
        ("#buy, #sell", "Commas"),
        ("a[href]", "Attribute"),
        ("a:hover", "pseudo"),
        ("a::before", "pseudo"),
        ("> a", "combinator"),
        ("a >", "combinator"),
        ("a > > b", "combinator"),
        ("a + b", "Unexpected"),
        ("a ~ b", "Unexpected"),
        ("#", "followed by"),
        ("#a.b.", "followed by"),
        ("1a", "Unexpected"),
        ("a*", "Unexpected"),
        ("#über", "followed by"),
        (" ".join(["a"] * 17), "at most"),
    ],
)
def test_unsupported_selectors_are_refused_naming_the_rule(selector, reason):
    with pytest.raises(InvalidInput) as caught:
        rules_parse([{"event": "click"}, {"event": "click", "selector": selector}])
    assert caught.value.field == "rules[1].selector"
    assert reason.lower() in caught.value.message.lower()
    # The API's JSON Schema says the same (tests/test_openapi_conformance.py holds the API to it).
    assert not re.search(SELECTOR_PATTERN, selector)


@pytest.mark.parametrize("selector", ["#buy", "div  >span.x", "*", "a b c", "\t.x\n", "x-y#a_b-c.d-1"])
def test_the_schema_pattern_and_the_parser_agree_on_valid_selectors(selector):
    selector_parse(selector)
    assert re.search(SELECTOR_PATTERN, selector)


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        (None, "rules"),
        ([], "rules"),
        ("click", "rules"),
        ([{"event": "x"}] * 21, "rules"),
        (["click"], "rules[0]"),
        ([{"selector": "#buy"}], "rules[0].event"),
        ([{"event": ""}], "rules[0].event"),
        ([{"event": 5}], "rules[0].event"),
        ([{"event": "x" * 1025}], "rules[0].event"),
        ([{"event": "click", "text": ""}], "rules[0].text"),
        ([{"event": "click", "text": "x" * 1025}], "rules[0].text"),
        ([{"event": "click", "path": ["/a"]}], "rules[0].path"),
        ([{"event": "click", "selector": "#a" * 300}], "rules[0].selector"),
        ([{"event": "click", "colour": "red"}], "rules[0].colour"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(rules, field):
    with pytest.raises(InvalidInput) as caught:
        rules_parse(rules)
    assert caught.value.field == field


def test_remembered_verdicts_belong_to_their_selector_and_hierarchy():
    compiled = CompiledDefinitions.of(
        [(1, [{"event": "click", "selector": "#buy"}]), (2, [{"event": "click", "selector": "#main > button"}])]
    )
    sell = BUY_IN_NAV.replace("#buy", "#sell")
    for _ in range(3):
        assert compiled.matching("click", {"hierarchy": BUY_IN_NAV}) == (1, 2)
        assert compiled.matching("click", {"hierarchy": sell}) == (2,)
        assert compiled.matching("click", {"hierarchy": "@body;|@main;#main;|@a;|"}) == ()
