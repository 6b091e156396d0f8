"""Every console action recorded (CONTRACT §14): who (operator, auditor or citizen), what, on what, when, outcome.

Written before the answer leaves the console — an action whose record cannot be written is not reported done —
into ``console_actions``, which nobody can change afterwards (migration 0019).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from projections.resident.tables import named
from services.db import audit_tables

__all__ = ["Action", "recent_actions", "record_action"]

_ACTIONS: Final = named(audit_tables.console_actions)


@dataclass(frozen=True)
class Action:
    acted_at: datetime
    actor: str
    role: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]


async def record_action(
    conn: asyncpg.Connection,
    *,
    actor: str,
    role: str,
    action: str,
    outcome: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    await conn.execute(
        f"INSERT INTO {_ACTIONS} (actor, role, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        actor,
        role,
        action,
        target,
        outcome,
        json.dumps(dict(detail or {}), ensure_ascii=False, default=str),
    )


async def recent_actions(
    conn: asyncpg.Connection, *, actor: str | None = None, action: str | None = None, limit: int = 200
) -> list[Action]:
    rows = await conn.fetch(
        f"SELECT acted_at, actor, role, action, target, outcome, detail::text AS detail FROM {_ACTIONS} "
        "WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2) "
        "ORDER BY acted_at DESC, id DESC LIMIT $3",
        actor,
        action,
        limit,
    )
    return [
        Action(r["acted_at"], r["actor"], r["role"], r["action"], r["target"], r["outcome"], json.loads(r["detail"]))
        for r in rows
    ]
