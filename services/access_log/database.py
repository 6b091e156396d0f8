"""The access log of resident reads: append (before the answer leaves) and read back.

Shared by every path that discloses a resident: the query API, operators' CLI reads and the view relay's
per-consumer topics (CONTRACT §11). ``read_groups`` says who a read's entries are for — each resident shown and
each relative their ``family`` sections disclose.

Every successful read of a resident — one entry per citizen returned — is appended in a transaction that also
re-checks that the consumer's grant is still active, and the caller sends its response only after that
transaction committed; if it fails, nothing of the read leaves the service (``AccessLogUnavailableError``). A
live single read appends its entry from its own reading statement (``single_read.load_resident``); the other
reads go through ``renkou_append_access_logs`` (migrations 0005, 0008), and those arriving together share that
transaction (``AccessLogWriter``, group commit). Both take each chain step with ``renkou_access_log_append``.

An entry's ``body`` is the canonical JSON of ``{request_id, consumer, purpose, citizen_id, sections, endpoint,
accessed_at}`` — keys sorted, no spaces, UTF-8, ``accessed_at`` in RFC 3339 UTC with microseconds — and the chain
link is ``sha256(prev_hash || body)`` per citizen, genesis 32 zero bytes, exactly like the event archive.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from uuid import UUID

import asyncpg
import orjson
from sqlalchemy import exists, or_, select

from projections.resident.tables import Statement, any_of, named, sections
from services.db.audit_tables import access_log, access_log_heads

__all__ = [
    "FAMILY_ENDPOINT",
    "AccessEntry",
    "AccessLogPage",
    "AccessLogSink",
    "AccessLogUnavailableError",
    "AccessLogWriter",
    "EntryGroup",
    "GrantNoLongerValidError",
    "append_now",
    "append_without_grant",
    "canonical_body",
    "disclosed_relatives",
    "read_groups",
    "read_person_access_log",
]

FAMILY_ENDPOINT = "family"
"""The access-log endpoint of an entry for a relative disclosed by another resident's ``family`` section."""

EntryGroup = tuple["AccessEntry", Sequence[str]]
"""One entry and the citizens it is appended for."""


class AccessLogUnavailableError(RuntimeError):
    """The access-log entry could not be written, so the read must not be answered."""


class GrantNoLongerValidError(RuntimeError):
    """The grant was revoked or expired between the token check and the access-log write."""


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """What one read of one resident records."""

    request_id: UUID
    consumer: str
    purpose: str
    sections: tuple[str, ...]
    endpoint: str
    accessed_at: datetime


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def canonical_body(entry: AccessEntry, citizen_id: str) -> bytes:
    """The exact bytes hashed into the chain for ``entry`` about ``citizen_id``."""
    document = {
        "request_id": str(entry.request_id),
        "consumer": entry.consumer,
        "purpose": entry.purpose,
        "citizen_id": citizen_id,
        "sections": list(entry.sections),
        "endpoint": entry.endpoint,
        "accessed_at": _timestamp(entry.accessed_at),
    }
    # orjson writes compact UTF-8; with sorted keys that is the canonical form.
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def disclosed_relatives(views: Iterable[Mapping[str, Any]]) -> list[str]:
    """The citizens other than the views' own whom their ``family`` sections name (parents, children, household
    members), in order of first mention: each is disclosed and gets an access-log entry of their own (§11)."""
    subjects = {view["citizen_id"] for view in views}
    named: dict[str, None] = {}
    for view in views:
        family = view.get("family")
        if not family:
            continue
        for cid in (
            family.get("mother"),
            family.get("father"),
            *(child.get("citizen_id") for child in family.get("children", ())),
            *(member.get("citizen_id") for member in family.get("household_members", ())),
        ):
            if isinstance(cid, str) and cid not in subjects:
                named.setdefault(cid, None)
    return list(named)


def read_groups(entry: AccessEntry, views: Sequence[Mapping[str, Any]]) -> list[EntryGroup]:
    """The entries of one read of ``views``: ``entry`` for each resident shown, and for each relative their
    ``family`` sections disclose the same read with sections ``family`` and endpoint ``family`` (§11)."""
    groups: list[EntryGroup] = [(entry, [view["citizen_id"] for view in views])]
    relatives = disclosed_relatives(views)
    if relatives:
        family = AccessEntry(
            entry.request_id, entry.consumer, entry.purpose, ("family",), FAMILY_ENDPOINT, entry.accessed_at
        )
        groups.append((family, relatives))
    return groups


async def append_now(conn: asyncpg.Connection, groups: Sequence[EntryGroup], *, limit_s: float) -> set[int]:
    """Append each group's entry for each of its citizens in one statement (``renkou_append_access_logs``, which
    re-checks every consumer's grant); return the indexes (in ``groups``) refused because their consumer's grant
    is revoked or expired. Commits with ``conn``'s transaction (at once outside one); the statement gives up
    after ``limit_s`` seconds."""
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [])
    owner: list[int] = []
    for index, (entry, citizen_ids) in enumerate(groups):
        sections = ",".join(entry.sections)
        for cid in citizen_ids:
            for column, value in zip(
                columns,
                (
                    cid,
                    canonical_body(entry, cid),
                    entry.request_id,
                    entry.consumer,
                    entry.purpose,
                    sections,
                    entry.endpoint,
                    entry.accessed_at,
                ),
                strict=True,
            ):
                column.append(value)
            owner.append(index)
    if not owner:
        return set()
    refused_rows = await conn.fetchval(
        "SELECT renkou_append_access_logs($1::text[], $2::bytea[], $3::uuid[], $4::text[], $5::text[], "
        "$6::text[], $7::text[], $8::timestamptz[])",
        *columns,
        timeout=limit_s,
    )
    return {owner[position - 1] for position in refused_rows}


APPEND: Final = "SELECT renkou_access_log_append($1, $2, $3, $4, $5, $6::text[], $7, $8)"
"""One chain step of one citizen's access log (migration 0008), its arguments as ``append_arguments`` gives them."""


def append_arguments(citizen_id: str, entry: AccessEntry, body: bytes) -> tuple[Any, ...]:
    """``APPEND``'s arguments: ``entry`` for ``citizen_id``, whose canonical bytes are ``body``."""
    return (
        citizen_id,
        body,
        entry.request_id,
        entry.consumer,
        entry.purpose,
        list(entry.sections),
        entry.endpoint,
        entry.accessed_at,
    )


async def append_without_grant(conn: asyncpg.Connection, groups: Sequence[EntryGroup]) -> None:
    """Append each group's entry for each of its citizens in one transaction, for readers who hold no consumer
    grant (operators, citizens): ``renkou_access_log_append`` directly, chain heads taken in citizen order as
    every appender takes them; a citizen named in two groups gets the first group's entry."""
    entries: dict[str, AccessEntry] = {}
    for entry, citizen_ids in groups:
        for citizen_id in citizen_ids:
            entries.setdefault(citizen_id, entry)
    async with conn.transaction():
        for citizen_id in sorted(entries):
            entry = entries[citizen_id]
            await conn.fetchval(APPEND, *append_arguments(citizen_id, entry, canonical_body(entry, citizen_id)))


class AccessLogSink(Protocol):
    """Where a read's entries go before it is answered: its citizens' chains in PostgreSQL (``AccessLogWriter``)
    or the access-log topic on their way there (``services.access_log.topic.TopicAccessLog``)."""

    timeout: float

    @property
    def checks_grants(self) -> bool:
        """Whether appending re-checks each consumer's grant (else the caller does, before appending)."""
        ...

    async def append(self, entry: AccessEntry, citizen_ids: Sequence[str]) -> None: ...

    async def append_groups(self, groups: Sequence[EntryGroup]) -> None: ...


class AccessLogWriter:
    """Appends access-log entries with group commit: reads that arrive together share one transaction.

    ``append`` returns once the entries of that read are committed (or raises), exactly as a transaction of its
    own would — but while one commit waits for its WAL flush, the reads arriving meanwhile queue up and go
    together in the next (``renkou_append_access_logs``, migration 0005): one round trip, one commit and one
    flush for all of them. At most ``max_flushes`` transactions are in flight, each on a connection of
    ``lease`` (a lease of its own, so that the requests' connections can never starve it). A transaction that
    fails fails every read in it (none of them is answered); a consumer whose grant was revoked or expired
    meanwhile has its reads refused and the others still commit.
    """

    checks_grants = True

    def __init__(
        self,
        connection: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
        *,
        timeout: float,
        max_flushes: int = 2,
        max_rows: int = 2000,
    ) -> None:
        self._connection = connection
        self.timeout = timeout
        self.max_flushes = max_flushes
        self.max_rows = max_rows
        self._pending: list[_Pending] = []
        self._flushes = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def append(self, entry: AccessEntry, citizen_ids: Sequence[str]) -> None:
        """Append ``entry`` for each of ``citizen_ids``; return when committed.

        Raises ``GrantNoLongerValidError`` if the grant was revoked or expired meanwhile, and
        ``AccessLogUnavailableError`` for any other failure (no commit within ``timeout`` seconds included).
        """
        await self.append_groups([(entry, citizen_ids)])

    async def append_groups(self, groups: Sequence[EntryGroup]) -> None:
        """Append each group's entry for each of its citizens, queued together (so, as a rule, committed in one
        transaction: a read's subjects and the relatives it disclosed); return when all are committed."""
        futures = []
        loop = asyncio.get_running_loop()
        for entry, citizen_ids in groups:
            ids = sorted(set(citizen_ids))
            if not ids:
                continue
            done = loop.create_future()
            done.add_done_callback(_retrieve)  # a caller that gave up must not leave an unretrieved exception
            self._pending.append(_Pending(entry, ids, done))
            futures.append(done)
        if not futures:
            return
        if self._flushes < self.max_flushes:
            self._flushes += 1
            task = asyncio.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            # The statement itself gives up after ``timeout``; the margin covers the wait for a flush slot.
            await asyncio.wait_for(asyncio.shield(asyncio.gather(*futures)), 2 * self.timeout)
        except TimeoutError:
            raise AccessLogUnavailableError(f"not committed within {2 * self.timeout:.1f}s") from None

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._take()
                try:
                    refused = await self._write(batch)
                except Exception as exc:
                    error = _unavailable(exc)
                    for item in batch:
                        if not item.done.done():
                            item.done.set_exception(error)
                    continue
                for index, item in enumerate(batch):
                    if item.done.done():
                        continue
                    if index in refused:
                        refusal = f"the grant of {item.entry.consumer} is no longer valid"
                        item.done.set_exception(GrantNoLongerValidError(refusal))
                    else:
                        item.done.set_result(None)
        finally:
            self._flushes -= 1

    def _take(self) -> list[_Pending]:
        rows = 0
        count = 0
        for item in self._pending:
            if count and rows + len(item.citizen_ids) > self.max_rows:
                break
            rows += len(item.citizen_ids)
            count += 1
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    async def _write(self, batch: Sequence[_Pending]) -> set[int]:
        """Append ``batch`` in one transaction; the indexes (in ``batch``) of the reads refused for their grant."""
        async with self._connection() as conn:
            return await append_now(conn, [(item.entry, item.citizen_ids) for item in batch], limit_s=self.timeout)


@dataclass(slots=True)
class _Pending:
    entry: AccessEntry
    citizen_ids: list[str]
    done: asyncio.Future[None]


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _unavailable(exc: BaseException) -> AccessLogUnavailableError:
    return AccessLogUnavailableError(f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True, slots=True)
class AccessLogPage:
    """One page of a person's access log, newest first, and where the next (older) page starts."""

    entries: list[dict[str, Any]]
    next_before: dict[str, int] | None  # per number: its entries below this chain_seq remain; None at the end


_KNOWN_SUBJECT: Final = Statement(
    select(
        or_(
            exists().where(any_of(sections.c.citizen_id, "numbers")),
            exists().where(any_of(access_log_heads.c.citizen_id, "numbers")),
        )
    )
)


async def known_subject(conn: asyncpg.Connection, numbers: Sequence[str], schema: str) -> bool:
    """Whether any of a person's ``numbers`` is a resident of the view (``schema``) or has an access log (a
    resident whose sections a rebuild no longer holds still has one)."""
    return bool(await conn.fetchval(*_KNOWN_SUBJECT.bind(schema, numbers=list(numbers))))


_PERSON_LOG: Final = (
    "SELECT c.cid AS citizen_id, e.chain_seq, e.request_id, e.consumer, e.purpose, e.sections, e.endpoint, "
    "e.accessed_at, e.prev_hash, e.hash "
    "FROM unnest($1::text[], $2::int[]) AS c(cid, below) CROSS JOIN LATERAL ("
    f"SELECT * FROM {named(access_log)} WHERE citizen_id = c.cid AND chain_seq < c.below "
    "ORDER BY chain_seq DESC LIMIT $3) AS e"
)
"""At most $3 entries of each number of $1 below its chain_seq in $2, newest first (``read_person_access_log``)."""


async def read_person_access_log(
    conn: asyncpg.Connection, numbers: Sequence[str], *, limit: int, before: Mapping[str, int] | None = None
) -> AccessLogPage:
    """The newest ``limit`` entries of the access logs of a person's ``numbers`` (CONTRACT §12), newest first.

    Each number keeps its own chain (an entry's hash covers the number it was logged under, given as the entry's
    ``citizen_id``): a person's log is their numbers' chains merged by ``accessed_at``, each chain in its own
    order. ``before`` is the cursor of the previous page (``next_before``): per number, only entries below that
    ``chain_seq``; a number it leaves out is exhausted. One statement, at most ``limit`` rows per number.
    """
    below = {n: (before.get(n, 1) if before is not None else 2**31 - 1) for n in dict.fromkeys(numbers)}
    rows = await conn.fetch(
        _PERSON_LOG,
        list(below),
        list(below.values()),
        limit,
    )
    chains: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        chains.setdefault(r["citizen_id"], []).append(r)
    merged = heapq.merge(
        *chains.values(), key=lambda r: (r["accessed_at"], r["citizen_id"]), reverse=True
    )  # each chain newest first, as stored; ties by number, so a page is the same however often asked
    taken = list(itertools.islice(merged, limit))
    remaining: dict[str, int] = {}
    for number, fetched in chains.items():
        mine = [r for r in taken if r["citizen_id"] == number]
        # Older entries remain where some fetched were not taken, or all were and there may be more below them.
        if len(mine) < len(fetched) or (len(fetched) == limit and fetched[-1]["chain_seq"] > 1):
            remaining[number] = mine[-1]["chain_seq"] if mine else fetched[0]["chain_seq"] + 1
    return AccessLogPage([_entry(r) for r in taken], remaining or None)


def _entry(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "citizen_id": r["citizen_id"],
        "chain_seq": r["chain_seq"],
        "request_id": str(r["request_id"]),
        "consumer": r["consumer"],
        "purpose": r["purpose"],
        "sections": list(r["sections"]),
        "endpoint": r["endpoint"],
        "accessed_at": _timestamp(r["accessed_at"]),
        "prev_hash": bytes(r["prev_hash"]).hex(),
        "hash": bytes(r["hash"]).hex(),
    }
