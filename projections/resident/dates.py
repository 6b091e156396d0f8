"""Calendar arithmetic of the resident view: business dates, whole months, completed years.

Pure functions of their arguments: the view is computed for an explicit ``as_of`` date, never for the clock.
"""

from __future__ import annotations

import calendar
from datetime import date

# One definition of China's calendar for the whole code base: event validation needs it too (a birth date is
# bounded by the day the event was recorded), and events must not import projections.
from events.bounds import CHINA_TZ, business_date

__all__ = ["CHINA_TZ", "add_months", "business_date", "completed_years", "whole_months"]


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months, clamped to the end of a shorter month.

    2020-01-31 plus one month is 2020-02-29; 2021-01-31 plus one month is 2021-02-28.
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def whole_months(start: date, end: date) -> int:
    """Completed calendar months from ``start`` to ``end``; 0 if ``end`` is before ``start``.

    The largest ``n`` with ``add_months(start, n) <= end`` — the same as ``dateutil.relativedelta``'s months:
    2020-01-15 → 2020-02-14 is 0, → 2020-02-15 is 1; from the 31st a month is complete on the last day of a
    shorter month (2020-01-31 → 2020-02-29 is 1, → 2020-02-28 is 0).
    """
    if end <= start:
        return 0
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) > end:
        months -= 1
    return months


def completed_years(birth: date, on: date) -> int | None:
    """Age in completed years on ``on``; ``None`` if ``on`` is before ``birth``.

    The age goes up on the birthday itself; someone born on 29 February turns a year older on 1 March in a
    common year (the day before, 28 February, the year is not yet complete).
    """
    if on < birth:
        return None
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years
