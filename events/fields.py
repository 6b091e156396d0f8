"""Field types shared by the envelope and every payload.

The wire format is JSON and the same bytes must mean the same thing to the gateway, the projector and an
auditor replaying the log years later, so these types are stricter than Pydantic's defaults:

* a date is exactly ``YYYY-MM-DD`` (Pydantic would also take ``"1577836800"`` or a datetime at midnight);
* a timestamp is RFC 3339 *with* an offset (``Z`` or ``±hh:mm``);
* dates, months and timestamps lie in the register's calendar range (``events.bounds``: 1870-01-01 to
  2199-12-31 in China), so that PostgreSQL, the driver and every read path can store and compute with them;
* money is a decimal *string* (a JSON number would pass through binary floating point);
* free text is stripped, non-empty, bounded and free of control characters (PostgreSQL rejects NUL in text,
  and a poison record must be stopped at the door, not in the projector).

Validation of dates, timestamps and text stays inside pydantic-core (no Python callback on the hot path): a
JSON string is first matched against a pattern, then parsed. From Python, the native objects (``date``,
``datetime``, ``Decimal``) are accepted as well as the same strings.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, GetCoreSchemaHandler, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError, core_schema
from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, ValidationError

from events.bounds import (
    BIRTH_BOUND,
    EARLIEST_DATE,
    EARLIEST_INSTANT,
    EARLIEST_PERIOD,
    IDENTIFIER_MAX_CHARS,
    LATEST_DATE,
    LATEST_INSTANT,
    LATEST_PERIOD,
    NAME_MAX_CHARS,
    PERIOD_IN_RANGE_PATTERN,
    SHORT_TEXT_MAX_CHARS,
    TEXT_MAX_CHARS,
)

__all__ = [
    "DATE_PATTERN",
    "DEPARTMENTS",
    "IDENTIFIER_PATTERN",
    "MONEY_PATTERN",
    "PATTERN_RULES",
    "PERIOD_PATTERN",
    "TEXT_PATTERN",
    "TIMESTAMP_PATTERN",
    "BirthDay",
    "Day",
    "Department",
    "EmployerCode",
    "Identifier",
    "Money",
    "Name",
    "Period",
    "Sex",
    "ShortText",
    "Text",
    "Timestamp",
]

Department = Literal["public_security", "education", "social_security", "health"]
"""The four departments that own data in the backbone."""

DEPARTMENTS: Final[tuple[Department, ...]] = ("public_security", "education", "social_security", "health")

Sex = Literal["male", "female"]

DATE_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# RFC 3339 §5.6 date-time; the space separator is allowed by its note, a missing offset is not.
TIMESTAMP_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
PERIOD_PATTERN: Final = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
MONEY_PATTERN: Final = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$"
# No C0 control characters and no DEL: PostgreSQL refuses NUL, and line breaks have no place in a name.
TEXT_PATTERN: Final = r"^[^\x00-\x1f\x7f]*$"
IDENTIFIER_PATTERN: Final = r"^[!-~]+$"

PATTERN_RULES: Final[dict[str, str]] = {
    DATE_PATTERN: "must be a date in the form YYYY-MM-DD",
    TIMESTAMP_PATTERN: "must be an RFC 3339 timestamp with an offset, e.g. 2024-05-01T09:30:00+08:00",
    PERIOD_PATTERN: "must be a month in the form YYYY-MM",
    PERIOD_IN_RANGE_PATTERN: (
        f"must be a month in the form YYYY-MM between {EARLIEST_PERIOD} and {LATEST_PERIOD} (the register's range)"
    ),
    MONEY_PATTERN: 'must be a non-negative decimal string in CNY with at most 2 decimal places, e.g. "1234.50"',
    TEXT_PATTERN: "must not contain control characters (line breaks, tabs, NUL…)",
    IDENTIFIER_PATTERN: "must be printable ASCII without spaces",
}
"""Human wording for each pattern, used by ``InvalidEvent`` instead of quoting a regular expression."""


class _FromString:
    """Core schema: a string matched by ``pattern``, then parsed by ``target``; serialised back to that
    string in JSON mode.

    The pattern runs first because Pydantic's own date parsing is generous (it reads ``"1577836800"`` as a
    Unix timestamp); the parser then checks the calendar (no 30 February). From Python, an instance of
    ``native`` is first turned into its text, so that a ``datetime`` without offset or a ``Decimal`` with
    three places is judged exactly like its JSON form."""

    def __init__(self, pattern: str, target: core_schema.CoreSchema, native: type) -> None:
        self.pattern = pattern
        self.target = target
        self.native = native

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        from_string = core_schema.chain_schema([core_schema.str_schema(pattern=self.pattern, strict=True), self.target])
        native = self.native

        def native_to_text(value: object) -> object:
            return _to_text(value) if isinstance(value, native) else value

        return core_schema.json_or_python_schema(
            json_schema=from_string,
            python_schema=core_schema.no_info_before_validator_function(native_to_text, from_string),
            serialization=core_schema.plain_serializer_function_ser_schema(_to_text, when_used="json"),
        )


def _to_text(value: object) -> str:
    if isinstance(value, datetime):
        # Pydantic's own form: microseconds only when present, UTC as "Z", other offsets kept as received.
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"no text form for {type(value).__name__}")


# The range checks run inside pydantic-core too. The published JSON Schemas keep their shape (a published version
# never changes, ``events.schemas``): the range is the register's rule, named in every rejection.
Day = Annotated[
    date,
    _FromString(DATE_PATTERN, core_schema.date_schema(strict=False, ge=EARLIEST_DATE, le=LATEST_DATE), date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]
"""A calendar date in the register's range, ``YYYY-MM-DD`` on the wire (from Python, also a ``date`` but never a
``datetime``)."""

BirthDay = Annotated[Day, BIRTH_BOUND]
"""A birth date: a ``Day`` that must also not be after the day the event was recorded (``events.envelope``)."""

Timestamp = Annotated[
    datetime,
    _FromString(
        TIMESTAMP_PATTERN,
        core_schema.datetime_schema(strict=False, tz_constraint="aware", ge=EARLIEST_INSTANT, le=LATEST_INSTANT),
        datetime,
    ),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""A timezone-aware instant whose date in China is in the register's range, RFC 3339 with offset on the wire;
the offset is kept as received."""

Money = Annotated[
    Decimal,
    _FromString(MONEY_PATTERN, core_schema.decimal_schema(strict=False), Decimal),
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN, "description": "amount in CNY"}),
]
"""An amount in CNY: a decimal string, ≥ 0, at most 2 decimal places; serialised back as a string."""

Period = Annotated[
    str,
    StringConstraints(strict=True, pattern=PERIOD_IN_RANGE_PATTERN),
    WithJsonSchema({"type": "string", "pattern": PERIOD_PATTERN, "description": "a month, YYYY-MM"}),
]
"""A calendar month, ``YYYY-MM``, in the register's range."""


def _text(max_length: int) -> Any:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length, pattern=TEXT_PATTERN)


Name = Annotated[str, _text(NAME_MAX_CHARS)]
"""A person's name: stripped, 1–100 characters (long transliterated minority names exist)."""

Text = Annotated[str, _text(TEXT_MAX_CHARS)]
"""Free text such as an address or a reason: stripped, 1–200 characters."""

ShortText = Annotated[str, _text(SHORT_TEXT_MAX_CHARS)]
"""A short label (ethnicity, level, team, system name): stripped, 1–64 characters."""

Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=IDENTIFIER_MAX_CHARS, pattern=IDENTIFIER_PATTERN),
]
"""A department's own number or code (household, permit, school, clinic…): 1–64 printable ASCII characters."""


@lru_cache(maxsize=65536)  # employer codes repeat on every contribution; stdnum's check is slow
def _validate_uscc(value: str) -> str:
    code = value.upper()
    # stdnum would also drop spaces and dashes; a key used to join records must arrive in one exact form.
    if len(code) != 18:
        raise PydanticCustomError(
            "employer_code",
            "unified social credit code must be 18 characters, got {length}",
            {"length": len(code)},
        )
    try:
        uscc.validate(code)
    except InvalidChecksum:
        raise PydanticCustomError(
            "employer_code",
            "unified social credit code check character should be '{expected}', got '{got}'",
            {"expected": uscc.calc_check_digit(code), "got": code[-1]},
        ) from None
    except ValidationError:
        raise PydanticCustomError(
            "employer_code",
            "unified social credit code must be 8 digits then 10 of 0-9 and A-Y without I, O, S, V, Z",
        ) from None
    return code


EmployerCode = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(_validate_uscc),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9]{8}[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]{10}$",
            "description": "18-character unified social credit code (GB 32100-2015), upper-cased",
        }
    ),
]
"""An employer's 18-character unified social credit code (统一社会信用代码), check character verified."""
