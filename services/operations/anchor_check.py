"""``renkou audit verify``'s second half: every chain against the latest signed anchor (CONTRACT §10).

The hash chains alone cannot tell a row rewritten with every later hash recomputed (and the head moved) from
the original, nor a tail deleted with the head rewound. The anchor can: it was signed outside the database, by
a key the database never held. The check, in order:

1. **The anchors.** The last records of ``population.audit_anchor.v1`` are read and each one's signature checked
   with the trusted public key (the key file's public half, or ``--public-key``). One that does not verify —
   signed by another key, or altered — is *forged*, and named with its place in the log. Consecutive anchors
   must link (``previous``). The latest valid one is the anchor; the copy the builder keeps in the database
   must be that one, or the next one not yet published — an older one means the anchored state was *rolled back*.
2. **The anchored heads.** ``audit_anchor_heads`` is digested leaf by leaf and bucket by bucket here (never
   trusting a digest the database computed) and compared with the anchor's signed bucket digests: a bucket
   that differs had its anchored heads *altered* — named down to the leaf's chains when the leaf digests kept
   beside them (``audit_anchor_leaves``) are still the signed ones, else as the bucket.
3. **Every chain at its anchored position.** The row at the anchored ``chain_seq`` must exist and hold the
   anchored link: missing → the tail was *removed* (the chain now ends earlier); another link → the chain was
   *rewritten* at or before that row, hashes recomputed (for the archive, the rows are then compared with their
   Kafka records to name the row). Archive rows below the anchor's checkpoints that the anchor does not pin were
   *added*. Chains the builder *held* (they did not extend their anchored head when it last looked) are named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.anchor.builder import (
    ACCESS_LOG,
    ARCHIVE,
    HEADS,
    anchored_entries,
    stored_anchor,
    stored_leaf_digests,
)
from services.anchor.record import (
    BUCKETS,
    LOGS,
    AnchorFormatError,
    SignedAnchor,
    bucket_digest,
    bucket_of,
    empty_leaf_digests,
    group_by_leaf,
    key_id,
    leaf_digests,
    leaves_of,
    parse_anchor,
)
from services.anchor.topic import AnchorTopicError, Published, anchor_topic, read_anchors
from services.db.audit_tables import ARCHIVE_LOG, CHAINED_LOGS
from services.operations.base import NotFoundError, short_hex
from services.operations.schemas import LIVE

KINDS = {
    "forged": "forged anchor",
    "anchor_gap": "anchor series broken",
    "rolled_back": "anchored state rolled back",
    "altered_heads": "anchored heads altered",
    "rewritten": "rewritten",
    "removed_tail": "removed tail",
    "removed": "removed",
    "added": "added entry",
    "held": "held by the anchor builder",
}


@dataclass(frozen=True)
class Finding:
    """One thing that broke, named: which log and chain, which position, what."""

    log: str  # archive | access_log | anchor
    problem: str  # a key of KINDS
    detail: str
    citizen_id: str | None = None
    department: str | None = None
    position: int | None = None

    def describe(self) -> str:
        what = KINDS.get(self.problem, self.problem)
        if self.citizen_id is None:
            return f"{self.log}: {what}: {self.detail}"
        chain = f"{self.citizen_id}/{self.department}" if self.department else self.citizen_id
        where = f" #{self.position}" if self.position is not None else ""
        return f"{self.log} {chain}{where}: {what}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "problem": self.problem,
            "citizen_id": self.citizen_id,
            "department": self.department,
            "position": self.position,
            "detail": self.detail,
        }


@dataclass
class AnchorReport:
    """The outcome of ``check_against_anchor``."""

    key_id: str
    anchor: SignedAnchor | None = None
    source: str | None = None  # where the anchor checked against was read
    anchors_read: int = 0
    findings: list[Finding] = field(default_factory=list)
    findings_total: int = 0
    notes: list[str] = field(default_factory=list)
    chains_pinned: dict[str, int] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return self.findings_total == 0

    def to_json(self) -> dict[str, Any]:
        a = self.anchor.anchor if self.anchor else None
        return {
            "intact": self.intact,
            "trusted_key_id": self.key_id,
            "anchor": None
            if a is None
            else {
                "seq": a.seq,
                "anchored_at": a.anchored_at.isoformat(),
                "reason": a.reason,
                "source": self.source,
                "digest": self.anchor.digest() if self.anchor else None,
                "chains": {log: a.logs[log].chains for log in LOGS},
                "links": {log: a.logs[log].links for log in LOGS},
            },
            "anchors_read": self.anchors_read,
            "findings_total": self.findings_total,
            "findings": [f.to_json() for f in self.findings],
            "notes": self.notes,
        }


@dataclass
class LogReport:
    """The outcome of comparing archive rows with their Kafka records (``audit verify --log``)."""

    rows: int = 0
    records: int = 0
    findings: list[Finding] = field(default_factory=list)
    findings_total: int = 0

    @property
    def intact(self) -> bool:
        return self.findings_total == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "rows": self.rows,
            "records": self.records,
            "findings_total": self.findings_total,
            "findings": [f.to_json() for f in self.findings],
        }


class FindingList:
    """Findings as they come: all counted, the first ``limit`` kept in detail, the chains named remembered."""

    def __init__(self, report: AnchorReport | LogReport, limit: int) -> None:
        self.report = report
        self.limit = limit
        self.chains: set[tuple[str, str, str]] = set()  # (log, citizen, department) already named

    def add(self, finding: Finding) -> None:
        if finding.citizen_id is not None:
            self.chains.add((finding.log, finding.citizen_id, finding.department or ""))
        self.report.findings_total += 1
        if len(self.report.findings) < self.limit:
            self.report.findings.append(finding)

    def named(self, log: str, citizen_id: str, department: str) -> bool:
        return (log, citizen_id, department) in self.chains


# --- 1. the anchors ------------------------------------------------------------------------------------------------
async def latest_anchor(
    conn: asyncpg.Connection,
    consumer: AIOKafkaConsumer,
    topic: str,
    public_key: Ed25519PublicKey,
    report: AnchorReport,
    found: FindingList,
    *,
    last: int | None,
) -> None:
    """Set ``report.anchor`` to the anchor to check against; name forged, missing and rolled-back ones."""
    try:
        published = await read_anchors(consumer, topic, last=last)
    except AnchorTopicError as exc:
        raise NotFoundError(str(exc)) from exc
    report.anchors_read = len(published)
    on_kafka = _latest_on_kafka(published, public_key, found)
    row = await stored_anchor(conn)
    stored = None if row is None else _kept_anchor(row.record, public_key, found)
    if on_kafka is None and stored is None:
        if row is None:
            report.notes.append(f"no anchor on {topic} yet: the chains were checked for consistency only")
        return
    choose_anchor(on_kafka, stored, topic, report, found)


def _latest_on_kafka(
    published: Sequence[Published], public_key: Ed25519PublicKey, found: FindingList
) -> tuple[SignedAnchor, Published] | None:
    """The newest validly signed anchor of the topic, with where it is; forged records, a second anchor of one
    number and an anchor that does not follow the one before are named."""
    valid: dict[int, tuple[SignedAnchor, Published]] = {}
    for p in published:
        try:
            signed = parse_anchor(p.value)
        except AnchorFormatError as exc:
            found.add(Finding("anchor", "forged", f"{p.where()} is not an anchor: {exc}"))
            continue
        problem = signed.signature_problem(public_key)
        if problem is not None:
            found.add(Finding("anchor", "forged", f"{p.where()} (anchor #{signed.anchor.seq}): {problem}"))
            continue
        seq = signed.anchor.seq
        if seq in valid and valid[seq][0].to_bytes() != signed.to_bytes():
            found.add(Finding("anchor", "anchor_gap", f"{p.where()}: a second, different anchor #{seq}"))
            continue
        valid.setdefault(seq, (signed, p))
    for seq, (signed, p) in sorted(valid.items()):
        before = valid.get(seq - 1)
        if before is not None and signed.anchor.previous != before[0].digest():
            found.add(Finding("anchor", "anchor_gap", f"{p.where()}: anchor #{seq} does not follow anchor #{seq - 1}"))
    return valid[max(valid)] if valid else None


def _kept_anchor(record: bytes, public_key: Ed25519PublicKey, found: FindingList) -> SignedAnchor | None:
    """The anchor the database keeps, if it is one and validly signed; named as forged otherwise."""
    try:
        stored = parse_anchor(record)
    except AnchorFormatError as exc:
        found.add(Finding("anchor", "forged", f"the anchor kept in the database is not an anchor: {exc}"))
        return None
    problem = stored.signature_problem(public_key)
    if problem is not None:
        found.add(Finding("anchor", "forged", f"the anchor kept in the database (#{stored.anchor.seq}): {problem}"))
        return None
    return stored


def choose_anchor(
    on_kafka: tuple[SignedAnchor, Published] | None,
    stored: SignedAnchor | None,
    topic: str,
    report: AnchorReport,
    found: FindingList,
) -> None:
    """Which of the newest anchor on Kafka and the one the database keeps (at least one) to check against: the
    newer, unless the database lost anchors Kafka has (rolled back) or keeps one that does not follow (a gap)."""
    k = on_kafka[0].anchor.seq if on_kafka else 0
    s = stored.anchor.seq if stored else 0
    if on_kafka is not None and (stored is None or s < k):
        found.add(
            Finding(
                "anchor",
                "rolled_back",
                f"anchor #{k} is on {topic}, but the database keeps "
                + (f"anchor #{s}" if stored else "no anchor")
                + ": its anchored heads were rolled back or deleted",
            )
        )
        report.anchor, report.source = on_kafka[0], on_kafka[1].where()
        return
    if on_kafka is not None and s == k:
        assert stored is not None
        if stored.to_bytes() != on_kafka[0].to_bytes():
            found.add(
                Finding("anchor", "forged", f"anchor #{k} kept in the database is not the one at {on_kafka[1].where()}")
            )
        report.anchor, report.source = on_kafka[0], on_kafka[1].where()
        return
    assert stored is not None
    follows = stored.anchor.previous == on_kafka[0].digest() if on_kafka else stored.anchor.seq == 1
    if s == k + 1 and follows:
        report.notes.append(f"anchor #{s} was built but has not reached {topic} yet (the projector publishes it next)")
    else:
        found.add(
            Finding("anchor", "anchor_gap", f"the database keeps anchor #{s}, but {topic} ends at #{k or 'none'}")
        )
    report.anchor, report.source = stored, "the database (not yet on Kafka)"


# --- 2. and 3. the anchored heads, every chain ------------------------------------------------------------------
async def check_heads(
    conn: asyncpg.Connection, anchor: SignedAnchor, found: FindingList, citizen_id: str | None
) -> set[tuple[str, int]]:
    """Compare the anchored heads and leaf digests kept in the database with the anchor's signed bucket digests;
    return the altered buckets. Where only the anchored heads were edited (the leaf digests kept are still the
    signed ones), the leaves that differ are named with their chains."""
    altered: set[tuple[str, int]] = set()
    seq = anchor.anchor.seq
    for log in LOGS:
        bucket = None if citizen_id is None else bucket_of(citizen_id)
        entries = [e.head for e in await anchored_entries(conn, log, bucket=bucket)]
        computed = leaf_digests(log, entries)  # by the leaf recomputed from the citizen ID, not the stored column
        kept = await stored_leaf_digests(conn, log)
        by_leaf = group_by_leaf(entries)
        signed = anchor.anchor.logs[log].digests
        for b in range(BUCKETS) if bucket is None else (bucket,):
            if bucket_digest(log, b, computed) == signed[b]:
                continue
            altered.add((log, b))
            if bucket_digest(log, b, kept) != signed[b]:
                chains = sum(len(by_leaf.get(leaf, ())) for leaf in leaves_of(b))
                found.add(
                    Finding(
                        log,
                        "altered_heads",
                        f"bucket {b:02x}: the anchored heads and leaf digests kept in the database are not the "
                        f"ones anchor #{seq} signed ({chains} chain{'' if chains == 1 else 's'} filed there now); "
                        "a chain of this bucket may have been rewritten together with its anchored head",
                    )
                )
                continue
            empty = empty_leaf_digests(log)
            for leaf in leaves_of(b):
                if computed.get(leaf, empty[leaf]) == kept.get(leaf, empty[leaf]):
                    continue
                citizens = sorted({h.citizen_id for h in by_leaf.get(leaf, ())})
                found.add(
                    Finding(
                        log,
                        "altered_heads",
                        f"leaf {leaf:04x}: the anchored heads kept in {HEADS} for "
                        f"{', '.join(citizens) if citizens else 'no chain'} are not the ones anchor #{seq} signed; "
                        "a chain of theirs may have been rewritten together with its anchored head",
                        citizens[0] if len(citizens) == 1 else None,
                    )
                )
    return altered


async def check_chains(
    conn: asyncpg.Connection, schema: str, anchor: SignedAnchor, found: FindingList, citizen_id: str | None
) -> list[tuple[str, str, int]]:
    """Every anchored position: removed tails and rewritten chains. Returns the rewritten archive chains."""
    rewritten_archive: list[tuple[str, str, int]] = []
    seq_n = anchor.anchor.seq
    for chained in CHAINED_LOGS:
        log, table = chained.name, chained.rows_in(schema)
        args: list[Any] = [log]
        where = "a.log = $1"
        if citizen_id is not None:
            where += " AND a.citizen_id = $2"
            args.append(citizen_id)
        last = chained.same_chain("x", "a")
        rows = await conn.fetch(
            f"SELECT a.citizen_id, a.department, a.chain_seq, a.head, e.hash, "
            f"(SELECT max(x.chain_seq) FROM {table} x WHERE {last}) AS last_seq, "
            f"(SELECT count(*) FROM {table} x WHERE {last} AND x.chain_seq <= a.chain_seq) AS kept "
            f"FROM {HEADS} a LEFT JOIN {table} e ON {chained.same_chain('e', 'a')} AND e.chain_seq = a.chain_seq "
            f"WHERE {where} AND e.hash IS DISTINCT FROM a.head ORDER BY a.citizen_id, a.department",
            *args,
        )
        for r in rows:
            cid, dept, n = r["citizen_id"], r["department"] or None, r["chain_seq"]
            if r["hash"] is None:
                last_seq = r["last_seq"]
                kind = "removed_tail"
                if last_seq is None:
                    detail = f"anchor #{seq_n} pinned it up to #{n}; it has no rows any more"
                elif last_seq < n:
                    detail = (
                        f"anchor #{seq_n} pinned it up to #{n}; it now ends at #{last_seq} "
                        f"(#{last_seq + 1}–#{n} removed)"
                    )
                else:
                    kind = "removed"
                    detail = f"anchor #{seq_n} pinned row #{n}; that row is gone ({r['kept']} of its {n} rows remain)"
                found.add(Finding(log, kind, detail, cid, dept, n))
            else:
                found.add(
                    Finding(
                        log,
                        "rewritten",
                        f"row #{n} holds link {short_hex(bytes(r['hash']), 16)}, anchor #{seq_n} pinned "
                        f"{short_hex(bytes(r['head']), 16)}: a row at or before #{n} was changed and the hashes "
                        "after it recomputed",
                        cid,
                        dept,
                        n,
                    )
                )
                if log == ARCHIVE:
                    rewritten_archive.append((cid, r["department"], n))
    return rewritten_archive


async def check_added(
    conn: asyncpg.Connection,
    schema: str,
    anchor: SignedAnchor,
    found: FindingList,
    citizen_id: str | None,
    skip_buckets: set[int],
) -> None:
    """Archive rows at log positions the anchor covers (below its checkpoints) that it does not pin."""
    cps = anchor.anchor.checkpoints
    if not cps:
        return
    args: list[Any] = [[t for t, _, _ in cps], [p for _, p, _ in cps], [o for _, _, o in cps]]
    where = ""
    if citizen_id is not None:
        where = "AND e.citizen_id = $4"
        args.append(citizen_id)
    rows = await conn.fetch(
        "SELECT e.citizen_id, e.department, e.chain_seq, e.topic, e.kafka_partition, e.kafka_offset, k.o, "
        f"a.chain_seq AS anchored FROM {ARCHIVE_LOG.rows_in(schema)} e "
        "JOIN unnest($1::text[], $2::int[], $3::bigint[]) AS k(t, p, o) "
        "ON e.topic = k.t AND e.kafka_partition = k.p AND e.kafka_offset < k.o "
        f"LEFT JOIN {HEADS} a ON a.log = 'archive' AND a.citizen_id = e.citizen_id AND a.department = e.department "
        f"WHERE e.chain_seq > coalesce(a.chain_seq, 0) {where} ORDER BY 1, 2, 3",
        *args,
    )
    for r in rows:
        cid, dept = r["citizen_id"], r["department"]
        if found.named(ARCHIVE, cid, dept) or bucket_of(cid) in skip_buckets:
            continue
        pinned = (
            f"anchor #{anchor.anchor.seq} pins it up to #{r['anchored']}"
            if r["anchored"]
            else (f"anchor #{anchor.anchor.seq} pins no such chain")
        )
        found.add(
            Finding(
                ARCHIVE,
                "added",
                f"archived from {r['topic']}[{r['kafka_partition']}]@{r['kafka_offset']}, below the anchor's "
                f"checkpoint {r['o']} there, but {pinned}",
                cid,
                dept,
                r["chain_seq"],
            )
        )


def held_findings(
    anchor: SignedAnchor, found: FindingList, citizen_id: str | None, altered: set[tuple[str, int]]
) -> None:
    """What the builder itself refused to anchor, unless already named."""
    a = anchor.anchor
    for h in a.held:
        if h.bucket is not None:
            if (h.log, h.bucket) not in altered and citizen_id is None:
                found.add(Finding(h.log, "held", f"bucket {h.bucket:02x} at anchor #{a.seq}: {h.problem}"))
            continue
        if citizen_id is not None and h.citizen_id != citizen_id:
            continue
        if not found.named(h.log, h.citizen_id, h.department):
            found.add(
                Finding(
                    h.log,
                    "held",
                    f"when building anchor #{a.seq} the projector found that {h.problem}",
                    h.citizen_id,
                    h.department or None,
                    h.anchored_seq,
                )
            )
    if a.held_total > len(a.held) and citizen_id is None:
        found.add(Finding("anchor", "held", f"anchor #{a.seq} holds {a.held_total - len(a.held)} more chains"))


async def check_against_anchor(
    conn: asyncpg.Connection,
    consumer: AIOKafkaConsumer,
    *,
    namespace: str,
    public_key: Ed25519PublicKey,
    citizen_id: str | None = None,
    schema: str = LIVE,
    limit: int = 100,
    last: int | None = 50,
) -> tuple[AnchorReport, list[tuple[str, str, int]]]:
    """Check the chains in the database against the latest anchor; also the archive chains found rewritten.

    ``last``: how many of the topic's last records to read and check (``None``: every anchor ever published).
    """
    report = AnchorReport(key_id=key_id(public_key))
    found = FindingList(report, limit)
    topic = anchor_topic(namespace)
    await latest_anchor(conn, consumer, topic, public_key, report, found, last=last)
    anchor = report.anchor
    if anchor is None:
        return report, []
    if anchor.anchor.schema != schema:
        report.notes.append(
            f"anchor #{anchor.anchor.seq} pins schema {anchor.anchor.schema}, not {schema}: "
            "its chains were checked for consistency only"
        )
        return report, []
    if anchor.anchor.reason == "rebase":
        report.notes.append(
            f"anchor #{anchor.anchor.seq} re-based the anchored state (`renkou audit anchor --rebase`, "
            f"{anchor.anchor.anchored_at:%Y-%m-%d %H:%M} UTC): chains are checked from there on; the anchors "
            "before it (`--anchors 0`) pin what they were"
        )
    report.chains_pinned = {log: anchor.anchor.logs[log].chains for log in LOGS}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        altered = await check_heads(conn, anchor, found, citizen_id)
        rewritten = await check_chains(conn, schema, anchor, found, citizen_id)
        await check_added(conn, schema, anchor, found, citizen_id, {b for log, b in altered if log == ARCHIVE})
    held_findings(anchor, found, citizen_id, altered)
    return report, rewritten


__all__ = ["ACCESS_LOG", "AnchorReport", "Finding", "FindingList", "LogReport", "check_against_anchor", "choose_anchor"]
