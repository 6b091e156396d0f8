"""Dead letters that can always be published and stored, and the projector's outage-or-content verdict."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from asyncpg.exceptions._base import DataError as EncodingError

from services.dead_letters import (
    COPY_LIMIT,
    OMITTED,
    REASON,
    VALUE_SIZE,
    Rejected,
    by_reference,
    dead_letter_headers,
    printable,
)
from services.projector.failures import describe, is_outage


def test_a_record_that_fits_is_copied_whole() -> None:
    rejected = Rejected(b"key", b"x" * 1000, "bad", [("trace", b"1")], "t", 0, 5)
    assert by_reference(rejected) is rejected
    assert OMITTED not in dict(dead_letter_headers(rejected, "projector"))


def test_a_large_value_goes_by_reference_with_its_size() -> None:
    rejected = Rejected(b"key", b"x" * (COPY_LIMIT + 1), "too big", [("trace", b"1")], "t", 0, 5)
    letter = by_reference(rejected)
    assert (letter.key, letter.value, letter.omitted, letter.value_size) == (b"key", None, ("value",), COPY_LIMIT + 1)
    headers = dict(dead_letter_headers(letter, "projector"))
    assert headers[OMITTED] == b"value" and headers[VALUE_SIZE] == str(COPY_LIMIT + 1).encode()
    assert headers["trace"] == b"1"  # the record's own small headers stay
    assert by_reference(letter) is letter  # once is enough


def test_a_huge_key_or_headers_go_too() -> None:
    rejected = Rejected(b"k" * COPY_LIMIT, b"{}", "bad", [("h", b"v" * 10)])
    letter = by_reference(rejected)
    assert (letter.key, letter.value, letter.headers, letter.omitted) == (None, None, (), ("value", "key", "headers"))


def test_reasons_are_safe_for_headers_and_postgresql() -> None:
    assert printable("payload.\x00x\ud800: unknown") == "payload.\\x00x\\ud800: unknown"
    assert printable("正常的原因") == "正常的原因"
    long = printable("x" * 10_000)
    assert len(long) <= 4000 and long.endswith("more characters)")
    headers = dict(dead_letter_headers(Rejected(None, None, "bad\x00\ud800"), "gateway"))
    assert headers[REASON] == b"bad\\x00\\ud800"


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError("reset by peer"),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("closed"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.DiskFullError("could not extend file"),
        asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
        asyncpg.InsufficientPrivilegeError("permission denied for table event_archive"),
        asyncpg.UndefinedColumnError("column does not exist"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        KafkaConnectionError("no broker"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_are_retried(exc: BaseException) -> None:
    assert is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        OverflowError("date value out of range"),
        ValueError("year 0 is out of range"),
        asyncpg.NumericValueOutOfRangeError("value out of range"),
        asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
        asyncpg.UniqueViolationError("duplicate key value"),
        asyncpg.ProgramLimitExceededError("index row size exceeds btree maximum"),
        EncodingError("invalid input for query argument $1"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        MessageSizeTooLargeError(),
        KeyError("a bug a record triggers is the record's to carry, not the partition's"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_content_errors_are_isolated(exc: BaseException) -> None:
    assert not is_outage(exc)


def test_a_reason_describes_the_error_on_one_line() -> None:
    assert describe(OverflowError("date value\nout of range")) == "OverflowError: date value out of range"
    assert len(describe(ValueError("x" * 2000))) == 500
