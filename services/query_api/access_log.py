"""The access log of resident reads: append (before the answer leaves) and read back.

Every successful read of a resident — one entry per citizen returned — is appended by
``renkou_append_access_log`` (migration 0004) in one transaction, which also re-checks that the consumer's grant
is still active. The caller sends its response only after that transaction committed; if it fails, nothing of
the read leaves the service (``AccessLogUnavailableError``).

An entry's ``body`` is the canonical JSON of ``{request_id, consumer, purpose, citizen_id, sections, endpoint,
accessed_at}`` — keys sorted, no spaces, UTF-8, ``accessed_at`` in RFC 3339 UTC with microseconds — and the chain
link is ``sha256(prev_hash || body)`` per citizen, genesis 32 zero bytes, exactly like the event archive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import asyncpg
import orjson

__all__ = [
    "GRANT_REFUSED_SQLSTATE",
    "AccessEntry",
    "AccessLogUnavailableError",
    "GrantNoLongerValidError",
    "append_access",
    "canonical_body",
    "read_access_log",
]

GRANT_REFUSED_SQLSTATE: Final = "RKG01"
"""Raised by ``renkou_append_access_log`` when the consumer's grant is revoked or expired."""


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


async def append_access(
    conn: asyncpg.Connection,
    entry: AccessEntry,
    citizen_ids: Sequence[str],
    *,
    timeout: float,  # noqa: ASYNC109
) -> None:
    """Append ``entry`` for each of ``citizen_ids`` and commit, in one round trip and one transaction.

    Raises ``GrantNoLongerValidError`` if the grant was revoked or expired meanwhile, ``AccessLogUnavailableError``
    for any other failure (no commit within ``timeout`` seconds included). Either way nothing was appended.
    """
    if not citizen_ids:
        return
    ids = sorted(set(citizen_ids))
    bodies = [canonical_body(entry, cid) for cid in ids]
    try:
        await conn.fetchval(
            "SELECT renkou_append_access_log($1::text[], $2::bytea[], $3::uuid, $4, $5, $6::text[], $7, $8)",
            ids,
            bodies,
            entry.request_id,
            entry.consumer,
            entry.purpose,
            list(entry.sections),
            entry.endpoint,
            entry.accessed_at,
            timeout=timeout,
        )
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) == GRANT_REFUSED_SQLSTATE:
            raise GrantNoLongerValidError(str(exc)) from exc
        raise AccessLogUnavailableError(f"{type(exc).__name__}: {exc}") from exc
    except (TimeoutError, OSError, asyncpg.InterfaceError) as exc:
        raise AccessLogUnavailableError(f"{type(exc).__name__}: {exc}") from exc


async def read_access_log(
    conn: asyncpg.Connection, citizen_id: str, *, limit: int, before_seq: int | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` entries of ``citizen_id``'s access log (below ``before_seq`` if given), newest first."""
    rows = await conn.fetch(
        "SELECT chain_seq, request_id, consumer, purpose, sections, endpoint, accessed_at, prev_hash, hash "
        "FROM access_log WHERE citizen_id = $1 AND chain_seq < $2 ORDER BY chain_seq DESC LIMIT $3",
        citizen_id,
        before_seq if before_seq is not None else 2**31 - 1,
        limit,
    )
    return [
        {
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
        for r in rows
    ]
