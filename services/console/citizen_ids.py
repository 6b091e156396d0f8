"""Citizen IDs in text the console shows: found (to log the read of each) or masked (where it is not logged)."""

from __future__ import annotations

import re
from typing import Final

from events.citizen_id import CitizenIdError, reader_citizen_id

__all__ = ["CITIZEN_ID", "citizens_in", "mask_citizen_ids"]

CITIZEN_ID: Final = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{5})([0-9]{8}|[0-9]{6})([0-9]{3}[0-9Xx]?)(?![0-9A-Za-z])")
"""An 18-character citizen ID or a 15-digit legacy number standing alone in text."""


def mask_citizen_ids(text: object) -> str:
    """``text`` with every citizen ID in it shown as its region and last digits (110105********123X)."""
    return CITIZEN_ID.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), "" if text is None else str(text))


def citizens_in(*texts: str) -> list[str]:
    """Every valid citizen ID anywhere in ``texts`` (normalised, first seen first): whatever shape a record has —
    a nested field, a misnamed one, a value that is not JSON at all — the numbers in it are found."""
    found: dict[str, None] = {}
    for text in texts:
        for match in CITIZEN_ID.finditer(text):
            try:
                found[reader_citizen_id(match.group(0))] = None
            except CitizenIdError:
                continue
    return list(found)
