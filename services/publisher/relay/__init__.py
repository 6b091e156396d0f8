"""``OutboxRelay``: publish a department's committed outbox rows to Kafka, in order, and mark them sent.

One round: in a transaction, lock the oldest unsent rows (``ORDER BY id ... FOR UPDATE``), publish them
(idempotent producer, ``acks=all``), wait for the acknowledgements, mark the acknowledged ones sent, commit.

* Nothing is lost: a row is marked sent only after Kafka acknowledged it, in the same transaction that locked it.
* Duplicates are absorbed downstream: a relay killed after Kafka acknowledged but before its commit publishes
  those rows again on restart; every consumer applies one ``event_id`` once.
* Order per citizen: rows go out in ``id`` order, and of each partition only a prefix is ever acknowledged (see
  ``Publisher.send_records``), so a citizen's later event is never marked sent before an earlier one. Several
  relays on one table are safe: ``FOR UPDATE`` (deliberately not ``SKIP LOCKED``, which would let a second relay
  publish a citizen's later rows while the first still holds the earlier ones) makes the others wait, so they
  act as hot standbys.
* Outages are ridden out: a lost or refused database connection, or Kafka not acknowledging, is retried under
  the backbone's retry policy (``services.retry``: backoff with jitter up to 30 s, no deadline — the relay waits
  as long as it runs), reconnecting as needed; each round that works starts the backoff afresh. Any other
  database error (a missing table) stops the relay with its traceback.

Run it as a process::

    python -m services.publisher.relay --dsn postgresql://dept@127.0.0.1/registry --table registry.renkou_outbox
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from functools import partial
from typing import Annotated

import asyncpg
import typer

from events import topic_for
from services.db.dsn import asyncpg_dsn
from services.kafka.auth import explicit_credentials
from services.outages import describe, is_outage
from services.publisher.outbox import Outbox
from services.publisher.producer import Publisher, PublishError
from services.retry import GaveUpError, RetryPolicy
from services.runtime import configure_logging
from services.settings import Settings

__all__ = ["OutboxRelay", "main"]

log = logging.getLogger("renkou.outbox_relay")


class OutboxRelay:
    """Moves one outbox table's rows to Kafka."""

    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher,
        *,
        batch_size: int = 500,
        idle_s: float = 0.2,
        retry: RetryPolicy | None = None,
    ) -> None:
        """``retry``: how outages are ridden out (default: backoff with jitter up to 30 s, for as long as it
        runs)."""
        self.outbox = outbox
        self.publisher = publisher
        self.batch_size = batch_size
        self.idle_s = idle_s
        self.retry = retry or RetryPolicy(deadline_s=None)
        self.published = 0

    async def relay_once(self, conn: asyncpg.Connection) -> int:
        """Publish one batch of unsent rows; return how many were marked sent (raises ``PublishError`` if Kafka
        acknowledged none of a non-empty batch)."""
        name = self.outbox.name
        async with conn.transaction():
            rows = await conn.fetch(
                f"SELECT id, department, citizen_id, value FROM {name} "
                "WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE",
                self.batch_size,
            )
            if not rows:
                return 0
            records = [
                (self.publisher.namespace + topic_for(r["department"]), r["citizen_id"].encode(), bytes(r["value"]))
                for r in rows
            ]
            results = await self.publisher.send_records(records)
            acked = [(row["id"], res) for row, res in zip(rows, results, strict=True) if not _failed(res)]
            if acked:
                await conn.execute(
                    f"UPDATE {name} AS o SET sent_at = now(), kafka_topic = a.t, kafka_partition = a.p, "
                    "kafka_offset = a.o FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[]) "
                    "AS a(id, t, p, o) WHERE o.id = a.id",
                    [i for i, _ in acked],
                    *_columns([r for _, r in acked]),
                )
        failures = [r for r in results if isinstance(r, PublishError)]
        self.published += len(acked)
        if failures and not acked:
            raise failures[0]
        return len(acked)

    async def run(self, dsn: str, stop: asyncio.Event | None = None) -> None:
        """Relay until ``stop`` is set, riding out outages of PostgreSQL and Kafka under ``self.retry``."""
        stop = stop or asyncio.Event()
        link = _Link(dsn)
        retrying = partial(
            self.retry.retrying,
            f"relaying {self.outbox.name}",
            retryable=self.retry.retryable(also=lambda exc: isinstance(exc, PublishError)),
            should_stop=stop.is_set,
            sleep=partial(_sleep_unless, stop),
            on_retry=_warn,
        )
        try:
            while not stop.is_set():
                try:
                    sent: int = await retrying()(self._round, link)
                except GaveUpError:
                    if stop.is_set():
                        break
                    raise
                if sent:
                    log.debug("published %d outbox rows", sent)
                if sent < self.batch_size:
                    await _sleep_unless(stop, self.idle_s)
        finally:
            await link.close()

    async def _round(self, link: _Link) -> int:
        conn = await link.connection()
        try:
            return await self.relay_once(conn)
        except Exception as exc:
            if is_outage(exc):
                await link.close()  # reconnect on the next attempt
            raise


class _Link:
    """The relay's one connection to the outbox database, opened when needed."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn, timeout=10)
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection is dropped either way
                await conn.close(timeout=5)


def _warn(error: BaseException, wait_s: float) -> None:
    if isinstance(error, PublishError) and not is_outage(error):
        log.error("Kafka refused the oldest unsent rows (%s); retrying in %.1f s", describe(error), wait_s)
    else:
        log.warning("outbox relay: %s; retrying in %.1f s", describe(error), wait_s)


def _failed(result: tuple[str, int, int] | PublishError) -> bool:
    return isinstance(result, PublishError)


def _columns(results: Sequence[tuple[str, int, int] | PublishError]) -> tuple[list[str], list[int], list[int]]:
    ok = [r for r in results if not isinstance(r, PublishError)]
    return [r[0] for r in ok], [r[1] for r in ok], [r[2] for r in ok]


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _serve(dsn: str, table: str, bootstrap: str, namespace: str, batch_size: int) -> None:
    # The department's own principal (CONTRACT §10), from RENKOU_KAFKA_USERNAME / RENKOU_KAFKA_PASSWORD.
    publisher = Publisher(
        bootstrap,
        namespace=namespace,
        client_id="renkou-outbox-relay",
        credentials=explicit_credentials(Settings()),
    )
    relay = OutboxRelay(Outbox.named(table), publisher, batch_size=batch_size)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("relaying %s to Kafka at %s", relay.outbox.name, bootstrap)
    try:
        await relay.run(dsn, stop)
    finally:
        await publisher.stop()
        log.info("stopped after publishing %d rows", relay.published)


cli = typer.Typer(
    add_completion=False,
    help=(__doc__ or "").splitlines()[0],
    context_settings={"help_option_names": ["-h", "--help"]},  # as argparse had it
)


@cli.command()
def relay(
    dsn: Annotated[str, typer.Option(help="the department database (postgresql://user@host/db)")],
    table: Annotated[str, typer.Option(help="the outbox table, schema.table")] = "public.renkou_outbox",
    bootstrap: Annotated[
        str, typer.Option(envvar="RENKOU_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers")
    ] = "127.0.0.1:9092",
    namespace: Annotated[
        str, typer.Option(envvar="RENKOU_TOPIC_NAMESPACE", help="topic name prefix (tests only)")
    ] = "",
    batch_size: Annotated[int, typer.Option(min=1, help="rows published per transaction")] = 500,
) -> None:
    """Relay the outbox table's committed rows to Kafka until SIGINT or SIGTERM."""
    configure_logging()
    asyncio.run(_serve(asyncpg_dsn(dsn), table, bootstrap, namespace, batch_size))


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m services.publisher.relay --dsn DSN --table SCHEMA.TABLE [--bootstrap HOST:PORT]``."""
    cli(args=list(argv) if argv is not None else None, prog_name="python -m services.publisher.relay")
