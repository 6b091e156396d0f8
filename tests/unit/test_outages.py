"""``services.outages.is_outage``: every error class the drivers raise for an unavailable dependency is an outage,
and the errors a request or a record causes are not — one case per class."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import asyncpg
import pytest
from aiokafka import errors as kafka
from asyncpg import exceptions as pg
from asyncpg.exceptions._base import DataError as ClientDataError
from sqlalchemy import exc as sa

from services.outages import DependencyUnavailableError, describe, is_outage, outage_dependency


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> sa.DBAPIError:
    """What SQLAlchemy raises for a driver error (``DBAPIError.instance`` picks the subclass)."""
    return sa.DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError("the operation failed") from exc
    except RuntimeError as outer:
        return outer


POSTGRESQL_OUTAGES: list[BaseException] = [
    # asyncpg, client side: the connection is gone, busy or out of step with the server
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    pg.ProtocolError("unexpected message"),
    pg.OutdatedSchemaCacheError("cached statement plan is invalid"),
    pg.ClientConfigurationError("invalid connection option"),
    # class 08: connection exception
    pg.PostgresConnectionError("connection exception"),
    pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    pg.ConnectionFailureError("connection failure"),
    pg.ClientCannotConnectError("cannot connect"),
    pg.ConnectionRejectionError("rejected"),
    pg.TransactionResolutionUnknownError("unknown"),
    pg.ProtocolViolationError("protocol violation"),
    # class 57: operator intervention
    pg.OperatorInterventionError("operator intervention"),
    pg.AdminShutdownError("terminating connection due to administrator command"),
    pg.CrashShutdownError("terminating connection because of crash of another server process"),
    pg.CannotConnectNowError("the database system is starting up"),
    pg.QueryCanceledError("canceling statement due to statement timeout"),
    pg.DatabaseDroppedError("database dropped"),
    pg.IdleSessionTimeoutError("idle session timeout"),
    # class 53: insufficient resources
    pg.TooManyConnectionsError("sorry, too many clients already"),
    pg.InsufficientResourcesError("insufficient resources"),
    pg.DiskFullError("could not extend file"),
    pg.OutOfMemoryError("out of memory"),
    pg.ConfigurationLimitExceededError("limit exceeded"),
    # class 58: system error; 28: authorization; 3D: no such database
    pg.PostgresSystemError("system error"),
    pg.PostgresIOError("could not read block"),
    pg.InvalidPasswordError("password authentication failed"),
    pg.InvalidAuthorizationSpecificationError("no pg_hba.conf entry"),
    pg.InvalidCatalogNameError('database "x" does not exist'),
    # transient conflicts, failover, a killed idle session, a role without its grant, a stale plan
    pg.SerializationError("could not serialize access"),
    pg.DeadlockDetectedError("deadlock detected"),
    pg.LockNotAvailableError("could not obtain lock"),
    pg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    pg.IdleInTransactionSessionTimeoutError("idle-in-transaction timeout"),
    pg.InsufficientPrivilegeError("permission denied for table access_log"),
    pg.InvalidCachedStatementError("cached statement plan is invalid"),
    # SQLAlchemy's wrappers
    sa.OperationalError("SELECT 1", None, Exception("server closed the connection")),
    sa.InterfaceError("SELECT 1", None, Exception("connection is closed")),
    sa.DisconnectionError("the connection was invalidated"),
    sa.TimeoutError("QueuePool limit of size 8 overflow 8 reached, connection timed out"),
    _wrapped(Exception("anything"), invalidated=True),
    _wrapped(pg.ConnectionDoesNotExistError("closed")),
    _wrapped(pg.AdminShutdownError("terminating")),
    sa.DBAPIError.instance("SELECT 1", None, pg.TooManyConnectionsError("too many"), Exception),
]

KAFKA_OUTAGES: list[BaseException] = [
    kafka.KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]"),
    kafka.KafkaTimeoutError(),
    kafka.RequestTimedOutError(),
    kafka.NotEnoughReplicasError(),
    kafka.NotEnoughReplicasAfterAppendError(),
    kafka.LeaderNotAvailableError(),
    kafka.NotLeaderForPartitionError(),
    kafka.NodeNotReadyError(),
    kafka.NoBrokersAvailable(),
    kafka.KafkaUnavailableError(),
    kafka.BrokerNotAvailableError(),
    kafka.ReplicaNotAvailableError(),
    kafka.UnknownTopicOrPartitionError(),
    kafka.CoordinatorNotAvailableError(),
    kafka.NotCoordinatorError(),
    kafka.RebalanceInProgressError(),
    kafka.KafkaStorageError(),
    kafka.StaleMetadata(),
    kafka.ProducerClosed(),
    kafka.SaslAuthenticationFailed(),
    kafka.TopicAuthorizationFailedError(),
]

NETWORK_OUTAGES: list[BaseException] = [
    ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 5433)"),
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    ConnectionAbortedError(),
    BrokenPipeError(errno.EPIPE, "Broken pipe"),
    TimeoutError(),
    socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5433), [Errno 111] ..."),
    OSError(errno.ENETUNREACH, "Network is unreachable"),
    OSError(errno.EHOSTUNREACH, "No route to host"),
    ssl.SSLEOFError(),
    asyncio.IncompleteReadError(b"", 5),
]

NOT_OUTAGES: list[BaseException] = [
    # what a request or a record causes
    pg.UniqueViolationError("duplicate key value"),
    pg.CheckViolationError("violates check constraint"),
    pg.NotNullViolationError("null value"),
    pg.NumericValueOutOfRangeError("value out of range"),
    pg.InvalidTextRepresentationError("invalid input syntax"),
    pg.StringDataRightTruncationError("value too long"),
    pg.ProgramLimitExceededError("index row size exceeds maximum"),
    pg.CharacterNotInRepertoireError("invalid byte sequence for encoding"),
    pg.RaiseError("the archive is append-only"),
    pg.UndefinedTableError("relation does not exist"),
    pg.PostgresSyntaxError("syntax error"),
    pg.InternalServerError("XX000"),
    pg.TransactionIntegrityConstraintViolationError("deferred constraint"),
    ClientDataError("invalid input for query argument $1: 'x' (an integer is required)"),
    sa.IntegrityError("INSERT", None, Exception("duplicate")),
    sa.DataError("INSERT", None, Exception("out of range")),
    sa.ProgrammingError("SELECT", None, Exception("syntax")),
    _wrapped(pg.UniqueViolationError("duplicate")),
    sa.NoSuchTableError("nothing"),
    kafka.MessageSizeTooLargeError(),
    kafka.RecordTooLargeError(),
    kafka.RecordListTooLargeError(),
    kafka.CorruptRecordException(),
    kafka.InvalidMessageError(),
    kafka.InvalidTimestampError(),
    kafka.KafkaError("unknown"),
    # the file system and plain bugs
    FileNotFoundError(errno.ENOENT, "No such file"),
    PermissionError(errno.EACCES, "Permission denied"),
    IsADirectoryError(),
    OSError(errno.ENOSPC, "No space left on device"),
    ValueError("bad"),
    KeyError("x"),
    RuntimeError("a bug"),
    AssertionError(),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
]


@pytest.mark.parametrize("exc", POSTGRESQL_OUTAGES, ids=lambda e: type(e).__name__)
def test_postgresql_outages(exc: BaseException) -> None:
    assert is_outage(exc), describe(exc)
    assert outage_dependency(exc) == "postgresql"


@pytest.mark.parametrize("exc", KAFKA_OUTAGES, ids=lambda e: type(e).__name__)
def test_kafka_outages(exc: BaseException) -> None:
    assert is_outage(exc), describe(exc)
    assert outage_dependency(exc) == "kafka"


@pytest.mark.parametrize("exc", NETWORK_OUTAGES, ids=lambda e: type(e).__name__)
def test_network_outages_do_not_say_whose(exc: BaseException) -> None:
    assert is_outage(exc), describe(exc)
    assert outage_dependency(exc) is None


@pytest.mark.parametrize("exc", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_faults_of_the_request_or_record_are_not_outages(exc: BaseException) -> None:
    assert not is_outage(exc), describe(exc)
    assert outage_dependency(exc) is None


def test_every_server_error_class_of_an_outage_is_covered_by_sqlstate() -> None:
    # Errors asyncpg builds from the server's message carry the SQLSTATE; an unknown code of an outage class
    # (a newer server's) is still an outage.
    unknown = pg.OperatorInterventionError("new kind")
    unknown.sqlstate = "57P99"
    assert is_outage(unknown)
    content = pg.DataError("new kind")
    content.sqlstate = "22P99"
    assert not is_outage(content)


def test_an_error_raised_from_an_outage_is_an_outage() -> None:
    assert is_outage(_raised_from(asyncpg.InternalClientError("cannot switch to state 15")))
    assert outage_dependency(_raised_from(kafka.KafkaConnectionError())) == "kafka"
    assert not is_outage(_raised_from(ValueError("bad")))


def test_groups_are_outages_only_when_every_member_is() -> None:
    assert is_outage(ExceptionGroup("all down", [TimeoutError(), pg.AdminShutdownError("x")]))
    assert not is_outage(ExceptionGroup("mixed", [TimeoutError(), ValueError("bad")]))


def test_a_dependency_declared_unavailable_is_an_outage() -> None:
    class LeaseEmptyError(DependencyUnavailableError):
        dependency = "postgresql"

    assert is_outage(DependencyUnavailableError("down"))
    assert outage_dependency(LeaseEmptyError("no connection")) == "postgresql"


def test_describe_names_the_type_and_the_first_line() -> None:
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(asyncpg.InterfaceError("connection is closed\ndetail")) == "InterfaceError: connection is closed"


def test_outages_of_names_the_dependency_of_a_bare_network_error() -> None:
    from services.outages import DependencyUnavailableError, outage_error, outages_of

    with pytest.raises(DependencyUnavailableError) as caught, outages_of("postgresql"):
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5433)")
    assert outage_dependency(caught.value) == "postgresql"
    code, message = outage_error(caught.value)
    assert code == "database_unavailable"
    assert message == "PostgreSQL is unavailable (ConnectionRefusedError); retry later"  # no host, no port
    with pytest.raises(ValueError, match="bad"), outages_of("postgresql"):
        raise ValueError("bad")  # not an outage: unchanged
    assert outage_error(kafka.NodeNotReadyError())[0] == "kafka_unavailable"
    assert outage_error(TimeoutError())[0] == "service_unavailable"
