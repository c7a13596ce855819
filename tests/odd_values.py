"""Hostile and odd input values shared by the fuzz tests (ingest bodies, query strings, path segments).

Each value is here because it once broke, or could break, a parser: `str.isdigit()` is true for "²" (which
`int()` refuses) and for "١٢" (which `int()` reads as 12); `int()` refuses strings beyond 4,300 digits;
PostgreSQL refuses NUL in text and malformed regular expressions; JSON can carry unpaired surrogates.
The fuzz tests send every one of them on every run (parametrize or hypothesis `@example`), and
hypothesis draws from `odd_text()` for more."""

import base64

from hypothesis import strategies as st

ODD_DIGITS = [
    "²",  # SUPERSCRIPT TWO: isdigit() is true, int() raises
    "١٢",  # ARABIC-INDIC digits: int() reads 12
    "０",  # FULLWIDTH ZERO
    "߀",  # NKO DIGIT ZERO
    "𝟙",  # MATHEMATICAL DOUBLE-STRUCK ONE (outside the BMP)
    "Ⅻ",  # ROMAN NUMERAL TWELVE: isnumeric(), not isdigit()
    "½",
    " 1",
    "1 ",
    "-1",
    "+1",
    "1e3",
    "0x1",
    "1_000",
    "9007199254740992",  # 2**53: one past the largest user_id
    "99999999999999999999999",
    "9" * 5000,  # beyond int()'s 4,300-digit limit
]

ODD_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",  # an unpaired surrogate: UTF-8 cannot hold it (sent percent-encoded with surrogatepass)
    "x" * 5000,
    "%",
    "'",
    '"',
    "\\",
    "(",
    "*",
    "<script>alert(1)</script>",
    "\u202e\u0301",  # right-to-left override and a lone combining mark
    "\r\n=1+1",
    "null",
    "[object Object]",
    "../../etc/passwd",
    "2026-02-30",
    "9999-12-31",
    "2026-01-01T00:00:00Z",
]

ODD_VALUES = ODD_DIGITS + ODD_TEXT
# Written into every parameter of every endpoint on every run (the rest of ODD_TEXT comes through `odd_text()`).
SWEEP_VALUES = ODD_DIGITS + ["\x00", "\ud800", "x" * 5000, "%", "'", '"', "\\", "(", "<script>alert(1)</script>"]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode()


# Cursors are opaque base64 of `<timestamp>|<pk>`: valid base64 around broken contents reaches the decoder.
ODD_CURSORS = [
    _b64("²|²"),
    _b64("2026-01-01T00:00:00+00:00|²"),
    _b64("2026-01-01T00:00:00+00:00|١٢"),
    _b64("2026-01-01T00:00:00+00:00|99999999999999999999999"),
    _b64("2026-01-01T00:00:00+00:00|-1"),
    _b64("2026-01-01T00:00:00+00:00|" + "9" * 5000),
    _b64("0001-01-01T00:00:00+23:59|1"),
    _b64("9999-12-31T23:59:59-23:59|1"),
    _b64("2026-01-01T00:00:00|1"),  # no time zone
    _b64("-|1"),
    _b64("|"),
    _b64("\x00|\x00"),
    base64.urlsafe_b64encode(b"\xff\xfe|1").decode(),  # not UTF-8
    "====",
    "a",
]


def odd_text() -> st.SearchStrategy[str]:
    """Arbitrary text, weighted towards the known odd values and number-like strings."""
    return (
        st.sampled_from(ODD_VALUES)
        | st.text(max_size=30)
        | st.from_regex(r"\A[+-]?[0-9０-９²٠-٩]{0,25}([.eE][0-9]{0,3})?\Z")
    )
