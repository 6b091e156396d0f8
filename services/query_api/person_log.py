"""A person's access log as the query API answers it, by any of their numbers (CONTRACT §11, §12).

``GET /v1/residents/{id}/access-log`` and ``GET /v1/me/access-log`` both answer with the entries of every number
the person has held, newest first: reads logged under a number before it was superseded are reads of the person.
Each entry names the number its chain belongs to (its hash covers that number) to a reader who may see the
person's other numbers. Paging: ``before`` takes the previous page's ``next_before``; ``before_seq`` pages the log
of a person with one number, as it always did.
"""

from __future__ import annotations

import re
from typing import Any, Final

import asyncpg

from services.access_log.database import read_person_access_log
from services.query_api.errors import ApiError

__all__ = ["BEFORE_HELP", "format_cursor", "parse_cursor", "person_access_log"]

_CURSOR: Final = re.compile(r"[0-9]{1,3}/[0-9]{1,3}:[0-9]{1,10}(?:,[0-9]{1,3}:[0-9]{1,10})*", re.ASCII)
BEFORE_HELP: Final = "Older entries: pass the previous page's next_before."


def parse_cursor(raw: str, numbers: tuple[str, ...]) -> dict[str, int]:
    """``before`` (a ``next_before``) for the person with ``numbers``: per number, the chain position to read
    below; a 422 ``invalid_before`` for anything else, or when the person's numbers changed since."""
    if _CURSOR.fullmatch(raw) is None:
        raise ApiError(422, "invalid_before", f"before must be a previous page's next_before, got {raw!r}")
    count, _, pairs = raw.partition("/")
    if int(count) != len(numbers):
        raise ApiError(
            422,
            "invalid_before",
            "this person's numbers changed since that page was read (a number change or a merge); "
            "read again from the newest entries",
        )
    cursor: dict[str, int] = {}
    for part in pairs.split(","):
        index, _, seq = part.partition(":")
        if not (int(index) < len(numbers) and 1 <= int(seq) <= 2**31 - 1):
            raise ApiError(422, "invalid_before", f"before must be a previous page's next_before, got {raw!r}")
        cursor[numbers[int(index)]] = int(seq)
    return cursor


def format_cursor(cursor: dict[str, int] | None, numbers: tuple[str, ...]) -> str | None:
    """``next_before`` as the answer gives it: how many numbers the person has, then, per number still holding
    older entries, its place among them and the chain position to read below. It names no number, so it
    discloses no alias to a reader who may not see them."""
    if not cursor:
        return None
    return f"{len(numbers)}/" + ",".join(f"{numbers.index(n)}:{seq}" for n, seq in sorted(cursor.items()))


async def person_access_log(
    conn: asyncpg.Connection,
    numbers: tuple[str, ...],
    *,
    limit: int,
    before_seq: int | None,
    before: str | None,
    show_aliases: bool,
) -> dict[str, Any]:
    """The answer of an access-log read of the person with ``numbers`` (current first). ``show_aliases``: whether
    the reader may see the person's other numbers (``identity``, as in the view; the citizen themself); if not, an
    entry logged under another number does not name it."""
    if before is not None and before_seq is not None:
        raise ApiError(422, "invalid_before", "give before or before_seq, not both")
    if before_seq is not None and len(numbers) > 1:
        raise ApiError(
            422,
            "invalid_before",
            "before_seq pages the log of a person with one number; this person has held several: page with before",
        )
    cursor = parse_cursor(before, numbers) if before is not None else None
    if before_seq is not None:
        cursor = {numbers[0]: before_seq}
    page = await read_person_access_log(conn, numbers, limit=limit, before=cursor)
    entries = page.entries
    if not show_aliases:
        # Nor the chain values: the hash covers the number, which a dictionary of likely numbers would recover.
        hidden = {"citizen_id": None, "prev_hash": None, "hash": None}
        entries = [e if e["citizen_id"] == numbers[0] else e | hidden for e in entries]
    answer: dict[str, Any] = {
        "citizen_id": numbers[0],
        "entries": entries,
        "next_before": format_cursor(page.next_before, numbers),
        "next_before_seq": page.next_before.get(numbers[0]) if len(numbers) == 1 and page.next_before else None,
    }
    if show_aliases:
        answer["aliases"] = list(numbers[1:])
    return answer
