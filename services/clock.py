"""The read side's one look at the clock: today's business date in China.

Validation and the pure folds never read the clock (``events.bounds.business_date`` is a function of its
argument); a read that is not given a date is answered for today, and this is where today comes from.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from events.bounds import business_date

__all__ = ["today_in_china"]


def today_in_china() -> date:
    """Today in China (UTC+08:00), the calendar every business date of the view is in."""
    return business_date(datetime.now(UTC))
