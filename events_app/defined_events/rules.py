"""A defined event's rules: what a rule may say, parsed and validated (400 naming the field), and compiled into the
objects matching.py evaluates. The one home of the rule language (docs/api.md, "Defined events"):

    {"event": "click", "selector": "#buy", "text": "Buy now", "path": "/pricing*"}

- `event` (required): the raw event name, exactly;
- `selector`: a subset of CSS: compound selectors of `tag`, `*`, `#id` and `.class` (any number of each), joined
  by descendant (whitespace) or child (`>`) combinators. No commas (write several rules), no attributes, no
  pseudo-classes. Ids and classes are the characters the tracker keeps, [A-Za-z0-9_-]; tags are compared in
  lower case, ids and classes exactly;
- `text`: the element's `target_text`, exactly;
- `path`: a glob on the page's `path`, `*` (any run of characters, `/` included) the only wildcard.
"""

import re
from dataclasses import dataclass

from config.kernel.errors import InvalidInput
from config.kernel.limits import PROPERTY_VALUE_MAX_LENGTH
from config.kernel.validation import check_text, json_type_name
from events_app.models import EVENT_NAME_MAX_LENGTH

NAME_MAX_LENGTH = 255
MAX_RULES = 20
SELECTOR_MAX_LENGTH = 512
MAX_COMPOUNDS = 16
# target_text and path are event properties: a longer pattern could never match what ingest stores.
TEXT_MAX_LENGTH = PROPERTY_VALUE_MAX_LENGTH
PATH_MAX_LENGTH = PROPERTY_VALUE_MAX_LENGTH
RULE_FIELDS = ("event", "selector", "text", "path")

CHILD, DESCENDANT = ">", " "
# ASCII white space only: the same set in the parser and in the API's JSON Schema (SELECTOR_PATTERN), whose
# regexes and Python's disagree on what else is white space.
SPACE = " \t\n\r\f"
_IDENT = re.compile(r"[A-Za-z0-9_-]+")
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_COMBINATOR = re.compile(rf"([{SPACE}]*>[{SPACE}]*|[{SPACE}]+)")
# The grammar selector_parse accepts, as one regex (the OpenAPI schema of a rule's `selector`).
_COMPOUND_PATTERN = r"(?:(?:[A-Za-z][A-Za-z0-9-]*|\*)(?:[#.][A-Za-z0-9_-]+)*|(?:[#.][A-Za-z0-9_-]+)+)"
SELECTOR_PATTERN = (
    rf"^[{SPACE}]*{_COMPOUND_PATTERN}(?:(?:[{SPACE}]*>[{SPACE}]*|[{SPACE}]+){_COMPOUND_PATTERN}){{0,15}}[{SPACE}]*$"
)


def _invalid(field: str, message: str, code: str = "invalid_field") -> InvalidInput:
    return InvalidInput(code, message, field)


@dataclass(frozen=True)
class Compound:
    """One compound selector: `button#buy.btn.primary` (tag None for `*` or none written)."""

    tag: str | None = None
    ids: tuple[str, ...] = ()
    classes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Selector:
    """Compounds left to right; combinators[i] joins compounds[i] and compounds[i + 1]."""

    compounds: tuple[Compound, ...]
    combinators: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    event: str
    selector: Selector | None = None
    text: str | None = None
    path: re.Pattern | None = None


def _compound(text: str, field: str) -> Compound:
    position, tag, ids, classes = 0, None, [], set()
    if text.startswith("*"):
        position = 1
    else:
        found = _TAG.match(text)
        if found:
            tag, position = found.group().lower(), found.end()
    while position < len(text):
        marker = text[position]
        if marker in "[:":
            raise _invalid(field, "Attribute selectors and pseudo-classes are not supported: use tag, *, #id, .class.")
        if marker not in "#.":
            raise _invalid(field, f"Unexpected character {marker!r} in the selector.")
        found = _IDENT.match(text, position + 1)
        if not found:
            raise _invalid(field, f"`{marker}` must be followed by a name of letters, digits, `_` or `-`.")
        (ids.append if marker == "#" else classes.add)(found.group())
        position = found.end()
    return Compound(tag=tag, ids=tuple(ids), classes=frozenset(classes))


def selector_parse(text: str, field: str = "selector") -> Selector:
    """The selector subset (module docstring). Raises InvalidInput naming `field`."""
    if "," in text:
        raise _invalid(field, "Commas are not supported in a selector: write one rule per selector.")
    if any(marker in text for marker in "[]:()"):
        raise _invalid(field, "Attribute selectors and pseudo-classes are not supported: use tag, *, #id, .class.")
    tokens = _COMBINATOR.split(text.strip(SPACE))
    compounds, combinators = [], []
    for index, token in enumerate(tokens):
        if index % 2:
            combinators.append(CHILD if ">" in token else DESCENDANT)
        elif not token:
            raise _invalid(field, "A combinator (`>`) must stand between two selectors.")
        else:
            compounds.append(_compound(token, field))
    if not compounds:
        raise _invalid(field, "The selector is empty.")
    if len(compounds) > MAX_COMPOUNDS:
        raise _invalid(field, f"A selector has at most {MAX_COMPOUNDS} parts.")
    return Selector(compounds=tuple(compounds), combinators=tuple(combinators))


def path_pattern(glob: str) -> re.Pattern:
    """`*` matches any run of characters; everything else matches itself."""
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")), re.DOTALL)


def _text_field(raw: dict, key: str, field: str, max_length: int) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _invalid(field, f"`{field}` must be a non-empty string, not {json_type_name(value)}.")
    if len(value) > max_length:
        raise _invalid(field, f"`{field}` is longer than {max_length} characters.")
    return check_text(value, field)


def rule_parse(raw, index: int) -> dict:
    """One rule as sent: validated, and normalised to the JSON stored (only the fields given)."""
    prefix = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise _invalid(prefix, f"`{prefix}` must be a JSON object, not {json_type_name(raw)}.", "invalid_type")
    for key in raw:
        if key not in RULE_FIELDS:
            raise _invalid(f"{prefix}.{str(key)[:40]}", f"Unknown rule field; a rule has {', '.join(RULE_FIELDS)}.")
    if raw.get("event") is None:
        raise _invalid(f"{prefix}.event", "Every rule needs `event`, the raw event name.", "missing_field")
    # No byte bound (EVENT_NAME_MAX_BYTES): a longer name matches no stored event, which is all it can do wrong.
    rule = {"event": _text_field(raw, "event", f"{prefix}.event", EVENT_NAME_MAX_LENGTH)}
    selector = _text_field(raw, "selector", f"{prefix}.selector", SELECTOR_MAX_LENGTH)
    if selector is not None:
        selector_parse(selector, f"{prefix}.selector")
        rule["selector"] = selector.strip(SPACE)
    for key, max_length in (("text", TEXT_MAX_LENGTH), ("path", PATH_MAX_LENGTH)):
        value = _text_field(raw, key, f"{prefix}.{key}", max_length)
        if value is not None:
            rule[key] = value
    return rule


def rules_parse(raw) -> list[dict]:
    if raw is None:
        raise _invalid("rules", "`rules` is required: a list of 1 to 20 rules.", "missing_field")
    if not isinstance(raw, list) or not raw:
        raise _invalid("rules", f"`rules` must be a non-empty list of at most {MAX_RULES} rules.")
    if len(raw) > MAX_RULES:
        raise _invalid("rules", f"A defined event has at most {MAX_RULES} rules.")
    return [rule_parse(item, index) for index, item in enumerate(raw)]


def name_parse(raw) -> str:
    if raw is None:
        raise _invalid("name", "`name` is required.", "missing_field")
    if not isinstance(raw, str) or not raw.strip():
        raise _invalid("name", "`name` must be a non-empty string.")
    if len(raw) > NAME_MAX_LENGTH:  # as sent, as the schema counts it
        raise _invalid("name", f"`name` is at most {NAME_MAX_LENGTH} characters.")
    return check_text(raw.strip(), "name")


def rule_compile(stored: dict) -> Rule:
    """A stored (validated) rule, ready for matching.py."""
    selector = stored.get("selector")
    path = stored.get("path")
    return Rule(
        event=stored["event"],
        selector=selector_parse(selector) if selector else None,
        text=stored.get("text"),
        path=path_pattern(path) if path else None,
    )
