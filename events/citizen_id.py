"""Citizen ID numbers (公民身份号码, GB 11643-1999) and GB/T 2260 division codes.

An 18-character citizen ID is ``DDDDDD YYYYMMDD SSS C``: the division code of the county where the number was
*assigned*, the birth date, a sequence number (odd for men, even for women) and a check character. The rules
renkou enforces (CONTRACT §5):

* **length** — exactly 18 characters; a 15-digit legacy number is rejected with its 18-digit form named;
* **characters** — 17 ASCII digits, then a digit or ``X`` (a lower-case ``x`` is normalised to ``X``);
* **check character** — the GB 11643 ISO 7064 MOD 11-2 checksum;
* **birth date** — a real date from 1870-01-01 on, and not in the future. Validation never reads the clock (a
  rebuild must judge a record as it was judged the first time): an event's citizen IDs are bounded by the day
  the event was recorded (``recorded_at``, in China), which the envelope checks; on its own, a number is
  bounded by the register's range (``events.bounds``), or by an explicit ``today`` that a read path may pass;
* **division code** — a GB/T 2260 code that has existed. A code *created after* the birth year is fine (most
  people born before the 1980s received their number decades after birth); a code *abolished before* the
  birth year cannot have been assigned to that person.

Every rule is checked independently and all failures are reported together, each message starting with the
rule's name, so a department can fix a record in one round trip.

Division data comes from python-stdnum's ``cn/loc`` database (derived from GB/T 2260 as published on
Wikipedia). python-stdnum's own ``stdnum.cn.ric.validate`` is deliberately *not* used: it requires the code to
have existed in the birth year, which wrongly rejects numbers assigned later in life.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError
from stdnum import numdb
from stdnum.cn.ric import calc_check_digit

from events.bounds import BIRTH_BOUND, EARLIEST_DATE, LATEST_DATE

__all__ = [
    "EARLIEST_BIRTH_DATE",
    "CitizenId",
    "CitizenIdError",
    "Division",
    "RegionCode",
    "birth_date_of",
    "born_after",
    "division_in_force",
    "division_name",
    "division_of",
    "lookup_division",
    "make_citizen_id",
    "normalize_citizen_id",
    "normalize_region_code",
    "reader_citizen_id",
    "sex_of",
    "upgrade_legacy",
]

EARLIEST_BIRTH_DATE: Final = EARLIEST_DATE
"""No living (or recently deceased) person registered in the system can be born before this date."""

_DIGITS: Final = frozenset("0123456789")
_CHECK_CHARACTERS: Final = frozenset("0123456789X")


class CitizenIdError(ValueError):
    """A citizen ID number failed one or more rules.

    ``problems`` lists every failed rule, each message starting with the rule's name (``length``,
    ``characters``, ``check character``, ``birth date``, ``division code``).
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("; ".join(self.problems))


# ---------------------------------------------------------------------------------------------------------
# GB/T 2260 division codes
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Division:
    """One GB/T 2260 code and the periods it was in use.

    ``periods`` holds ``(first_year, last_year)`` pairs; ``None`` means "open" (in use since before the
    records start, or still in use). A code reused for a renamed county has several periods.
    ``abolished_in`` is the last year the code was in use, ``None`` if it still is.
    """

    code: str
    province: str
    names: tuple[str, ...]
    periods: tuple[tuple[int | None, int | None], ...]
    abolished_in: int | None

    @property
    def name(self) -> str:
        """The most recent name, prefixed with the province (``北京市朝阳区``)."""
        latest = self.names[-1]
        return latest if latest == self.province else f"{self.province}{latest}"


def _last_year(periods: tuple[tuple[int | None, int | None], ...]) -> int | None:
    ends = [end for _, end in periods]
    if any(end is None for end in ends):
        return None
    return max(end for end in ends if end is not None)


def _parse_county(value: str) -> tuple[tuple[str, ...], tuple[tuple[int | None, int | None], ...]]:
    """Split stdnum's ``"[1983-1994]东矿区,[1995-]古冶区"`` into names and ``(start, end)`` periods."""
    names: list[str] = []
    periods: list[tuple[int | None, int | None]] = []
    for part in value.split(","):
        if part.startswith("[") and "]" in part:
            span, name = part[1:].split("]", 1)
            start, _, end = span.partition("-")
            periods.append((int(start) if start else None, int(end) if end else None))
        else:
            name = part
            periods.append((None, None))
        names.append(name)
    return tuple(names), tuple(periods)


@functools.lru_cache(maxsize=16384)
def lookup_division(code: str) -> Division | None:
    """The GB/T 2260 division for a 6-digit code, or ``None`` if the code never existed.

    Cached: there are about 7,000 codes and every event looks up at least one.
    """
    if len(code) != 6 or not _DIGITS.issuperset(code):
        return None
    info: dict[str, str] = {}
    for _prefix, properties in numdb.get("cn/loc").info(code):
        info.update(properties)
    county = info.get("county")
    if not county:
        return None
    names, periods = _parse_county(county)
    return Division(
        code=code,
        province=info.get("province", ""),
        names=names,
        periods=periods,
        abolished_in=_last_year(periods),
    )


_MERGED_INTO: Final[dict[str, str]] = {
    # 南通: 港闸区 was merged into the new 崇川区 in 2020 (国函〔2020〕26号); its name lives on in no successor.
    "320611": "320613",
}
"""Abolished divisions whose successor does not carry their name (merges), from the State Council's approvals."""

_FIRST_EDITION: Final = 1980
"""The year of GB/T 2260's first edition."""

_SUFFIXES: Final = ("自治县", "自治旗", "林区", "特区", "县", "区", "市", "旗")


def _stem(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _in_force(division: Division, year: int) -> bool:
    return any((start is None or start <= year) and (end is None or end >= year) for start, end in division.periods)


@functools.lru_cache(maxsize=4096)
def division_in_force(code: str, year: int) -> str:
    """The GB/T 2260 code in force in ``year`` for the division recorded as ``code`` (a 6-digit region code).

    A code still in force that year is itself. An abolished county or district is its successor: the one the
    State Council merged it into (``_MERGED_INTO``), else the division in force that year, in the same city
    first and then the same province, whose name has the same stem (双流县 510122 → 双流区 510116, 郫县 510124 →
    郫都区 510117, 通州市 320683 → 通州区 320612, 简阳市 512081 → 510185), followed to its own successor if
    that was abolished in turn. A code with no such successor, or unknown to GB/T 2260, stays as it is.
    """
    seen = {code}
    current = code
    while True:
        division = lookup_division(current)
        if division is None or _in_force(division, year):
            return current
        if year < _FIRST_EDITION:  # GB/T 2260 has no history before its first edition: nothing to map
            return current
        successor = _MERGED_INTO.get(current) or _successor_by_name(division, year)
        if successor is None or successor in seen:
            return current
        seen.add(successor)
        current = successor


def _successor_by_name(division: Division, year: int) -> str | None:
    """In the same city, the one county or district in force whose name stem extends or equals the old one's
    (双流县 → 双流区, 郫县 → 郫都区); failing that, in the province, the one with exactly the same stem of two
    characters or more (简阳市 512081 → 510185). Never a city's own code (xx00, xx01), never a guess between
    two: a generic stem (城区, 矿区, 郊区) matches nothing outside its city."""
    stem = _stem(division.names[-1])
    if not stem:
        return None
    for prefix, width, same in ((division.code[:4], 2, False), (division.code[:2], 4, True)):
        found: list[str] = []
        for n in range(10**width):
            candidate = f"{prefix}{n:0{width}d}"
            if candidate == division.code or candidate[4:] in ("00", "01"):
                continue
            other_division = lookup_division(candidate)
            if other_division is None or not _in_force(other_division, year):
                continue
            other = _stem(other_division.names[-1])
            if other and (
                (other == stem and len(stem) >= 2) if same else (other.startswith(stem) or stem.startswith(other))
            ):
                found.append(candidate)
        if len(found) == 1:
            return found[0]
        if found:
            return None
    return None


def division_name(code: str) -> str | None:
    """Human-readable name of a division code (``"110105"`` → ``"北京市朝阳区"``), or ``None`` if unknown."""
    division = lookup_division(code)
    return division.name if division else None


def _division_problem(code: str, birth_year: int | None) -> str | None:
    division = lookup_division(code)
    if division is None:
        return f"division code {code!r} is not a GB/T 2260 code"
    abolished = division.abolished_in
    if birth_year is not None and abolished is not None and abolished < birth_year:
        return (
            f"division code {code!r} ({division.name}) was abolished after {abolished}, "
            f"before the birth year {birth_year}"
        )
    return None


def normalize_region_code(raw: str) -> str:
    """Check that ``raw`` is a 6-digit GB/T 2260 code that has existed (in any era) and return it.

    Raises ``ValueError`` naming the rule that failed.
    """
    if len(raw) != 6 or not _DIGITS.issuperset(raw):
        raise ValueError(f"region code must be 6 digits, got {_show(raw)}")
    if lookup_division(raw) is None:
        raise ValueError(f"region code {raw!r} is not a GB/T 2260 code")
    return raw


# ---------------------------------------------------------------------------------------------------------
# Citizen ID numbers
# ---------------------------------------------------------------------------------------------------------


def _show(raw: str, limit: int = 40) -> str:
    return repr(raw if len(raw) <= limit else raw[:limit] + "…")


def _check_character(first17: str) -> str:
    # stdnum's calc_check_digit ignores the last character of its argument.
    return str(calc_check_digit(first17 + "0"))


def _problems(cid: str, today: date | None) -> list[str]:
    """Every rule ``cid`` (already upper-cased) breaks; empty if it is valid. ``today``: the latest birth date
    allowed (``None``: the end of the register's range)."""
    problems: list[str] = []
    if len(cid) != 18:
        if len(cid) == 15 and _DIGITS.issuperset(cid):
            return [
                f"length is 15: legacy 15-digit numbers are not accepted; the 18-digit form is {upgrade_legacy(cid)!r}"
            ]
        problems.append(f"length must be 18 characters, got {len(cid)}")
        bad = [c for c in cid if c not in _CHECK_CHARACTERS]
        if bad:
            problems.append(f"characters must be digits 0-9 (and a final 'X'); found {''.join(bad[:5])!r}")
        return problems

    first17, last = cid[:17], cid[17]
    digits_ok = _DIGITS.issuperset(first17)
    if not digits_ok or last not in _CHECK_CHARACTERS:
        where = next(i for i, c in enumerate(cid) if c not in (_CHECK_CHARACTERS if i == 17 else _DIGITS))
        problems.append(
            f"characters must be 17 digits 0-9 followed by a digit or 'X'; found {cid[where]!r} at position {where + 1}"
        )
    if digits_ok:
        expected = _check_character(first17)
        if last != expected:
            problems.append(f"check character should be {expected!r}, got {last!r}")

    birth_year: int | None = None
    stamp = cid[6:14]
    if _DIGITS.issuperset(stamp):
        try:
            born = date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:]))
        except ValueError:
            problems.append(f"birth date {stamp!r} is not a real date")
        else:
            if born < EARLIEST_BIRTH_DATE:
                problems.append(f"birth date {born.isoformat()} is before {EARLIEST_BIRTH_DATE.isoformat()}")
            elif today is not None and born > today:
                problems.append(f"birth date {born.isoformat()} is after today ({today.isoformat()})")
            elif born > LATEST_DATE:
                problems.append(
                    f"birth date {born.isoformat()} is after {LATEST_DATE.isoformat()} (the register's range)"
                )
            else:
                birth_year = born.year

    code = cid[:6]
    if _DIGITS.issuperset(code):
        problem = _division_problem(code, birth_year)
        if problem:
            problems.append(problem)
    return problems


# Recently accepted IDs (without an explicit ``today``). Safe to remember: the verdict is a pure function of the
# number. Cleared when full rather than kept in LRU order: cheaper per event, and a resident's events arrive
# close together anyway.
_ACCEPTED: dict[str, None] = {}
_ACCEPTED_MAX: Final = 200_000


def _is_valid(cid: str, today: date) -> bool:
    """The common case, without building messages: a valid ID in canonical form."""
    if len(cid) != 18 or not _DIGITS.issuperset(cid[:17]) or cid[17] not in _CHECK_CHARACTERS:
        return False
    if calc_check_digit(cid) != cid[17]:  # stdnum ignores the last character of its argument
        return False
    try:
        born = date(int(cid[6:10]), int(cid[10:12]), int(cid[12:14]))
    except ValueError:
        return False
    if not EARLIEST_BIRTH_DATE <= born <= today:
        return False
    division = lookup_division(cid[:6])
    return division is not None and (division.abolished_in is None or division.abolished_in >= born.year)


def normalize_citizen_id(raw: str, *, today: date | None = None) -> str:
    """Validate an 18-character citizen ID and return its canonical form (lower-case ``x`` → ``X``).

    ``today`` is the upper bound for the birth date; by default it is the end of the register's range
    (``events.bounds.LATEST_DATE``): this function never reads the clock, so the same number gets the same
    verdict on any day. (An event's numbers are also bounded by the day it was recorded: ``events.envelope``.)
    A read path that wants "not born after today" passes today in China itself. Surrounding whitespace is *not*
    stripped: an ID is a key, and a department system sending padded keys has a bug worth hearing about.

    Raises ``CitizenIdError`` listing every rule that failed.
    """
    if not isinstance(raw, str):
        raise CitizenIdError([f"characters: a citizen ID must be a string, got {type(raw).__name__}"])
    cid = raw[:17] + "X" if len(raw) == 18 and raw[17] == "x" else raw
    if today is None:
        if cid in _ACCEPTED:
            return cid
        if _is_valid(cid, LATEST_DATE):
            if len(_ACCEPTED) >= _ACCEPTED_MAX:
                _ACCEPTED.clear()
            _ACCEPTED[cid] = None
            return cid
    elif _is_valid(cid, min(today, LATEST_DATE)):
        return cid
    problems = _problems(cid, today)
    if problems:
        raise CitizenIdError(problems)
    return cid


def reader_citizen_id(raw: str) -> str:
    """A number as a reader gives it (a query, a command line): an 18-character ID, normalised, or a 15-digit
    legacy number upgraded to its 18-character form by the standard rule (§12) and then validated. Events always
    carry the 18-character form; only reads accept the old one. Raises ``CitizenIdError``."""
    if isinstance(raw, str) and len(raw) == 15 and _DIGITS.issuperset(raw):
        return normalize_citizen_id(upgrade_legacy(raw))
    return normalize_citizen_id(raw)


def upgrade_legacy(id15: str) -> str:
    """The 18-digit form of a 15-digit legacy number: ``19`` inserted before ``YYMMDD``, check added.

    Only the shape is checked (15 ASCII digits); validate the result with ``normalize_citizen_id``.
    """
    if len(id15) != 15 or not _DIGITS.issuperset(id15):
        raise CitizenIdError([f"length: a legacy number has 15 digits, got {_show(id15)}"])
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + _check_character(first17)


def make_citizen_id(division: str, birth: date, seq: int, *, today: date | None = None) -> str:
    """Build a valid citizen ID from its parts (for tests, examples and the city simulator).

    ``seq`` is the 3-digit sequence number, 0–999: odd for a man, even for a woman. Raises ``CitizenIdError``
    if the result breaks a rule (unknown division, division abolished before ``birth``, future birth date).
    """
    if not 0 <= seq <= 999:
        raise CitizenIdError([f"characters: the sequence number must be 0-999, got {seq}"])
    first17 = f"{division}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq:03d}"
    return normalize_citizen_id(first17 + _check_character(first17), today=today)


def born_after(cid: str, day: date) -> date | None:
    """The birth date encoded in a *valid* citizen ID if it is after ``day``, else ``None`` (no re-validation)."""
    stamp = cid[6:14]
    if stamp <= f"{day.year:04d}{day.month:02d}{day.day:02d}":  # YYYYMMDD text sorts like the date
        return None
    return date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:]))


def birth_date_of(cid: str) -> date:
    """The birth date encoded in a citizen ID (validated first; raises ``CitizenIdError``)."""
    cid = normalize_citizen_id(cid)
    return date(int(cid[6:10]), int(cid[10:12]), int(cid[12:14]))


def sex_of(cid: str) -> Literal["male", "female"]:
    """``"male"`` for an odd sequence number, ``"female"`` for an even one (validated first)."""
    cid = normalize_citizen_id(cid)
    return "male" if int(cid[16]) % 2 else "female"


def division_of(cid: str) -> str:
    """The 6-digit division code where the number was assigned (validated first)."""
    return normalize_citizen_id(cid)[:6]


# ---------------------------------------------------------------------------------------------------------
# Pydantic types
# ---------------------------------------------------------------------------------------------------------


def _validate_citizen_id(value: str) -> str:
    try:
        return normalize_citizen_id(value)
    except CitizenIdError as exc:
        # The problems travel in the error context so that InvalidEvent can report each rule separately.
        raise PydanticCustomError("citizen_id", "{summary}", {"summary": str(exc), "problems": exc.problems}) from None


def _validate_region_code(value: str) -> str:
    if lookup_division(value) is None:
        raise PydanticCustomError("region_code", "{summary}", {"summary": f"{value!r} is not a GB/T 2260 code"})
    return value


CitizenId = Annotated[
    str,
    AfterValidator(_validate_citizen_id),
    BIRTH_BOUND,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9]{17}[0-9Xx]$",
            "description": "18-character citizen ID (GB 11643-1999) with a valid check character, birth date "
            "and GB/T 2260 division code; a lower-case x is normalised to X.",
        }
    ),
]
"""A valid 18-character citizen ID number, normalised (``x`` → ``X``); in an event, its birth date must not be
after the day the event was recorded."""

RegionCode = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{6}$"),
    AfterValidator(_validate_region_code),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9]{6}$",
            "description": "GB/T 2260 administrative division code (any era).",
        }
    ),
]
"""A 6-digit GB/T 2260 administrative division code that exists or has existed."""
