"""Operators' reads in the access log (CONTRACT §11): who looked, for what, at whom — like any consumer's read.

An operator command that shows a resident's data states a purpose (``--purpose``) and runs as a named operator
(``--operator``, else ``RENKOU_OPERATOR``, else the login name). Before anything is printed, each resident shown
(and each relative a family section discloses) gets an access-log entry with consumer ``operator:<name>``, all in
one transaction, the chain heads taken in citizen order; if that fails, nothing is shown.
"""

from __future__ import annotations

import getpass
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.access_log import AccessEntry, canonical_body, read_groups

__all__ = ["operator_name", "record_operator_read"]


def operator_name(given: str | None) -> str:
    """``given``, else ``RENKOU_OPERATOR``, else the login name of the process."""
    return given or os.environ.get("RENKOU_OPERATOR") or getpass.getuser()


async def record_operator_read(
    conn: asyncpg.Connection,
    *,
    operator: str,
    purpose: str,
    endpoint: str,
    sections: Sequence[str],
    views: Sequence[Mapping[str, Any]],
) -> uuid.UUID:
    """Append the entries of an operator's read of ``views`` and commit them; return the read's request ID."""
    request_id = uuid.uuid4()
    now = datetime.now(UTC)
    consumer = f"operator:{operator}"
    entries: dict[str, AccessEntry] = {}
    for entry, citizen_ids in read_groups(
        AccessEntry(request_id, consumer, purpose, tuple(sections), endpoint, now), views
    ):
        for citizen_id in citizen_ids:
            entries.setdefault(citizen_id, entry)
    async with conn.transaction():
        for citizen_id in sorted(entries):  # chain heads in citizen order, as every appender takes them
            entry = entries[citizen_id]
            await conn.fetchval(
                "SELECT renkou_access_log_append($1, $2, $3, $4, $5, $6::text[], $7, $8)",
                citizen_id,
                canonical_body(entry, citizen_id),
                entry.request_id,
                entry.consumer,
                entry.purpose,
                list(entry.sections),
                entry.endpoint,
                entry.accessed_at,
            )
    return request_id
