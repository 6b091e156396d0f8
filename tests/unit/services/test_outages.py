"""``services.outages.is_outage``: every error class the drivers raise for an unavailable dependency is an outage,
and the errors a request or a record causes are not — one case per class."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka import errors as kafka
from asyncpg import exceptions as pg

from services.outages import DependencyUnavailableError, describe, is_outage, outage_dependency
from tests.support.outages import KAFKA_OUTAGES, NETWORK_OUTAGES, NOT_OUTAGES, POSTGRESQL_OUTAGES, raised_from


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
    assert is_outage(raised_from(asyncpg.InternalClientError("cannot switch to state 15")))
    assert outage_dependency(raised_from(kafka.KafkaConnectionError())) == "kafka"
    assert not is_outage(raised_from(ValueError("bad")))


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
