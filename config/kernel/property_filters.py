"""Property filters, one vocabulary for the Users view (`f0`, `f0_op`, `f0_v`; users_app/user_query.py) and
Reports (`where`, and the report page's filter rows; reports_app/query.py): the operators, what each means,
their labels and how many values each takes. Each page keeps its own query syntax (SPEC 6 and 7 pin both):
Reports writes every operator below (`where=user.plan!=in:A,B`, or `filter_op=not_in` in a filter row); the
Users view offers four of them (PropertyFilter.OPERATORS), spelled in its URL as user_query.py says.

What each means, on the property's value as stored (text; a number as its text, `5`), the same on both pages
(a person without an account has none of its account's properties: `account.<key>` is not set for them):
    eq            the whole value equals the one given (case-sensitive)
    in            the whole value is one of those given
    contains      the value contains the one given, case-insensitive
    set           the property is present
    ne, not_in, not_contains, not_set
                  the negation of the operator above; `ne`, `not_in` and `not_contains` also match people
                  without the property
"""

from dataclasses import dataclass
from typing import Literal

EQUALS = "eq"
NOT_EQUALS = "ne"
ONE_OF = "in"
NONE_OF = "not_in"
CONTAINS = "contains"
NOT_CONTAINS = "not_contains"
IS_SET = "set"
NOT_SET = "not_set"


@dataclass(frozen=True)
class FilterOperator:
    name: str
    label: str
    takes: Literal["one", "many", "none"]  # how many values
    negates: str | None = None  # the operator this one is the negation of


FILTER_OPERATORS: dict[str, FilterOperator] = {
    operator.name: operator
    for operator in (
        FilterOperator(EQUALS, "equals", "one"),
        FilterOperator(NOT_EQUALS, "does not equal", "one", negates=EQUALS),
        FilterOperator(ONE_OF, "is one of", "many"),
        FilterOperator(NONE_OF, "is none of", "many", negates=ONE_OF),
        FilterOperator(CONTAINS, "contains", "one"),
        FilterOperator(NOT_CONTAINS, "does not contain", "one", negates=CONTAINS),
        FilterOperator(IS_SET, "is set", "none"),
        FilterOperator(NOT_SET, "is not set", "none", negates=IS_SET),
    )
}
# negated operator -> the operator it negates
NEGATED = {operator.name: operator.negates for operator in FILTER_OPERATORS.values() if operator.negates}
NEGATION_OF = {positive: negated for negated, positive in NEGATED.items()}
OPERATOR_LABELS = {operator.name: operator.label for operator in FILTER_OPERATORS.values()}

# The most values one filter takes (`in` / `not_in`).
MAX_FILTER_VALUES = 100

# Whose property a filter, a column or a group names (SPEC 7 and 11).
USER_SCOPE = "user"  # the person's current value
EVENT_SCOPE = "event"  # the event's own property (Reports only)
ACCOUNT_SCOPE = "account"  # the current value of the person's account's property


@dataclass(frozen=True)
class PropertyRef:
    """`user.<key>`, `event.<key>` or `account.<key>`. Reports always write the scope; the Users view lets a user
    property go bare (users_app/user_query.py)."""

    scope: str
    key: str

    def __str__(self) -> str:
        return f"{self.scope}.{self.key}"


@dataclass(frozen=True)
class PropertyFilter:
    """A filter of the Users view on a property of the person or of the person's account (the Users view lists
    people: no event properties)."""

    EQUALS = EQUALS
    ONE_OF = ONE_OF
    IS_SET = IS_SET
    NOT_SET = NOT_SET
    OPERATORS = (EQUALS, ONE_OF, IS_SET, NOT_SET)

    prop: PropertyRef
    op: str  # one of OPERATORS
    values: tuple[str, ...] = ()
