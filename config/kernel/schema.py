"""The OpenAPI description of the values every API accepts, kept next to the validation it describes
(config/kernel/validation.py): the JSON Schema of each kind of value (user_id, identity, app_id, properties,
timestamps...) and the helpers the apps' schemas are built from (users_app/schema.py, events_app/schema.py,
reports_app/api.py).

The schema is exact where JSON Schema can be: a value it admits is accepted, a value it refuses is refused
(tests/test_openapi_conformance.py runs schemathesis' positive and negative checks against it; a bulk call or
a browser batch refuses its invalid items one by one and keeps the others, SPEC 3). Rules across
query parameters (`from` before `to`, the report's bucket cap, a filter's value) and the clock-relative end of
the timestamp window are stated in the descriptions. Text never holds NUL characters (PostgreSQL cannot)."""

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from config.kernel.limits import IDENTITY_MAX_LENGTH, MAX_USER_ID, PROPERTY_KEY_MAX_LENGTH, PROPERTY_VALUE_MAX_LENGTH
from config.kernel.validation import (
    EARLIEST_TIMESTAMP,
    MAX_PROPERTIES_PER_CALL,
    RESERVED_IN_ANY_CASE,
    RESERVED_PROPERTY_KEYS,
    USER_ID_SPACE,
)

ERROR_SCHEMA = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "field": serializers.CharField(allow_null=True),
            },
        )
    },
)
# What any read API call can answer besides its 200: bad parameters, a missing or unknown key.
READ_ERRORS = {400: ERROR_SCHEMA, 401: ERROR_SCHEMA}


def digits_at_most(bound: int) -> str:
    """A regex for the decimal numbers of exactly len(str(bound)) digits that are at most `bound`."""
    text = str(bound)
    alternatives = [text]
    for position, digit in enumerate(text):
        if digit != "0":
            rest = len(text) - position - 1
            alternatives.append(f"{text[:position]}[0-{int(digit) - 1}][0-9]{{{rest}}}")
    return "|".join(alternatives)


_SPACE = (
    "["
    + "".join(
        {" ": " ", "\t": r"\t", "\n": r"\n", "\r": r"\r", "\f": r"\f", "\v": r"\v"}[char] for char in USER_ID_SPACE
    )
    + "]*"
)
_LARGEST = MAX_USER_ID - 1
# Up to 15 digits is always below 2**53; 16 digits (leading zeros included) up to 9007199254740991.
USER_ID_PATTERN = f"^{_SPACE}(?:[0-9]{{1,{len(str(_LARGEST)) - 1}}}|{digits_at_most(_LARGEST)}){_SPACE}$"
USER_ID_TEXT = {
    "type": "string",
    "pattern": USER_ID_PATTERN,
    "description": "A decimal string, 0 <= user_id < 2**53 (ASCII digits; spaces around are ignored).",
}
USER_ID = {
    "oneOf": [USER_ID_TEXT, {"type": "integer", "minimum": 0, "maximum": _LARGEST}],
    "description": "A decimal string or an integer, 0 <= user_id < 2**53.",
}

# Some character that str.strip() keeps: values are trimmed in Python, whose white space also holds the
# separators U+001C..U+001F and U+0085, which ECMA's \S (the schema's readers: schemathesis, clients) lets through.
NOT_BLANK = "[^" + "".join(f"\\u{ord(char):04x}" for char in map(chr, range(0x3001)) if char.isspace()) + "]"
NULL = {"type": "null"}  # an optional field sent as null is the same as one left out


def short_text(max_length: int, description: str = "", *, optional: bool = True) -> dict:
    """parse_short_string and parse_app_id: a non-blank string of at most `max_length` characters, or an
    integer (written in decimal, so at most `max_length` characters too)."""
    most = 10**max_length - 1
    schema = {
        "oneOf": [
            {"type": "string", "maxLength": max_length, "pattern": NOT_BLANK},
            {"type": "integer", "minimum": -(10 ** (max_length - 1) - 1), "maximum": most},
            *([NULL] if optional else []),
        ]
    }
    return {**schema, "description": description} if description else schema


APP_ID = short_text(64, "The environment's app_id (a string or a number).", optional=False)

IDENTITY_TEXT = {"type": "string", "maxLength": IDENTITY_MAX_LENGTH, "pattern": NOT_BLANK}
# A number is stored written in decimal (integers) or as repr() (1.5): at most 255 characters either way.
IDENTITY_NUMBER = {
    "type": "number",
    "exclusiveMinimum": -(10 ** (IDENTITY_MAX_LENGTH - 1)),
    "exclusiveMaximum": 10**IDENTITY_MAX_LENGTH,
}
IDENTITY = {
    "oneOf": [IDENTITY_TEXT, IDENTITY_NUMBER],
    "description": f"A string of 1 to {IDENTITY_MAX_LENGTH} characters (trimmed) or a number.",
}


def any_case(word: str) -> str:
    """A pattern for `word` in any letter case: JSON Schema's regexes have no case-insensitive flag."""
    return "".join(f"[{char.lower()}{char.upper()}]" if char.isalpha() else char for char in word)


PROPERTY_KEY = {"maxLength": PROPERTY_KEY_MAX_LENGTH, "pattern": NOT_BLANK}
PROPERTY_TEXT = {"type": "string", "maxLength": PROPERTY_VALUE_MAX_LENGTH}
RESERVED_KEY_PATTERN = (
    "^(?:"
    + "|".join(any_case(key) if key in RESERVED_IN_ANY_CASE else key for key in sorted(RESERVED_PROPERTY_KEYS))
    + ")$"
)
# The items of an array property are joined and cut to 1024 characters, so an item may be of any length.
PROPERTY_ARRAY = {"type": "array", "items": {"type": ["string", "number", "boolean"]}}
EVENT_PROPERTIES = {
    "type": ["object", "null"],
    "maxProperties": MAX_PROPERTIES_PER_CALL,
    "propertyNames": PROPERTY_KEY,
    "additionalProperties": {"oneOf": [PROPERTY_TEXT, {"type": "number"}, {"type": "boolean"}, NULL, PROPERTY_ARRAY]},
    "description": 'Strings, numbers, booleans (stored as "true"/"false") and arrays of those (stored as Heap '
    'stores them: the items joined by "||", cut at 1024 characters). A null property is dropped.',
}
USER_PROPERTIES = {
    "type": "object",
    "maxProperties": MAX_PROPERTIES_PER_CALL,
    "propertyNames": {**PROPERTY_KEY, "not": {"pattern": RESERVED_KEY_PATTERN}},
    "additionalProperties": {"oneOf": [PROPERTY_TEXT, {"type": "number"}, {"type": "boolean"}, NULL]},
    "description": 'Strings, numbers or booleans (stored as "true"/"false"); null removes the property. '
    "`user_id` and `id` (in any letter case) are reserved.",
}

_EARLIEST_MS = int(EARLIEST_TIMESTAMP.timestamp() * 1000)
TIMESTAMP = {
    "oneOf": [
        # Years from 2000 on; ISO 8601 without an offset is UTC.
        {"type": "string", "format": "date-time", "pattern": "^(?:2[0-9]{3}|[3-9][0-9]{3})-"},
        {"type": "number", "minimum": _EARLIEST_MS, "description": "Unix epoch milliseconds"},
        NULL,
    ],
    "description": "ISO 8601 or Unix epoch milliseconds, from 2000-01-01 to one day after the server's clock. "
    "Default: now.",
}


def schema_field(schema: dict, **kwargs) -> serializers.Field:
    """A field of an inline request serializer documented as `schema`. The ingest views parse their bodies
    themselves (config/kernel/validation.py): these serializers only describe them."""
    return extend_schema_field(schema)(type("DocumentedField", (serializers.JSONField,), {}))(**kwargs)


def json_object(properties: dict, required: list[str], **extra) -> dict:
    return {"type": "object", "properties": properties, "required": required, **extra}


# ---- query parameters ------------------------------------------------------------------------------------


def or_empty(schema: dict) -> dict:
    """A query parameter whose empty value (`?measure=`) means the same as leaving it out."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def choice(values) -> dict:
    return or_empty({"type": "string", "enum": list(values)})


DATE = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}


def text(max_length: int, **extra) -> dict:
    return {"type": "string", "maxLength": max_length, **extra}


def at_most(count: int, items: dict, counted: dict) -> dict:
    """A repeated parameter with at most `count` values that are `counted` (the empty ones a form sends for
    its spare input are not)."""
    return {"type": "array", "items": items, "contains": counted, "minContains": 0, "maxContains": count}


CURSOR = {
    "type": "string",
    "description": "A `next` value this API gave out (anything else is 400 "
    "`invalid_cursor`); empty or absent: the first page.",
}
