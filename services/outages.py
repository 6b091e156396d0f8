"""Outage or fault: the one rule that tells an unavailable dependency from an error of the request or the record.

``is_outage(exc)`` is true when ``exc`` says that PostgreSQL, Kafka or the network between us is unavailable, or
refuses this service as a whole — nothing the request or the record carried can have caused it, and the same work
succeeds once the dependency is back. Everything else (a constraint a value broke, a record too large, a bug) is
not an outage. Who uses it:

* the HTTP services answer an outage ``503`` with ``Retry-After`` (``RETRY_AFTER_S``), never a 500;
* clients and relays retry outages (``services.retry``) and give up at once on anything else;
* the projector retries a batch that failed by an outage and dead-letters a record that fails for any other
  reason (CONTRACT §10, "Nothing stalls").

What counts, by driver:

* **asyncpg**: every client-side connection error (``InterfaceError`` — the connection is closed, in use or
  mid-protocol — but not its ``DataError``, which is a parameter the statement could not encode;
  ``InternalClientError`` such as "cannot switch to state 15" after the server went away) and the server's
  SQLSTATEs of class 08 (connection exception), 28 (invalid authorization), 3D (no such database), 53
  (insufficient resources: too many connections, disk full, out of memory), 57 (operator intervention: admin or
  crash shutdown, cannot connect now, statement cancelled or timed out), 58 (system error), plus serialization
  failures and deadlocks (40001, 40P01, 40003), a lock not available (55P03), a read-only transaction (25006, a
  standby after failover), an idle session killed (25P03), missing privileges (42501: a role without its grant
  is a deployment fault, never the record's) and a cached plan invalidated by a schema change;
* **SQLAlchemy**: ``OperationalError``, ``InterfaceError``, ``DisconnectionError``, any ``DBAPIError`` whose
  connection was invalidated, the pool's ``TimeoutError``; other ``DBAPIError`` by the driver error they wrap;
* **the network**: ``ConnectionError`` (refused, reset, aborted, broken pipe), ``TimeoutError``, name resolution
  failures, a bare ``OSError`` with a network ``errno`` or none (asyncio's "Multiple exceptions: ... Connect call
  failed"), a TLS stream cut short, an incomplete read; not ``FileNotFoundError``, ``PermissionError`` and the
  other file-system errors;
* **aiokafka**: every error Kafka marks retriable (``KafkaConnectionError``, ``NodeNotReadyError``,
  ``RequestTimedOutError``, ``NotEnoughReplicas*``, ``LeaderNotAvailableError``, ``NotLeaderForPartitionError``,
  ``NoBrokersAvailable``, ``UnknownTopicOrPartitionError`` …) and ``KafkaTimeoutError``,
  ``KafkaUnavailableError``, ``BrokerNotAvailableError``, ``ReplicaNotAvailableError``,
  ``RebalanceInProgressError``, ``ProducerClosed``, and the authentication and authorisation failures; never
  ``MessageSizeTooLargeError``, ``RecordTooLargeError``, ``CorruptRecordException`` and the like, which are the
  record's;
* anything raised from (``__cause__``) an outage, ``DependencyUnavailableError`` and its subclasses, and an
  exception group all of whose members are outages.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

import asyncpg
from aiokafka import errors as kafka
from asyncpg.exceptions._base import DataError as _AsyncpgClientDataError
from sqlalchemy import exc as sa

__all__ = [
    "OUTAGE_ROOTS",
    "RETRY_AFTER_HEADERS",
    "RETRY_AFTER_S",
    "Dependency",
    "DependencyUnavailableError",
    "describe",
    "is_outage",
    "outage_dependency",
    "outage_error",
    "outages_of",
]

Dependency = Literal["postgresql", "kafka"]

RETRY_AFTER_S: Final = 5
"""What a 503 for an outage advises in ``Retry-After`` (seconds): long enough for a restart to be noticed, short
enough that a client riding out the outage is back soon after the dependency."""
RETRY_AFTER_HEADERS: Final = {"Retry-After": str(RETRY_AFTER_S)}


class DependencyUnavailableError(RuntimeError):
    """Raised (or subclassed) by code that has already decided a dependency is unavailable."""

    dependency: Dependency | None = None

    def __init__(self, message: str, dependency: Dependency | None = None) -> None:
        super().__init__(message)
        if dependency is not None:
            self.dependency = dependency


@contextmanager
def outages_of(dependency: Dependency) -> Iterator[None]:
    """Within the block, an outage is ``dependency``'s: a bare network error (a refused connection says nothing of
    whose it was) is raised as ``DependencyUnavailableError`` naming it; anything else passes unchanged."""
    try:
        yield
    except DependencyUnavailableError:
        raise
    except Exception as exc:
        if not is_outage(exc):
            raise
        raise DependencyUnavailableError(describe(exc), dependency) from exc


OUTAGE_ROOTS: Final[tuple[type[Exception], ...]] = (
    OSError,
    asyncio.IncompleteReadError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    sa.SQLAlchemyError,
    kafka.KafkaError,
    DependencyUnavailableError,
)
"""The base classes of every exception ``is_outage`` can say yes to by itself (an HTTP service registers its 503
handler on each); an exception raised *from* an outage, or a group of them, can be of any class."""

_PG_OUTAGE_CLASSES: Final = frozenset({"08", "28", "3D", "53", "57", "58"})
_PG_OUTAGE_CODES: Final = frozenset({"40001", "40P01", "40003", "55P03", "25006", "25P03", "42501"})
_NETWORK_ERRNOS: Final = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.ENOTCONN,
        errno.EADDRNOTAVAIL,
    }
)
_KAFKA_OUTAGES: Final[tuple[type[BaseException], ...]] = (
    kafka.KafkaTimeoutError,
    kafka.KafkaUnavailableError,
    kafka.BrokerNotAvailableError,
    kafka.ReplicaNotAvailableError,
    kafka.RebalanceInProgressError,
    kafka.ProducerClosed,
    kafka.AuthenticationFailedError,
    kafka.SaslAuthenticationFailed,
    kafka.ClusterAuthorizationFailedError,
    kafka.TopicAuthorizationFailedError,
    kafka.GroupAuthorizationFailedError,
    kafka.TransactionalIdAuthorizationFailed,
)
_SQLALCHEMY_OUTAGES: Final[tuple[type[BaseException], ...]] = (
    sa.OperationalError,
    sa.InterfaceError,
    sa.DisconnectionError,
    sa.TimeoutError,
)
_MAX_DEPTH: Final = 8


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means a dependency is unavailable (retry later) rather than a fault of the work itself."""
    return _classify(exc, 0) is not None


def outage_dependency(exc: BaseException) -> Dependency | None:
    """``"postgresql"`` or ``"kafka"`` when ``exc`` is an outage of that dependency; ``None`` when it is not an
    outage or does not say whose (a bare network error)."""
    found = _classify(exc, 0)
    if found == "postgresql" or found == "kafka":
        return found
    return None


def outage_error(exc: BaseException) -> tuple[str, str]:
    """The error code and one-line message of the 503 that answers outage ``exc``."""
    dependency = outage_dependency(exc)
    # The first error of the chain names what happened (the driver's, not a wrapper's); no message, which may
    # name internal hosts and ports.
    what = type(_first_outage(exc)).__name__
    if dependency == "postgresql":
        return "database_unavailable", f"PostgreSQL is unavailable ({what}); retry later"
    if dependency == "kafka":
        return "kafka_unavailable", f"Kafka is unavailable ({what}); retry later"
    return "service_unavailable", f"a dependency is unreachable ({what}); retry later"


def _first_outage(exc: BaseException) -> BaseException:
    for _ in range(_MAX_DEPTH):
        cause = exc.__cause__
        if cause is None or not is_outage(cause):
            break
        exc = cause
    return exc


def describe(exc: BaseException) -> str:
    """``TypeName: message`` (just the type name when there is no message), for logs and error messages."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the rule ---------------------------------------------------------------------------------------------------

_Found = Literal["postgresql", "kafka", "network"]


def _classify(exc: BaseException, depth: int) -> _Found | None:
    """Whose outage ``exc`` is (``"network"`` when it does not say), or ``None`` when it is not one."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(exc, BaseExceptionGroup):
        members = [_classify(e, depth + 1) for e in exc.exceptions]
        if members and all(m is not None for m in members):
            return members[0]
        return None
    found = _direct(exc)
    if found is not None:
        return found
    if isinstance(exc, sa.DBAPIError) and exc.orig is not None and exc.orig is not exc:
        found = _classify(exc.orig, depth + 1)
        if found is not None:
            return found
    cause = exc.__cause__
    return _classify(cause, depth + 1) if cause is not None else None


def _direct(exc: BaseException) -> _Found | None:
    if isinstance(exc, DependencyUnavailableError):
        return exc.dependency or "network"
    if isinstance(exc, asyncpg.PostgresError):
        return "postgresql" if _pg_outage(exc) else None
    if isinstance(exc, _AsyncpgClientDataError):
        return None  # a parameter asyncpg could not encode: the statement's values, not the connection
    if isinstance(exc, (asyncpg.InterfaceError, asyncpg.InternalClientError)):
        return "postgresql"
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return "postgresql"
    if isinstance(exc, _SQLALCHEMY_OUTAGES):
        return "postgresql"
    if isinstance(exc, kafka.KafkaError):
        return "kafka" if exc.retriable or isinstance(exc, _KAFKA_OUTAGES) else None
    if isinstance(exc, OSError):
        return "network" if _network_error(exc) else None
    if isinstance(exc, asyncio.IncompleteReadError):
        return "network"
    return None


def _pg_outage(exc: asyncpg.PostgresError) -> bool:
    if isinstance(exc, asyncpg.exceptions.InvalidCachedStatementError):
        return True  # a schema change invalidated a prepared plan; the driver re-prepares on the next try
    sqlstate = getattr(exc, "sqlstate", None)
    if not isinstance(sqlstate, str):
        return False
    return sqlstate[:2] in _PG_OUTAGE_CLASSES or sqlstate in _PG_OUTAGE_CODES


def _network_error(exc: OSError) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror, socket.herror)):
        return True
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return True
    if type(exc) is not OSError:
        return False  # FileNotFoundError, PermissionError, IsADirectoryError …: the file system, not a peer
    return exc.errno is None or exc.errno in _NETWORK_ERRNOS
