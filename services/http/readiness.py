"""Readiness (``/readyz``) beside liveness (``/healthz``), for every renkou service.

``/healthz`` answers while the process is up, whatever its dependencies do: a probe that restarts what fails it
must not restart a healthy service because PostgreSQL or Kafka is down. ``/readyz`` answers whether the service
can do its work now: each dependency is checked (PostgreSQL with ``SELECT 1``, Kafka by a metadata round trip),
all at once and each within a short timeout, and the answer names them::

    200 {"status": "ready", "checks": {"postgresql": "ok", "kafka": "ok"}}
    503 {"status": "unavailable", "checks": {"postgresql": "unavailable (ConnectionRefusedError: ...)",
         "kafka": "ok"}, "unavailable": ["postgresql"]}           + Retry-After
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from services.outages import RETRY_AFTER_HEADERS, describe

__all__ = ["READY_TIMEOUT_S", "Check", "Readiness", "check_readiness", "kafka_metadata", "postgresql"]

READY_TIMEOUT_S: Final = 2.0
"""How long one dependency may take to answer a readiness check."""

Check = Callable[[], Awaitable[object]]
"""A dependency check: returns when the dependency answered, raises otherwise."""

OK: Final = "ok"


@dataclass(frozen=True)
class Readiness:
    """The outcome of every check, by dependency name: ``"ok"`` or ``"unavailable (why)"``."""

    checks: dict[str, str]

    @classmethod
    def starting(cls, *names: str) -> Readiness:
        """Not ready because the service has not made its clients yet (or is stopping): each of ``names``
        unavailable, none asked."""
        return cls(dict.fromkeys(names, "unavailable (starting)"))

    @property
    def ready(self) -> bool:
        return all(v == OK for v in self.checks.values())

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.ready else dict(RETRY_AFTER_HEADERS)

    def body(self) -> dict[str, Any]:
        if self.ready:
            return {"status": "ready", "checks": self.checks}
        down = [name for name, v in self.checks.items() if v != OK]
        return {"status": "unavailable", "checks": self.checks, "unavailable": down}

    def response(self) -> Response:
        """The ``/readyz`` answer: the body as JSON, 200 or 503 with ``Retry-After``."""
        return Response(
            orjson.dumps(self.body()), self.status_code, headers=self.headers or None, media_type="application/json"
        )


async def check_readiness(checks: Mapping[str, Check], *, within_s: float = READY_TIMEOUT_S) -> Readiness:
    """Run every check concurrently, each within ``within_s`` seconds."""
    names = list(checks)
    outcomes = await asyncio.gather(*(_probe(checks[n], within_s) for n in names))
    return Readiness(dict(zip(names, outcomes, strict=True)))


async def _probe(check: Check, within_s: float) -> str:
    try:
        async with asyncio.timeout(within_s):
            await check()
    except TimeoutError:
        return f"unavailable (no answer within {within_s:g} s)"
    except Exception as exc:  # every failure is an answer here: "unavailable (why)"
        return f"unavailable ({describe(exc)})"
    return OK


def postgresql(engine: AsyncEngine) -> Check:
    """``SELECT 1`` on a connection of ``engine``'s pool (a dead pooled connection is replaced by pre-ping)."""

    async def check() -> None:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    return check


def kafka_metadata(client: Any) -> Check:
    """A cluster metadata round trip on an aiokafka client (a producer's ``client``): some broker answers."""

    async def check() -> None:
        metadata = await client.fetch_all_metadata()
        if not metadata.brokers():
            raise ConnectionError("the cluster metadata lists no broker")

    return check
