"""Audit: one resident's archived events in order, and every hash chain recomputed.

Two append-only, hash-chained logs: the event archive (a chain per citizen and department) and the access log
(a chain per citizen). A link is ``hash = sha256(prev_hash || body)``; the first link's ``prev_hash`` is 32 zero
bytes; ``chain_seq`` counts 1, 2, 3, … without gaps; and the stored head (``sections.chain_head`` /
``access_log_heads.head``) is the last link. A superuser can disable the append-only trigger and change a row;
they cannot do it without breaking one of these equalities, unless they rewrite every later link *and* the head.

The recomputation runs in PostgreSQL (``sha256(bytea)``, a window over each chain in primary-key order, so no
sort), and only the broken links travel back, through a cursor: the archive can be as large as it likes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from projections.resident.reads import load_archive_in_business_order
from services.db.audit_tables import ACCESS_LOG, ARCHIVE_LOG, CHAINED_LOGS, ChainedLog
from services.operations.base import NotFoundError, short_hex
from services.operations.schemas import LIVE

GENESIS_SQL = "'\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea"


@dataclass(frozen=True)
class BrokenLink:
    """One equality of a chain that does not hold."""

    log: str  # archive | access_log
    citizen_id: str
    department: str | None  # archive chains only
    position: int  # chain_seq of the row (or of the stored head)
    problem: str  # hash | link | sequence | head
    expected: str
    found: str

    def describe(self) -> str:
        chain = f"{self.citizen_id}/{self.department}" if self.department else self.citizen_id
        what = {
            "hash": "hash is not sha256(prev_hash || body)",
            "link": "prev_hash is not the previous link",
            "sequence": "chain_seq does not follow the previous one",
            "head": "stored head is not the last link",
            "missing": "stored head names a chain with no rows",
        }[self.problem]
        return f"{self.log} {chain} #{self.position}: {what}: expected {self.expected}, found {self.found}"


@dataclass
class ChainReport:
    """The outcome of ``verify_chains``: what was checked and what is broken (the first ``limit`` in detail)."""

    archive_links: int = 0
    archive_chains: int = 0
    access_links: int = 0
    access_chains: int = 0
    broken: list[BrokenLink] = field(default_factory=list)
    broken_total: int = 0

    @property
    def intact(self) -> bool:
        return self.broken_total == 0


def _hex(value: bytes | None) -> str:
    return short_hex(None if value is None else bytes(value), 16)


def link_problems(log: str, r: asyncpg.Record, department: str | None) -> list[BrokenLink]:
    """What is wrong with one row of a chain, as ``_links_query`` returns it beside its computed hash and the
    previous row's position and link: its ``chain_seq``, its ``prev_hash`` and its ``hash`` each checked."""
    out = []
    expected_seq = (r["prev_seq"] or 0) + 1
    if r["chain_seq"] != expected_seq:
        out.append(
            BrokenLink(
                log, r["citizen_id"], department, r["chain_seq"], "sequence", str(expected_seq), str(r["chain_seq"])
            )
        )
    expected_prev = bytes(r["prev_link"]) if r["prev_link"] is not None else bytes(32)
    if bytes(r["prev_hash"]) != expected_prev:
        out.append(
            BrokenLink(
                log, r["citizen_id"], department, r["chain_seq"], "link", _hex(expected_prev), _hex(r["prev_hash"])
            )
        )
    if bytes(r["hash"]) != bytes(r["computed"]):
        out.append(
            BrokenLink(log, r["citizen_id"], department, r["chain_seq"], "hash", _hex(r["computed"]), _hex(r["hash"]))
        )
    return out


def _links_query(log: ChainedLog, schema: str, where: str) -> str:
    # The window runs in primary-key order (citizen_id[, department], chain_seq): an index scan, no sort.
    chain = ", ".join(log.chain)
    return (
        f"SELECT * FROM (SELECT {chain}, chain_seq, prev_hash, hash, sha256(prev_hash || body) AS computed, "
        f"lag(chain_seq) OVER w AS prev_seq, lag(hash) OVER w AS prev_link FROM {log.rows_in(schema)} {where} "
        f"WINDOW w AS (PARTITION BY {chain} ORDER BY chain_seq)) x "
        f"WHERE chain_seq <> coalesce(prev_seq, 0) + 1 OR prev_hash <> coalesce(prev_link, {GENESIS_SQL}) "
        f"OR hash <> computed ORDER BY {chain}, chain_seq"
    )


def _heads_query(log: ChainedLog, schema: str, where: str) -> str:
    chain = log.chain
    coalesced = ", ".join(f"coalesce(h.{c}, l.{c}) AS {c}" for c in chain)
    desc = ", ".join(f"{c} DESC" for c in [*chain, "chain_seq"])
    return (
        f"WITH l AS (SELECT DISTINCT ON ({', '.join(chain)}) {', '.join(chain)}, chain_seq, hash "
        f"FROM {log.rows_in(schema)} {where} ORDER BY {desc}), "
        f"h AS (SELECT {', '.join(chain)}, chain_seq, {log.head} AS head FROM {log.heads_in(schema)} {where}) "
        f"SELECT {coalesced}, h.chain_seq AS head_seq, h.head, l.chain_seq AS last_seq, l.hash AS last_hash "
        f"FROM h FULL JOIN l ON {log.same_chain('h', 'l')} "
        f"WHERE h.chain_seq IS DISTINCT FROM l.chain_seq OR h.head IS DISTINCT FROM l.hash ORDER BY 1, 2"
    )


class _Collector:
    def __init__(self, report: ChainReport, limit: int) -> None:
        self.report = report
        self.limit = limit

    def add(self, links: list[BrokenLink]) -> None:
        for link in links:
            self.report.broken_total += 1
            if len(self.report.broken) < self.limit:
                self.report.broken.append(link)


async def verify_chains(
    conn: asyncpg.Connection, citizen_id: str | None = None, *, schema: str = LIVE, limit: int = 100
) -> ChainReport:
    """Recompute every chain of the archive in ``schema`` and of the access log (one citizen's, when given).

    Raises ``NotFoundError`` when ``citizen_id`` has neither archived events nor access-log entries.
    """
    report = ChainReport()
    found = _Collector(report, limit)
    args: list[Any] = [] if citizen_id is None else [citizen_id]
    where = "" if citizen_id is None else "WHERE citizen_id = $1"
    counts = await conn.fetchrow(
        f"SELECT (SELECT count(*) FROM {ARCHIVE_LOG.rows_in(schema)} {where}) AS links, "
        f"(SELECT count(*) FROM {ARCHIVE_LOG.heads_in(schema)} {where}) AS chains, "
        f"(SELECT count(*) FROM {ACCESS_LOG.rows_in(schema)} {where}) AS access_links, "
        f"(SELECT count(*) FROM {ACCESS_LOG.heads_in(schema)} {where}) AS access_chains",
        *args,
    )
    assert counts is not None
    report.archive_links, report.archive_chains = counts["links"], counts["chains"]
    report.access_links, report.access_chains = counts["access_links"], counts["access_chains"]
    if citizen_id is not None and not (report.archive_links or report.archive_chains or report.access_links):
        raise NotFoundError(f"no archived events and no access-log entries for {citizen_id}")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for log in CHAINED_LOGS:
            async for r in conn.cursor(_links_query(log, schema, where), *args, prefetch=500):
                found.add(link_problems(log.name, r, r["department"] if log.has_departments else None))
            async for r in conn.cursor(_heads_query(log, schema, where), *args, prefetch=500):
                found.add([_head_problem(log.name, r, r["department"] if log.has_departments else None)])
    return report


def _head_problem(log: str, r: asyncpg.Record, department: str | None) -> BrokenLink:
    if r["last_seq"] is None:
        return BrokenLink(
            log, r["citizen_id"], department, r["head_seq"], "missing", "no head (no rows)", f"head at #{r['head_seq']}"
        )
    expected = f"#{r['last_seq']} {_hex(r['last_hash'])}"
    found = "no head" if r["head_seq"] is None else f"#{r['head_seq']} {_hex(r['head'])}"
    return BrokenLink(log, r["citizen_id"], department, r["head_seq"] or r["last_seq"], "head", expected, found)


@dataclass(frozen=True)
class TimelineEntry:
    """One archived event with its Kafka coordinates, both times and its chain link (in ``citizen_id``'s chain)."""

    citizen_id: str
    occurred_at: datetime
    recorded_at: datetime
    department: str
    chain_seq: int
    event_type: str
    event_id: str
    schema_version: int
    topic: str
    partition: int
    offset: int
    prev_hash: bytes
    hash: bytes
    archived_at: datetime
    body: bytes

    def to_json(self) -> dict[str, Any]:
        try:
            event: Any = json.loads(self.body)
        except ValueError:
            event = self.body.decode("utf-8", errors="replace")
        return {
            "citizen_id": self.citizen_id,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "department": self.department,
            "chain_seq": self.chain_seq,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "schema_version": self.schema_version,
            "coordinates": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "prev_hash": self.prev_hash.hex(),
            "hash": self.hash.hex(),
            "archived_at": self.archived_at.isoformat(),
            "event": event,
        }


async def timeline(conn: asyncpg.Connection, numbers: Sequence[str], *, schema: str = LIVE) -> list[TimelineEntry]:
    """The archived events of a person's ``numbers`` (CONTRACT §12; one number for most) in business-time order
    (ties: recorded time, then department and chain order, then number)."""
    rows = await load_archive_in_business_order(conn, numbers, schema)
    if not rows:
        raise NotFoundError(f"no archived events for {', '.join(numbers)}")
    return [
        TimelineEntry(
            r["citizen_id"],
            r["occurred_at"],
            r["recorded_at"],
            r["department"],
            r["chain_seq"],
            r["event_type"],
            str(r["event_id"]),
            r["schema_version"],
            r["topic"],
            r["kafka_partition"],
            r["kafka_offset"],
            bytes(r["prev_hash"]),
            bytes(r["hash"]),
            r["archived_at"],
            bytes(r["body"]),
        )
        for r in rows
    ]


async def read_timeline(
    conn: asyncpg.Connection, citizen_id: str, *, operator: str, purpose: str, endpoint: str, schema: str = LIVE
) -> tuple[tuple[str, ...], list[TimelineEntry]]:
    """A person's numbers and archived events (``timeline``), the read recorded in their access log first
    (consumer ``operator:<operator>``, CONTRACT §11): nothing is returned if the entry cannot be written."""
    from projections.resident.reads import person_numbers
    from services.operations.operator_reads import record_operator_read

    numbers = await person_numbers(conn, citizen_id, schema)
    entries = await timeline(conn, numbers, schema=schema)
    await record_operator_read(
        conn,
        operator=operator,
        purpose=purpose,
        endpoint=endpoint,
        sections=["events"],
        views=[{"citizen_id": numbers[0]}],
    )
    return numbers, entries
