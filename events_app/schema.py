"""events_app's part of the OpenAPI description (the values are config/kernel/schema.py): the track and
add_user_properties items, single and bulk, the browser endpoint's calls, and the rules across the fields of a
body that JSON Schema can only state with `anyOf` (`add_body_rules`, a postprocessing hook)."""

from config.kernel.schema import (
    EVENT_PROPERTIES,
    NOT_BLANK,
    TIMESTAMP,
    USER_ID,
    USER_PROPERTIES,
    json_object,
    short_text,
)
from events_app.models import BROWSER_EVENT_NAME_MAX_LENGTH, EVENT_NAME_MAX_BYTES, EVENT_NAME_MAX_LENGTH
from events_app.services.ingest import MAX_BULK_ITEMS
from users_app.schema import WRITTEN_IDENTITY

_TARGET = [{"required": ["identity"]}, {"required": ["user_id"]}]
# Heap: "either the identity or user_id param, but not both" (400 `identity_and_user_id`).
_NOT_BOTH = {"required": ["identity", "user_id"]}
_BYTES = f"At most {EVENT_NAME_MAX_BYTES} bytes in UTF-8 as well (a PostgreSQL index bound; see docs/api.md)."
_TRACK_FIELDS = {
    "identity": WRITTEN_IDENTITY,
    "user_id": USER_ID,
    "event": {"type": "string", "maxLength": EVENT_NAME_MAX_LENGTH, "pattern": NOT_BLANK, "description": _BYTES},
    "properties": EVENT_PROPERTIES,
    "timestamp": TIMESTAMP,
    "idempotency_key": short_text(255),
    "session_id": short_text(64),
}


def bulk_of(item: dict) -> dict:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_BULK_ITEMS,
        "items": item,
        "description": "A bulk call: its other fields are not read. Invalid items are rejected with their index, "
        "the others kept; a 400 only when none is valid.",
    }


TRACK_ITEM = json_object(_TRACK_FIELDS, ["event"], anyOf=_TARGET, **{"not": _NOT_BOTH})
USER_PROPERTIES_ITEM = json_object(
    {"identity": WRITTEN_IDENTITY, "user_id": USER_ID, "properties": {"oneOf": [USER_PROPERTIES, {"type": "null"}]}},
    ["properties"],
    anyOf=_TARGET,
    **{"not": _NOT_BOTH},
)


def _single_names_one(list_field: str) -> dict:
    """A single call (no `list_field`) names its person by identity or user_id, not both."""
    return {"not": {"required": ["identity", "user_id"], "not": {"required": [list_field]}}}


# Rules across the fields of a body, by component name: a single call names its person by identity or
# user_id (not both, as Heap's references say); a bulk call is its array alone.
BODY_RULES = {
    "TrackRequest": {
        "anyOf": [{"required": ["events"]}, {"required": ["event", "identity"]}, {"required": ["event", "user_id"]}],
        **_single_names_one("events"),
    },
    "AddUserPropertiesRequest": {
        "anyOf": [
            {"required": ["users"]},
            {"required": ["properties", "identity"]},
            {"required": ["properties", "user_id"]},
        ],
        **_single_names_one("users"),
    },
}


_CALL_TIMES = {"timestamp": TIMESTAMP, "idempotency_key": short_text(255), "session_id": short_text(64)}
BROWSER_CALL = {
    "oneOf": [
        json_object(
            {"type": {"type": "string", "enum": ["pageview"]}, "properties": EVENT_PROPERTIES, **_CALL_TIMES}, ["type"]
        ),
        json_object(
            {
                "type": {"type": "string", "enum": ["track"]},
                "event": {"type": "string", "maxLength": BROWSER_EVENT_NAME_MAX_LENGTH, "pattern": NOT_BLANK},
                "properties": EVENT_PROPERTIES,
                **_CALL_TIMES,
            },
            ["type", "event"],
        ),
        json_object(
            {"type": {"type": "string", "enum": ["identify"]}, "identity": WRITTEN_IDENTITY, "timestamp": TIMESTAMP},
            ["type", "identity"],
        ),
        json_object(
            {"type": {"type": "string", "enum": ["add_user_properties"]}, "properties": USER_PROPERTIES},
            ["type", "properties"],
        ),
        json_object(
            {
                "type": {"type": "string", "enum": ["add_account_properties"]},
                "properties": {
                    **USER_PROPERTIES,
                    "description": "Properties of the account of the batch's current user (the environment's "
                    "account id property); rejected when the user has none. The value rules of user properties.",
                },
            },
            ["type", "properties"],
        ),
    ],
    "description": "A call is rejected (with its index) when wrong; the others are kept.",
}

SENT_AT = {
    "description": "The device's clock (epoch ms) when sent: call timestamps are corrected by its skew. "
    "Anything but a number is ignored."
}


def add_body_rules(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS): BODY_RULES into their components."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, rules in BODY_RULES.items():
        if name in schemas:
            schemas[name].update(rules)
    return result


# ---- add_account_properties (SPEC 11) --------------------------------------------------------------------------
ACCOUNT_ID = {
    "oneOf": [{"type": "string", "minLength": 1, "maxLength": 255, "pattern": NOT_BLANK}, {"type": "number"}],
    "description": "The account's id: the value people have in the environment's account id property (a number "
    "is the same account as its decimal text).",
}
ACCOUNT_PROPERTIES_ITEM = json_object(
    {"account_id": ACCOUNT_ID, "properties": {"oneOf": [USER_PROPERTIES, {"type": "null"}]}},
    ["account_id", "properties"],
)
BODY_RULES["AddAccountPropertiesRequest"] = {
    "anyOf": [{"required": ["accounts"]}, {"required": ["account_id", "properties"]}]
}
