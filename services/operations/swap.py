"""Make a verified shadow the live projection in one transaction; keep the old schema until it is dropped.

The transaction:

1. ``LOCK TABLE projection.checkpoints IN EXCLUSIVE MODE``: waits for a live batch in flight to commit, then
   holds the live projector at the first statement of its next batch (the checkpoint fence), while readers,
   who never touch the checkpoints, go on;
2. reads the live checkpoints ``C`` and projects the shadow's last stretch to exactly ``C`` (the shadow was
   caught up beforehand, so the live projector waits for a few thousand events at most);
3. checks the row counts of both schemas (a cheap guard on top of ``verify``), carries over what the log
   cannot rebuild — ``redriven_at`` of dead letters and views the relay had not published yet;
4. ``ALTER SCHEMA projection RENAME TO projection_old_<ts>``, ``ALTER SCHEMA <shadow> RENAME TO projection``;
5. commits: readers see the old schema or the new one, never neither (catalogue changes are atomic).

The blocked live batch then resolves ``projection.checkpoints`` again — PostgreSQL re-looks-up a name whose
schema changed while it waited for the lock, and invalidates cached plans (asyncpg's prepared statements
included) when ``pg_namespace`` changes — so it continues in the renamed-in schema, from ``C``, which is where
its records start. Were a position ever off, the projector's fence handles it: records below the checkpoint are
skipped, a gap above it makes the consumer seek back.

The view relay republishes every view of the rebuild (the replay enqueued them all): the compacted view topic
converges on the rebuilt views, which is what a rebuild after a projection fix needs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer

from events import department_topics
from projections.resident import tables
from projections.resident.reads import read_checkpoints
from projections.resident.tables import named
from services.anchor.builder import LOCK_KEY as ANCHOR_LOCK_KEY
from services.db import roles as db_roles
from services.kafka.auth import OPERATOR
from services.operations.base import OperationError, Positions, database, total
from services.operations.replay import (
    DEFAULT_BATCH,
    CatchUp,
    Progress,
    ReplayStats,
    catch_up,
    replay_consumer,
    shadow_lock,
    stretch_to,
    swap_guard,
)
from services.operations.schemas import (
    DEFAULT_SHADOW,
    LIVE,
    check_compatible,
    check_name,
    complete_indexes,
    old_schema_name,
    read_note,
    schema_exists,
    tables_of,
    write_note,
)
from services.settings import Settings


@dataclass(frozen=True)
class SwapReport:
    """What a swap did: which schema went live, where the old one is kept, how long the projector waited."""

    shadow: str
    old_schema: str
    checkpoints: Positions
    catch_up: CatchUp
    last_stretch: ReplayStats
    locked_ms: float
    carried_views: int
    carried_redrives: int
    anchor: str | None = None  # the anchor published after the swap, or why there is none (CONTRACT §10)

    @property
    def events(self) -> int:
        return total(self.checkpoints)


async def swap(
    settings: Settings,
    shadow: str = DEFAULT_SHADOW,
    *,
    force: bool = False,
    lock_timeout_s: float = 30.0,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH,
    wait_live_s: float = 60.0,
    progress: Progress | None = None,
) -> SwapReport:
    """Make ``shadow`` live. Refuses a shadow that ``verify`` has not found identical, unless ``force``."""
    check_name(shadow)
    async with (
        database(settings, application_name="renkou-swap", role=db_roles.OWNER) as conn,
        shadow_lock(conn, shadow),
    ):
        if not await schema_exists(conn, shadow):
            raise OperationError(f"no shadow schema {shadow}: run `renkou replay` and `renkou verify` first")
        await check_compatible(conn, shadow)
        note = await read_note(conn, shadow)
        if not force and note.get("verified") is not True:
            state = "found differences" if note.get("verified") is False else "has not been verified"
            raise OperationError(f"{shadow} {state}: run `renkou verify` until it passes (or swap --force)")
        async with swap_guard(conn, shared=False):
            caught = await catch_up(
                settings,
                conn,
                shadow,
                close_enough=500,
                workers=workers,
                batch_size=batch_size,
                wait_live_s=wait_live_s,
                progress=progress,
            )
            await complete_indexes(conn, shadow)
            # The consumer is started before the lock: the projector should wait for records, not for a bootstrap.
            async with replay_consumer(settings) as consumer:
                report = await _swap_locked(
                    conn, consumer, settings, shadow, caught, lock_timeout_s=lock_timeout_s, batch_size=batch_size
                )
    return dataclasses.replace(report, anchor=await _anchor_swap(settings))


async def _anchor_swap(settings: Settings) -> str:
    """An anchor of the chains as the swap left them; never fails the swap, which has committed already."""
    from services.anchor.service import AnchorService

    try:
        service = AnchorService.from_settings(
            settings,
            create_key=False,
            application_name="renkou-swap",
            database_role=db_roles.OWNER,
            kafka_principal=OPERATOR,
        )
    except Exception as exc:
        return f"no anchor: the signing key is unusable ({exc})"
    try:
        outcome = await service.anchor_once("swap", force=True, wait_lock_s=60.0)
    except Exception as exc:
        return f"no anchor: {exc.__class__.__name__}: {exc}"
    finally:
        await service.close()
    if not outcome.published:
        return f"no anchor ({outcome.status}): {outcome.message}"
    held = outcome.signed.anchor.held_total if outcome.signed else 0
    return outcome.message + (f"; it holds {held} chains that did not extend their anchored heads" if held else "")


async def _swap_locked(
    conn: asyncpg.Connection,
    consumer: AIOKafkaConsumer,
    settings: Settings,
    shadow: str,
    caught: CatchUp,
    *,
    lock_timeout_s: float,
    batch_size: int,
) -> SwapReport:
    topics = department_topics(settings.topic_namespace)
    old = old_schema_name()
    if await schema_exists(conn, old):
        raise OperationError(f"schema {old} already exists; retry in a second")
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
        try:
            await conn.execute(f"LOCK TABLE {named(tables.checkpoints, LIVE)} IN EXCLUSIVE MODE")
        except asyncpg.LockNotAvailableError as exc:
            raise OperationError(
                f"could not lock {LIVE}.checkpoints within {lock_timeout_s:.0f}s; nothing was changed, retry"
            ) from exc
        locked = time.perf_counter()
        live_checkpoints = await read_checkpoints(conn, LIVE, topics)
        stretch = await stretch_to(
            conn, consumer, shadow, settings.topic_namespace, live_checkpoints, batch_size=batch_size
        )
        await _compare_counts(conn, shadow)
        redrives = await conn.execute(
            f"UPDATE {named(tables.dead_letters, shadow)} s SET redriven_at = o.redriven_at "
            f"FROM {named(tables.dead_letters, LIVE)} o "
            "WHERE o.redriven_at IS NOT NULL AND s.redriven_at IS NULL AND s.topic = o.topic "
            "AND s.kafka_partition = o.kafka_partition AND s.kafka_offset = o.kafka_offset"
        )
        views = await conn.execute(
            f"INSERT INTO {named(tables.view_outbox, shadow)} (citizen_id, enqueued_at) "
            f"SELECT citizen_id, enqueued_at FROM {named(tables.view_outbox, LIVE)} ON CONFLICT (citizen_id) DO NOTHING"
        )
        await write_note(conn, LIVE, retired=True, replaced_by=shadow, events=total(live_checkpoints))
        await write_note(conn, shadow, live=True, swapped_from=shadow, events=total(live_checkpoints))
        # No anchor is being built across the renaming (it would read one schema's heads with the other's names).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ANCHOR_LOCK_KEY)
        await conn.execute(f"ALTER SCHEMA {LIVE} RENAME TO {old}")
        await conn.execute(f"ALTER SCHEMA {shadow} RENAME TO {LIVE}")
        locked_ms = (time.perf_counter() - locked) * 1000
    return SwapReport(
        shadow=shadow,
        old_schema=old,
        checkpoints=live_checkpoints,
        catch_up=caught,
        last_stretch=stretch,
        locked_ms=locked_ms,
        carried_views=rows_affected(views),
        carried_redrives=rows_affected(redrives),
    )


def rows_affected(status: str) -> int:
    """The row count of a command status such as ``INSERT 0 12`` or ``UPDATE 3``."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


async def _compare_counts(conn: asyncpg.Connection, shadow: str) -> None:
    """Both schemas stand at the same checkpoints now: their tables must hold as many rows (view_outbox aside)."""
    for table in await tables_of(conn, LIVE):
        if table == "view_outbox":
            continue
        live = await conn.fetchval(f"SELECT count(*) FROM {LIVE}.{table}")
        mine = await conn.fetchval(f"SELECT count(*) FROM {shadow}.{table}")
        if live != mine:
            raise OperationError(
                f"{table}: {live} rows live but {mine} in {shadow} at the same checkpoints; nothing was changed — "
                "run `renkou verify` to see the differences"
            )
