"""Building the next anchor from PostgreSQL, without re-reading the archive and without laundering a rewrite.

Chain heads are already stored per chain — ``<schema>.sections`` (``chain_seq``, ``chain_head``) for the archive,
``access_log_heads`` for the access log — so an anchor reads those, never the archive itself. It compares them
with the anchored heads (``audit_anchor_heads``, migration 0010) in one join that returns only the chains that
moved, and then, for those chains only:

1. what was anchored in their buckets must still be as signed — the leaf digests kept (``audit_anchor_leaves``)
   hash to the previous anchor's bucket digests, and the anchored entries of the moved chains' leaves hash to
   the leaf digests kept — otherwise someone edited them, and the whole bucket is *held* (at its signed digest);
2. each moved chain must still *extend* its anchored head: the row at the anchored position still holds the
   anchored link, and the new head is the link of the row at the new position — otherwise the chain was
   rewritten, rewound or removed, and it is *held* at its anchored entry.

Held chains and buckets are named in the anchor. So the builder never signs a state that does not extend what it
signed before: rewriting rows and recomputing every later hash before the next anchor does not make the rewrite
anchored; the old head stays pinned and ``renkou audit verify`` reports the chain.

Its cost follows what moved, not the population: the join scans the stored heads (narrow for the access log,
``sections`` rows for the archive), and PostgreSQL rehashes only the moved chains' leaves and their buckets'
256 leaf digests (``benchmarks/anchor.py`` measures it).

Everything here runs in the caller's transaction (``REPEATABLE READ``: the heads and the checkpoints are read
from one snapshot), and the caller holds the builders' advisory lock (one builder at a time).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg

from projections.resident.reads import PROJECTION, read_checkpoints
from projections.resident.tables import named
from services.anchor.record import (
    HELD_LISTED,
    LEAVES_PER_BUCKET,
    LOGS,
    Anchor,
    ChainHead,
    HeldChain,
    LogDigest,
    SignedAnchor,
    bucket_of,
    bucket_prefix,
    empty_digests,
    empty_leaf_digests,
    leaf_of,
    leaf_prefix,
)
from services.db import audit_tables

ARCHIVE, ACCESS_LOG = LOGS
LOCK_KEY: Final = 0x72656E6B6F75A1  # pg advisory lock: one anchor builder at a time (projector workers, swap)
HEADS: Final = named(audit_tables.audit_anchor_heads)
LEAVES: Final = named(audit_tables.audit_anchor_leaves)
LATEST: Final = named(audit_tables.audit_anchor_latest)
_LOGS: Final = {log.name: log for log in audit_tables.CHAINED_LOGS}


@dataclass(frozen=True, slots=True)
class Change:
    """A chain whose stored head differs from its anchored entry (either side may be missing), with the links
    of its rows at the anchored and at the new position (``None`` where there is no such row)."""

    citizen_id: str
    department: str
    seq: int | None
    head: bytes | None
    old_seq: int | None
    old_head: bytes | None
    link_at_old: bytes | None = None
    link_at_new: bytes | None = None


def judge(change: Change) -> str | None:
    """Why ``change`` may not be anchored, or ``None`` if its new head extends its anchored one."""
    if change.seq is None or change.head is None:
        return f"its head is gone (anchored at #{change.old_seq})"
    if change.old_seq is not None:
        if change.seq < change.old_seq:
            return f"rewound: its head is at #{change.seq}, the anchor has #{change.old_seq}"
        if change.link_at_old is None:
            return f"row #{change.old_seq}, the anchored head, is gone"
        if change.link_at_old != change.old_head:
            return f"row #{change.old_seq} no longer holds the anchored link: rewritten"
    if change.link_at_new != change.head:
        return f"its stored head is not the link of row #{change.seq}"
    return None


def _bytes(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)


async def read_changes(conn: asyncpg.Connection, log: str, schema: str) -> list[Change]:
    """Every chain of ``log`` whose stored head is not its anchored entry (new, moved, rewound or gone), with
    the links at both positions: one statement, and only the chains that moved cross the wire."""
    chained = _LOGS[log]
    department = "department" if chained.has_departments else "''::text AS department"
    heads = (
        f"SELECT citizen_id, {department}, chain_seq, {chained.head} AS head FROM {chained.heads_in(schema)} "
        f"WHERE {chained.started}"
    )

    def row_at(alias: str, position: str) -> str:
        """The row of the changed chain ``c`` at ``position``, as ``alias``."""
        return (
            f"{chained.rows_in(schema)} {alias} ON {chained.same_chain(alias, 'c')} AND {alias}.chain_seq = {position}"
        )

    rows = await conn.fetch(
        "SELECT c.*, o.hash AS at_old, n.hash AS at_new FROM ("
        "SELECT coalesce(h.citizen_id, a.citizen_id) AS citizen_id, "
        "coalesce(h.department, a.department) AS department, "
        f"h.chain_seq AS seq, h.head, a.chain_seq AS old_seq, a.head AS old_head FROM ({heads}) h "
        f"FULL JOIN (SELECT citizen_id, department, chain_seq, head FROM {HEADS} WHERE log = $1) a "
        "ON a.citizen_id = h.citizen_id AND a.department = h.department "
        "WHERE h.chain_seq IS DISTINCT FROM a.chain_seq OR h.head IS DISTINCT FROM a.head) c "
        f"LEFT JOIN {row_at('o', 'c.old_seq')} LEFT JOIN {row_at('n', 'c.seq')}",
        log,
    )
    return [
        Change(
            r["citizen_id"],
            r["department"],
            r["seq"],
            _bytes(r["head"]),
            r["old_seq"],
            _bytes(r["old_head"]),
            _bytes(r["at_old"]),
            _bytes(r["at_new"]),
        )
        for r in rows
    ]


# record.leaf_digest, computed where the entries are. Sorting with COLLATE "C" is byte order, which for UTF-8 is
# the code-point order Python sorts strings in; a leaf is two bytes, big-endian (the last two of int4send).
_SQL_LEAF_DIGESTS = f"""
SELECT leaf,
       sha256($2::bytea || substring(int4send(leaf) FROM 3 FOR 2) || string_agg(
           set_byte('\\x00'::bytea, 0, octet_length(citizen_id)) || convert_to(citizen_id, 'UTF8')
           || set_byte('\\x00'::bytea, 0, octet_length(department)) || convert_to(department, 'UTF8')
           || int8send(chain_seq::bigint) || head,
           ''::bytea ORDER BY citizen_id COLLATE "C", department COLLATE "C")) AS digest,
       bool_and(leaf = get_byte(h, 0) * 256 + get_byte(h, 1)) AS filed_right
  FROM (SELECT *, sha256(convert_to(citizen_id, 'UTF8')) AS h FROM {HEADS}
         WHERE log = $1 AND leaf = ANY($3::int[])) x
 GROUP BY leaf
"""

# record.bucket_digest_of_leaves over the leaf digests kept in audit_anchor_leaves (a leaf without a row: the
# empty leaf's digest, sha256(leaf prefix || leaf)).
_SQL_BUCKET_DIGESTS = f"""
SELECT t.b AS bucket,
       sha256($2::bytea || set_byte('\\x00'::bytea, 0, t.b) || string_agg(
           coalesce(l.digest, sha256($3::bytea || substring(int4send(g.leaf) FROM 3 FOR 2))),
           ''::bytea ORDER BY g.leaf)) AS digest
  FROM unnest($4::int[]) AS t(b)
 CROSS JOIN LATERAL generate_series(t.b * {LEAVES_PER_BUCKET}, (t.b + 1) * {LEAVES_PER_BUCKET} - 1) AS g(leaf)
  LEFT JOIN {LEAVES} l ON l.log = $1 AND l.leaf = g.leaf
 GROUP BY t.b
"""


async def entry_leaf_digests(conn: asyncpg.Connection, log: str, leaves: Iterable[int]) -> dict[int, bytes | None]:
    """The digests of the anchored entries filed under ``leaves`` (``None`` for a leaf holding an entry of
    another leaf, which only a hand could have put there); leaves without entries are absent."""
    rows = await conn.fetch(_SQL_LEAF_DIGESTS, log, leaf_prefix(log), sorted(leaves))
    return {r["leaf"]: bytes(r["digest"]) if r["filed_right"] else None for r in rows}


async def stored_leaf_digests(
    conn: asyncpg.Connection, log: str, leaves: Iterable[int] | None = None
) -> dict[int, bytes]:
    """The leaf digests kept in ``audit_anchor_leaves`` (of ``leaves`` only, when given)."""
    if leaves is None:
        rows = await conn.fetch(f"SELECT leaf, digest FROM {LEAVES} WHERE log = $1", log)
    else:
        rows = await conn.fetch(
            f"SELECT leaf, digest FROM {LEAVES} WHERE log = $1 AND leaf = ANY($2::int[])", log, sorted(leaves)
        )
    return {r["leaf"]: bytes(r["digest"]) for r in rows}


async def stored_bucket_digests(conn: asyncpg.Connection, log: str, buckets: Iterable[int]) -> dict[int, bytes]:
    """The digests of ``buckets`` over the leaf digests kept in ``audit_anchor_leaves``."""
    rows = await conn.fetch(_SQL_BUCKET_DIGESTS, log, bucket_prefix(log), leaf_prefix(log), sorted(buckets))
    return {r["bucket"]: bytes(r["digest"]) for r in rows}


@dataclass(frozen=True, slots=True)
class AnchoredEntry:
    """A row of ``audit_anchor_heads`` as stored (its ``leaf`` column is not trusted: it is recomputed)."""

    head: ChainHead
    stored_leaf: int


async def anchored_entries(
    conn: asyncpg.Connection, log: str, *, bucket: int | None = None, citizen_id: str | None = None
) -> list[AnchoredEntry]:
    """The anchored heads of ``log`` (only those filed under ``bucket`` / of ``citizen_id`` when given)."""
    where = "WHERE log = $1"
    args: list[Any] = [log]
    if bucket is not None:
        where += " AND leaf BETWEEN $2 AND $3"
        args += [bucket * LEAVES_PER_BUCKET, (bucket + 1) * LEAVES_PER_BUCKET - 1]
    if citizen_id is not None:
        where += f" AND citizen_id = ${len(args) + 1}"
        args.append(citizen_id)
    rows = await conn.fetch(f"SELECT citizen_id, department, leaf, chain_seq, head FROM {HEADS} {where}", *args)
    return [
        AnchoredEntry(ChainHead(r["citizen_id"], r["department"], r["chain_seq"], bytes(r["head"])), r["leaf"])
        for r in rows
    ]


async def checkpoints(conn: asyncpg.Connection, schema: str) -> tuple[tuple[str, int, int], ...]:
    """The projection's checkpoints in ``schema``: where in the log the anchored archive stands."""
    return tuple((t, p, o) for (t, p), o in sorted((await read_checkpoints(conn, schema)).items()))


async def _save(conn: asyncpg.Connection, log: str, heads: Sequence[ChainHead]) -> None:
    if not heads:
        return
    await conn.execute(
        f"INSERT INTO {HEADS} (log, citizen_id, department, leaf, chain_seq, head) "
        "SELECT $1, c, d, f, q, h FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::bytea[]) "
        "AS u(c, d, f, q, h) ON CONFLICT (log, citizen_id, department) DO UPDATE SET leaf = EXCLUDED.leaf, "
        "chain_seq = EXCLUDED.chain_seq, head = EXCLUDED.head",
        log,
        [h.citizen_id for h in heads],
        [h.department for h in heads],
        [leaf_of(h.citizen_id) for h in heads],
        [h.seq for h in heads],
        [h.head for h in heads],
    )


async def _save_leaves(conn: asyncpg.Connection, log: str, leaves: dict[int, bytes | None]) -> None:
    if not leaves:
        return
    items = sorted((leaf, digest) for leaf, digest in leaves.items() if digest is not None)
    await conn.execute(
        f"INSERT INTO {LEAVES} (log, leaf, digest) SELECT $1, f, d FROM unnest($2::int[], $3::bytea[]) AS u(f, d) "
        "ON CONFLICT (log, leaf) DO UPDATE SET digest = EXCLUDED.digest",
        log,
        [leaf for leaf, _ in items],
        [digest for _, digest in items],
    )


@dataclass
class Advance:
    """What the builder did with one log: its new digest and what it held back."""

    digest: LogDigest
    held: list[HeldChain]
    moved: int  # chains whose anchored entry moved (new ones included)
    seconds: dict[str, float] = field(default_factory=dict)  # where the time went: changes, digests, save


async def advance_log(conn: asyncpg.Connection, log: str, schema: str, previous: LogDigest | None) -> Advance:
    """Move ``log``'s anchored heads to the chains' current heads where they extend them; write them; digest.

    The work is proportional to the chains that moved: PostgreSQL rehashes the leaves they fall in, and the
    256 leaf digests of each bucket they touch.
    """
    empty = empty_digests(log)
    empty_leaf = empty_leaf_digests(log)
    prev_digests = previous.digests if previous is not None else empty
    clock = time.perf_counter()
    changes = await read_changes(conn, log, schema)
    seconds = {"changes": time.perf_counter() - clock}
    if not changes:
        return Advance(previous or LogDigest(0, 0, prev_digests), [], 0, seconds)
    clock = time.perf_counter()
    touched_leaves = {leaf_of(c.citizen_id) for c in changes}
    touched = {leaf // LEAVES_PER_BUCKET for leaf in touched_leaves}
    # What was anchored must still be here as it was signed: the leaf digests kept make the signed bucket
    # digests, and the anchored entries make the leaf digests kept. A bucket where either was edited is held.
    kept_buckets = await stored_bucket_digests(conn, log, touched)
    altered = {b for b in touched if kept_buckets[b] != prev_digests[b]}
    kept_leaves = await stored_leaf_digests(conn, log, touched_leaves)
    from_entries = await entry_leaf_digests(conn, log, touched_leaves)
    for leaf in touched_leaves:
        if from_entries.get(leaf, empty_leaf[leaf]) != kept_leaves.get(leaf, empty_leaf[leaf]):
            altered.add(leaf // LEAVES_PER_BUCKET)
    seconds["check"] = time.perf_counter() - clock
    accepted: list[ChainHead] = []
    held: list[HeldChain] = []
    chains = previous.chains if previous else 0
    links = previous.links if previous else 0
    for c in changes:
        if bucket_of(c.citizen_id) in altered:
            continue
        problem = judge(c)
        if problem is not None:
            held.append(HeldChain(log, c.citizen_id, c.department, c.old_seq, problem))
            continue
        assert c.seq is not None and c.head is not None
        accepted.append(ChainHead(c.citizen_id, c.department, c.seq, c.head))
        chains += c.old_seq is None
        links += c.seq - (c.old_seq or 0)
    for b in sorted(altered):
        held.append(
            HeldChain(log, "", "", None, "the anchored heads of this bucket no longer match its signed digest", b)
        )
    clock = time.perf_counter()
    await _save(conn, log, accepted)
    moved_leaves = {leaf_of(h.citizen_id) for h in accepted}
    await _save_leaves(conn, log, await entry_leaf_digests(conn, log, moved_leaves))
    digests = list(prev_digests)
    for b, digest in (
        await stored_bucket_digests(conn, log, {leaf // LEAVES_PER_BUCKET for leaf in moved_leaves})
    ).items():
        digests[b] = digest
    seconds["save"] = time.perf_counter() - clock
    return Advance(LogDigest(chains, links, tuple(digests)), held, len(accepted), seconds)


async def build_anchor(
    conn: asyncpg.Connection,
    *,
    schema: str,
    previous: SignedAnchor | None,
    reason: str,
    now: datetime,
    rebase_after: SignedAnchor | None = None,
) -> tuple[Anchor, dict[str, Advance]]:
    """The next anchor after ``previous`` (the first one when ``None``); the anchored heads are written.

    ``rebase_after``: start the anchored state afresh from the chains as they are (``previous`` is ``None``),
    numbered and linked after that anchor — an operator's decision after a database restore, say, which the
    series records (``reason`` ``rebase``): what the restore lost stays visible in the anchors before it.
    """
    if previous is None:
        # No anchor to build upon: nothing pinned here can be trusted, every chain is anchored as it stands.
        await conn.execute(f"DELETE FROM {HEADS}")
        await conn.execute(f"DELETE FROM {LEAVES}")
    after = previous or rebase_after
    advances = {
        log: await advance_log(conn, log, schema, previous.anchor.logs[log] if previous else None) for log in LOGS
    }
    held = [h for a in advances.values() for h in a.held]
    anchor = Anchor(
        seq=after.anchor.seq + 1 if after else 1,
        previous=after.digest() if after else None,
        anchored_at=now,
        reason=reason,
        projection=PROJECTION,
        schema=schema,
        checkpoints=await checkpoints(conn, schema),
        logs={log: a.digest for log, a in advances.items()},
        held=tuple(held[:HELD_LISTED]),
        held_total=len(held),
    )
    return anchor, advances


# --- the latest anchor, kept with the heads it pins ----------------------------------------------------------------
@dataclass(frozen=True)
class StoredAnchor:
    seq: int
    record: bytes
    published: bool


async def stored_anchor(conn: asyncpg.Connection) -> StoredAnchor | None:
    row = await conn.fetchrow(f"SELECT seq, record, published FROM {LATEST}")
    return None if row is None else StoredAnchor(row["seq"], bytes(row["record"]), row["published"])


async def store_anchor(conn: asyncpg.Connection, signed: SignedAnchor) -> None:
    await conn.execute(
        f"INSERT INTO {LATEST} (singleton, seq, record, published, built_at) VALUES (true, $1, $2, false, now()) "
        "ON CONFLICT (singleton) DO UPDATE SET seq = EXCLUDED.seq, record = EXCLUDED.record, "
        "published = false, built_at = EXCLUDED.built_at",
        signed.anchor.seq,
        signed.to_bytes(),
    )


async def mark_published(conn: asyncpg.Connection, seq: int) -> None:
    await conn.execute(f"UPDATE {LATEST} SET published = true WHERE seq = $1", seq)
