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

from services.access_log.database import AccessEntry, append_without_grant, read_groups

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
    entry = AccessEntry(request_id, f"operator:{operator}", purpose, tuple(sections), endpoint, datetime.now(UTC))
    await append_without_grant(conn, read_groups(entry, views))
    return request_id
