"""The OpenAPI description of what the API accepts, value by value, kept next to the validation it describes
(users_app/validation.py, users_app/forms.py, reports_app/query.py): the read API's authentication, the JSON
Schema of each kind of value (user_id, identity, app_id, properties, timestamps...), and the rules across
fields of a body that JSON Schema can only state with `anyOf` (`add_body_rules`, a postprocessing hook).

The schema is exact where JSON Schema can be: a value it admits is accepted, a value it refuses is refused
(tests/test_openapi_conformance.py runs schemathesis' positive and negative checks against it; a bulk call or
a browser batch refuses its invalid items one by one and keeps the others, SPEC 3). Rules across
query parameters (`from` before `to`, the report's bucket cap, a filter's value) and the clock-relative end of
the timestamp window are stated in the descriptions. Text never holds NUL characters (PostgreSQL cannot)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from events_app.services.ingest import MAX_BULK_ITEMS
from users_app.models import IDENTITY_MAX_LENGTH, MAX_USER_ID, PROPERTY_KEY_MAX_LENGTH, PROPERTY_VALUE_MAX_LENGTH
from users_app.services.identity_guard import BUILTIN_BLOCKED_IDENTITIES, QUOTES
from users_app.validation import EARLIEST_TIMESTAMP, MAX_PROPERTIES_PER_CALL, RESERVED_PROPERTY_KEYS, USER_ID_SPACE


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "users_app.api_common.ApiKeyAuthentication"
    name = "EnvironmentApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <environment API key>` (printed by create_environment).",
        }


def digits_at_most(bound: int) -> str:
    """A regex for the decimal numbers of exactly len(str(bound)) digits that are at most `bound`."""
    text = str(bound)
    alternatives = [text]
    for position, digit in enumerate(text):
        if digit != "0":
            rest = len(text) - position - 1
            alternatives.append(f"{text[:position]}[0-{int(digit) - 1}][0-9]{{{rest}}}")
    return "|".join(alternatives)


_SPACE = "[" + "".join({" ": " ", "\t": r"\t", "\n": r"\n", "\r": r"\r", "\f": r"\f", "\v": r"\v"}[char]
                       for char in USER_ID_SPACE) + "]*"
_LARGEST = MAX_USER_ID - 1
# Up to 15 digits is always below 2**53; 16 digits (leading zeros included) up to 9007199254740991.
USER_ID_PATTERN = (f"^{_SPACE}(?:[0-9]{{1,{len(str(_LARGEST)) - 1}}}|{digits_at_most(_LARGEST)}){_SPACE}$")
USER_ID_TEXT = {"type": "string", "pattern": USER_ID_PATTERN,
                "description": "A decimal string, 0 <= user_id < 2**53 (ASCII digits; spaces around are ignored)."}
USER_ID = {"oneOf": [USER_ID_TEXT, {"type": "integer", "minimum": 0, "maximum": _LARGEST}],
           "description": "A decimal string or an integer, 0 <= user_id < 2**53."}

NOT_BLANK = r"\S"  # some character that is not white space (values are trimmed)
NULL = {"type": "null"}  # an optional field sent as null is the same as one left out


def short_text(max_length: int, description: str = "", *, optional: bool = True) -> dict:
    """parse_short_string and parse_app_id: a non-blank string of at most `max_length` characters, or an
    integer (written in decimal, so at most `max_length` characters too)."""
    most = 10**max_length - 1
    schema = {"oneOf": [{"type": "string", "maxLength": max_length, "pattern": NOT_BLANK},
                        {"type": "integer", "minimum": -(10 ** (max_length - 1) - 1), "maximum": most},
                        *([NULL] if optional else [])]}
    return {**schema, "description": description} if description else schema


APP_ID = short_text(64, "The environment's app_id (a string or a number).", optional=False)

IDENTITY_TEXT = {"type": "string", "maxLength": IDENTITY_MAX_LENGTH, "pattern": NOT_BLANK}
# A number is stored written in decimal (integers) or as repr() (1.5): at most 255 characters either way.
IDENTITY_NUMBER = {"type": "number", "exclusiveMinimum": -(10 ** (IDENTITY_MAX_LENGTH - 1)),
                   "exclusiveMaximum": 10**IDENTITY_MAX_LENGTH}
IDENTITY = {"oneOf": [IDENTITY_TEXT, IDENTITY_NUMBER],
            "description": f"A string of 1 to {IDENTITY_MAX_LENGTH} characters (trimmed) or a number."}


def _any_case(word: str) -> str:
    # Identities are compared case-folded: "ſ" folds to "s" and the Kelvin sign to "k" as well.
    extra = {"s": "ſ", "k": "\u212a"}
    return "".join(f"[{char}{char.upper()}{extra.get(char, '')}]" if char.isalpha()
                   else f"\\{char}" if char in "[]" else char for char in word)


_QUOTE_OR_SPACE = "[\\s" + QUOTES + "]*"
BLOCKED_IDENTITY_PATTERN = (f"^{_QUOTE_OR_SPACE}(?:"
                            + "|".join(_any_case(word) for word in sorted(BUILTIN_BLOCKED_IDENTITIES))
                            + f")?{_QUOTE_OR_SPACE}$")
WRITTEN_IDENTITY = {
    "oneOf": [{**IDENTITY_TEXT, "not": {"pattern": BLOCKED_IDENTITY_PATTERN}},
              {**IDENTITY_NUMBER, "not": {"enum": [0, -1]}}],
    "description": (f"{IDENTITY['description']} Refused with `identity_blocked`: identities that are not one "
                    f"person's ({', '.join(sorted(BUILTIN_BLOCKED_IDENTITIES))}, compared trimmed, without outer "
                    "quotes and case-insensitively) and those on the environment's own block list."),
}

PROPERTY_KEY = {"maxLength": PROPERTY_KEY_MAX_LENGTH, "pattern": NOT_BLANK}
PROPERTY_TEXT = {"type": "string", "maxLength": PROPERTY_VALUE_MAX_LENGTH}
EVENT_PROPERTIES = {
    "type": ["object", "null"], "maxProperties": MAX_PROPERTIES_PER_CALL, "propertyNames": PROPERTY_KEY,
    "additionalProperties": {"oneOf": [PROPERTY_TEXT, {"type": "number"}, {"type": "boolean"}]},
    "description": "Strings, numbers or booleans (stored as \"true\"/\"false\").",
}
USER_PROPERTIES = {
    "type": "object", "maxProperties": MAX_PROPERTIES_PER_CALL,
    "propertyNames": {**PROPERTY_KEY, "not": {"enum": sorted(RESERVED_PROPERTY_KEYS)}},
    "additionalProperties": {"oneOf": [PROPERTY_TEXT, {"type": "number"}, {"type": "null"}]},
    "description": "Strings or numbers; null removes the property. `user_id` and `id` are reserved.",
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
    themselves (users_app/validation.py): these serializers only describe them."""
    return extend_schema_field(schema)(type("DocumentedField", (serializers.JSONField,), {}))(**kwargs)


def _object(properties: dict, required: list[str], **extra) -> dict:
    return {"type": "object", "properties": properties, "required": required, **extra}


_TARGET = [{"required": ["identity"]}, {"required": ["user_id"]}]
_TRACK_FIELDS = {
    "identity": WRITTEN_IDENTITY, "user_id": USER_ID, "event": {"type": "string", "maxLength": 255,
                                                                "pattern": NOT_BLANK},
    "properties": EVENT_PROPERTIES, "timestamp": TIMESTAMP, "idempotency_key": short_text(255),
    "session_id": short_text(64),
}
def bulk_of(item: dict) -> dict:
    return {"type": "array", "minItems": 1, "maxItems": MAX_BULK_ITEMS, "items": item,
            "description": "A bulk call: its other fields are not read. Invalid items are rejected with their index, "
                           "the others kept; a 400 only when none is valid."}


TRACK_ITEM = _object(_TRACK_FIELDS, ["event"], anyOf=_TARGET)
USER_PROPERTIES_ITEM = _object({"identity": WRITTEN_IDENTITY, "user_id": USER_ID,
                                "properties": {"oneOf": [USER_PROPERTIES, {"type": "null"}]}}, ["properties"],
                               anyOf=_TARGET)

# Rules across the fields of a body, by component name: a single call names its person by identity or
# user_id (identity wins when both are sent); a bulk call is its array alone.
BODY_RULES = {
    "TrackRequest": {"anyOf": [{"required": ["events"]},
                               {"required": ["event", "identity"]}, {"required": ["event", "user_id"]}]},
    "AddUserPropertiesRequest": {"anyOf": [{"required": ["users"]}, {"required": ["properties", "identity"]},
                                           {"required": ["properties", "user_id"]}]},
}


_CALL_TIMES = {"timestamp": TIMESTAMP, "idempotency_key": short_text(255), "session_id": short_text(64)}
BROWSER_CALL = {"oneOf": [
    _object({"type": {"type": "string", "enum": ["pageview"]}, "properties": EVENT_PROPERTIES, **_CALL_TIMES},
            ["type"]),
    _object({"type": {"type": "string", "enum": ["track"]}, "event": _TRACK_FIELDS["event"],
             "properties": EVENT_PROPERTIES, **_CALL_TIMES}, ["type", "event"]),
    _object({"type": {"type": "string", "enum": ["identify"]}, "identity": WRITTEN_IDENTITY, "timestamp": TIMESTAMP},
            ["type", "identity"]),
    _object({"type": {"type": "string", "enum": ["add_user_properties"]}, "properties": USER_PROPERTIES},
            ["type", "properties"]),
], "description": "A call is rejected (with its index) when wrong; the others are kept."}

SENT_AT = {"description": "The device's clock (epoch ms) when sent: call timestamps are corrected by its skew. "
                          "Anything but a number is ignored."}

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


CURSOR = {"type": "string", "description": "A `next` value this API gave out (anything else is 400 "
                                           "`invalid_cursor`); empty or absent: the first page."}


def user_query_parameters() -> list[OpenApiParameter]:
    """The Users view's query string (users_app/forms.py), shared by the page and GET /api/v1/users/search."""
    from users_app.forms import KINDS, MAX_COLUMNS, MAX_PROPERTY_FILTERS, MAX_VALUES_PER_FILTER, PERIODS
    from users_app.selectors import PropertyFilter

    parameters = [
        OpenApiParameter("period", choice(PERIODS), description="Default 7d. Checked even when from/to replace it."),
        OpenApiParameter("from", or_empty(DATE), description="YYYY-MM-DD, UTC (instead of period)."),
        OpenApiParameter("to", or_empty(DATE), description="YYYY-MM-DD, inclusive; not before `from`."),
        OpenApiParameter("kind", choice(KINDS)),
        OpenApiParameter("q", text(IDENTITY_MAX_LENGTH), description="Identity (exact or prefix) or user_id."),
        OpenApiParameter("col", at_most(MAX_COLUMNS, text(PROPERTY_KEY_MAX_LENGTH), {"pattern": NOT_BLANK}),
                         description=f"Property columns (default plan): at most {MAX_COLUMNS}, blank ones left out."),
    ]
    for index in range(MAX_PROPERTY_FILTERS):
        name = f"f{index}"
        parameters += [
            OpenApiParameter(name, text(PROPERTY_KEY_MAX_LENGTH), description=(
                f"Property key of filter {index} (f0 .. f{MAX_PROPERTY_FILTERS - 1}, all must hold); empty: none.")),
            OpenApiParameter(f"{name}_op", choice(PropertyFilter.OPERATORS), description="Default eq."),
            OpenApiParameter(f"{name}_v", at_most(MAX_VALUES_PER_FILTER, text(PROPERTY_VALUE_MAX_LENGTH),
                                                  {"minLength": 1}),
                             description=(f"Value(s) for eq / in: at most {MAX_VALUES_PER_FILTER} non-empty ones, "
                                          f"at least one when `{name}` is set.")),
        ]
    return parameters


def add_body_rules(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS): BODY_RULES into their components."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, rules in BODY_RULES.items():
        if name in schemas:
            schemas[name].update(rules)
    return result
