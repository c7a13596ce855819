"""SPEC 4: refuse identities that are not unique to one person (`guest`, `undefined`, ...)."""

from functools import lru_cache

from config.kernel.errors import InvalidInput
from config.kernel.validation import parse_identity
from users_app.models import Environment

BUILTIN_BLOCKED_IDENTITIES = frozenset(
    {
        "anonymous",
        "guest",
        "guest_user",
        "visitor",
        "user",
        "distinctid",
        "distinct_id",
        "id",
        "not_authenticated",
        "email",
        "undefined",
        "null",
        "none",
        "nan",
        "true",
        "false",
        "0",
        "-1",
        "[object object]",
    }
)
QUOTES = "\"'`"


def identity_normal_form(identity: str) -> str:
    """How identities are compared with block lists: trimmed, outer quotes stripped, case-folded."""
    return identity.strip().strip(QUOTES).strip().casefold()


@lru_cache(maxsize=256)
def _blocked_normal_forms(blocked: tuple[str, ...]) -> frozenset[str]:
    """An environment's block list in normal form, built once per distinct list (not once per item)."""
    return frozenset(identity_normal_form(item) for item in blocked)


def _environment_blocked(environment: Environment) -> frozenset[str]:
    blocked = environment.blocked_identities
    if not blocked:  # most environments: no tuple built per item of a bulk call
        return frozenset()
    return _blocked_normal_forms(tuple(str(item) for item in blocked))


@lru_cache(maxsize=16384)
def _normal_is_blocked(identity: str, environment_blocked: frozenset[str]) -> bool:
    # A bulk call names about 13 identities in 1,000 items: each is normalised once, not once per item.
    normal = identity_normal_form(identity)
    return not normal or normal in BUILTIN_BLOCKED_IDENTITIES or normal in environment_blocked


def identity_is_blocked(environment: Environment, identity: str) -> bool:
    return _normal_is_blocked(identity, _environment_blocked(environment))


@lru_cache(maxsize=16384)
def _parsed_identity(raw_identity: str, field: str) -> str:
    """parse_identity of a string: a pure function of it, so each distinct one is parsed once."""
    return parse_identity(raw_identity, field)


def identity_check(environment: Environment, raw_identity, field: str = "identity") -> str:
    """The identity as stored, or InvalidInput (invalid, or `identity_blocked`)."""
    # Invalid ones raise, and lru_cache keeps no exception: only valid strings are remembered.
    if type(raw_identity) is str:
        identity = _parsed_identity(raw_identity, field)
    else:
        identity = parse_identity(raw_identity, field)
    if identity_is_blocked(environment, identity):
        raise InvalidInput(
            "identity_blocked",
            f"The identity {identity[:80]!r} is on the block list: it is not unique to one person "
            "and would merge everyone who uses it into one profile.",
            field,
        )
    return identity
