"""Field types shared by the wire models: text a person can type and read back, names, money,
currency, opening-hour times and dates within the years a pickup can happen."""

from __future__ import annotations

import re
import unicodedata
from datetime import date as Date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from service.domain.models import WEEKDAYS

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
assert tuple(Weekday.__args__) == WEEKDAYS  # type: ignore[attr-defined]
# Characters that reorder what follows them on screen (Trojan Source, CVE-2021-42574).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Shown as nothing although not format characters (category Cf) or whitespace.
INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0")


def _visible(ch: str) -> bool:
    return not (
        ch.isspace()
        or ch in INVISIBLE
        or unicodedata.category(ch) in ("Cf", "Mn", "Me")
        or "\ufe00" <= ch <= "\ufe0f"
    )


def _human_text(multiline: bool) -> AfterValidator:
    """What a person can type and read back: no control characters (a line break only where
    the field is multi-line), no bidi controls, no line/paragraph separators, and not made only
    of invisible characters (zero-width spaces, joiners, fillers, whitespace)."""
    allowed = "\n\t" if multiline else ""

    def check(value: str) -> str:
        for ch in value:
            if ch in allowed:
                continue
            if ch in BIDI_CONTROLS:
                raise ValueError("must not contain bidirectional control characters")
            if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
                raise ValueError("must not contain control characters")
        if value and not any(_visible(ch) for ch in value):
            raise ValueError("must contain visible characters")
        return value

    return AfterValidator(check)


# Every free-text field of every request model is one of these (a test checks it).
Text = Annotated[str, _human_text(multiline=False)]
MultilineText = Annotated[str, _human_text(multiline=True)]
Name = Annotated[Text, Field(min_length=1, max_length=100)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
Cents = Annotated[int, Field(ge=0, le=1_000_000, description="Integer minor units")]


# Pickup happens now-ish: years outside this range are client mistakes, and refusing them here
# keeps datetime arithmetic (and historical local-mean-time offsets) out of reach.
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _within_years(value: Any) -> Any:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


def _iso_date_string(value: Any) -> Any:
    # Lax parsing would read ?date=86400 as a Unix timestamp.
    if not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


QueryDate = Annotated[Date, BeforeValidator(_iso_date_string), AfterValidator(_within_years)]
