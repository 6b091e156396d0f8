"""Every error class the drivers raise, sorted: outages of PostgreSQL, of Kafka, of the network, and errors that are
not outages (what a request or a record causes)."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import asyncpg
from aiokafka import errors as kafka
from asyncpg import exceptions as pg
from asyncpg.exceptions._base import DataError as ClientDataError
from sqlalchemy import exc as sa


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> sa.DBAPIError:
    """What SQLAlchemy raises for a driver error (``DBAPIError.instance`` picks the subclass)."""
    return sa.DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


def raised_from(cause: BaseException) -> RuntimeError:
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
