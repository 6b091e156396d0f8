"""Why a batch failed: an outage (wait and retry the same records) or its content (isolate and dead-letter).

CONTRACT §10: a record that cannot be applied for any reason other than an outage goes to the dead letters and
the partition moves on. So the question the projector asks of an exception is only "is this an outage?" — the
database or Kafka unreachable, shutting down, out of resources, a transaction to retry (serialization failure,
deadlock), or a fault of the deployment rather than of a record (SQL the schema does not know, a missing
privilege, an internal error of the server). Retrying those in place is the only right thing: dead-lettering on
an outage would throw away good records.

Everything else is taken to be caused by the records: PostgreSQL's data exceptions (class 22: a value out of
range, NUL in text…), integrity violations (class 23), program limits (class 54: an index row too large), the
driver refusing a value it cannot encode, and any error the pure fold raises (``ValueError``, ``OverflowError``,
…). Those are isolated by bisecting the batch (``BatchProjector.process(..., isolate=True)``).
"""

from __future__ import annotations

from typing import Final

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from asyncpg.exceptions._base import DataError as EncodingError  # the driver refusing a value it cannot send

__all__ = ["describe", "is_outage"]

_OUTAGES: Final[tuple[type[BaseException], ...]] = (
    OSError,  # connection refused or reset, network unreachable (ConnectionError is one)
    TimeoutError,  # asyncio.TimeoutError too
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or is gone
    asyncpg.OperatorInterventionError,  # class 57: admin/crash shutdown, cannot connect now, query cancelled
    asyncpg.TransactionRollbackError,  # class 40: serialization failure, deadlock: retry the transaction
    asyncpg.InsufficientResourcesError,  # class 53: disk full, out of memory, too many connections
    asyncpg.PostgresSystemError,  # class 58: I/O error on the server
    asyncpg.InternalServerError,  # class XX: the server's own fault
    asyncpg.LockNotAvailableError,  # 55P03
    asyncpg.ReadOnlySQLTransactionError,  # 25006: connected to a standby (during a failover)
    asyncpg.SyntaxOrAccessError,  # class 42: our SQL or the grants are wrong for this schema, not the record
    asyncpg.InternalClientError,  # the driver's own fault
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says PostgreSQL, Kafka or the deployment is at fault rather than the records applied."""
    if isinstance(exc, EncodingError):  # a ValueError and an InterfaceError at once: before the interface errors
        return False
    if isinstance(exc, _OUTAGES):
        return True
    if isinstance(exc, asyncpg.InterfaceError):  # connection closed, or in a state where it cannot be used
        return True
    if isinstance(exc, KafkaError):  # dead letters could not be published
        return not isinstance(exc, MessageSizeTooLargeError | RecordTooLargeError)
    return False


_MAX_DESCRIPTION: Final = 500


def describe(exc: BaseException) -> str:
    """A one-line reason for a dead letter whose application failed: the error's type and message, shortened."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 1] + "…"
