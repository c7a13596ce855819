"""ascii_decimal / user_id_term: the one reading of digits typed by someone (config/kernel/validation.py), and
the parsing rules the OpenAPI schema states (config/kernel/schema.py)."""

import pytest
from django.http import QueryDict

from config.kernel.errors import InvalidInput
from config.kernel.validation import ascii_decimal, parse_short_string, parse_user_id, user_id_term
from reports_app.query import report_query_parse
from tests.odd_values import ODD_DIGITS
from users_app.user_query import parse_user_query

WRITTEN_IN_ASCII_DIGITS = [value for value in ODD_DIGITS if value.isascii() and value.isdigit()]


@pytest.mark.parametrize(
    "text",
    [value for value in ODD_DIGITS if value not in WRITTEN_IN_ASCII_DIGITS] + ["", " ", "4242\x00", "٤٢٤٢", "４２４２"],
)
def test_anything_but_ascii_digits_is_no_number(text):
    # int() would read "٤٢٤٢", "４２４２" and " 1" as numbers; str.isdigit() is true for "²".
    assert ascii_decimal(text, 10**4000) is None
    assert user_id_term(text) is None


@pytest.mark.parametrize("text", WRITTEN_IN_ASCII_DIGITS)
def test_ascii_digits_beyond_the_largest_user_id_are_no_user_id(text):
    assert user_id_term(text) is None


@pytest.mark.parametrize(
    ("text", "below", "expected"),
    [
        ("0", 10, 0),
        ("9", 10, 9),
        ("10", 10, None),
        ("007", 1000, 7),
        ("9007199254740991", 2**53, 2**53 - 1),
        ("4242", 2**53, 4242),
        ("0" * 17 + "1", 2**53, None),  # longer than the limit is ever written
    ],
)
def test_ascii_digits_read_exactly(text, below, expected):
    assert ascii_decimal(text, below) == expected


# ---- what the OpenAPI schema says is accepted is what the parsers accept (tests/test_openapi_conformance.py) --


def _query(**params) -> QueryDict:
    query = QueryDict(mutable=True)
    for name, value in params.items():
        query.setlist(name, value if isinstance(value, list) else [value])
    return query


@pytest.mark.parametrize(
    "params",
    [
        {"period": "week", "from": "2026-01-01"},  # checked even when dates replace it
        {"from": "20260101"},
        {"to": "2026-W01-1"},
        {"from": " 2026-01-01"},  # YYYY-MM-DD only
        {"f3_op": "like"},  # an operator is checked on the form's empty rows too
        {"f0": "plan", "f0_op": "in", "f0_v": ["Free"] * 101},  # values counted as sent
        {"col": [f"c{index % 3}" for index in range(11)]},
    ],
)
def test_the_users_query_refuses(params):
    with pytest.raises(InvalidInput):
        parse_user_query(_query(**params))


def test_the_users_query_leaves_out_empty_boxes_and_duplicates():
    query = parse_user_query(
        _query(col=["plan", "", "plan", " ", "user.plan"], f0="plan", f0_op="in", f0_v=["A", "", "A"])
    )
    assert query.column_names == ["plan"]  # `user.plan` is `plan`
    assert query.filters.properties[0].values == ("A",)


@pytest.mark.parametrize(
    "params",
    [
        {"range": "7d", "from": "1999-12-31"},  # dates are checked even when a relative range replaces them
        {"where": [f"user.plan={index}" for index in range(21)]},
    ],
)
def test_the_report_query_refuses(params):
    with pytest.raises(InvalidInput):
        report_query_parse(_query(**params))


def test_short_strings_take_integers_however_json_writes_them():
    assert parse_short_string(5.0, "session_id", 64) == parse_short_string(5, "session_id", 64) == "5"
    with pytest.raises(InvalidInput):
        parse_short_string(5.5, "session_id", 64)


def test_a_user_id_may_have_ascii_space_around_it_and_nothing_else():
    assert parse_user_id(" 42\n") == 42
    for text in ["\u00a042", "42\u3000", "\x1c42"]:
        with pytest.raises(InvalidInput):
            parse_user_id(text)
