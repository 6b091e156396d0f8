"""The read side's one look at the clock: today's business date in China.

Validation and the pure folds never read the clock (``events.bounds.business_date`` is a function of its
argument); a read that is not given a date is answered for today, and this is where today comes from.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from events.bounds import business_date

__all__ = ["today_in_china", "utc_text"]


def utc_text(moment: datetime) -> str:
    """``moment`` as RFC 3339 in UTC with ``Z`` (an instant without a zone, as asyncpg hands back the first instant
    of Python's calendar, is taken as UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.isoformat().replace("+00:00", "Z")


def today_in_china() -> date:
    """Today in China (UTC+08:00), the calendar every business date of the view is in."""
    return business_date(datetime.now(UTC))
