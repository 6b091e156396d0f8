"""The one rule of what the register can store and compute with: its calendar range, text lengths, record size.

Whatever ``parse_event`` accepts, the projector must be able to write to PostgreSQL and every read path must be
able to compute with — so the gateway (which answers 422) and the projector (which dead-letters) judge a record
by this one module and can never disagree.

**The calendar range: 1870-01-01 to 2199-12-31, as dates in China (UTC+08:00).** Every payload date, every
``YYYY-MM`` period and the China date of every timestamp (``occurred_at``, ``recorded_at``) must fall in it.

* *The lower bound* is where Chinese civil records start: no resident can be born before 1870-01-01 (the
  citizen-ID rule of CONTRACT §5), and nothing about a resident happens before their birth.
* *The upper bound* leaves room for every legitimate future date a department records (a permit's
  ``valid_until``, a family-doctor contract's ``ends_on``, a contribution period: years or decades ahead, never
  centuries) while keeping far away from the limits of the code that computes with these values. Python's
  ``datetime`` stops at year 9999 and starts at year 1: ``9999-12-31T23:59:59-14:00`` is already past the end
  once converted to UTC, ``0001-01-01T00:00:00+14:00`` before the start — the driver cannot encode them and the
  read paths (business dates in China, ``as_of`` cut-offs, months of residence, ages, contribution periods plus
  months) overflow. PostgreSQL itself would store far more (``timestamptz`` up to 294276 AD); Python is the
  narrow one. With 2199 the read side keeps almost eight thousand years of headroom for its arithmetic,
  whatever offset a timestamp carries (offsets are below 24 hours) and whatever ``as_of`` a reader asks for.

Bounding timestamps by their date *in China* (rather than in UTC) makes a timestamp's business date — the date
every read path works with (``business_date``) — fall in exactly the range of the payload dates.

**Text** has lengths bounded per kind (``events.fields``: names, free text, short labels, identifiers), and
**a record** is at most ``MAX_RECORD_BYTES``: the largest valid event, its longest fields full of characters
JSON escapes as surrogate pairs, is well under 10 KiB; 64 KiB leaves room for whitespace and keeps any record
that reaches the dead-letter topic far below Kafka's default 1 MiB limit.

This module also holds China's clock-free calendar helpers (``CHINA_TZ``, ``business_date``), which the
projections re-export (``projections.resident.dates``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Final

__all__ = [
    "BIRTH_BOUND",
    "CHINA_TZ",
    "EARLIEST_DATE",
    "EARLIEST_INSTANT",
    "EARLIEST_PERIOD",
    "IDENTIFIER_MAX_CHARS",
    "LATEST_DATE",
    "LATEST_INSTANT",
    "LATEST_PERIOD",
    "MAX_RECORD_BYTES",
    "NAME_MAX_CHARS",
    "PERIOD_IN_RANGE_PATTERN",
    "RANGE_RULE",
    "SHORT_TEXT_MAX_CHARS",
    "TEXT_MAX_CHARS",
    "BirthBound",
    "business_date",
    "in_range",
]

CHINA_TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
"""China has kept one time zone, UTC+08:00, since 1949 (and no daylight saving since 1991)."""

EARLIEST_DATE: Final = date(1870, 1, 1)
"""The first day of the register's range: Chinese civil records (and the citizen-ID rule) start here."""

LATEST_DATE: Final = date(2199, 12, 31)
"""The last day of the register's range (see the module docstring for why)."""

EARLIEST_INSTANT: Final = datetime(1870, 1, 1, tzinfo=CHINA_TZ)
"""The first instant whose date in China is in range."""

LATEST_INSTANT: Final = datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=CHINA_TZ)
"""The last instant whose date in China is in range."""

EARLIEST_PERIOD: Final = "1870-01"
LATEST_PERIOD: Final = "2199-12"

PERIOD_IN_RANGE_PATTERN: Final = r"^(18[7-9][0-9]|19[0-9]{2}|2[01][0-9]{2})-(0[1-9]|1[0-2])$"
"""A ``YYYY-MM`` month from ``EARLIEST_PERIOD`` to ``LATEST_PERIOD`` (checked inside pydantic-core)."""

RANGE_RULE: Final = (
    f"out of the register's range: dates and timestamps must fall between {EARLIEST_DATE.isoformat()} and "
    f"{LATEST_DATE.isoformat()} (dates in China, UTC+08:00)"
)
"""How a rejection for the calendar range reads (``InvalidEvent`` adds the offending value)."""

NAME_MAX_CHARS: Final = 100
"""A person's name (long transliterated minority names exist)."""

TEXT_MAX_CHARS: Final = 200
"""Free text: an address, a reason, a school or employer name."""

SHORT_TEXT_MAX_CHARS: Final = 64
"""A short label: ethnicity, level, team, a source system's name."""

IDENTIFIER_MAX_CHARS: Final = 64
"""A department's own number or code (household, permit, school, clinic, certificate…)."""

MAX_RECORD_BYTES: Final = 64 * 1024
"""The largest record (the JSON value, in UTF-8 bytes) that can be an event."""


def business_date(moment: datetime) -> date:
    """The calendar date in China of an aware timestamp.

    Events carry ``occurred_at`` with whatever offset the producer used; converting to UTC+08:00 first makes
    ``2024-05-01T20:00:00Z`` and ``2024-05-02T04:00:00+08:00`` the same business day, as a clerk in the city
    would date it. A pure function of its argument: "today in China" is ``business_date(datetime.now(UTC))``,
    which only the read side may ask for (validation never reads the clock).
    """
    return moment.astimezone(CHINA_TZ).date()


def in_range(day: date) -> bool:
    """Whether ``day`` is in the register's calendar range."""
    return EARLIEST_DATE <= day <= LATEST_DATE


class BirthBound:
    """Marks a field that carries a birth date (a ``birth_date``, or a citizen ID, which encodes one).

    Validation never reads the clock, so "not born in the future" means: born on or before the day, in China,
    the event was recorded (``recorded_at``). The envelope checks every field so marked (``events.envelope``);
    the mark itself does nothing inside Pydantic.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "BIRTH_BOUND"


BIRTH_BOUND: Final = BirthBound()
"""The one instance of ``BirthBound``, put in a field type's ``Annotated`` metadata."""
