"""SPEC 4: refuse identities that are not unique to one person (`guest`, `undefined`, ...)."""

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


def identity_is_blocked(environment: Environment, identity: str) -> bool:
    normal = identity_normal_form(identity)
    if not normal or normal in BUILTIN_BLOCKED_IDENTITIES:
        return True
    return normal in {identity_normal_form(str(item)) for item in environment.blocked_identities or []}


def identity_check(environment: Environment, raw_identity, field: str = "identity") -> str:
    """The identity as stored, or InvalidInput (invalid, or `identity_blocked`)."""
    identity = parse_identity(raw_identity, field)
    if identity_is_blocked(environment, identity):
        raise InvalidInput(
            "identity_blocked",
            f"The identity {identity[:80]!r} is on the block list: it is not unique to one person "
            "and would merge everyone who uses it into one profile.",
            field,
        )
    return identity
