"""Parsing of attacker-controlled ingest values. Each function returns a clean value or raises InvalidInput
naming the field. Plain functions rather than DRF serializers: a bulk call validates 1,000 items and this
stays on the hot path."""

import math
from datetime import UTC, date, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.kernel.errors import InvalidInput
from config.kernel.limits import (
    IDENTITY_MAX_LENGTH,
    MAX_USER_ID,
    PROPERTY_KEY_MAX_LENGTH,
    PROPERTY_VALUE_MAX_LENGTH,
)

# User property keys Heap refuses: `user_id`, and `id` in every letter case ("ID, Id, iD, id": Heap's Add User
# Properties reference). The OpenAPI schema states the same as RESERVED_KEY_PATTERN (config/kernel/schema.py).
RESERVED_PROPERTY_KEYS = frozenset({"user_id", "id"})
RESERVED_IN_ANY_CASE = frozenset({"id"})
# Heap stores an array property as its items joined by "||", cut at PROPERTY_VALUE_MAX_LENGTH characters.
ARRAY_SEPARATOR = "||"
# Around a user_id written as a string: ASCII white space only, so the OpenAPI pattern can say exactly which.
USER_ID_SPACE = " \t\n\r\f\v"
MAX_PROPERTIES_PER_CALL = 1000
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)

PropertyValue = str | int | float


def is_number(value) -> bool:
    # bool is an int in Python; JSON true/false are not numbers.
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_type_name(value) -> str:
    """The JSON name of a parsed value's type, for error messages: clients send JSON, not Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before numbers: bool is an int in Python
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    # Not reachable from a JSON body, only from Python callers.
    return type(value).__name__


def is_finite_number(value) -> bool:
    """A number a float can hold: JSON integers beyond 1.8e308 overflow float() (and cannot be read back)."""
    if not is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_text(value: str, field: str) -> str:
    """PostgreSQL text cannot hold NUL characters, and UTF-8 cannot hold unpaired surrogates (JSON's
    "\\u0000" and "\\ud800" escapes): refuse them here rather than fail in the database."""
    # ASCII text always encodes: skip building its UTF-8 copy (most values of a bulk call are ASCII).
    if "\x00" in value or (not value.isascii() and not _encodes_as_utf8(value)):
        raise InvalidInput("invalid_text", "Text must not contain NUL characters or unpaired surrogates.", field)
    return value


def _encodes_as_utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def ascii_decimal(text: str, below: int) -> int | None:
    """`text` as an integer from 0 to `below` - 1 if it is written in ASCII digits only, else None.

    The one place that turns digits typed by someone into a number. `str.isdigit()` is true for "²" (then
    `int()` raises) and for "١٢" (`int()` reads 12), and `int()` also takes " 1", "+1" and "1_0"; none of
    them is a decimal string. The length is checked first: `int()` refuses strings beyond 4,300 digits."""
    if not (0 < len(text) <= len(str(below)) and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value < below else None


def calendar_date(text: str) -> date | None:
    """A date written YYYY-MM-DD (what a date input sends and the OpenAPI schema says), else None.
    `date.fromisoformat` alone also reads "20260131" and week dates such as "2026-W05-1"."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or ascii_decimal(text.replace("-", ""), 10**8) is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def user_id_term(text: str) -> int | None:
    """The user_id a search term names (SPEC 3: a decimal string, 0 <= n < 2**53), or None if it names none."""
    return ascii_decimal(text, MAX_USER_ID)


def require_object(value, field: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidInput("invalid_type", f"`{field}` must be a JSON object, not {json_type_name(value)}.", field)
    return value


def parse_app_id(value) -> str:
    if value is None:
        raise InvalidInput("missing_field", "`app_id` is required.", "app_id")
    if is_finite_number(value) and float(value).is_integer():
        value = str(int(value))
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise InvalidInput("invalid_app_id", "`app_id` must be a string or number of 1 to 64 characters.", "app_id")
    return check_text(value.strip(), "app_id")


def require_present(value, field: str) -> None:
    """A required field that is absent (or null) is `missing_field`; a present but invalid one keeps the code
    of its own check (`invalid_user_id`, `invalid_identity`, ...)."""
    if value is None:
        raise InvalidInput("missing_field", f"`{field}` is required.", field)


def parse_user_id(value, field: str = "user_id") -> int:
    require_present(value, field)
    if isinstance(value, str):
        value = user_id_term(value.strip(USER_ID_SPACE))
    if not (is_finite_number(value) and float(value).is_integer() and 0 <= value < MAX_USER_ID):
        raise InvalidInput(
            "invalid_user_id", f"`{field}` must be a decimal string or integer from 0 to 2**53 - 1.", field
        )
    return int(value)


def parse_identity(value, field: str = "identity") -> str:
    """Identity as stored: strings are trimmed, integers written in decimal. Case is kept."""
    require_present(value, field)
    if is_number(value):
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidInput("invalid_identity", f"`{field}` must be a finite number.", field)
            value = str(int(value)) if value.is_integer() else repr(value)
        else:
            value = str(value)
    if not isinstance(value, str):
        raise InvalidInput(
            "invalid_identity", f"`{field}` must be a string or a number, not {json_type_name(value)}.", field
        )
    value = value.strip()
    if not value:
        raise InvalidInput("invalid_identity", f"`{field}` is empty.", field)
    if len(value) > IDENTITY_MAX_LENGTH:
        raise InvalidInput("invalid_identity", f"`{field}` is longer than {IDENTITY_MAX_LENGTH} characters.", field)
    return check_text(value, field)


def parse_property_key(key, field: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput("invalid_property", "Property keys must be non-empty strings.", field)
    if len(key) > PROPERTY_KEY_MAX_LENGTH:
        raise InvalidInput(
            "invalid_property", f"Property key is longer than {PROPERTY_KEY_MAX_LENGTH} characters.", field
        )
    return check_text(key, field)


def is_reserved_key(key: str) -> bool:
    # ASCII only: str.lower() maps no other character to "i" or "d", and the schema's pattern is ASCII.
    return key in RESERVED_PROPERTY_KEYS or (key.isascii() and key.lower() in RESERVED_IN_ANY_CASE)


def _scalar_text(value, field: str) -> str | None:
    """A string, number or boolean written as Heap writes it inside a joined array, else None."""
    if isinstance(value, str):
        return check_text(value, field)
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_finite_number(value):
        # As JSON (and Heap's JavaScript) writes the number: 5.0 is the number 5.
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return str(value) if isinstance(value, int) else repr(value)
    return None


def _joined_array(items: list, field: str) -> str:
    texts = []
    for item in items:
        text = _scalar_text(item, field)
        if text is None:
            raise InvalidInput(
                "invalid_property",
                f"Array items must be strings, numbers or booleans, not {json_type_name(item)}.",
                field,
            )
        texts.append(text)
    return ARRAY_SEPARATOR.join(texts)[:PROPERTY_VALUE_MAX_LENGTH]


def parse_property_value(value, field: str, *, allow_null: bool) -> PropertyValue | None:
    """One value (SPEC 10). `allow_null`: a user property, where null removes the property; event properties
    also take arrays of scalars (joined with "||", cut at 1024 characters: Heap's Track API). Booleans are
    "true"/"false" on both, as Heap stores them. Objects are refused naming the key (`field`)."""
    if value is None and allow_null:
        return None
    if isinstance(value, str):
        if len(value) > PROPERTY_VALUE_MAX_LENGTH:
            raise InvalidInput(
                "invalid_property", f"Value is longer than {PROPERTY_VALUE_MAX_LENGTH} characters.", field
            )
        return check_text(value, field)
    if isinstance(value, bool):  # before numbers: bool is an int in Python
        return "true" if value else "false"
    if is_number(value):
        if not is_finite_number(value):
            raise InvalidInput("invalid_property", "Numbers must be finite and at most about 1.8e308.", field)
        return value
    if isinstance(value, list) and not allow_null:
        return _joined_array(value, field)
    expected = "a string, a number, a boolean or null" if allow_null else "a string, a number, a boolean or an array"
    raise InvalidInput("invalid_property", f"Value must be {expected}, not {json_type_name(value)}.", field)


# Integers below this are finite as floats (math.isfinite overflows only from about 2**1024 on).
_PLAIN_INT_LIMIT = 2**1023


def _is_plain_entry(key, value, allow_null: bool) -> bool:
    """The common case of a property, checked without building error fields: an ASCII key and an ASCII
    string, an int or a finite float value that the full checks below would return unchanged. Anything
    else (non-ASCII text, bools, nulls, limits) takes the full path, which decides and names the error."""
    if not (
        type(key) is str
        and key.isascii()
        and 0 < len(key) <= PROPERTY_KEY_MAX_LENGTH
        and "\x00" not in key
        and not key.isspace()
    ):
        return False
    if allow_null and is_reserved_key(key):
        return False
    kind = type(value)
    if kind is str:
        return len(value) <= PROPERTY_VALUE_MAX_LENGTH and value.isascii() and "\x00" not in value
    if kind is int:
        return -_PLAIN_INT_LIMIT < value < _PLAIN_INT_LIMIT
    return kind is float and math.isfinite(value)


def parse_properties(value, field: str = "properties", *, allow_null: bool) -> dict[str, PropertyValue | None]:
    """User properties (allow_null: null removes the property) or event properties (a null one is dropped,
    as Heap drops it: the event is kept without that key)."""
    if value is None:
        return {}
    properties = require_object(value, field)
    if len(properties) > MAX_PROPERTIES_PER_CALL:
        raise InvalidInput("too_many_properties", f"At most {MAX_PROPERTIES_PER_CALL} properties.", field)
    clean = {}
    for key, item in properties.items():
        if _is_plain_entry(key, item, allow_null):
            clean[key] = item
            continue
        # The key goes into the error's `field`; an unpaired surrogate there could not be rendered as JSON.
        key_field = f"{field}.{key[:100].encode(errors='backslashreplace').decode()}" if isinstance(key, str) else field
        key = parse_property_key(key, key_field)
        if allow_null and is_reserved_key(key):
            raise InvalidInput("reserved_property", f"`{key}` is reserved (in any letter case).", key_field)
        if item is None and not allow_null:
            continue
        clean[key] = parse_property_value(item, key_field, allow_null=allow_null)
    return clean


def parse_timestamp(value, field: str = "timestamp") -> datetime:
    """ISO 8601 (a time zone is required; naive means UTC) or Unix epoch milliseconds. None -> now."""
    # Not timezone.now(): its settings lookup was half of this function's time in a 1,000-event call, and
    # the answer is always aware UTC anyway.
    now = datetime.now(UTC)
    if value is None:
        return now
    moment = None
    if is_finite_number(value):
        moment = _from_epoch_seconds(value / 1000)
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
        if moment is not None and timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
    if moment is None:
        raise InvalidInput("invalid_timestamp", f"`{field}` must be ISO 8601 or Unix epoch milliseconds.", field)
    if not _in_range(moment, now):
        message = f"`{field}` is out of range (2000 to tomorrow)."
        as_seconds = _from_epoch_seconds(value) if is_finite_number(value) else None
        if as_seconds is not None and _in_range(as_seconds, now):
            # A hint only: seconds stay refused, the API takes epoch milliseconds (SPEC 3).
            message += " Unix timestamps are in milliseconds: did you send seconds?"
        raise InvalidInput("invalid_timestamp", message, field)
    return moment.astimezone(UTC)


def _from_epoch_seconds(seconds) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _in_range(moment: datetime, now: datetime) -> bool:
    return EARLIEST_TIMESTAMP <= moment <= now + MAX_CLOCK_SKEW


def parse_short_string(value, field: str, max_length: int, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    # An integer, as for user_id and app_id: 5.0 is the same JSON number as 5 (JSON Schema says so too).
    if is_finite_number(value) and float(value).is_integer():
        value = str(int(value))
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("invalid_field", f"`{field}` must be a non-empty string or an integer.", field)
    if len(value) > max_length:
        raise InvalidInput("invalid_field", f"`{field}` is longer than {max_length} characters.", field)
    return check_text(value, field)
