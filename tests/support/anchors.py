"""A sample audit anchor, for the unit tests of the anchor's format and of the anchor check."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

from services.anchor.record import LOGS, Anchor, ChainHead, HeldChain, LogDigest, bucket_digests

CITIZEN_A, CITIZEN_B = "11010519491231002X", "510107201501010015"
LINKS = tuple(hashlib.sha256(bytes([i])).digest() for i in range(3))
"""Three chain links to pin."""


def sample_anchor(heads: dict[str, list[ChainHead]] | None = None, **changes: object) -> Anchor:
    """Anchor #7 of ``heads`` (by default one archive chain of A's and one access-log chain of B's), holding one
    chain of B's, with ``changes`` made to it."""
    heads = heads or {
        "archive": [ChainHead(CITIZEN_A, "health", 3, LINKS[0])],
        "access_log": [ChainHead(CITIZEN_B, "", 2, LINKS[1])],
    }
    logs = {
        log: LogDigest(len(heads[log]), sum(h.seq for h in heads[log]), bucket_digests(log, heads[log])) for log in LOGS
    }
    anchor = Anchor(
        seq=7,
        previous="ab" * 32,
        anchored_at=datetime(2026, 12, 6, 1, 30, tzinfo=UTC),
        reason="interval",
        projection="resident_view",
        schema="projection",
        checkpoints=(("population.health.v1", 0, 120), ("population.health.v1", 1, 80)),
        logs=logs,
        held=(HeldChain("archive", CITIZEN_B, "education", 4, "rewound: its head is at #2, the anchor has #4"),),
        held_total=1,
    )
    return replace(anchor, **changes)  # type: ignore[arg-type]
