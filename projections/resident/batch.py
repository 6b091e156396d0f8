"""One batch of accepted events folded into what it writes: archive rows with their chain links, sections,
family facts, households and number links — pure, like the rest of the projection.

``fold_batch`` takes the batch's events (already parsed, fenced and deduplicated by the projector service) and the
sections they touch as stored, and returns a ``BatchWrite``. A ``ProjectionStore`` (``store.PostgresProjectionStore``
in production, ``memory.MemoryProjectionStore`` for tests and tools) reads those sections and writes the result;
both keep the same contract, checked by one suite run against each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar
from uuid import UUID

from events.envelope import Event, Payload
from projections.resident.aliases import NumberLink, number_link, standing
from projections.resident.apply import apply
from projections.resident.family import (
    BirthCertificate,
    CertificateRecord,
    ParentLink,
    certificate_record,
    family_facts,
    household_membership,
    merge_certificates,
)
from projections.resident.state import initial_state, state_from_json_text, state_to_json_text

GENESIS = bytes(32)
"""``prev_hash`` of the first link of every chain."""


def chain_hash(prev_hash: bytes, body: bytes) -> bytes:
    """The link of a hash chain: SHA-256 over the previous link and the event's archived bytes."""
    return hashlib.sha256(prev_hash + body).digest()


class ArchiveRow(NamedTuple):
    """One accepted event, as appended to the archive (a tuple in the archive table's column order)."""

    citizen_id: str
    department: str
    chain_seq: int
    event_id: UUID
    event_type: str
    schema_version: int
    occurred_at: datetime
    recorded_at: datetime
    topic: str
    partition: int
    offset: int
    body: bytes
    prev_hash: bytes
    hash: bytes
    logged_at: datetime | None = None
    """The Kafka record's timestamp (when the log learnt of the event); ``None`` for a record that has none."""


@dataclass(frozen=True, slots=True)
class SectionRow:
    """The stored state of one department's section of one resident, with its chain head."""

    citizen_id: str
    department: str
    state: str  # the department state as JSON text (jsonb in the table)
    event_count: int
    last_event_at: datetime
    chain_seq: int
    chain_head: bytes


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """A rejected record as the ``dead_letters`` table keeps it. ``value_size`` is set when the value was too large
    to keep (``value`` is then ``None``; the record stays in its topic at the row's coordinates)."""

    topic: str
    partition: int
    offset: int
    reason: str
    key: bytes | None
    value: bytes | None
    event_id: str | None
    value_size: int | None = None


@dataclass(frozen=True, slots=True)
class Household:
    citizen_id: str
    household_id: str
    household_type: str
    relationship: str
    region_code: str


@dataclass(frozen=True, slots=True)
class ParentLinkRow:
    child_citizen_id: str
    role: str
    department: str
    parent_citizen_id: str
    event_id: UUID


@dataclass
class BatchWrite:
    """Everything one batch writes, gathered in memory and then written in one statement per table."""

    archive: list[ArchiveRow]
    sections: list[SectionRow]
    parent_links: list[ParentLinkRow]
    certificates: list[CertificateRecord]
    households: dict[str, Household | None]  # citizen -> membership now (None: no longer in a household)
    checkpoints: dict[tuple[str, int], int]  # (topic, partition) -> next offset
    dead_letters: list[DeadLetterRow]
    changed_citizens: set[str]
    number_links: list[NumberLink] = field(default_factory=list)  # §12: one per superseded number

    @classmethod
    def nothing(cls) -> BatchWrite:
        """A write of no rows (checkpoints and dead letters are added to it)."""
        return cls([], [], [], [], {}, {}, [], set())


class Accepted(NamedTuple):
    """An event the batch applies, with the bytes the log holds (archived verbatim, chained) and where it holds
    them."""

    event: Event[Payload]
    body: bytes
    topic: str
    partition: int
    offset: int
    logged_at: datetime | None


def section_keys(accepted: Iterable[Accepted]) -> list[tuple[str, str]]:
    """The ``(citizen_id, department)`` sections ``accepted`` folds into, in key order (what to load first)."""
    return sorted({(a.event.citizen_id, a.event.source.department) for a in accepted})


def fold_batch(accepted: Sequence[Accepted], stored: Mapping[tuple[str, str], SectionRow]) -> BatchWrite:
    """What ``accepted`` writes, folded in order onto the ``stored`` sections (those of ``section_keys``; a
    section not in it starts empty): one archive row per event chained onto its section's head, one row per
    section touched, the family facts, certificates merged, households now, the standing number links, and the
    citizens whose view changed. Checkpoints and dead letters are the caller's."""
    # Per (citizen, department): the state and the section's counters, updated in place as the batch folds
    # (one SectionRow per section is built at the end, not one per event).
    sections: dict[tuple[str, str], _Section] = {}
    archive: list[ArchiveRow] = []
    family = _Family()
    renumbered: dict[str, NumberLink] = {}
    changed: set[str] = set()
    for one in accepted:
        event = one.event
        key = (event.citizen_id, event.source.department)
        section = sections.get(key)
        if section is None:
            section = sections[key] = _Section.start(stored.get(key), key[1])
        archive.append(section.fold(one))
        family.add(event)
        number = number_link(event)
        if number is not None:
            renumbered[number.old] = standing(renumbered.get(number.old), number)
            changed.add(number.old)  # the superseded number's view now shows the person it belongs to
        changed.add(event.citizen_id)
    households: dict[str, Household | None] = {}
    for (citizen, department), section in sections.items():
        if department == "public_security":
            member = household_membership(section.state)
            households[citizen] = None if member is None else Household(citizen, *member)
    return BatchWrite(
        archive=archive,
        sections=[section.row(citizen, department) for (citizen, department), section in sections.items()],
        parent_links=list(family.links.values()),
        certificates=list(family.certificates.values()),
        households=households,
        checkpoints={},
        dead_letters=[],
        changed_citizens=changed,
        number_links=list(renumbered.values()),
    )


class _Section:
    """One section while a batch folds into it: the state and the counters its row will carry."""

    __slots__ = ("chain_head", "chain_seq", "event_count", "last_event_at", "state")

    def __init__(
        self, state: Any, event_count: int, last_event_at: datetime | None, chain_seq: int, chain_head: bytes
    ) -> None:
        self.state = state
        self.event_count = event_count
        self.last_event_at: Any = last_event_at
        self.chain_seq = chain_seq
        self.chain_head = chain_head

    @classmethod
    def start(cls, row: SectionRow | None, department: str) -> _Section:
        """The section as stored (``row``), or a new one with the department's empty state."""
        if row is None:
            return cls(initial_state(department), 0, None, 0, GENESIS)
        state = state_from_json_text(department, row.state)
        return cls(state, row.event_count, row.last_event_at, row.chain_seq, row.chain_head)

    def fold(self, one: Accepted) -> ArchiveRow:
        """``one`` applied to the state and counted, and its archive row, chained onto the section's head."""
        event = one.event
        self.state = apply(self.state, event)
        prev_hash = self.chain_head
        self.chain_head = chain_hash(prev_hash, one.body)
        self.chain_seq += 1
        occurred_at = event.occurred_at
        # last_event_at: the latest business time applied (events may arrive out of business-time order).
        if self.event_count == 0 or occurred_at > self.last_event_at:
            self.last_event_at = occurred_at
        self.event_count += 1
        return ArchiveRow(
            event.citizen_id,
            event.source.department,
            self.chain_seq,
            event.event_id,
            event.event_type,
            event.schema_version,
            occurred_at,
            event.recorded_at,
            one.topic,
            one.partition,
            one.offset,
            one.body,
            prev_hash,
            self.chain_head,
            one.logged_at,
        )

    def row(self, citizen_id: str, department: str) -> SectionRow:
        """The section's row as the batch leaves it."""
        return SectionRow(
            citizen_id,
            department,
            state_to_json_text(self.state),
            self.event_count,
            self.last_event_at,
            self.chain_seq,
            self.chain_head,
        )


class _Family:
    """The family facts of a batch's events: each parent link by its key (the last stated wins) and each
    certificate with every statement of it merged (``family.merge_certificates``)."""

    __slots__ = ("certificates", "links")

    def __init__(self) -> None:
        self.links: dict[tuple[str, str, str], ParentLinkRow] = {}
        self.certificates: dict[tuple[str, str], CertificateRecord] = {}

    def add(self, event: Event[Payload]) -> None:
        for fact in family_facts(event):
            if isinstance(fact, ParentLink):
                self.links[(fact.child_citizen_id, fact.role, fact.department)] = ParentLinkRow(
                    fact.child_citizen_id, fact.role, fact.department, fact.parent_citizen_id, event.event_id
                )
            elif isinstance(fact, BirthCertificate):
                stated = certificate_record(fact, event.event_id, event.recorded_at)
                if stated is not None:
                    known = self.certificates.get(stated.key)
                    self.certificates[stated.key] = stated if known is None else merge_certificates(known, stated)


class Connection(Protocol):
    """What the projector needs of a store's connection: a transaction, which is a savepoint inside an open one."""

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...


ConnT = TypeVar("ConnT", bound=Connection, contravariant=True)


class ProjectionStore(Protocol[ConnT]):
    """Where a projection's batches are fenced, deduplicated against and written, on a connection of its own kind
    (each call inside the caller's transaction on ``conn``).

    The contract both adapters keep (``tests/integration/test_projection_store_contract.py``):

    * ``lock_checkpoints`` creates a partition's checkpoint at 0 the first time, and holds it until the transaction
      ends; a batch's ``checkpoints`` move only partitions locked before;
    * the archive is append-only and an ``event_id`` is archived once (a second time fails the write);
    * sections, parent links and households are replaced by key (a household of ``None`` removes the member);
    * a number's link is replaced only by one that ranks higher (``aliases.standing``), whatever order they come in;
    * a certificate's statements merge with the stored ones (``family.merge_certificates``);
    * a dead letter's coordinates are written once (a later one at the same coordinates is dropped);
    * every changed citizen is queued for the view relay;
    * a write that fails inside a transaction leaves nothing of itself once that transaction is rolled back.
    """

    async def lock_checkpoints(self, conn: ConnT, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Lock the checkpoints of ``partitions`` for the transaction and return their next offsets."""
        ...

    async def archived_bodies(self, conn: ConnT, event_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """The bodies of those ``event_ids`` already archived."""
        ...

    async def load_sections(self, conn: ConnT, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], SectionRow]:
        """The stored sections of ``(citizen_id, department)`` keys (absent: none stored)."""
        ...

    async def write(self, conn: ConnT, batch: BatchWrite) -> None:
        """Write ``batch``; the caller's transaction makes it all or nothing."""
        ...
