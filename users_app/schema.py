"""users_app's part of the OpenAPI description (the values are config/kernel/schema.py): the read API's
authentication, the identities a write may name, and the Users view's query string."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter

from config.kernel.limits import IDENTITY_MAX_LENGTH, PROPERTY_KEY_MAX_LENGTH, PROPERTY_VALUE_MAX_LENGTH
from config.kernel.property_filters import MAX_FILTER_VALUES
from config.kernel.schema import (
    DATE,
    IDENTITY,
    IDENTITY_NUMBER,
    IDENTITY_TEXT,
    NOT_BLANK,
    at_most,
    choice,
    or_empty,
    text,
)
from events_app.models import EVENT_NAME_MAX_LENGTH
from users_app.services.identity_guard import BUILTIN_BLOCKED_IDENTITIES, QUOTES


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "users_app.api_access.ApiKeyAuthentication"
    name = "EnvironmentApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <environment API key>` (printed by create_environment).",
        }


def _any_case(word: str) -> str:
    # Identities are compared case-folded: "ſ" folds to "s" and the Kelvin sign to "k" as well.
    extra = {"s": "ſ", "k": "\u212a"}
    return "".join(
        f"[{char}{char.upper()}{extra.get(char, '')}]" if char.isalpha() else f"\\{char}" if char in "[]" else char
        for char in word
    )


_QUOTE_OR_SPACE = "[\\s" + QUOTES + "]*"
BLOCKED_IDENTITY_PATTERN = (
    f"^{_QUOTE_OR_SPACE}(?:"
    + "|".join(_any_case(word) for word in sorted(BUILTIN_BLOCKED_IDENTITIES))
    + f")?{_QUOTE_OR_SPACE}$"
)
WRITTEN_IDENTITY = {
    "oneOf": [
        {**IDENTITY_TEXT, "not": {"pattern": BLOCKED_IDENTITY_PATTERN}},
        {**IDENTITY_NUMBER, "not": {"enum": [0, -1]}},
    ],
    "description": (
        f"{IDENTITY['description']} Refused with `identity_blocked`: identities that are not one "
        f"person's ({', '.join(sorted(BUILTIN_BLOCKED_IDENTITIES))}, compared trimmed, without outer "
        "quotes and case-insensitively) and those on the environment's own block list."
    ),
}


def user_query_parameters() -> list[OpenApiParameter]:
    """The Users view's query string (users_app/user_query.py), shared by the page and GET /api/v1/users/search."""
    from users_app.user_query import (
        KINDS,
        MAX_COLUMNS,
        MAX_PROPERTY_FILTERS,
        OPERATOR_SPELLINGS,
        PERIODS,
        PROPERTY_NAME_MAX_LENGTH,
    )

    # What a property name means, said once for `col` and each `f<n>`.
    property_name = (
        "A user property's key (`plan`, or spelled out `user.plan`) or `account.<key>`, a property of the "
        "person's account (SPEC 11: a person without an account has none). A user key that itself starts with "
        "`account.` or `user.` is written `user.<key>`."
    )
    # `account.` or `user.` and a key of 1 to PROPERTY_KEY_MAX_LENGTH characters, or a bare key of at most as many
    # (the filter form's empty row: none) that does not start with a scope.
    scoped_key, key = f"[\\s\\S]{{1,{PROPERTY_KEY_MAX_LENGTH}}}", f"[\\s\\S]{{0,{PROPERTY_KEY_MAX_LENGTH}}}"
    property_name_schema = {
        **text(PROPERTY_NAME_MAX_LENGTH),
        "pattern": f"^(?:(?:account|user)\\.{scoped_key}|(?!(?:account|user)\\.){key})$",
    }

    parameters = [
        OpenApiParameter("period", choice(PERIODS), description="Default 7d. Checked even when from/to replace it."),
        OpenApiParameter("from", or_empty(DATE), description="YYYY-MM-DD, UTC (instead of period)."),
        OpenApiParameter("to", or_empty(DATE), description="YYYY-MM-DD, inclusive; not before `from`."),
        OpenApiParameter("kind", choice(KINDS)),
        OpenApiParameter("q", text(IDENTITY_MAX_LENGTH), description="Identity (exact or prefix) or user_id."),
        OpenApiParameter(
            "ev",
            text(EVENT_NAME_MAX_LENGTH),
            description="Users who did this event in the period: a raw event name or a defined event's; empty: any.",
        ),
        OpenApiParameter(
            "col",
            at_most(MAX_COLUMNS, property_name_schema, {"pattern": NOT_BLANK}),
            description=(
                f"Property columns (default plan): at most {MAX_COLUMNS}, blank ones left out. {property_name} "
                "Each result's `properties` names a column as the page writes it (`plan`, `account.tier`)."
            ),
        ),
    ]
    for index in range(MAX_PROPERTY_FILTERS):
        name = f"f{index}"
        parameters += [
            OpenApiParameter(
                name,
                property_name_schema,
                description=(
                    f"The property of filter {index} (f0 .. f{MAX_PROPERTY_FILTERS - 1}, all must hold); empty: "
                    f"none. {property_name}"
                ),
            ),
            OpenApiParameter(f"{name}_op", choice(OPERATOR_SPELLINGS), description="Default eq."),
            OpenApiParameter(
                f"{name}_v",
                at_most(MAX_FILTER_VALUES, text(PROPERTY_VALUE_MAX_LENGTH), {"minLength": 1}),
                description=(
                    f"Value(s) for eq / in: at most {MAX_FILTER_VALUES} non-empty ones, "
                    f"at least one when `{name}` is set."
                ),
            ),
        ]
    return parameters
