"""ascii_decimal / user_id_term: the one reading of digits typed by someone (users_app/validation.py)."""

import pytest

from tests.odd_values import ODD_DIGITS
from users_app.validation import ascii_decimal, user_id_term

WRITTEN_IN_ASCII_DIGITS = [value for value in ODD_DIGITS if value.isascii() and value.isdigit()]


@pytest.mark.parametrize("text", [value for value in ODD_DIGITS if value not in WRITTEN_IN_ASCII_DIGITS]
                         + ["", " ", "4242\x00", "٤٢٤٢", "４２４２"])
def test_anything_but_ascii_digits_is_no_number(text):
    # int() would read "٤٢٤٢", "４２４２" and " 1" as numbers; str.isdigit() is true for "²".
    assert ascii_decimal(text, 10**4000) is None
    assert user_id_term(text) is None


@pytest.mark.parametrize("text", WRITTEN_IN_ASCII_DIGITS)
def test_ascii_digits_beyond_the_largest_user_id_are_no_user_id(text):
    assert user_id_term(text) is None


@pytest.mark.parametrize(("text", "below", "expected"), [
    ("0", 10, 0), ("9", 10, 9), ("10", 10, None), ("007", 1000, 7), ("9007199254740991", 2**53, 2**53 - 1),
    ("4242", 2**53, 4242), ("0" * 17 + "1", 2**53, None),  # longer than the limit is ever written
])
def test_ascii_digits_read_exactly(text, below, expected):
    assert ascii_decimal(text, below) == expected
