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
from events_app.services.ingest import MAX_BULK_ITEMS
from users_app.schema import WRITTEN_IDENTITY

_TARGET = [{"required": ["identity"]}, {"required": ["user_id"]}]
_TRACK_FIELDS = {
    "identity": WRITTEN_IDENTITY,
    "user_id": USER_ID,
    "event": {"type": "string", "maxLength": 255, "pattern": NOT_BLANK},
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


TRACK_ITEM = json_object(_TRACK_FIELDS, ["event"], anyOf=_TARGET)
USER_PROPERTIES_ITEM = json_object(
    {"identity": WRITTEN_IDENTITY, "user_id": USER_ID, "properties": {"oneOf": [USER_PROPERTIES, {"type": "null"}]}},
    ["properties"],
    anyOf=_TARGET,
)

# Rules across the fields of a body, by component name: a single call names its person by identity or
# user_id (identity wins when both are sent); a bulk call is its array alone.
BODY_RULES = {
    "TrackRequest": {
        "anyOf": [{"required": ["events"]}, {"required": ["event", "identity"]}, {"required": ["event", "user_id"]}]
    },
    "AddUserPropertiesRequest": {
        "anyOf": [
            {"required": ["users"]},
            {"required": ["properties", "identity"]},
            {"required": ["properties", "user_id"]},
        ]
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
                "event": _TRACK_FIELDS["event"],
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
