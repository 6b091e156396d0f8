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

The outages are ``services.outages.is_outage``'s, the rule every service shares; the projector adds the faults
of the deployment a record cannot cause (classes 42, 58 and XX, any ``OSError``), the whole of class 40 (a
transaction to run again; the projection declares no deferred constraint whose 40002 a record could cause) and
any Kafka refusal of its dead letters but their size.
"""

from __future__ import annotations

from typing import Final

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from asyncpg.exceptions._base import DataError as EncodingError  # the driver refusing a value it cannot send

from services import outages

__all__ = ["describe", "is_outage"]

# What the projector adds to ``services.outages.is_outage`` (the rule every service shares): faults of the
# deployment, which a record cannot cause and no record should be dead-lettered for.
_DEPLOYMENT_FAULTS: Final[tuple[type[BaseException], ...]] = (
    asyncpg.SyntaxOrAccessError,  # class 42: our SQL or the grants are wrong for this schema, not the record
    asyncpg.InternalServerError,  # class XX: the server's own fault
    asyncpg.PostgresSystemError,  # class 58: I/O error on the server
    asyncpg.TransactionRollbackError,  # class 40: retry the transaction
    OSError,  # the projector reads no file: any OSError is the network's or the machine's
    TimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says PostgreSQL, Kafka or the deployment is at fault rather than the records applied:
    an outage by the shared rule, a fault of the deployment, or Kafka refusing the dead letters for anything but
    their size."""
    if isinstance(exc, EncodingError):  # a ValueError and an InterfaceError at once: the value's fault
        return False
    if outages.is_outage(exc) or isinstance(exc, _DEPLOYMENT_FAULTS):
        return True
    if isinstance(exc, KafkaError):  # dead letters could not be published
        return not isinstance(exc, MessageSizeTooLargeError | RecordTooLargeError)
    return False


_MAX_DESCRIPTION: Final = 500


def describe(exc: BaseException) -> str:
    """A one-line reason for a dead letter whose application failed: the error's type and message, shortened."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 1] + "…"
